// Center column: the open conversation (header, unified timeline, live updates); the
// composer below it lives in composer.js.
import { agentName, app, command, notify } from "/static/app.js";
import { channelBadge } from "/static/channels.js";
import { byTestId, fill, h } from "/static/dom.js";
import { t } from "/static/i18n.js";
import { patchConversation, renderConversations, summaryFrom, upsertConversation } from "/static/lists.js";
import { Timeline } from "/static/timeline.js";
import { initComposer, renderChannelPicker, setMode } from "/static/composer.js";
import { renderCallBar, setStoredCall } from "/static/phone.js";

let timeline = null;
let openSeq = 0; // guards against an older `open` answer overwriting a newer one

export function initConversation() {
  timeline = new Timeline(byTestId("timeline"), byTestId("timeline-scroll"));
  byTestId("load-older").addEventListener("click", loadOlder);
  initComposer();
}

/** Open (or re-open after a reconnect) a conversation. */
export async function openConversation(conversationId, { preview = "", focus = false, refresh = false } = {}) {
  const previous = app.current;
  const switching = !previous || previous.id !== conversationId;
  const mine = ++openSeq;
  let result;
  try {
    // A refresh after a reconnect may find the conversation gone from us (transferred or
    // closed meanwhile): keep it on screen, read-only, without an error toast.
    result = await command("open", { conversation_id: conversationId }, { quiet: refresh });
  } catch (err) {
    if (refresh && app.current && app.current.id === conversationId && err.code === "conflict") {
      app.current.endedReason = app.current.endedReason || "transferred";
      renderAll();
    }
    return;
  }
  if (switching && previous) command("close_view", { conversation_id: previous.id }, { quiet: true }).catch(() => {});
  if (mine !== openSeq) {
    // A later click won: stop "viewing" this one unless it is the one on screen.
    if (!app.current || app.current.id !== conversationId) {
      command("close_view", { conversation_id: conversationId }, { quiet: true }).catch(() => {});
    }
    return;
  }
  const keepTimeline = !switching && app.current && app.current.customer.id === result.customer.id;
  app.current = {
    id: conversationId,
    conversation: result.conversation,
    customer: result.customer,
    next: result.history?.next ?? null,
    viewers: result.viewers || lastViewers.get(conversationId) || [],
    customerConversations: result.customer_conversations || [],
    endedReason: keepTimeline ? previous.endedReason : null,
  };
  if (!keepTimeline) timeline.reset();
  for (const msg of result.history?.items || []) timeline.upsertMessage(msg);
  setStoredCall(conversationId, result.call);
  // Keep the list entry in step with what the server just said.
  const conv = result.conversation;
  if (conv.assignee_id === app.me?.id && (conv.state === "assigned" || conv.state === "wrap_up")) {
    const existing = app.conversations.get(conv.id);
    upsertConversation(
      existing
        ? { id: conv.id, state: conv.state, labels: conv.labels, priority: conv.priority, customer_name: result.customer.display_name }
        : summaryFrom(conv, result.customer, preview ? { preview } : {}, result.history?.items || []),
    );
  }
  showConversation();
  renderAll({ stick: switching ? true : null });
  if (switching) {
    byTestId("reply-input").value = "";
    setMode("reply");
  }
  if (focus) byTestId("reply-input").focus();
  notify("opened", { conversationId });
}

/** Leave the conversation view empty (e.g. nothing left in the list). */
export function closeConversationView() {
  if (app.current) command("close_view", { conversation_id: app.current.id }, { quiet: true }).catch(() => {});
  app.current = null;
  timeline.reset();
  byTestId("conversation").hidden = true;
  byTestId("empty-state").hidden = false;
  renderConversations();
  notify("opened", { conversationId: null });
}

function showConversation() {
  byTestId("conversation").hidden = false;
  byTestId("empty-state").hidden = true;
}

export function renderAll(opts = {}) {
  if (!app.current) return;
  renderHeader();
  renderViewers();
  renderCallBar();
  renderChannelPicker();
  renderReadonly();
  timeline.render(opts);
  byTestId("load-older").hidden = !app.current.next;
  byTestId("history-start").hidden = Boolean(app.current.next);
  renderConversations();
  notify("rendered");
}

