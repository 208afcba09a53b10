// Left column: ringing offers and the agent's conversation list (unread counts, SLA timers).
import {
  app,
  command,
  getJson,
  notify,
  serverNow,
  toClientMs,
  toast,
} from "/static/app.js";
import { byTestId, clear, fill, h } from "/static/dom.js";
import { channelBadge, channelName, firstResponseTarget } from "/static/channels.js";
import { duration, t } from "/static/i18n.js";
import { startRinging, stopRinging } from "/static/ring.js";
import { callerNumber, callTitle, forgetPops, isCallChannel, screenPop } from "/static/phone.js";

// ------------------------------------------------------------------ offers
/** Remember an offer (from the snapshot or an offer.created event). */
export function addOffer(raw, { receivedAt = null } = {}) {
  let deadline = toClientMs(raw.expires_at);
  if (receivedAt !== null && raw.at) {
    // The event carries the server's clock: count the offer's own timeout from arrival so
    // a skewed client clock cannot shorten it.
    const timeout = Date.parse(raw.expires_at) - Date.parse(raw.at);
    if (!Number.isNaN(timeout)) deadline = receivedAt + timeout;
  }
  app.offers.set(raw.offer_id, { ...raw, deadline, busy: false });
  renderOffers();
}

export function removeOffer(offerId) {
  if (app.offers.delete(offerId)) renderOffers();
}

export function removeOffersOf(conversationId) {
  let changed = false;
  for (const [id, o] of app.offers) {
    if (o.conversation_id === conversationId) {
      app.offers.delete(id);
      changed = true;
    }
  }
  if (changed) renderOffers();
}

export function replaceOffers(list) {
  app.offers.clear();
  for (const o of list) app.offers.set(o.offer_id, { ...o, deadline: toClientMs(o.expires_at), busy: false });
  renderOffers();
}

/** The offer that rings: the one expiring first. */
export function ringingOffer() {
  let best = null;
  for (const o of app.offers.values()) if (!best || o.deadline < best.deadline) best = o;
  return best;
}

function secondsLeft(o) {
  return Math.max(0, Math.ceil((o.deadline - Date.now()) / 1000));
}

export async function acceptOffer(offerId) {
  const offer = app.offers.get(offerId);
  if (!offer || offer.busy) return;
  offer.busy = true;
  renderOffers();
  try {
    const result = await command("accept", { offer_id: offerId });
    app.offers.delete(offerId);
    renderOffers();
    notify("open", { conversationId: result.conversation_id, preview: offer.preview, focus: true });
  } catch (err) {
    if (err.code === "conflict" || err.code === "not_found") app.offers.delete(offerId);
    else offer.busy = false;
    renderOffers();
  }
}

export async function rejectOffer(offerId) {
  const offer = app.offers.get(offerId);
  if (!offer || offer.busy) return;
  offer.busy = true;
  renderOffers();
  try {
    await command("reject", { offer_id: offerId });
  } catch {
    // already gone (expired/rescinded): drop it all the same
  }
  app.offers.delete(offerId);
  renderOffers();
}

function offerButtons(o, big) {
  return h(
    "div",
    { class: "offer-actions" },
    h(
      "button",
      {
        type: "button",
        class: `btn btn-reject ${big ? "" : "btn-sm"}`,
        "data-testid": big ? "offer-reject" : "offer-item-reject",
        disabled: o.busy,
        onclick: () => rejectOffer(o.offer_id),
      },
      t("offers.reject"),
      big ? h("kbd", {}, t("offers.reject_hint")) : null,
    ),
    h(
      "button",
      {
        type: "button",
        class: `btn btn-accept ${big ? "" : "btn-sm"}`,
        "data-testid": big ? "offer-accept" : "offer-item-accept",
        disabled: o.busy,
        onclick: () => acceptOffer(o.offer_id),
      },
      t("offers.accept"),
      big ? h("kbd", {}, t("offers.accept_hint")) : null,
    ),
  );
}

// Why an offer came to this agent before the queue (offer.created payload `preferred`).
const PREFERRED = new Set(["last_agent", "account_owner"]);

