// Phone work in the console: the screen pop of a ringing call (who, VIP, IVR choices, the
// customer's last contacts on every channel, read before Accept) and the call bar of an open
// call (ringing your phone, on call with a ticking timer, ended and wrap-up). A channel is a
// phone channel when the server declares its media "voice"; no channel is named here.
import { app, command, getJson, toClientMs } from "/static/app.js";
import { channelBadge, channelInfo } from "/static/channels.js";
import { byTestId, fill, h } from "/static/dom.js";
import { clock, duration, has, t } from "/static/i18n.js";

const POP_CONTACTS = 5;

/** True for a channel that carries live calls. */
export function isCallChannel(channel) {
  return channelInfo(channel)?.media === "voice";
}

/** 65 -> "1:05", 3725 -> "1:02:05". */
export function callClock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm}:${ss}` : `${mm}:${ss}`;
}

function firstLine(text) {
  return String(text || "").split("\n", 1)[0].slice(0, 120);
}

// ------------------------------------------------------------------ screen pop
const pops = new Map(); // conversation id -> {state, number, items, menu, callback, known}

/** The IVR choices "English › billing" of a call's preview ("Incoming call · English › billing"). */
function menuFromPreview(preview) {
  const text = String(preview || "");
  const at = text.indexOf(" · ");
  if (at < 0) return [];
  return text.slice(at + 3).split(" › ").map((s) => s.trim()).filter(Boolean);
}

async function loadPop(o) {
  const pop = { state: "loading", number: "", items: [], menu: menuFromPreview(o.preview), callback: null, known: false };
  pops.set(o.conversation_id, pop);
  try {
    // The offer makes its customer readable to this agent (hub.access): the conversation
    // gives the caller's number, the customer's history their earlier contacts.
    const [conv, page] = await Promise.all([
      getJson(`/api/v1/conversations/${o.conversation_id}`),
      o.customer_id ? command("history", { customer_id: o.customer_id, before: null }, { quiet: true }) : { items: [] },
    ]);
    pop.number = conv.endpoint?.address || "";
    const items = page.items || [];
    for (const m of items) {
      if (m.conversation_id !== o.conversation_id) continue;
      if (Array.isArray(m.metadata?.call?.menu) && m.metadata.call.menu.length) pop.menu = m.metadata.call.menu.map(String);
      if (m.metadata?.callback) pop.callback = m.metadata.callback;
    }
    pop.items = items.filter((m) => m.conversation_id !== o.conversation_id && m.direction !== "note").slice(0, POP_CONTACTS);
    pop.known = items.some((m) => m.conversation_id !== o.conversation_id);
    pop.state = "ready";
  } catch {
    pop.state = "failed";
  }
  const card = document.querySelector(`[data-testid="offer"][data-conversation-id="${o.conversation_id}"]`);
  const box = card?.querySelector('[data-testid="screen-pop"]');
  if (box) fillPop(box, o, box.meta);
  const title = card?.querySelector('[data-testid="offer-title"]');
  if (title) title.textContent = callTitle(o);
  // The offers list names an unknown caller by number too.
  const item = document.querySelector(`[data-testid="offer-item"][data-offer-id="${o.offer_id}"] .offer-item-name`);
  if (item && !o.customer_name && pop.number) item.textContent = pop.number;
}

function contactLine(m) {
  const arrow = m.direction === "in" ? "↙" : m.direction === "out" ? "↗" : "☎";
  return h(
    "li",
    { class: "pop-contact", "data-testid": "pop-contact", "data-channel": m.channel, "data-message-id": m.id },
    channelBadge(m.channel),
    h("span", { class: "pop-dir", "aria-hidden": "true" }, arrow),
    h("span", { class: "pop-text", title: m.text || "" }, firstLine(m.text) || "—"),
    h("time", { class: "muted small", datetime: m.created_at }, clock(m.created_at)),
  );
}

function fillPop(box, o, meta) {
  const pop = pops.get(o.conversation_id);
  const name = o.customer_name || "";
  // An unknown caller who says who they are is linked once the call is accepted, from the
  // customer panel (sidebar.js, link_customer); a supervisor confirms another customer's
  // address by merging.
  const unknown = !name || (pop?.state === "ready" && !pop.known);
  const shownName = name || pop?.number || t("call.caller");
  const caller = h(
    "div",
    { class: "pop-caller" },
    h("span", { class: "ring-customer", "data-testid": "offer-customer" }, shownName),
    name && pop?.number ? h("span", { class: "pop-number muted", "data-testid": "pop-number" }, pop.number) : null,
    unknown && pop?.state === "ready" ? h("span", { class: "pill pill-new", "data-testid": "pop-new-caller" }, t("call.new_caller")) : null,
    o.segment === "vip" ? h("span", { class: "pill pill-vip", "data-testid": "pop-vip", title: t("call.vip_hint") }, "★ VIP") : null,
  );
  const menu = pop?.menu?.length ? pop.menu : [];
  const ivr = menu.length
    ? h(
        "div",
        { class: "pop-ivr", "data-testid": "pop-ivr" },
        h("span", { class: "muted small" }, t("call.ivr")),
        menu.map((choice, i) => [i ? h("span", { class: "pop-ivr-sep", "aria-hidden": "true" }, "›") : null, h("span", { class: "pill pill-ivr", "data-testid": "pop-ivr-choice" }, choice)]),
      )
    : null;
  const callback = pop?.callback
    ? h("div", { class: "pop-callback", "data-testid": "pop-callback" }, t("call.callback_to", { number: pop.callback.number || pop.number }))
    : null;
  let history;
  if (!pop || pop.state === "loading") history = h("p", { class: "muted small", "data-testid": "pop-loading" }, t("call.pop_loading"));
  else if (pop.state === "failed") history = h("p", { class: "muted small" }, t("call.pop_failed"));
  else if (!pop.items.length) history = h("p", { class: "muted small", "data-testid": "pop-no-contacts" }, t("call.pop_none"));
  else history = h("ul", { class: "pop-contacts", "data-testid": "pop-contacts" }, pop.items.map(contactLine));
  fill(
    box,
    caller,
    meta ? meta() : null,
    ivr,
    callback,
    h("div", { class: "pop-section-title" }, t("call.pop_history")),
    history,
  );
}

/**
 * The body of a ringing call's card; fills itself once the customer's contacts are read.
 * `meta` draws the offer's pills (priority, queue) under the caller.
 */
export function screenPop(o, meta = null) {
  const box = h("div", { class: "screen-pop", "data-testid": "screen-pop", "data-conversation-id": o.conversation_id });
  box.meta = meta;
  if (!pops.has(o.conversation_id)) loadPop(o);
  fillPop(box, o, meta);
  return box;
}

/** The card's title: an incoming call, or a callback the agent is to place. */
export function callTitle(o) {
  return pops.get(o.conversation_id)?.callback ? t("call.callback_title") : t("call.incoming");
}

/** The number a ringing call comes from, once read ("" before). */
export function callerNumber(o) {
  return pops.get(o.conversation_id)?.number || "";
}

/** Forget what was read for offers that are gone. */
export function forgetPops(keep) {
  for (const id of pops.keys()) if (!keep.has(id)) pops.delete(id);
}

// ------------------------------------------------------------------ call bar
// Per conversation: {sid, phase: ringing|talking|ended|missed, since (client ms), wait_s,
// talk_s, outcome}. Live events move it forward; `open` (reload) gives the stored call.
const calls = new Map();
const RANK = { ringing: 1, missed: 1, talking: 2, ended: 3 };

function setCall(conversationId, next) {
  const prev = calls.get(conversationId);
  if (prev && next.sid && prev.sid && next.sid !== prev.sid) {
    calls.set(conversationId, next); // another call (a new callback attempt)
    return;
  }
  if (prev && RANK[next.phase] < RANK[prev.phase] && !(next.phase === "ringing" && prev.phase === "missed")) return;
  calls.set(conversationId, { ...prev, ...next });
}

/** Follow the call facts of the stream (call.*, our own assignment, a missed ring). */
export function applyCallEvent(ev) {
  const conv = ev.conversation_id;
  if (conv === null || conv === undefined) return false;
  const p = ev.payload || {};
  switch (ev.type) {
    case "conversation.assigned":
      if (ev.agent_id !== app.me?.id || p.transfer || !isCallChannel(ev.channel)) return false;
      if (!calls.has(conv) || calls.get(conv).phase === "missed") calls.set(conv, { phase: "ringing" });
      return true;
    case "call.connected":
      setCall(conv, { sid: p.call_sid, phase: "talking", since: toClientMs(ev.at), wait_s: p.wait_s ?? null });
      return true;
    case "call.ended":
      setCall(conv, {
        sid: p.call_sid,
        phase: "ended",
        outcome: p.outcome || "",
        wait_s: p.wait_s ?? null,
        talk_s: p.talk_s ?? null,
      });
      return true;
    case "call.updated":
      // Later reports completed the figures (the talk time comes with the agent's hang-up).
      setCall(conv, { sid: p.call_sid, phase: "ended", outcome: p.outcome || "", wait_s: p.wait_s ?? null, talk_s: p.talk_s ?? null });
      return true;
    case "conversation.queued":
      if (p.reason === "agent_no_answer" && calls.get(conv)?.phase === "ringing") {
        calls.set(conv, { ...calls.get(conv), phase: "missed" });
        return true;
      }
      return false;
    default:
      return false;
  }
}

/** The stored call of an opened conversation (the `open` result's `call`). */
export function setStoredCall(conversationId, call) {
  if (!call) return;
  let phase = null;
  if (call.state === "talking") phase = "talking";
  else if (call.state === "ended" || call.outcome) phase = "ended";
  else if (call.state === "connecting" && call.agent_id === app.me?.id) phase = "ringing";
  if (!phase) return;
  setCall(conversationId, {
    sid: call.call_sid,
    phase,
    since: call.answered_at ? toClientMs(call.answered_at) : null,
    wait_s: call.wait_s ?? null,
    talk_s: call.talk_s ?? null,
    outcome: call.outcome || "",
  });
}

function barContent(cur, c) {
  const conv = cur.conversation;
  const who = cur.customer.display_name || conv.endpoint?.address || t("call.caller");
  const working = conv.assignee_id === app.me?.id && (conv.state === "assigned" || conv.state === "wrap_up");
  if (c.phase === "ringing") {
    return [h("span", { class: "call-dot", "aria-hidden": "true" }), h("span", { "data-testid": "call-bar-text" }, t("call.bar_ringing"))];
  }
  if (c.phase === "missed") return [h("span", { "data-testid": "call-bar-text" }, t("call.bar_missed"))];
  if (c.phase === "talking") {
    const elapsed = c.since ? (Date.now() - c.since) / 1000 : 0;
    return [
      h("span", { class: "call-dot live", "aria-hidden": "true" }),
      h("span", { "data-testid": "call-bar-text" }, t("call.bar_on_call", { name: who })),
      h("span", { class: "call-timer", "data-testid": "call-timer", "data-since": c.since || Date.now() }, callClock(elapsed)),
    ];
  }
  const ended =
    c.outcome === "answered" || c.talk_s
      ? t("call.bar_ended", { talk: callClock(c.talk_s || 0) })
      : t("call.bar_ended_outcome", { outcome: outcomeText(c.outcome) });
  const action =
    working && conv.state === "wrap_up"
      ? h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "call-bar-wrap", onclick: () => byTestId("disposition-select").focus() }, t("call.bar_choose_disposition"))
      : null;
  return [
    h("span", { "data-testid": "call-bar-text" }, working ? `${ended} — ${t("call.bar_wrap_up")}` : ended),
    action,
  ];
}

/** Draw the call bar of the open conversation (hidden when it is no call of ours). */
export function renderCallBar() {
  const bar = byTestId("call-bar");
  const cur = app.current;
  const c = cur && isCallChannel(cur.conversation.channel) ? calls.get(cur.id) : null;
  const closed = cur && cur.conversation.state === "closed";
  if (!c || closed) {
    bar.hidden = true;
    bar.dataset.state = "";
    return;
  }
  bar.hidden = false;
  bar.dataset.state = c.phase;
  fill(bar, h("span", { class: "call-icon", "aria-hidden": "true" }, "☎"), barContent(cur, c));
}

/** The outcome of a call in the reader's language. */
export function outcomeText(outcome) {
  return has(`call.outcome.${outcome}`) ? t(`call.outcome.${outcome}`) : t("call.outcome.other");
}

/** Once a second: the running call's timer. */
export function tickCalls() {
  for (const el of document.querySelectorAll('[data-testid="call-timer"][data-since]')) {
    el.textContent = callClock((Date.now() - Number(el.dataset.since)) / 1000);
  }
}

// ------------------------------------------------------------------ history entries
/** A call's history entry: outcome, who, waited, talked, total and menu, not a bubble. */
export function callEntry(msg) {
  const call = msg.metadata?.call || {};
  const outcome = call.outcome || "";
  let head = msg.text || t("tl.call");
  const figures = [];
  if (outcome) {
    head = call.direction === "callback" ? t("call.entry_callback", { outcome: outcomeText(outcome) }) : outcomeText(outcome);
    if (call.agent && outcome === "answered") head = t("call.entry_by", { head, agent: call.agent });
    if (call.direction !== "callback" && call.wait_s !== null && call.wait_s !== undefined) figures.push(t("call.waited", { time: duration(call.wait_s) }));
    if (call.talk_s !== null && call.talk_s !== undefined) figures.push(t("call.talked", { time: duration(call.talk_s) }));
    if (call.duration_s !== null && call.duration_s !== undefined) figures.push(t("call.in_all", { time: duration(call.duration_s) }));
  }
  const menu = Array.isArray(call.menu) && call.menu.length ? call.menu.join(" › ") : "";
  return h(
    "div",
    { class: "tl-call", "data-testid": "call-entry", "data-outcome": outcome },
    h("span", { class: "tl-call-icon", "aria-hidden": "true" }, "☎"),
    h(
      "div",
      { class: "tl-call-body" },
      h(
        "div",
        { class: "tl-call-head" },
        channelBadge(msg.channel),
        h("span", { class: "tl-call-outcome", "data-testid": "call-outcome" }, head),
        h("time", { class: "tl-time", datetime: msg.created_at || "" }, clock(msg.created_at || Date.now())),
      ),
      figures.length ? h("div", { class: "tl-call-figures", "data-testid": "call-figures" }, figures.join(" · ")) : null,
      menu ? h("div", { class: "tl-call-menu muted small" }, t("call.menu", { menu })) : null,
    ),
  );
}