function renderHeader() {
  const { conversation: conv, customer } = app.current;
  byTestId("conversation-title").textContent = customer.display_name || t("convs.unknown_customer", { id: customer.id });
  byTestId("conversation-id").textContent = t("conv.number", { id: conv.id });
  fill(byTestId("conversation-channel"), channelBadge(conv.channel, { withName: true }));
  const state = byTestId("conversation-state");
  state.textContent = t(`state.conv.${conv.state}`);
  state.className = `pill pill-state st-${conv.state}`;
  state.dataset.state = conv.state;
  const prio = byTestId("conversation-priority");
  prio.textContent = conv.priority ? t("conv.priority", { n: conv.priority }) : "";
  prio.hidden = !conv.priority;
  byTestId("conversation-queue").textContent = conv.queue ? t("conv.queue", { queue: conv.queue }) : "";
  fill(
    byTestId("conversation-labels"),
    (conv.labels || []).map((l) => h("span", { class: "pill pill-label", "data-testid": "conversation-label" }, l)),
  );
}

function renderViewers() {
  const box = byTestId("viewers");
  const others = (app.current.viewers || []).filter((v) => v.id !== app.me?.id);
  box.hidden = others.length === 0;
  fill(
    box,
    h("span", { class: "muted small" }, t("conv.also_viewing")),
    others.map((v) =>
      h("span", { class: "viewer", "data-testid": "viewer", "data-agent-id": v.id, title: v.display_name }, h("span", { class: "avatar" }, initials(v.display_name)), v.display_name),
    ),
  );
}

function initials(name) {
  return String(name || "?")
    .split(/\s+/)
    .map((p) => p[0] || "")
    .join("")
    .slice(0, 2)
    .toUpperCase();
}

/** Why replies are disabled, or null. */
export function readonlyReason() {
  const cur = app.current;
  if (!cur) return "none";
  if (cur.conversation.state === "closed") return "closed";
  if (cur.endedReason) return cur.endedReason;
  if (cur.conversation.assignee_id !== app.me?.id) return "other";
  return null;
}

export function renderReadonly() {
  const reason = readonlyReason();
  const banner = byTestId("readonly-banner");
  banner.hidden = !reason;
  banner.textContent = reason
    ? t({ closed: "conv.readonly_closed", transferred: "conv.readonly_transferred" }[reason] || "conv.readonly_other")
    : "";
  banner.dataset.reason = reason || "";
  const composer = byTestId("composer");
  composer.classList.toggle("readonly", Boolean(reason));
  const noteMode = composer.dataset.mode === "note";
  // Colleagues may still leave notes on a conversation they can only read.
  byTestId("reply-send").disabled = Boolean(reason) && !noteMode;
  byTestId("reply-input").disabled = Boolean(reason) && !noteMode;
  byTestId("mode-reply").disabled = Boolean(reason);
  if (reason && !noteMode) setMode("note", { silent: true });
}

