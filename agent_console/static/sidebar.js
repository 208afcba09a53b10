// Right column: the customer profile (editable) and the conversation actions
// (transfer, labels, priority, wrap-up with disposition, close).
import { app, command, getJson, notify, toast } from "/static/app.js";
import { channelBadge, channelName, endpointKindName } from "/static/channels.js";
import { byTestId, fill, h } from "/static/dom.js";
import { clock, has, t } from "/static/i18n.js";
import { patchConversation } from "/static/lists.js";
import { readonlyReason, renderAll, setCustomer } from "/static/conversation.js";
import { dispositionRequired, fillDispositions } from "/static/dispositions.js";

const PRIORITIES = [
  [0, "actions.priority.normal"],
  [5, "actions.priority.high"],
  [10, "actions.priority.urgent"],
];

function splitList(text) {
  return [...new Set(String(text).split(",").map((s) => s.trim()).filter(Boolean))];
}

export function initSidebar() {
  byTestId("profile-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    saveProfile();
  });
  byTestId("profile-tags").addEventListener("input", (ev) => renderTagChips(splitList(ev.target.value)));
  byTestId("profile-merge").addEventListener("click", mergeCustomer);
  byTestId("labels-save").addEventListener("click", saveLabels);
  byTestId("labels-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      saveLabels();
    }
  });
  byTestId("priority-select").addEventListener("change", savePriority);
  byTestId("wrapup-button").addEventListener("click", wrapUp);
  byTestId("close-button").addEventListener("click", closeConversation);
  byTestId("transfer-button").addEventListener("click", openTransfer);
  initTransferDialog();
}

/** Re-draw both panels from app.current. */
export function renderSidebar() {
  const cur = app.current;
  byTestId("profile-empty").hidden = Boolean(cur);
  byTestId("profile-form").hidden = !cur;
  byTestId("actions").hidden = !cur;
  if (!cur) return;
  renderProfile(cur.customer);
  renderActions(cur.conversation);
}

function setIfIdle(input, value) {
  // Never overwrite what the agent is typing.
  if (document.activeElement !== input) input.value = value;
}

function renderProfile(customer) {
  setIfIdle(byTestId("profile-name"), customer.display_name || "");
  setIfIdle(byTestId("profile-segment"), customer.segment || "");
  setIfIdle(byTestId("profile-language"), customer.language || "");
  setIfIdle(byTestId("profile-tags"), (customer.tags || []).join(", "));
  renderTagChips(customer.tags || []);
  byTestId("profile-since").textContent = customer.created_at ? t("profile.since", { date: clock(customer.created_at) }) : "";
  fill(
    byTestId("endpoint-list"),
    (customer.endpoints || []).map((ep) =>
      h(
        "li",
        { class: "endpoint", "data-testid": "endpoint", "data-kind": ep.kind },
        h("span", { class: "ep-kind" }, endpointKindName(ep.kind)),
        h("span", { class: "ep-address", "data-testid": "endpoint-address" }, ep.address),
        h(
          "span",
          { class: "ep-flags" },
          ep.verified ? h("span", { class: "pill pill-ok" }, t("profile.verified")) : null,
          (ep.opted_out || []).length
            ? h("span", { class: "pill pill-warn", "data-testid": "endpoint-opted-out" }, t("profile.opted_out", { channels: ep.opted_out.join(", ") }))
            : null,
          ep.undeliverable ? h("span", { class: "pill pill-bad" }, t("profile.undeliverable", { reason: ep.undeliverable })) : null,
        ),
      ),
    ),
  );
  fill(
    byTestId("customer-conversations"),
    (app.current.customerConversations || []).map((c) =>
      h(
        "li",
        {
          class: `hist-conv ${c.id === app.current.id ? "current" : ""}`,
          "data-testid": "customer-conversation",
          "data-conversation-id": c.id,
          tabindex: "0",
          title: t("conv.separator", { id: c.id, channel: channelName(c.channel) }),
          onclick: () => showPastConversation(c.id),
        },
        channelBadge(c.channel),
        h("span", {}, t("conv.number", { id: c.id })),
        h("span", { class: `pill pill-state st-${c.state}` }, has(`state.conv.${c.state}`) ? t(`state.conv.${c.state}`) : c.state),
        h("span", { class: "muted small" }, clock(c.last_activity_at || c.created_at)),
      ),
    ),
  );
}

