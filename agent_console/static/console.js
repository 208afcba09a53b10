// Entry point of the agent console: wires the protocol client to the panels, keeps the
// agent state and connection indicator, and owns the keyboard shortcuts.
import { app, command, getJson, notify, toast } from "/static/app.js";
import { setChannels } from "/static/channels.js";
import { byTestId, fill, h, typingInField } from "/static/dom.js";
import { applyI18n, bindLanguageSelect, duration, t } from "/static/i18n.js";
import {
  acceptOffer,
  addOffer,
  ensureConversation,
  offerEndedToast,
  orderedConversations,
  patchConversation,
  rejectOffer,
  removeConversation,
  removeOffer,
  removeOffersOf,
  renderConversations,
  renderOffers,
  replaceConversations,
  replaceOffers,
  ringingOffer,
  tick,
} from "/static/lists.js";
import {
  applyEvent,
  initConversation,
  invalidateTimeline,
  openConversation,
  renderAll,
  setCustomer,
  setViewers,
} from "/static/conversation.js";
import { focusReply, renderCanned, setMode, toggleMode } from "/static/composer.js";
import { initCollab } from "/static/collab.js";
import { initComplaints } from "/static/complaints.js";
import { initMentions } from "/static/mentions.js";
import { initSidebar, renderSidebar } from "/static/sidebar.js";
import { ProtocolClient, agentSocketUrl } from "/static/ws.js";
import { unlockAudioOnGesture } from "/static/ring.js";
import { applyCallEvent, renderCallBar, tickCalls } from "/static/phone.js";

const STATE_OPTIONS = [
  ["available", "", "state.available"],
  ["away", "Break", "state.away_break"],
  ["away", "Lunch", "state.away_lunch"],
  ["away", "Meeting", "state.away_meeting"],
  ["offline", "", "state.offline"],
];

// ------------------------------------------------------------------ agent state
function renderStateSelect() {
  const select = byTestId("state-select");
  const me = app.me;
  const options = STATE_OPTIONS.map(([state, reason, key]) => ({ value: `${state}|${reason}`, label: t(key), state }));
  const current = me ? `${me.state}|${me.state === "away" ? me.state_reason || "" : ""}` : "";
  if (me && !options.some((o) => o.value === current)) {
    options.splice(me.state === "offline" ? options.length - 1 : 1, 0, {
      value: current,
      label: me.state_reason ? `${t(`state.${me.state}`)} · ${me.state_reason}` : t(`state.${me.state}`),
      state: me.state,
    });
  }
  fill(
    select,
    options.map((o) => h("option", { value: o.value, "data-state": o.state }, o.label)),
  );
  select.value = current;
  select.dataset.state = me ? me.state : "offline";
  select.disabled = !app.client?.connected;
  byTestId("state-dot").dataset.state = me ? me.state : "offline";
}

let requestedState = null; // our own last change: its event needs no toast

async function changeState() {
  const select = byTestId("state-select");
  const [state, reason] = select.value.split("|");
  requestedState = `${state}|${reason}`;
  try {
    await command("set_state", { state, reason });
    app.me = { ...app.me, state, state_reason: reason };
  } catch {
    // keep what the server says
  }
  renderStateSelect();
}

// ------------------------------------------------------------------ connection indicator
let connTimer = null;
function renderConn(detail) {
  const box = byTestId("conn-status");
  const text = box.querySelector(".conn-text");
  clearInterval(connTimer);
  box.dataset.state = detail.state;
  const paint = () => {
    if (detail.state === "open") text.textContent = t("conn.connected");
    else if (detail.state === "connecting") text.textContent = t("conn.connecting");
    else if (detail.state === "closed") text.textContent = t("conn.offline");
    else if (detail.retryAt) {
      text.textContent = t("conn.reconnecting", { n: Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000)) });
    } else text.textContent = t("conn.reconnecting_now");
  };
  paint();
  if (detail.state === "reconnecting" && detail.retryAt) connTimer = setInterval(paint, 250);
  byTestId("state-select").disabled = detail.state !== "open";
  document.body.classList.toggle("disconnected", detail.state !== "open");
}

// ------------------------------------------------------------------ protocol wiring
function onWelcome(data) {
  setChannels(data.channels);
  app.me = data.user;
  byTestId("user-name").textContent = data.user.display_name || data.user.username;
  byTestId("user-name").title = `${data.user.username} · ${data.user.role}`;
  renderStateSelect();
  command("agents", {}, { quiet: true })
    .then((r) => {
      for (const a of r.items || []) app.agents.set(a.id, a);
      if (app.current) renderAll();
    })
    .catch(() => {});
  command("canned", {}, { quiet: true })
    .then((r) => {
      app.canned = r.items || [];
      renderCanned();
    })
    .catch(() => {});
}

function onSnapshot(data) {
  replaceOffers(data.offers || []);
  replaceConversations(data.conversations || []);
  for (const q of data.queues || []) if (q.queue) app.queues.add(q.queue);
  // Re-open the conversation on screen: registers us as a viewer again on this new
  // connection and fills anything the replay does not carry (attachments, full texts).
  if (app.current) openConversation(app.current.id, { refresh: true });
}