// ------------------------------------------------------------------ live updates
/** Apply a stored event to the open conversation (if it concerns it). */
export function applyEvent(ev) {
  const cur = app.current;
  if (!cur) return;
  const p = ev.payload || {};
  const sameCustomer = ev.customer_id !== null && ev.customer_id === cur.customer.id;
  const sameConv = ev.conversation_id === cur.id;
  switch (ev.type) {
    case "message.received":
    case "message.sent":
    case "note.added": {
      if (!sameCustomer) return;
      const direction = ev.type === "note.added" ? "note" : p.direction || (ev.type === "message.sent" ? "out" : "in");
      if (!timeline.has(`m:${p.message_id}`)) {
        timeline.upsertMessage(
          {
            id: p.message_id,
            conversation_id: ev.conversation_id,
            customer_id: ev.customer_id,
            channel: ev.channel,
            direction,
            kind: p.kind || (direction === "note" ? "note" : "message"),
            text: p.text || "",
            status: direction === "out" ? "pending" : "",
            error_code: "",
            error_message: "",
            author_id: direction === "in" ? null : ev.agent_id,
            created_at: ev.at,
            attachments: [],
            metadata: p.score ? { score: p.score } : {},
          },
          { seq: ev.seq },
        );
      }
      // Events carry at most 500 characters and only an attachment count: read the full
      // items when they matter.
      // A call's entry is drawn from its figures (metadata), which events do not carry.
      if ((p.attachments || 0) > 0 || (p.text || "").length >= 500 || p.kind === "call") refreshLatest();
      break;
    }
    case "message.status":
      timeline.patchMessage(p.message_id, {
        status: p.status,
        error_code: p.error_code || undefined,
        error_message: p.error_message || undefined,
      });
      break;
    case "message.edited": {
      // A voicemail's transcription replaces its placeholder: the list's preview follows.
      const before = (timeline.message(p.message_id)?.text || "").slice(0, 140);
      const listed = app.conversations.get(ev.conversation_id);
      if (listed && before && listed.preview === before) patchConversation(ev.conversation_id, { preview: (p.text || "").slice(0, 140) });
      timeline.patchMessage(p.message_id, { text: p.text, edited_at: ev.at });
      if (timeline.message(p.message_id)?.kind === "call") refreshLatest();
      break;
    }
    case "conversation.updated":
      if (!sameConv) return;
      if (p.labels) cur.conversation.labels = p.labels;
      if (p.priority !== undefined) cur.conversation.priority = p.priority;
      if (ev.queue) cur.conversation.queue = ev.queue; // workflow may move it (complaint, rule)
      if (p.labels) timeline.addEvent(ev, t("tl.ev.labels", { labels: p.labels.join(", ") || "—" }));
      if (p.priority !== undefined) timeline.addEvent(ev, t("tl.ev.priority", { n: p.priority }));
      break;
    case "conversation.assigned":
      if (!sameConv) return;
      cur.conversation.assignee_id = ev.agent_id;
      cur.conversation.state = "assigned";
      cur.endedReason = ev.agent_id === app.me?.id ? null : "transferred";
      if (!p.transfer) timeline.addEvent(ev, t("tl.ev.assigned", { agent: agentName(ev.agent_id) }));
      break;
    case "conversation.transferred":
      if (!sameConv) return;
      timeline.addEvent(
        ev,
        (p.to_agent
          ? t("tl.ev.transferred_agent", { by: agentName(ev.agent_id), agent: agentName(p.to_agent) })
          : t("tl.ev.transferred_queue", { by: agentName(ev.agent_id), queue: p.to_queue || ev.queue })) +
          (p.note ? ` — “${p.note}”` : ""),
      );
      if (p.to_agent !== app.me?.id) cur.endedReason = "transferred";
      break;
    case "conversation.queued":
      if (!sameConv) return;
      cur.conversation.state = "queued";
      cur.conversation.assignee_id = null;
      cur.conversation.queue = ev.queue || cur.conversation.queue;
      if (p.reason === "transfer") cur.endedReason = "transferred";
      break;
    case "conversation.wrap_up":
      if (!sameConv) return;
      cur.conversation.state = "wrap_up";
      timeline.addEvent(ev, t("tl.ev.wrap_up"));
      break;
    case "conversation.closed":
      if (!sameConv) return;
      cur.conversation.state = "closed";
      cur.conversation.disposition = p.disposition || "";
      timeline.addEvent(ev, t("tl.ev.closed", { disposition: p.disposition ? ` · ${p.disposition}` : "" }));
      break;
    case "conversation.reopened":
      if (!sameConv) return;
      cur.conversation.state = "queued";
      timeline.addEvent(ev, t("tl.ev.reopened"));
      break;
    default:
      return;
  }
  renderAll();
}

async function refreshLatest() {
  const cur = app.current;
  if (!cur) return;
  try {
    const page = await command("history", { customer_id: cur.customer.id, before: null }, { quiet: true });
    if (app.current !== cur) return;
    for (const msg of page.items || []) timeline.upsertMessage(msg);
    renderAll();
  } catch {
    // the event's text stays; the next open shows everything
  }
}

async function loadOlder() {
  const cur = app.current;
  if (!cur || !cur.next) return;
  const btn = byTestId("load-older");
  btn.disabled = true;
  const scroller = byTestId("timeline-scroll");
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  try {
    const page = await command("history", { customer_id: cur.customer.id, before: cur.next });
    if (app.current !== cur) return;
    for (const msg of page.items || []) timeline.upsertMessage(msg);
    cur.next = page.next ?? null;
    renderAll({ stick: false });
    scroller.scrollTop = scroller.scrollHeight - fromBottom; // keep the reader's place
  } finally {
    btn.disabled = false;
  }
}

const lastViewers = new Map(); // conversation id -> viewers of the latest viewing frame

export function invalidateTimeline() {
  timeline.invalidate();
}

export function setViewers(data) {
  lastViewers.set(data.conversation_id, data.viewers || []);
  if (!app.current || data.conversation_id !== app.current.id) return;
  app.current.viewers = data.viewers || [];
  renderViewers();
}

export function setCustomer(customer) {
  if (!app.current || app.current.customer.id !== customer.id) return;
  app.current.customer = customer;
  for (const c of app.conversations.values()) if (c.customer_id === customer.id) c.customer_name = customer.display_name;
  renderAll();
}

/** Show a message the server just stored for us (the ack of reply / note). */
export function showStored(message) {
  if (message && message.id !== undefined) timeline.upsertMessage(message);
}
