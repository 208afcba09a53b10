// The complaint box of the actions panel: record a complaint on the open conversation
// (category, severity, responsible team), escalate it, resolve it with the customer told.
// It speaks the REST API (/api/v1/conversations/{id}/complaint, /api/v1/complaints/...).
import { app, getJson, sendJson as send, toast } from "/static/app.js";
import { byTestId, fill, h } from "/static/dom.js";
import { t } from "/static/i18n.js";

const SEVERITIES = ["low", "medium", "high", "critical"];
let current = null; // the open conversation's complaint, or null
let loadedFor = null;

function render() {
  const box = byTestId("complaint-box");
  const button = byTestId("complaint-button");
  button.hidden = Boolean(current) || !app.current;
  if (!current) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.dataset.state = current.state;
  const state = current.state === "escalated" ? t("complaint.state.escalated", { level: current.escalation_level }) : t(`complaint.state.${current.state}`);
  const lines = [
    h("strong", { "data-testid": "complaint-title" }, t("complaint.status", { id: current.id, category: current.category, severity: t(`complaint.sev.${current.severity}`) })),
    h("span", { class: `pill pill-complaint st-${current.state}`, "data-testid": "complaint-state" }, state),
  ];
  if (current.state === "resolved") {
    lines.push(
      h(
        "p",
        { class: "small", "data-testid": "complaint-notified" },
        current.customer_notified ? t("complaint.notified") : t("complaint.not_notified", { why: current.notify_error || "—" }),
      ),
    );
  } else {
    lines.push(
      h(
        "div",
        { class: "complaint-actions" },
        h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "complaint-escalate", onclick: escalate }, t("complaint.escalate")),
        h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "complaint-resolve", onclick: () => byTestId("resolve-dialog").showModal() }, t("complaint.resolve")),
      ),
    );
  }
  fill(box, lines);
}

async function load() {
  const conv = app.current?.id ?? null;
  if (conv === loadedFor) return render();
  loadedFor = conv;
  current = null;
  render();
  if (conv === null) return;
  try {
    const data = await getJson(`/api/v1/complaints?conversation_id=${conv}`);
    if (loadedFor === conv) current = data.items[0] || null;
  } catch {
    current = null;
  }
  render();
}

async function openDialog() {
  fill(byTestId("complaint-severity"), SEVERITIES.map((s) => h("option", { value: s }, t(`complaint.sev.${s}`))));
  byTestId("complaint-severity").value = "medium";
  let teams = [];
  try {
    teams = (await getJson("/api/v1/teams")).items.map((x) => x.name);
  } catch {
    teams = [];
  }
  fill(byTestId("complaint-team"), [h("option", { value: "" }, t("complaint.team_hint")), ...teams.map((n) => h("option", { value: n }, n))]);
  byTestId("complaint-error").textContent = "";
  byTestId("complaint-dialog").showModal();
}

async function record(ev) {
  ev.preventDefault();
  const conv = app.current?.id;
  if (!conv) return;
  const body = {
    category: byTestId("complaint-category").value.trim(),
    severity: byTestId("complaint-severity").value,
    summary: byTestId("complaint-summary").value.trim(),
  };
  const team = byTestId("complaint-team").value;
  if (team) body.team = team;
  try {
    current = await send("POST", `/api/v1/conversations/${conv}/complaint`, body);
    byTestId("complaint-dialog").close();
    render();
  } catch (err) {
    byTestId("complaint-error").textContent = err.message;
  }
}

async function escalate() {
  const reason = window.prompt(t("complaint.escalate_reason"), "");
  if (!reason || !current) return;
  try {
    current = await send("POST", `/api/v1/complaints/${current.id}/escalate`, { reason });
    render();
  } catch (err) {
    toast(err.message, "error");
  }
}

async function resolve(ev) {
  ev.preventDefault();
  if (!current) return;
  try {
    current = await send("POST", `/api/v1/complaints/${current.id}/resolve`, {
      resolution: byTestId("resolve-text").value.trim(),
      notify_customer: byTestId("resolve-notify").checked,
    });
    byTestId("resolve-dialog").close();
    render();
  } catch (err) {
    byTestId("resolve-error").textContent = err.message;
  }
}

export function initComplaints() {
  byTestId("complaint-button").addEventListener("click", openDialog);
  byTestId("complaint-form").addEventListener("submit", record);
  byTestId("complaint-cancel").addEventListener("click", () => byTestId("complaint-dialog").close());
  byTestId("resolve-form").addEventListener("submit", resolve);
  byTestId("resolve-cancel").addEventListener("click", () => byTestId("resolve-dialog").close());
  document.addEventListener("hub:opened", load);
  document.addEventListener("langchange", render);
}