function onResync() {
  toast(t("conn.resync"), "info");
}

function onEvent(ev) {
  byTestId("conn-status").dataset.lastSeq = String(ev.seq);
  if (!ev.replayed) {
    const at = Date.parse(ev.at);
    if (!Number.isNaN(at)) app.skewMs = Date.now() - at;
  }
  const p = ev.payload || {};
  const mine = app.me && ev.agent_id === app.me.id;
  const conv = ev.conversation_id;
  switch (ev.type) {
    case "offer.created":
      // The snapshot is the truth for what is still pending; a replayed offer it does not
      // list has ended since.
      if (mine && (!ev.replayed || app.offers.has(p.offer_id))) {
        addOffer({ ...p, conversation_id: conv, customer_id: ev.customer_id, channel: ev.channel || p.channel, queue: ev.queue, at: ev.at }, { receivedAt: ev.replayed ? null : Date.now() });
      }
      break;
    case "offer.accepted":
    case "offer.rejected":
    case "offer.expired":
    case "offer.rescinded": {
      const offer = app.offers.get(p.offer_id);
      if (!ev.replayed) offerEndedToast(offer, ev.type.split(".")[1]);
      if (p.offer_id !== undefined) removeOffer(p.offer_id);
      else removeOffersOf(conv);
      break;
    }
    case "conversation.assigned":
      if (mine) {
        removeOffersOf(conv);
        ensureConversation(conv).then(() => patchConversation(conv, { state: "assigned", assignee_id: ev.agent_id }));
      } else {
        removeConversation(conv);
      }
      break;
    case "conversation.transferred":
      if (p.to_agent !== app.me?.id) removeConversation(conv);
      break;
    case "conversation.queued":
      removeConversation(conv);
      removeOffersOf(conv);
      break;
    case "conversation.wrap_up":
      patchConversation(conv, { state: "wrap_up" });
      break;
    case "conversation.closed":
      removeConversation(conv);
      break;
    case "conversation.updated":
      patchConversation(conv, {
        ...(p.labels ? { labels: p.labels } : {}),
        ...(p.priority !== undefined ? { priority: p.priority } : {}),
      });
      break;
    case "message.received": {
      const c = app.conversations.get(conv);
      if (c) {
        const inbound = (p.direction || "in") === "in" && ["message", "command", "bulk"].includes(p.kind || "message");
        const patch = { preview: (p.text || "").slice(0, 140), last_activity_at: ev.at };
        // The snapshot's unread count already includes replayed messages.
        if (inbound && !ev.replayed) {
          patch.unread = (c.unread || 0) + 1;
          if (!c.unread) patch.awaitingSince = ev.at;
        }
        patchConversation(conv, patch);
      }
      break;
    }
    case "message.sent": {
      const c = app.conversations.get(conv);
      if (c && p.kind !== "auto_reply") {
        patchConversation(conv, {
          preview: (p.text || "").slice(0, 140),
          last_activity_at: ev.at,
          unread: 0,
          awaitingSince: null,
          first_response_at: c.first_response_at || ev.at,
        });
      }
      break;
    }
    case "agent.state_changed":
      if (mine) {
        const changed = app.me.state !== p.state || (app.me.state_reason || "") !== (p.reason || "");
        app.me = { ...app.me, state: p.state, state_reason: p.reason || "" };
        renderStateSelect();
        const ours = requestedState === `${p.state}|${p.reason || ""}`;
        if (changed && !ev.replayed && !ours) {
          toast(t("state.changed", { state: t(`state.${p.state}`), reason: p.reason ? ` (${p.reason})` : "" }), p.state === "available" ? "ok" : "warn");
        }
      }
      if (app.agents.has(ev.agent_id)) app.agents.get(ev.agent_id).state = p.state;
      break;
    case "customer.updated":
    case "customer.merged":
    case "customer.unmerged":
      if (app.current && app.current.customer.id === ev.customer_id) {
        if (ev.type === "customer.updated") {
          getJson(`/api/v1/customers/${ev.customer_id}`).then(setCustomer).catch(() => {});
        } else openConversation(app.current.id, { refresh: true });
      }
      break;
    default:
      break;
  }
  if (applyCallEvent(ev) && app.current && app.current.id === conv) renderCallBar();
  applyEvent(ev);
}

function onMention(data) {
  const who = data.by || data.display_name || "";
  const id = data.conversation_id;
  const text = who && id ? t("mention.toast", { who, id }) : t("mention.toast_short");
  const el = toast(data.text ? `${text}: “${data.text}”` : text, "mention", 10000);
  if (id) {
    el.classList.add("clickable");
    el.addEventListener("click", () => openConversation(id));
  }
}

