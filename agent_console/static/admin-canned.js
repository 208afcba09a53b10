// Admin page for supervisors and admins: canned responses (their team's; admins all) and
// disposition codes per queue with each queue's "required" flag, through the REST API.
// Everything stored is shown with textContent only (dom.js).
import { byTestId, fill, h } from "/static/dom.js";
import { applyI18n, bindLanguageSelect, t } from "/static/i18n.js";

const PLACEHOLDERS = ["{customer.first_name}", "{customer.name}", "{agent.name}", "{conversation.id}"];
const state = { me: null, myTeam: null, teams: [], queues: [], canned: [], dispositions: [] };
let editingCanned = null;
let editingDisposition = null;

async function api(method, path, body) {
  const resp = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.detail || `HTTP ${resp.status}`);
  return data;
}

function status(text, ok = true) {
  const box = byTestId("admin-status");
  box.textContent = text;
  box.style.color = ok ? "var(--ok)" : "var(--bad)";
}

function isAdmin() {
  return state.me?.role === "admin" || !state.myTeam;
}

async function load() {
  const [canned, disp, queues] = await Promise.all([
    api("GET", "/api/v1/canned-responses"),
    api("GET", "/api/v1/dispositions"),
    api("GET", "/api/v1/queues"),
  ]);
  state.canned = canned.items;
  state.dispositions = disp.items;
  state.queues = disp.queues;
  const teams = new Set(queues.items.map((q) => q.team).filter(Boolean));
  for (const c of state.canned) if (c.team) teams.add(c.team);
  if (state.myTeam) teams.add(state.myTeam);
  state.teams = [...teams].sort();
  render();
}

// ------------------------------------------------------------------ canned responses
function render() {
  byTestId("canned-help").textContent = t("adm.canned_help", { placeholders: PLACEHOLDERS.join(" ") });
  renderCanned();
  renderDispositions();
}

function manageableTeam(team) {
  return isAdmin() || (team !== null && team === state.myTeam);
}

function renderCanned() {
  const rows = state.canned.map((c) =>
    h(
      "tr",
      { "data-testid": "canned-row", "data-shortcut": c.shortcut },
      h("td", {}, h("code", {}, `/${c.shortcut}`)),
      h("td", {}, c.title),
      h("td", {}, c.team ?? t("adm.all_teams")),
      h("td", {}, c.language || t("adm.any_language")),
      h("td", { class: "admin-text" }, c.text),
      h(
        "td",
        { class: "admin-actions" },
        manageableTeam(c.team)
          ? [
              h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "canned-edit", onclick: () => editCanned(c) }, t("adm.edit")),
              h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "canned-delete", onclick: () => deleteCanned(c) }, t("adm.delete")),
            ]
          : null,
      ),
    ),
  );
  fill(byTestId("canned-rows"), rows.length ? rows : h("tr", {}, h("td", { colspan: "6", class: "muted" }, t("adm.empty"))));
  const select = byTestId("canned-team");
  const chosen = select.value;
  const options = isAdmin()
    ? [h("option", { value: "" }, t("adm.all_teams")), state.teams.map((name) => h("option", { value: name }, name))]
    : [h("option", { value: state.myTeam }, state.myTeam)];
  fill(select, options);
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

function resetCannedForm() {
  editingCanned = null;
  const form = byTestId("canned-form");
  form.reset();
  byTestId("canned-save").textContent = t("adm.add");
  byTestId("canned-cancel").hidden = true;
}

function editCanned(c) {
  editingCanned = c.id;
  byTestId("canned-shortcut").value = c.shortcut;
  byTestId("canned-title").value = c.title;
  byTestId("canned-team").value = c.team ?? "";
  byTestId("canned-language").value = c.language;
  byTestId("canned-text").value = c.text;
  byTestId("canned-save").textContent = t("adm.save");
  byTestId("canned-cancel").hidden = false;
  byTestId("canned-shortcut").focus();
}

async function saveCanned(ev) {
  ev.preventDefault();
  const team = byTestId("canned-team").value;
  const body = {
    shortcut: byTestId("canned-shortcut").value.trim(),
    title: byTestId("canned-title").value.trim(),
    text: byTestId("canned-text").value,
    team: team || null,
    language: byTestId("canned-language").value.trim(),
  };
  try {
    if (editingCanned === null) await api("POST", "/api/v1/canned-responses", body);
    else await api("PATCH", `/api/v1/canned-responses/${editingCanned}`, body);
    resetCannedForm();
    status(t("adm.saved"));
    await load();
  } catch (err) {
    status(t("adm.error", { detail: err.message }), false);
  }
}

async function deleteCanned(c) {
  if (!window.confirm(t("adm.confirm_delete", { name: `/${c.shortcut}` }))) return;
  try {
    await api("DELETE", `/api/v1/canned-responses/${c.id}`);
    status(t("adm.deleted"));
    await load();
  } catch (err) {
    status(t("adm.error", { detail: err.message }), false);
  }
}

