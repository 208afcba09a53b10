// Right column: the customer profile (editable, its open identity questions, linking a new
// caller) and the conversation actions (transfer, labels, priority, wrap-up with
// disposition, close).
import { app, command, getJson, notify, toast } from "/static/app.js";
import { channelBadge, channelName, endpointKindName } from "/static/channels.js";
import { byTestId, fill, h } from "/static/dom.js";
import { clock, has, t } from "/static/i18n.js";
import { patchConversation } from "/static/lists.js";
import { openConversation, readonlyReason, renderAll, setCustomer } from "/static/conversation.js";
import { dispositionRequired, fillDispositions } from "/static/dispositions.js";
import { isCallChannel } from "/static/phone.js";

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
  // The page declares the profile's fields; its identity questions and the link box of a
  // new caller are built here, next to the code that fills them.
  byTestId("profile-since").after(
    h("div", { class: "profile-flags", "data-testid": "profile-flags", hidden: true }),
  );
  byTestId("endpoint-list").after(buildLinkBox());
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
  renderFlags(customer);
  renderLinkBox();
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
  await runMerge(cur.customer.id, other, t("profile.merged", { other }));
}

/** Merge `absorbed` into `survivor`, then offer to undo it (`undoQuestion`). */
async function runMerge(survivor, absorbed, undoQuestion) {
  const cur = app.current;
  if (!cur) return;
  let result;
  try {
    result = await command("merge_customer", { customer_id: survivor, other_id: absorbed }, { quiet: true });
  } catch (err) {
    if (err.code !== "conflict" || !window.confirm(t("profile.merge_force", { detail: err.detail }))) {
      toast(t("error.command", { detail: err.detail || String(err) }), "error", 7000);
      return;
    }
    try {
      result = await command("merge_customer", { customer_id: survivor, other_id: absorbed, force: true });
    } catch {
      return; // the toast says why
    }
  }
  await showMerged(cur.id);
  if (window.confirm(undoQuestion)) {
    try {
      await command("unmerge_customer", { audit_id: result.audit_id });
    } catch {
      return;
    }
    await showMerged(cur.id);
    toast(t("profile.unmerged"), "ok");
  }
}

/** Read the open conversation again: a merge (or its undo) may have changed its customer
 * and always changes the customer's history. */
async function showMerged(conversationId) {
  if (app.current && app.current.id === conversationId) await openConversation(conversationId, { refresh: true });
}

// ------------------------------------------------------------------ identity questions
// A customer's flags are questions for a person: "is this the customer with that address?"
// (an agent's link request) or two customers' identifiers in conflict. Supervisors answer
// them by merging the two; agents see that the question waits, never who else it names.
const LEADS = new Set(["supervisor", "admin"]);

function isLead() {
  return LEADS.has(app.me?.role);
}

function requester(username) {
  if (!username) return t("flag.someone");
  const agent = [...app.agents.values()].find((a) => a.username === username);
  return agent?.display_name || username;
}

function flagText(flag) {
  if (flag.kind === "link_request" && flag.by && flag.by === app.me?.username) {
    return t("flag.link_text_you", { address: flag.address || "" });
  }
  if (flag.kind === "link_request") return t("flag.link_text", { who: requester(flag.by), address: flag.address || "" });
  if (flag.address) return t("flag.address_text", { address: flag.address });
  return t("flag.merge_text");
}

function flagItem(flag) {
  const other = Number.isInteger(flag.other_customer_id) ? flag.other_customer_id : null;
  const kind = flag.kind === "link_request" ? "link_request" : "conflict";
  let action = null;
  if (other !== null && isLead()) {
    action = h(
      "button",
      { type: "button", class: "btn btn-primary btn-sm", "data-testid": "flag-merge", "data-other-id": other, onclick: () => mergeFromFlag(other) },
      t("flag.merge", { id: other }),
    );
  } else if (other !== null) {
    action = h("span", { class: "flag-waiting", "data-testid": "flag-waiting" }, t("flag.waiting"));
  }
  return h(
    "li",
    { class: `flag-item flag-${kind}`, "data-testid": "customer-flag", "data-kind": kind },
    h("span", { class: `pill ${kind === "link_request" ? "pill-link" : "pill-warn"}` }, t(kind === "link_request" ? "flag.link_request" : "flag.conflict")),
    h("p", { class: "flag-text", "data-testid": "flag-text" }, flagText(flag)),
    // The detail names the other customer's identifiers: for whoever decides only.
    flag.detail && isLead() ? h("p", { class: "flag-detail muted small" }, String(flag.detail)) : null,
    action,
  );
}