function offerMeta(o) {
  return h(
    "div",
    { class: "offer-meta" },
    PREFERRED.has(o.preferred)
      ? h("span", { class: "pill pill-yours", "data-testid": "offer-yours", title: t(`offers.why.${o.preferred}`) }, t("offers.yours"))
      : null,
    o.segment ? h("span", { class: `pill pill-segment seg-${o.segment}` }, o.segment) : null,
    o.priority ? h("span", { class: "pill pill-priority" }, t("offers.priority", { n: o.priority })) : null,
    o.queue ? h("span", { class: "muted small" }, t("conv.queue", { queue: o.queue })) : null,
  );
}

let offersDrawn = null; // what the offer panels show; unchanged offers are not rebuilt (no re-animation)

export function renderOffers({ force = false } = {}) {
  const list = byTestId("offer-list");
  const offers = [...app.offers.values()].sort((a, b) => a.deadline - b.deadline);
  const drawn = JSON.stringify(offers.map((o) => [o.offer_id, o.busy, Math.round(o.deadline / 1000)]));
  if (!force && drawn === offersDrawn) return;
  offersDrawn = drawn;
  fill(
    list,
    offers.map((o) =>
      h(
        "li",
        { class: "offer-item", "data-testid": "offer-item", "data-offer-id": o.offer_id },
        h(
          "div",
          { class: "offer-item-top" },
          channelBadge(o.channel),
          h("span", { class: "offer-item-name" }, o.customer_name || callerNumber(o) || t("convs.unknown_customer", { id: o.conversation_id })),
          h("span", { class: "countdown", "data-deadline": o.deadline }, t("offers.expires", { n: secondsLeft(o) })),
        ),
        h("div", { class: "offer-item-preview" }, o.preview || ""),
        offerButtons(o, false),
      ),
    ),
  );
  byTestId("offer-count").textContent = String(offers.length);
  byTestId("offers-empty").hidden = offers.length > 0;
  renderRing();
}

function renderRing() {
  forgetPops(new Set([...app.offers.values()].map((x) => x.conversation_id)));
  const layer = byTestId("ring-layer");
  const o = ringingOffer();
  if (!o) {
    clear(layer);
    stopRinging();
    document.title = t("app.title");
    return;
  }
  const total = Math.max(1, o.deadline - (o.shownAt || (o.shownAt = Date.now())));
  const call = isCallChannel(o.channel);
  // A call is answered by voice: the agent reads who calls and their last contacts before
  // picking up (the screen pop), instead of a message preview.
  const body = call
    ? [screenPop(o, () => offerMeta({ ...o, segment: o.segment === "vip" ? "" : o.segment }))]
    : [
        h("div", { class: "ring-customer", "data-testid": "offer-customer" }, o.customer_name || t("convs.unknown_customer", { id: o.conversation_id })),
        offerMeta(o),
        o.preview ? h("blockquote", { class: "ring-preview", "data-testid": "offer-preview" }, o.preview) : null,
      ];
  const card = h(
    "div",
    {
      class: `ring-card ${call ? "ring-call" : ""}`,
      role: "alertdialog",
      "aria-live": "assertive",
      "data-testid": "offer",
      "data-offer-id": o.offer_id,
      "data-conversation-id": o.conversation_id,
    },
    h(
      "div",
      { class: "ring-head" },
      h("span", { class: "ring-pulse", "aria-hidden": "true" }),
      channelBadge(o.channel),
      h("span", { class: "ring-title", "data-testid": "offer-title" }, call ? callTitle(o) : t("offers.incoming", { channel: channelName(o.channel) })),
      h("span", { class: "countdown ring-countdown", "data-testid": "offer-countdown", "data-deadline": o.deadline }, t("offers.expires", { n: secondsLeft(o) })),
    ),
    body,
    offerButtons(o, true),
    h("div", { class: "ring-bar" }, h("div", { class: "ring-bar-fill", "data-deadline": o.deadline, "data-total": total })),
    app.offers.size > 1 ? h("div", { class: "muted small" }, t("offers.more", { n: app.offers.size - 1 })) : null,
  );
  fill(layer, card);
  startRinging();
  document.title = `🔔 ${o.customer_name || ""} · ${t("app.title")}`;
}