/** Our own conversations open; others are already in the unified timeline: scroll there. */
function showPastConversation(id) {
  if (app.conversations.has(id)) {
    notify("open", { conversationId: id });
    return;
  }
  const sep = document.querySelector(`[data-testid="conversation-separator"][data-conversation-id="${id}"]`);
  if (sep) {
    sep.scrollIntoView({ block: "start", behavior: "smooth" });
    sep.classList.add("flash");
    setTimeout(() => sep.classList.remove("flash"), 1200);
  }
}

function renderTagChips(tags) {
  fill(
    byTestId("profile-tag-chips"),
    tags.map((tag) => h("span", { class: "pill pill-tag", "data-testid": "profile-tag" }, tag)),
  );
}

function renderActions(conv) {
  const reason = readonlyReason();
  const active = !reason;
  setIfIdle(byTestId("labels-input"), (conv.labels || []).join(", "));
  const prio = byTestId("priority-select");
  const options = [...PRIORITIES];
  if (!options.some(([n]) => n === conv.priority)) options.push([conv.priority, null]);
  options.sort((a, b) => a[0] - b[0]);
  fill(
    prio,
    options.map(([n, key]) => h("option", { value: String(n) }, key ? `${t(key)} (${n})` : t("conv.priority", { n }))),
  );
  prio.value = String(conv.priority);
  fillDispositions(byTestId("disposition-select"), conv);
  for (const id of ["transfer-button", "labels-save", "labels-input", "priority-select", "disposition-select", "close-button"]) {
    byTestId(id).disabled = !active;
  }
  byTestId("wrapup-button").disabled = !active || conv.state !== "assigned";
}

async function saveProfile() {
  const cur = app.current;
  if (!cur) return;
  const args = {
    customer_id: cur.customer.id,
    display_name: byTestId("profile-name").value.trim(),
    segment: byTestId("profile-segment").value.trim(),
    language: byTestId("profile-language").value.trim(),
    tags: splitList(byTestId("profile-tags").value),
  };
  const btn = byTestId("profile-save");
  btn.disabled = true;
  try {
    const result = await command("update_customer", args);
    if (result.customer) setCustomer(result.customer);
    toast(t("profile.saved"), "ok");
  } catch {
    // the toast already says why
  } finally {
    btn.disabled = false;
  }
}