function renderFlags(customer) {
  const flags = (customer.flags || []).filter((f) => f && typeof f === "object");
  const box = byTestId("profile-flags");
  box.hidden = flags.length === 0;
  fill(
    box,
    flags.length ? h("h3", { class: "sub-title" }, t("flag.title")) : null,
    flags.length ? h("ul", { class: "flag-list" }, flags.map(flagItem)) : null,
  );
}

/** A supervisor's answer to a flag: this customer joins the one it names, which stays. */
async function mergeFromFlag(other) {
  const cur = app.current;
  if (!cur || !window.confirm(t("flag.merge_confirm", { id: other }))) return;
  await runMerge(other, cur.customer.id, t("flag.merged", { id: other }));
}

// ------------------------------------------------------------------ linking a new caller
// A caller the hub has never heard of may say who they are ("I emailed you last week from
// jane@example.org"). The agent links them by that address: an address of nobody becomes
// theirs, another customer's goes to a supervisor to confirm (link_customer).
let linked = null; // {customerId, status, address, detail}: the last answer, shown under the box

function buildLinkBox() {
  const input = h("input", {
    type: "text",
    "data-testid": "link-address",
    maxlength: "254",
    autocomplete: "off",
    spellcheck: "false",
    "data-i18n-placeholder": "link.placeholder",
    placeholder: t("link.placeholder"),
    onkeydown: (ev) => {
      // Enter would submit the profile form around it.
      if (ev.key === "Enter") {
        ev.preventDefault();
        linkCaller();
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        showLinkForm(false);
      }
    },
  });
  return h(
    "div",
    { class: "link-caller", "data-testid": "link-caller", hidden: true },
    h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "link-open", "data-i18n": "link.open", onclick: () => showLinkForm(true) }, t("link.open")),
    h(
      "div",
      { class: "link-form", "data-testid": "link-form", hidden: true },
      h("label", { class: "field" }, h("span", { "data-i18n": "link.label" }, t("link.label")), input),
      h(
        "div",
        { class: "link-buttons" },
        h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "link-submit", "data-i18n": "link.submit", onclick: linkCaller }, t("link.submit")),
        h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "link-cancel", "data-i18n": "link.cancel", onclick: () => showLinkForm(false) }, t("link.cancel")),
      ),
    ),
    h("p", { class: "link-result", "data-testid": "link-result", role: "status", hidden: true }),
  );
}

/** The open conversation is a call of ours from a caller with no other conversation. */
function newCallerOnCall(cur) {
  if (!cur || readonlyReason() || !isCallChannel(cur.conversation.channel)) return false;
  return (cur.customerConversations || []).every((c) => c.id === cur.id);
}

function showLinkForm(open) {
  byTestId("link-form").hidden = !open;
  byTestId("link-open").hidden = open;
  if (open) byTestId("link-address").focus();
}

let linkBoxFor = null; // the customer the box is open for: another one starts it afresh

function renderLinkBox() {
  const cur = app.current;
  const box = byTestId("link-caller");
  const show = newCallerOnCall(cur);
  const key = show ? cur.customer.id : null;
  if (key !== linkBoxFor) {
    linkBoxFor = key;
    box.hidden = !show;
    byTestId("link-address").value = "";
    showLinkForm(false);
  }
  const result = byTestId("link-result");
  const mine = linked && cur && linked.customerId === cur.customer.id;
  result.hidden = !mine;
  if (!mine) return;
  result.dataset.status = linked.status;
  result.className = `link-result link-${linked.status}`;
  const texts = {
    added: () => t("link.added", { address: linked.address }),
    pending_review: () => t("link.pending"),
    already: () => t("link.already", { address: linked.address }),
    invalid: () => t("link.invalid"),
  };
  result.textContent = (texts[linked.status] || (() => t("error.command", { detail: linked.detail || "" })))();
}

async function linkCaller() {
  const cur = app.current;
  if (!cur) return;
  const input = byTestId("link-address");
  const address = input.value.trim();
  if (!address) {
    input.focus();
    return;
  }
  const customerId = cur.customer.id;
  const button = byTestId("link-submit");
  button.disabled = true;
  try {
    const result = await command("link_customer", { customer_id: customerId, address }, { quiet: true });
    linked = { customerId, status: result.status, address };
    input.value = "";
    showLinkForm(false);
    // The answer says no more than the status; the profile (new address, the waiting
    // question) is read again as any profile change is.
    getJson(`/api/v1/customers/${customerId}`).then(setCustomer).catch(() => {});
  } catch (err) {
    linked = { customerId, status: err.code === "invalid_input" ? "invalid" : "error", address, detail: err.detail || String(err) };
  } finally {
    button.disabled = false;
    renderLinkBox();
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