// ------------------------------------------------------------------ dispositions
function queueTeam(name) {
  return state.queues.find((q) => q.name === name)?.team ?? null;
}

function manageableQueue(name) {
  return isAdmin() || (name !== "" && queueTeam(name) === state.myTeam);
}

function renderDispositions() {
  const rows = state.dispositions.map((d) =>
    h(
      "tr",
      { "data-testid": "disposition-row", "data-code": d.code },
      h("td", {}, d.queue || t("adm.all_queues")),
      h("td", {}, h("code", {}, d.code)),
      h("td", {}, d.label),
      h("td", {}, d.active ? "✓" : "—"),
      h("td", {}, String(d.sort_order)),
      h(
        "td",
        { class: "admin-actions" },
        manageableQueue(d.queue)
          ? [
              h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "disposition-edit", onclick: () => editDisposition(d) }, t("adm.edit")),
              h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "disposition-delete", onclick: () => deleteDisposition(d) }, t("adm.delete")),
            ]
          : null,
      ),
    ),
  );
  fill(byTestId("disposition-rows"), rows.length ? rows : h("tr", {}, h("td", { colspan: "6", class: "muted" }, t("adm.empty"))));
  const select = byTestId("disposition-queue");
  const chosen = select.value;
  fill(
    select,
    isAdmin() ? h("option", { value: "" }, t("adm.all_queues")) : null,
    state.queues.filter((q) => manageableQueue(q.name)).map((q) => h("option", { value: q.name }, q.name)),
  );
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  fill(
    byTestId("required-queues"),
    state.queues.map((q) =>
      h(
        "label",
        { "data-testid": "required-queue", "data-queue": q.name },
        h("input", {
          type: "checkbox",
          checked: q.required,
          disabled: !manageableQueue(q.name),
          onchange: (ev) => setRequired(q.name, ev.target.checked),
        }),
        h("span", {}, q.team ? `${q.name} (${q.team})` : q.name),
      ),
    ),
  );
}

function resetDispositionForm() {
  editingDisposition = null;
  byTestId("disposition-form").reset();
  byTestId("disposition-queue").disabled = false;
  byTestId("disposition-code").disabled = false;
  byTestId("disposition-save").textContent = t("adm.add");
  byTestId("disposition-cancel").hidden = true;
}

function editDisposition(d) {
  editingDisposition = d.id;
  byTestId("disposition-queue").value = d.queue;
  byTestId("disposition-queue").disabled = true;
  byTestId("disposition-code").value = d.code;
  byTestId("disposition-code").disabled = true; // reports count by code
  byTestId("disposition-label").value = d.label;
  byTestId("disposition-order").value = String(d.sort_order);
  byTestId("disposition-active").checked = d.active;
  byTestId("disposition-save").textContent = t("adm.save");
  byTestId("disposition-cancel").hidden = false;
  byTestId("disposition-label").focus();
}

async function saveDisposition(ev) {
  ev.preventDefault();
  const common = {
    label: byTestId("disposition-label").value.trim(),
    active: byTestId("disposition-active").checked,
    sort_order: Number.parseInt(byTestId("disposition-order").value || "0", 10) || 0,
  };
  try {
    if (editingDisposition === null) {
      await api("POST", "/api/v1/dispositions", {
        ...common,
        queue: byTestId("disposition-queue").value,
        code: byTestId("disposition-code").value.trim(),
      });
    } else {
      await api("PATCH", `/api/v1/dispositions/${editingDisposition}`, common);
    }
    resetDispositionForm();
    status(t("adm.saved"));
    await load();
  } catch (err) {
    status(t("adm.error", { detail: err.message }), false);
  }
}

async function deleteDisposition(d) {
  if (!window.confirm(t("adm.confirm_delete", { name: d.code }))) return;
  try {
    await api("DELETE", `/api/v1/dispositions/${d.id}`);
    status(t("adm.deleted"));
    await load();
  } catch (err) {
    status(t("adm.error", { detail: err.message }), false);
  }
}

async function setRequired(queue, required) {
  try {
    await api("PUT", `/api/v1/queues/${encodeURIComponent(queue)}/disposition-required`, { required });
    status(t("adm.saved"));
    await load();
  } catch (err) {
    status(t("adm.error", { detail: err.message }), false);
    await load();
  }
}

async function start() {
  applyI18n();
  bindLanguageSelect(byTestId("lang-select"));
  byTestId("canned-form").addEventListener("submit", saveCanned);
  byTestId("canned-cancel").addEventListener("click", resetCannedForm);
  byTestId("disposition-form").addEventListener("submit", saveDisposition);
  byTestId("disposition-cancel").addEventListener("click", resetDispositionForm);
  document.addEventListener("langchange", render);
  try {
    state.me = await api("GET", "/api/v1/me");
    const agents = await api("GET", "/api/v1/agents");
    state.myTeam = agents.items.find((a) => a.id === state.me.id)?.team ?? null;
    byTestId("user-name").textContent = state.me.username;
    await load();
  } catch (err) {
    status(t("adm.error", { detail: err.message }), false);
  }
}

start();