// ------------------------------------------------------------------ navigation
function moveSelection(step) {
  const items = orderedConversations();
  if (!items.length) return;
  const idx = app.current ? items.findIndex((c) => c.id === app.current.id) : -1;
  const next = idx === -1 ? (step > 0 ? 0 : items.length - 1) : (idx + step + items.length) % items.length;
  openConversation(items[next].id);
  const el = document.querySelector(`[data-testid="conversation-item"][data-conversation-id="${items[next].id}"]`);
  if (el) el.scrollIntoView({ block: "nearest" });
}

function onKey(ev) {
  const dialogOpen = document.querySelector("dialog[open]");
  if (dialogOpen) return;
  if (ev.altKey && (ev.key === "ArrowDown" || ev.key === "ArrowUp")) {
    ev.preventDefault();
    moveSelection(ev.key === "ArrowDown" ? 1 : -1);
    return;
  }
  if (typingInField(ev.target) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const offer = ringingOffer();
  switch (ev.key) {
    case "a":
    case "A":
      if (offer) {
        ev.preventDefault();
        acceptOffer(offer.offer_id);
      }
      break;
    case "r":
    case "R":
      if (offer) {
        ev.preventDefault();
        rejectOffer(offer.offer_id);
      }
      break;
    case "j":
    case "J":
      ev.preventDefault();
      moveSelection(1);
      break;
    case "k":
    case "K":
      ev.preventDefault();
      moveSelection(-1);
      break;
    case "/":
      ev.preventDefault();
      focusReply();
      break;
    case "n":
    case "N":
      if (app.current) {
        ev.preventDefault();
        toggleMode();
      }
      break;
    case "?":
      ev.preventDefault();
      byTestId("shortcuts-dialog").showModal();
      break;
    default:
      break;
  }
}

// A customer typing (web chat): shown on their open conversation for a few seconds.
const CUSTOMER_TYPING_MS = 6000;
const customerTyping = new Map(); // conversation id -> shown until (client ms)

function onCustomerTyping(data) {
  if (data.on) customerTyping.set(data.conversation_id, Date.now() + CUSTOMER_TYPING_MS);
  else customerTyping.delete(data.conversation_id);
  renderCustomerTyping();
}

function renderCustomerTyping() {
  const el = byTestId("customer-typing");
  const until = app.current ? customerTyping.get(app.current.id) : undefined;
  el.hidden = !(until && until > Date.now());
}

// ------------------------------------------------------------------ start
async function logout() {
  try {
    await fetch("/logout", { method: "POST", credentials: "same-origin" });
  } finally {
    app.client?.stop();
    location.assign("/login");
  }
}

async function checkSession() {
  // A refused upgrade looks like any network failure; ask REST whether we are still logged in.
  try {
    const resp = await fetch("/api/v1/me", { credentials: "same-origin" });
    if (resp.status === 401) location.assign("/login");
  } catch {
    // the hub is down: keep retrying the socket
  }
}

function start() {
  applyI18n();
  bindLanguageSelect(byTestId("lang-select"));
  initConversation();
  initSidebar();
  initMentions();
  initComplaints();
  initCollab();
  unlockAudioOnGesture();
  renderStateSelect();
  renderOffers();
  renderConversations();
  renderCanned();
  setMode("reply");

  byTestId("state-select").addEventListener("change", changeState);
  byTestId("logout").addEventListener("click", logout);
  byTestId("shortcuts-button").addEventListener("click", () => byTestId("shortcuts-dialog").showModal());
  byTestId("shortcuts-close").addEventListener("click", () => byTestId("shortcuts-dialog").close());
  document.addEventListener("keydown", onKey);
  document.addEventListener("hub:open", (ev) => openConversation(ev.detail.conversationId, ev.detail));
  document.addEventListener("hub:rendered", renderSidebar);
  document.addEventListener("hub:opened", () => {
    renderSidebar();
    renderConversations();
  });
  document.addEventListener("langchange", () => {
    renderStateSelect();
    renderOffers({ force: true });
    renderConversations();
    renderCanned();
    setMode(byTestId("composer").dataset.mode);
    invalidateTimeline();
    if (app.current) renderAll();
    else renderSidebar();
    renderConn({ state: app.client.state });
  });

  const client = new ProtocolClient(agentSocketUrl());
  app.client = client;
  client.addEventListener("status", (e) => {
    renderConn(e.detail);
    if (e.detail.state === "reconnecting" && e.detail.attempt >= 2 && e.detail.retryAt) checkSession();
  });
  client.addEventListener("welcome", (e) => onWelcome(e.detail));
  client.addEventListener("snapshot", (e) => onSnapshot(e.detail));
  client.addEventListener("resync", (e) => onResync(e.detail));
  client.addEventListener("event", (e) => onEvent(e.detail));
  client.addEventListener("viewing", (e) => setViewers(e.detail));
  client.addEventListener("mention", (e) => onMention(e.detail));
  client.addEventListener("typing", (e) => onCustomerTyping(e.detail));
  client.start();
  setInterval(() => {
    tick();
    tickCalls();
    renderCustomerTyping();
  }, 1000);
  // For end-to-end tests and support: read-only handles on the live state.
  window.hubConsole = { app, client, notify, duration };
}

start();