// ------------------------------------------------------------------ conversations
/** Unread count, waiting start and first response of a conversation from history items. */
function waitingFrom(conversationId, items) {
  const mine = items.filter((m) => m.conversation_id === conversationId).sort((a, b) => a.id - b.id);
  let unread = 0;
  let awaitingSince = null;
  let firstResponse = null;
  let preview = "";
  for (const m of mine) {
    if (m.direction === "out" && m.kind !== "auto_reply") {
      unread = 0;
      awaitingSince = null;
      firstResponse = firstResponse || m.created_at;
    } else if (m.direction === "in" && ["message", "command", "bulk"].includes(m.kind)) {
      unread += 1;
      awaitingSince = awaitingSince || m.created_at;
    }
    if (m.direction === "in" || m.direction === "out") preview = m.text || preview;
  }
  return { unread, awaitingSince, first_response_at: firstResponse, preview: preview.slice(0, 140) };
}

/** A list summary from the `open` result (history items give unread and SLA) or REST reads. */
export function summaryFrom(conversation, customer, extra = {}, items = null) {
  return {
    id: conversation.id,
    customer_id: conversation.customer_id,
    customer_name: customer ? customer.display_name : "",
    channel: conversation.channel,
    state: conversation.state,
    queue: conversation.queue,
    priority: conversation.priority,
    labels: conversation.labels || [],
    assignee_id: conversation.assignee_id,
    subject: conversation.subject || "",
    unread: 0,
    preview: "",
    waiting_since: null,
    created_at: conversation.created_at,
    last_activity_at: conversation.last_activity_at,
    first_response_at: undefined,
    ...(items ? waitingFrom(conversation.id, items) : {}),
    ...extra,
  };
}

export function replaceConversations(list) {
  const old = app.conversations;
  app.conversations = new Map();
  for (const c of list) {
    const prev = old.get(c.id);
    app.conversations.set(c.id, { ...c, awaitingSince: prev ? prev.awaitingSince : null });
  }
  renderConversations();
}

export function upsertConversation(summary) {
  const prev = app.conversations.get(summary.id) || {};
  app.conversations.set(summary.id, { ...prev, ...summary });
  renderConversations();
}

export function patchConversation(id, patch) {
  const c = app.conversations.get(id);
  if (!c) return null;
  Object.assign(c, patch);
  renderConversations();
  return c;
}

export function removeConversation(id) {
  if (app.conversations.delete(id)) renderConversations();
}

/** Fetch a summary through REST for a conversation that arrived without an offer (transfer in). */
export async function ensureConversation(id) {
  if (app.conversations.has(id)) return app.conversations.get(id);
  try {
    const conv = await getJson(`/api/v1/conversations/${id}`);
    const [customer, page] = await Promise.all([
      getJson(`/api/v1/customers/${conv.customer_id}`).catch(() => null),
      getJson(`/api/v1/conversations/${id}/messages?limit=50`).catch(() => null),
    ]);
    // `open` may have filled the entry meanwhile; it knows better.
    if (!app.conversations.has(id)) upsertConversation(summaryFrom(conv, customer, {}, page ? page.items : null));
  } catch {
    if (!app.conversations.has(id)) {
      upsertConversation(summaryFrom({ id, customer_id: null, channel: "", state: "assigned", labels: [] }, null));
    }
  }
  return app.conversations.get(id);
}

export function orderedConversations() {
  return [...app.conversations.values()].sort(
    (a, b) => Date.parse(b.last_activity_at || 0) - Date.parse(a.last_activity_at || 0) || b.id - a.id,
  );
}

function slaInfo(c) {
  let since = null;
  // A call on the agent's screen is being answered by voice: the call bar times it.
  if (c.state === "wrap_up" || isCallChannel(c.channel)) return null;
  if (c.first_response_at === null) since = c.waiting_since || c.created_at;
  else if (c.unread > 0) since = c.awaitingSince || c.last_activity_at;
  if (!since) return null;
  const target = firstResponseTarget(c.channel);
  const elapsed = (serverNow() - Date.parse(since)) / 1000;
  const level = elapsed >= target ? "breach" : elapsed >= target / 2 ? "warn" : "ok";
  return { elapsed, level };
}