// Explicit merge: another customer (a duplicate the agent recognised) into this one. A
// conflict of verified identifiers needs a second, deliberate confirmation; every merge can
// be undone from the same toast.
async function mergeCustomer() {
  const cur = app.current;
  if (!cur) return;
  const answer = window.prompt(t("profile.merge_prompt"));
  const other = Number.parseInt(String(answer || "").replace(/^#/, ""), 10);
  if (!Number.isInteger(other) || other <= 0) return;
  let result;
  try {
    result = await command("merge_customer", { customer_id: cur.customer.id, other_id: other }, { quiet: true });
  } catch (err) {
    if (err.code !== "conflict" || !window.confirm(t("profile.merge_force", { detail: err.detail }))) {
      toast(t("error.command", { detail: err.detail || String(err) }), "error", 7000);
      return;
    }
    result = await command("merge_customer", { customer_id: cur.customer.id, other_id: other, force: true });
  }
  if (result.customer) setCustomer(result.customer);
  if (window.confirm(t("profile.merged", { other }))) {
    const undone = await command("unmerge_customer", { audit_id: result.audit_id });
    if (undone.customer) setCustomer(undone.customer);
    toast(t("profile.unmerged"), "ok");
  }
}

async function saveLabels() {
  const cur = app.current;
  if (!cur) return;
  const labels = splitList(byTestId("labels-input").value);
  try {
    await command("set_labels", { conversation_id: cur.id, labels });
    cur.conversation.labels = labels;
    patchConversation(cur.id, { labels });
    renderAll();
    toast(t("actions.labels_saved"), "ok");
  } catch {
    // toast shown
  }
}

async function savePriority() {
  const cur = app.current;
  if (!cur) return;
  const priority = Number(byTestId("priority-select").value);
  try {
    await command("set_priority", { conversation_id: cur.id, priority });
    cur.conversation.priority = priority;
    patchConversation(cur.id, { priority });
    renderAll();
    toast(t("actions.priority_saved"), "ok");
  } catch {
    renderActions(cur.conversation);
  }
}

async function wrapUp() {
  const cur = app.current;
  if (!cur) return;
  try {
    await command("wrap_up", { conversation_id: cur.id });
    cur.conversation.state = "wrap_up";
    patchConversation(cur.id, { state: "wrap_up" });
    renderAll();
    toast(t("actions.wrap_up_done"), "ok");
    byTestId("disposition-select").focus();
  } catch {
    // toast shown
  }
}

async function closeConversation() {
  const cur = app.current;
  if (!cur) return;
  const disposition = byTestId("disposition-select").value;
  if (!disposition && dispositionRequired(cur.conversation)) {
    toast(t("actions.disposition_required"), "warn");
    byTestId("disposition-select").focus();
    return;
  }
  try {
    await command("close", { conversation_id: cur.id, disposition });
    cur.conversation.state = "closed";
    byTestId("disposition-select").value = "";
    renderAll();
    toast(t("actions.closed"), "ok");
    notify("closed", { conversationId: cur.id });
  } catch {
    // toast shown
  }
}

// ------------------------------------------------------------------ transfer
function initTransferDialog() {
  const dialog = byTestId("transfer-dialog");
  const form = byTestId("transfer-form");
  for (const radio of form.querySelectorAll('input[name="target"]')) {
    radio.addEventListener("change", () => syncTarget());
  }
  byTestId("transfer-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    doTransfer();
  });
}

function targetKind() {
  return byTestId("transfer-form").querySelector('input[name="target"]:checked').value;
}

function syncTarget() {
  const kind = targetKind();
  for (const el of byTestId("transfer-form").querySelectorAll("[data-target]")) el.hidden = el.dataset.target !== kind;
}

async function openTransfer() {
  const cur = app.current;
  if (!cur) return;
  const dialog = byTestId("transfer-dialog");
  byTestId("transfer-error").textContent = "";
  byTestId("transfer-note").value = "";
  try {
    const result = await command("agents", {}, { quiet: true });
    for (const a of result.items || []) app.agents.set(a.id, a);
  } catch {
    // use what we know
  }
  const agents = [...app.agents.values()].filter((a) => a.id !== app.me?.id);
  agents.sort((a, b) => (a.state === "available" ? 0 : 1) - (b.state === "available" ? 0 : 1) || String(a.display_name).localeCompare(b.display_name));
  fill(
    byTestId("transfer-agent"),
    h("option", { value: "" }, "—"),
    agents.map((a) =>
      h(
        "option",
        { value: String(a.id), "data-username": a.username },
        `${a.display_name || a.username} (${has(`state.${a.state}`) ? t(`state.${a.state}`) : a.state})`,
      ),
    ),
  );
  try {
    const listing = await getJson("/api/v1/queues");
    for (const q of listing.items || []) if (q.name) app.queues.add(q.name);
  } catch {
    // the snapshot's queues are enough
  }
  const queues = new Set(app.queues);
  if (cur.conversation.queue) queues.add(cur.conversation.queue);
  fill(document.getElementById("queue-list"), [...queues].sort().map((q) => h("option", { value: q })));
  byTestId("transfer-queue").value = "";
  syncTarget();
  dialog.showModal();
  byTestId(targetKind() === "agent" ? "transfer-agent" : "transfer-queue").focus();
}

async function doTransfer() {
  const cur = app.current;
  if (!cur) return;
  const errorBox = byTestId("transfer-error");
  const args = { conversation_id: cur.id, note: byTestId("transfer-note").value.trim() };
  if (targetKind() === "agent") {
    const id = Number(byTestId("transfer-agent").value);
    if (!id) {
      errorBox.textContent = t("transfer.pick_agent");
      return;
    }
    args.agent_id = id;
  } else {
    const queue = byTestId("transfer-queue").value.trim();
    if (!queue) {
      errorBox.textContent = t("transfer.pick_queue");
      return;
    }
    args.queue = queue;
  }
  const btn = byTestId("transfer-confirm");
  btn.disabled = true;
  try {
    await command("transfer", args, { quiet: true });
    byTestId("transfer-dialog").close();
    cur.endedReason = "transferred";
    renderAll();
    toast(t("transfer.done"), "ok");
    notify("transferred", { conversationId: cur.id });
  } catch (err) {
    errorBox.textContent = err.detail || String(err);
  } finally {
    btn.disabled = false;
  }
}