function slaNode(c) {
  const info = slaInfo(c);
  if (!info) return h("span", { class: "sla sla-none", "data-testid": "sla-timer" });
  return h(
    "span",
    { class: `sla sla-${info.level}`, "data-testid": "sla-timer", "data-level": info.level, title: t("convs.sla") },
    duration(info.elapsed),
  );
}

export function renderConversations() {
  const list = byTestId("conversation-list");
  const currentId = app.current ? app.current.id : null;
  const items = orderedConversations();
  fill(
    list,
    items.map((c) =>
      h(
        "li",
        {
          class: `conv-item ${c.id === currentId ? "selected" : ""} ${c.unread ? "has-unread" : ""} state-${c.state}`,
          role: "option",
          tabindex: "0",
          "aria-selected": c.id === currentId ? "true" : "false",
          "data-testid": "conversation-item",
          "data-conversation-id": c.id,
          onclick: () => notify("open", { conversationId: c.id }),
          onkeydown: (ev) => {
            if (ev.key === "Enter") notify("open", { conversationId: c.id });
          },
        },
        h(
          "div",
          { class: "conv-item-top" },
          channelBadge(c.channel),
          h("span", { class: "conv-item-name" }, c.customer_name || t("convs.unknown_customer", { id: c.customer_id ?? c.id })),
          slaNode(c),
        ),
        h(
          "div",
          { class: "conv-item-bottom" },
          h("span", { class: "conv-item-preview" }, c.preview || c.subject || ""),
          c.unread && !isCallChannel(c.channel)
            ? h("span", { class: "unread", "data-testid": "unread-count", title: t("convs.unread", { n: c.unread }) }, String(c.unread))
            : null,
        ),
        c.state === "wrap_up" || c.priority || (c.labels && c.labels.length)
          ? h(
              "div",
              { class: "conv-item-tags" },
              c.state === "wrap_up" ? h("span", { class: "pill pill-wrap" }, t("convs.wrap_up")) : null,
              c.priority ? h("span", { class: "pill pill-priority" }, t("conv.priority", { n: c.priority })) : null,
              (c.labels || []).map((l) => h("span", { class: "pill pill-label" }, l)),
            )
          : null,
      ),
    ),
  );
  byTestId("conversation-count").textContent = String(items.length);
  byTestId("conversations-empty").hidden = items.length > 0;
}

/** Once a second: countdowns and SLA timers. */
export function tick() {
  for (const el of document.querySelectorAll(".countdown[data-deadline]")) {
    const left = Math.max(0, Math.ceil((Number(el.dataset.deadline) - Date.now()) / 1000));
    el.textContent = t("offers.expires", { n: left });
    el.classList.toggle("urgent", left <= 5);
  }
  for (const el of document.querySelectorAll(".ring-bar-fill")) {
    const left = Math.max(0, Number(el.dataset.deadline) - Date.now());
    el.style.width = `${Math.min(100, (100 * left) / Number(el.dataset.total))}%`;
  }
  // An offer the server never ended (lost event) must not ring forever.
  for (const [id, o] of app.offers) if (o.deadline < Date.now() - 10000) app.offers.delete(id);
  if (!app.offers.size && document.querySelector('[data-testid="offer"]')) renderOffers();
  for (const el of document.querySelectorAll('[data-testid="conversation-item"]')) {
    const c = app.conversations.get(Number(el.dataset.conversationId));
    const old = el.querySelector('[data-testid="sla-timer"]');
    if (c && old) old.replaceWith(slaNode(c));
  }
}

export function offerEndedToast(o, outcome) {
  if (!o) return;
  const name = o.customer_name || t("convs.unknown_customer", { id: o.conversation_id });
  if (outcome === "expired") toast(t("offers.expired", { name }), "warn");
  if (outcome === "rescinded") toast(t("offers.rescinded", { name }), "info");
}
