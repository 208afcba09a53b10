// The supervisor dashboard: live tiles, agents board and conversation list kept up to date
// from /ws/supervisor events (PROTOCOL.md), charts and staffing from the report API.
// Data is only ever placed with textContent and attributes (dom.js), never as HTML.
import { byTestId, clear, fill, h } from "/static/dom.js";
import { channelBadge, channelName, setChannels } from "/static/channels.js";
import { applyI18n, bindLanguageSelect, currentLang, duration, t } from "/static/i18n.js";
import { applySupervisorI18n, st } from "/static/supervisor-i18n.js";
import { ProtocolClient, agentSocketUrl } from "/static/ws.js";

const WAITING = new Set(["queued", "offered"]);
// A call's talk is over with its outcome (call.ended), the agent's wrap-up, or the work leaving
// the agent (requeued after their phone rang out, closed, abandoned while connecting).
const TALK_OVER = new Set(["call.ended", "conversation.wrap_up", "conversation.queued", "conversation.closed", "conversation.abandoned"]);
const OPEN = new Set(["queued", "offered", "assigned", "wrap_up"]);
const AGENT_STATES = ["available", "away", "offline"];
// Reports are re-read now and then (live figures come from events); jitter spreads 50 pages.
const REFRESH_MS = 60000;
const SVG = "http://www.w3.org/2000/svg";
// The phone panel re-reads today's call figures every minute and after calls end, at most
// every 5 s. The provider reports a call's end in several requests posted together (queue
// result, dial result with the talk time, status), so a hang-up brings call.ended and then
// call.updated with the late figures: the settle delay makes one re-read of them all.
const PHONE_REFRESH_MS = 60000;
const PHONE_MIN_GAP_MS = 5000;
const PHONE_SETTLE_MS = 1500;
const DEFAULT_THRESHOLD_S = 20;
const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

const S = {
  client: null,
  me: null,
  convs: new Map(), // id -> conversation summary
  agents: new Map(), // id -> agent (state, state_since, ...)
  episodes: new Map(), // conversation id -> {answered, arrivedAt}: for live SL/abandons
  outcomes: [], // answers and abandons seen live: {seq, queue, channel, answered, wait}
  thresholds: new Map(), // queue -> SL threshold (s)
  base: { queue: null, channel: null }, // today's figures from the report API
  occupancy: new Map(), // agent id -> occupancy today
  monitor: null, // {id, log: [...]}
  voice: new Set(), // channels whose media is "voice" (the welcome frame's facts)
  outbound: new Set(), // of those, the ones whose work the agent starts (callbacks)
  talking: new Set(), // conversation ids whose caller talks to an agent
  phone: { kpis: null, loadedAt: 0, timer: null, failed: false, request: 0 }, // /reports/voice
  skewMs: null, // client clock minus server clock (minimum seen on live events)
  asOf: null,
};

// ------------------------------------------------------------------ helpers
function now() {
  return Date.now() - (S.skewMs || 0);
}

function pct(x) {
  return x === null || x === undefined || Number.isNaN(x) ? "–" : `${(x * 100).toFixed(1)}%`;
}

function secs(x) {
  return x === null || x === undefined ? "–" : duration(x);
}

function toast(text, kind = "info") {
  const box = byTestId("toasts");
  const item = h("div", { class: `sup-toast sup-toast-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  box.appendChild(item);
  setTimeout(() => item.remove(), 5000);
}

async function command(name, args) {
  try {
    const result = await S.client.send(name, args);
    return result;
  } catch (err) {
    toast(st("sup.cmd_failed", { name, detail: err.detail || err.message }), "error");
    throw err;
  }
}

async function getJson(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
  const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (resp.status === 401) {
    location.assign("/login");
    throw new Error("not logged in");
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.detail || `HTTP ${resp.status}`);
  return body;
}

function customerName(c) {
  return c.customer_name || st("sup.unknown_customer", { id: c.customer_id ?? c.id });
}

function agentName(id) {
  const a = S.agents.get(id);
  return a ? a.display_name || a.username : id ? `#${id}` : "—";
}

function stateLabel(state) {
  return t(`state.conv.${state}`);
}

// ------------------------------------------------------------------ live model
function conversationFromEvent(ev) {
  let c = S.convs.get(ev.conversation_id);
  if (!c) {
    c = {
      id: ev.conversation_id,
      customer_id: ev.customer_id,
      customer_name: "",
      channel: ev.channel,
      queue: ev.queue,
      state: "queued",
      priority: 0,
      assignee_id: null,
      waiting_since: ev.at,
      created_at: ev.at,
    };
    S.convs.set(c.id, c);
  }
  return c;
}

function recordOutcome(ev, answered, wait) {
  if (typeof wait !== "number" || Number.isNaN(wait)) return;
  S.outcomes.push({ seq: ev.seq, queue: ev.queue, channel: ev.channel, answered, wait: Math.max(0, wait) });
}

function applyEvent(ev) {
  const p = ev.payload || {};
  const at = Date.parse(ev.at);
  if (!ev.replayed && !Number.isNaN(at)) {
    const skew = Date.now() - at;
    S.skewMs = S.skewMs === null ? skew : Math.min(S.skewMs, skew);
  }
  const id = ev.conversation_id;
  switch (ev.type) {
    case "conversation.created":
    case "conversation.reopened": {
      const c = conversationFromEvent(ev);
      Object.assign(c, { state: "queued", queue: ev.queue, channel: ev.channel, waiting_since: ev.at, assignee_id: null });
      if (typeof p.priority === "number") c.priority = p.priority;
      S.episodes.set(id, { answered: false, arrivedAt: at });
      break;
    }
    case "conversation.queued": {
      const c = conversationFromEvent(ev);
      Object.assign(c, { state: "queued", queue: ev.queue, assignee_id: null });
      break;
    }
    case "offer.created": {
      const c = conversationFromEvent(ev);
      c.state = "offered";
      if (p.customer_name) c.customer_name = p.customer_name;
      break;
    }
    case "conversation.assigned": {
      const c = conversationFromEvent(ev);
      Object.assign(c, { state: "assigned", assignee_id: ev.agent_id });
      const ep = S.episodes.get(id);
      if (ep ? !ep.answered : !p.transfer) {
        const wait = typeof p.wait_s === "number" ? p.wait_s : ep ? (at - ep.arrivedAt) / 1000 : null;
        recordOutcome(ev, true, wait);
      }
      S.episodes.set(id, { answered: true, arrivedAt: ep ? ep.arrivedAt : at });
      break;
    }
    case "conversation.wrap_up":
      if (S.convs.has(id)) S.convs.get(id).state = "wrap_up";
      break;
    case "conversation.updated":
      if (S.convs.has(id) && typeof p.priority === "number") S.convs.get(id).priority = p.priority;
      break;
    case "conversation.abandoned":
    case "conversation.closed": {
      const ep = S.episodes.get(id);
      if (ev.type === "conversation.abandoned" ? !ep || !ep.answered : ep && !ep.answered) {
        const wait = typeof p.wait_s === "number" ? p.wait_s : ep ? (at - ep.arrivedAt) / 1000 : null;
        recordOutcome(ev, false, wait);
      }
      S.episodes.delete(id);
      S.convs.delete(id);
      break;
    }
    case "call.connected":
      if (id !== null && id !== undefined) S.talking.add(id);
      break;
    case "call.ended":
    case "call.updated":
      schedulePhoneRefresh();
      break;
    case "agent.state_changed": {
      const a = S.agents.get(ev.agent_id);
      if (a) Object.assign(a, { state: p.state, state_reason: p.reason || "", state_since: ev.at });
      break;
    }
    case "agent.created":
      if (!S.agents.has(ev.agent_id)) {
        S.agents.set(ev.agent_id, {
          id: ev.agent_id,
          username: p.username || "",
          display_name: p.username || "",
          role: p.role || "agent",
          state: "offline",
          state_reason: "",
          state_since: ev.at,
        });
      }
      break;
    default:
      break;
  }
  if (TALK_OVER.has(ev.type)) S.talking.delete(id);
  if (S.monitor && id === S.monitor.id) monitorEvent(ev);
}

// ------------------------------------------------------------------ tiles
function liveFigures(kind) {
  // kind: "queue" or "channel"
  const rows = new Map();
  const get = (key) => {
    if (!rows.has(key)) {
      rows.set(key, { key, waiting: 0, offered: 0, assigned: 0, wrap_up: 0, oldest: null, answered: 0, abandoned: 0, ansIn: 0, abIn: 0, threshold: 20 });
    }
    return rows.get(key);
  };
  for (const c of S.convs.values()) {
    const r = get(c[kind] || "");
    if (WAITING.has(c.state)) {
      r.waiting += 1;
      const since = Date.parse(c.waiting_since || c.created_at);
      if (!Number.isNaN(since) && (r.oldest === null || since < r.oldest)) r.oldest = since;
    }
    if (c.state === "offered") r.offered += 1;
    if (c.state === "assigned") r.assigned += 1;
    if (c.state === "wrap_up") r.wrap_up += 1;
  }
  const base = S.base[kind];
  const threshold = (key) => (kind === "queue" ? S.thresholds.get(key) ?? base?.defaultThreshold ?? 20 : base?.defaultThreshold ?? 20);
  if (base) {
    for (const row of base.rows) {
      const r = get(row.key);
      r.threshold = threshold(row.key);
      const level = (row.service_levels || []).find((l) => l.threshold_s === r.threshold) || row.service_levels?.[0];
      const left = row.answered + row.abandoned;
      r.answered += row.answered;
      r.abandoned += row.abandoned;
      if (level) {
        r.ansIn += Math.round((level.answered_only ?? 0) * row.answered);
        r.abIn += Math.round((level.counting_abandons ?? 0) * left) - Math.round((level.answered_only ?? 0) * row.answered);
      }
    }
  }
  const asOf = base ? base.asOf : -1;
  for (const o of S.outcomes) {
    if (o.seq <= asOf) continue;
    const r = get(o[kind] || "");
    r.threshold = threshold(r.key);
    if (o.answered) {
      r.answered += 1;
      if (o.wait <= r.threshold) r.ansIn += 1;
    } else {
      r.abandoned += 1;
      if (o.wait <= r.threshold) r.abIn += 1;
    }
  }
  for (const r of rows.values()) {
    const left = r.answered + r.abandoned;
    r.sl = left ? (r.ansIn + r.abIn) / left : null;
    r.abandonRate = left ? r.abandoned / left : null;
  }
  return [...rows.values()].sort((a, b) => a.key.localeCompare(b.key));
}

function tile(r, kind) {
  const longest = r.oldest === null ? null : Math.max(0, (now() - r.oldest) / 1000);
  const slClass = r.sl === null ? "" : r.sl >= 0.8 ? "good" : r.sl >= 0.6 ? "fair" : "poor";
  const figure = (label, value, testid, extra = "") =>
    h("div", { class: `fig ${extra}` }, h("span", { class: "fig-value", "data-testid": testid }, value), h("span", { class: "fig-label" }, label));
  const name = r.key || "—";
  return h(
    "article",
    { class: `tile${r.waiting ? " has-waiting" : ""}`, "data-testid": `${kind}-tile`, "data-key": r.key },
    h("header", { class: "tile-head" }, kind === "channel" ? channelBadge(r.key, { withName: true }) : h("span", { class: "tile-name" }, name)),
    h(
      "div",
      { class: "tile-main" },
      figure(st("sup.waiting"), String(r.waiting), "tile-waiting", "fig-big"),
      figure(st("sup.longest"), longest === null ? "–" : duration(longest), "tile-longest", longest !== null && longest > r.threshold ? "warn" : ""),
    ),
    h(
      "div",
      { class: "tile-row" },
      figure(st("sup.offered"), String(r.offered), "tile-offered"),
      figure(st("sup.in_progress"), String(r.assigned), "tile-in-progress"),
      figure(st("sup.wrap_up"), String(r.wrap_up), "tile-wrap-up"),
    ),
    h(
      "div",
      { class: "tile-row" },
      figure(st("sup.sl_today", { t: r.threshold }), pct(r.sl), "tile-sl", slClass),
      figure(st("sup.abandon_today"), pct(r.abandonRate), "tile-abandon"),
    ),
  );
}

function renderTiles() {
  const queues = liveFigures("queue");
  fill(byTestId("queue-tiles"), queues.map((r) => tile(r, "queue")));
  byTestId("queue-tiles-empty").hidden = queues.length > 0;
  fill(byTestId("channel-tiles"), liveFigures("channel").map((r) => tile(r, "channel")));
  renderStaffingLive();
}

// ------------------------------------------------------------------ phone
function setVoiceChannels(list) {
  const voice = (list || []).filter((info) => info.media === "voice");
  S.voice = new Set(voice.map((info) => info.name));
  // Callback tasks are work for an agent to start, not callers waiting on the line.
  S.outbound = new Set(voice.filter((info) => info.outbound).map((info) => info.name));
  const panel = byTestId("phone-panel");
  const wasHidden = panel.hidden;
  panel.hidden = S.voice.size === 0;
  if (wasHidden && !panel.hidden) loadPhone();
}

function phoneLive() {
  let waiting = 0;
  let callbacks = 0;
  let oldest = null;
  for (const c of S.convs.values()) {
    if (!S.voice.has(c.channel) || !WAITING.has(c.state)) continue;
    if (S.outbound.has(c.channel)) {
      callbacks += 1;
      continue;
    }
    waiting += 1;
    const since = Date.parse(c.waiting_since || c.created_at);
    if (!Number.isNaN(since) && (oldest === null || since < oldest)) oldest = since;
  }
  const onCall = new Set();
  for (const id of S.talking) {
    const c = S.convs.get(id);
    if (c && c.state === "assigned" && c.assignee_id) onCall.add(c.assignee_id);
  }
  return { waiting, callbacks, longest: oldest === null ? null : Math.max(0, (now() - oldest) / 1000), onCall };
}

function count(x) {
  return typeof x === "number" ? String(x) : "–";
}

function meanSecs(x) {
  return typeof x === "number" ? duration(Math.round(x)) : "–";
}

function renderPhone() {
  const panel = byTestId("phone-panel");
  if (panel.hidden) return;
  const live = phoneLive();
  byTestId("phone-waiting").textContent = String(live.waiting);
  byTestId("phone-callbacks-due").textContent = String(live.callbacks);
  byTestId("phone-now").classList.toggle("has-waiting", live.waiting > 0);
  byTestId("phone-longest").textContent = live.longest === null ? "–" : duration(live.longest);
  byTestId("phone-longest-fig").classList.toggle("warn", live.longest !== null && live.longest > DEFAULT_THRESHOLD_S);
  const onCall = byTestId("phone-on-call");
  onCall.textContent = String(live.onCall.size);
  const names = [...live.onCall].map(agentName).sort().join(", ");
  if (names) onCall.parentElement.title = st("sup.phone.on_call_title", { names });
  else onCall.parentElement.removeAttribute("title");

  const k = S.phone.kpis;
  const level = k ? (k.service_levels || []).find((l) => l.threshold_s === DEFAULT_THRESHOLD_S) || k.service_levels?.[0] : null;
  const threshold = level ? level.threshold_s : DEFAULT_THRESHOLD_S;
  byTestId("phone-answered").textContent = count(k?.answered);
  byTestId("phone-abandoned").textContent = count(k?.abandoned);
  byTestId("phone-callbacks").textContent = count(k?.callbacks_requested);
  byTestId("phone-voicemails").textContent = count(k?.voicemails);
  byTestId("phone-asa").textContent = meanSecs(k?.asa_s);
  byTestId("phone-abandon-rate").textContent = pct(k?.abandonment_rate);
  byTestId("phone-aht").textContent = meanSecs(k?.aht_s);
  const sl = level ? level.service_level : null;
  byTestId("phone-sl").textContent = pct(sl);
  byTestId("phone-sl-label").textContent = st("sup.phone.sl", { t: threshold });
  const slFig = byTestId("phone-sl-fig");
  slFig.title = st("sup.phone.sl_title", { t: threshold });
  slFig.classList.remove("good", "fair", "poor");
  if (sl !== null && sl !== undefined) slFig.classList.add(sl >= 0.8 ? "good" : sl >= 0.6 ? "fair" : "poor");
}

async function loadPhone() {
  if (!S.voice.size) return;
  clearTimeout(S.phone.timer);
  S.phone.timer = null;
  S.phone.loadedAt = Date.now();
  const request = ++S.phone.request;
  try {
    const kpis = await getJson("/api/v1/reports/voice", reportParams({ thresholds: String(DEFAULT_THRESHOLD_S) }));
    if (request !== S.phone.request) return; // a later read is under way
    S.phone.kpis = kpis;
    S.phone.failed = false;
  } catch (err) {
    if (request !== S.phone.request) return;
    // Said once, not every minute while the failure lasts.
    if (!S.phone.failed) toast(st("sup.load_failed", { what: st("sup.phone.figures"), detail: err.message }), "error");
    S.phone.failed = true;
  }
  renderPhone();
}

/** A call ended or its figures grew: re-read today's figures soon (settled, at most every 5 s). */
function schedulePhoneRefresh() {
  if (!S.voice.size || S.phone.timer !== null) return;
  const at = Math.max(Date.now() + PHONE_SETTLE_MS, S.phone.loadedAt + PHONE_MIN_GAP_MS);
  S.phone.timer = setTimeout(loadPhone, at - Date.now());
}

// ------------------------------------------------------------------ conversations
function orderedConversations() {
  const list = [...S.convs.values()].filter((c) => OPEN.has(c.state));
  const rank = (c) => (WAITING.has(c.state) ? 0 : 1);
  return list.sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (rank(a) === 0 ? b.priority - a.priority : 0) ||
      Date.parse(a.waiting_since || a.created_at) - Date.parse(b.waiting_since || b.created_at) ||
      a.id - b.id,
  );
}

function agentOptions(placeholder) {
  const opts = [h("option", { value: "" }, placeholder)];
  for (const a of [...S.agents.values()].sort((x, y) => (x.display_name || "").localeCompare(y.display_name || ""))) {
    if (a.role !== "agent") continue;
    opts.push(h("option", { value: String(a.id) }, `${a.display_name || a.username} · ${t(`state.${a.state}`)}`));
  }
  return opts;
}

function buildConversationRow(c) {
  const priority = h("input", { type: "number", class: "prio-input", "data-testid": "priority-input", "aria-label": st("sup.col.priority"), min: "-100", max: "100" });
  const reassign = h("select", { class: "reassign-select", "data-testid": "reassign-select", "aria-label": st("sup.reassign_to") });
  const row = h(
    "tr",
    { "data-testid": "conversation-row", "data-id": String(c.id) },
    h("td", { class: "num" }, `#${c.id}`),
    h("td", { class: "cell-customer" }),
    h("td", { class: "cell-channel" }),
    h("td", { class: "cell-queue" }),
    h("td", { class: "cell-state" }),
    h(
      "td",
      { class: "cell-priority" },
      h(
        "div",
        { class: "inline" },
        priority,
        h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "priority-set", onclick: () => setPriority(c.id, priority) }, st("sup.set")),
      ),
    ),
    h("td", { class: "cell-age num" }),
    h("td", { class: "cell-agent" }),
    h(
      "td",
      { class: "cell-actions" },
      h(
        "div",
        { class: "inline" },
        h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "monitor-button", onclick: () => openMonitor(c.id) }, st("sup.monitor")),
        reassign,
        h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "reassign-button", onclick: () => reassignTo(c.id, reassign) }, st("sup.reassign")),
      ),
    ),
  );
  row._priority = priority;
  row._reassign = reassign;
  return row;
}

function updateConversationRow(row, c) {
  const cells = row.children;
  cells[1].textContent = customerName(c);
  if (cells[2].dataset.channel !== c.channel) {
    fill(cells[2], channelBadge(c.channel, { withName: true }));
    cells[2].dataset.channel = c.channel;
  }
  cells[3].textContent = c.queue || "—";
  fill(cells[4], h("span", { class: `pill pill-state st-${c.state}`, "data-testid": "conversation-state" }, stateLabel(c.state)));
  if (document.activeElement !== row._priority && row._priority.dataset.shown !== String(c.priority)) {
    row._priority.value = String(c.priority);
    row._priority.dataset.shown = String(c.priority);
  }
  const since = Date.parse(WAITING.has(c.state) ? c.waiting_since || c.created_at : c.created_at);
  cells[6].textContent = Number.isNaN(since) ? "–" : duration((now() - since) / 1000);
  cells[6].classList.toggle("warn", WAITING.has(c.state) && (now() - since) / 1000 > (S.thresholds.get(c.queue) ?? 20));
  cells[7].textContent = c.assignee_id ? agentName(c.assignee_id) : "—";
  const agentsKey = [...S.agents.values()].map((a) => `${a.id}:${a.state}`).join(",");
  if (row._agentsKey !== agentsKey && document.activeElement !== row._reassign) {
    const keep = row._reassign.value;
    fill(row._reassign, agentOptions(st("sup.reassign_to")));
    row._reassign.value = keep;
    row._agentsKey = agentsKey;
  }
}

function renderConversations() {
  const body = byTestId("conversation-rows");
  const list = orderedConversations();
  const existing = new Map([...body.children].map((tr) => [Number(tr.dataset.id), tr]));
  const rows = list.map((c) => {
    const row = existing.get(c.id) || buildConversationRow(c);
    updateConversationRow(row, c);
    return row;
  });
  rows.forEach((row, i) => {
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
  });
  while (body.children.length > rows.length) body.lastElementChild.remove();
  byTestId("conversation-count").textContent = String(list.length);
  byTestId("conversations-empty").hidden = list.length > 0;
}

async function setPriority(id, input) {
  const priority = Number.parseInt(input.value, 10);
  if (Number.isNaN(priority)) return;
  await command("set_priority", { conversation_id: id, priority }).catch(() => {});
  const c = S.convs.get(id);
  if (c) c.priority = priority;
  renderConversations();
}

async function reassignTo(id, select) {
  const agentId = Number.parseInt(select.value, 10);
  if (Number.isNaN(agentId)) return;
  await command("reassign", { conversation_id: id, agent_id: agentId })
    .then(() => toast(st("sup.done", { name: st("sup.reassign") })))
    .catch(() => {});
}

// ------------------------------------------------------------------ agents
function buildAgentRow(a) {
  const force = h("select", { class: "force-select", "data-testid": "force-state", "aria-label": st("sup.col.force") });
  fill(force, AGENT_STATES.map((s) => h("option", { value: s }, t(`state.${s}`))));
  force.addEventListener("change", () => forceState(a.id, force));
  const row = h(
    "tr",
    { "data-testid": "agent-row", "data-id": String(a.id) },
    h("td", { class: "cell-name" }),
    h("td", { class: "cell-state" }),
    h("td", { class: "cell-since num" }),
    h("td", { class: "cell-load" }),
    h("td", { class: "cell-occ" }),
    h("td", {}, force),
  );
  row._force = force;
  return row;
}

function updateAgentRow(row, a) {
  const cells = row.children;
  cells[0].textContent = a.display_name || a.username;
  cells[0].title = a.username;
  const label = a.state_reason && a.state !== "available" ? `${t(`state.${a.state}`)} · ${a.state_reason}` : t(`state.${a.state}`);
  fill(cells[1], h("span", { class: `agent-state as-${a.state}`, "data-testid": "agent-state" }, h("span", { class: "state-dot", "data-state": a.state }), label));
  const since = Date.parse(a.state_since);
  cells[2].textContent = Number.isNaN(since) ? "–" : duration((now() - since) / 1000);
  const byChannel = new Map();
  for (const c of S.convs.values()) {
    if (c.assignee_id === a.id && (c.state === "assigned" || c.state === "wrap_up")) {
      byChannel.set(c.channel, (byChannel.get(c.channel) || 0) + 1);
    }
  }
  const key = [...byChannel].map(([ch, n]) => `${ch}${n}`).join(",");
  if (cells[3].dataset.key !== key) {
    fill(
      cells[3],
      byChannel.size
        ? [...byChannel].map(([ch, n]) => h("span", { class: "load", "data-testid": "agent-load" }, channelBadge(ch, { withName: true }), h("b", {}, String(n))))
        : h("span", { class: "muted" }, "—"),
    );
    cells[3].dataset.key = key;
  }
  const occ = S.occupancy.get(a.id);
  const occKey = occ === undefined ? "" : String(occ);
  if (cells[4].dataset.key !== occKey) {
    fill(
      cells[4],
      occ === undefined || occ === null
        ? h("span", { class: "muted" }, "–")
        : h("div", { class: "occ" }, h("div", { class: "occ-bar" }, h("div", { class: "occ-fill", style: { width: `${Math.round(occ * 100)}%` } })), h("span", {}, pct(occ))),
    );
    cells[4].dataset.key = occKey;
  }
  if (document.activeElement !== row._force) row._force.value = a.state;
}

function renderAgents() {
  const body = byTestId("agent-rows");
  const list = [...S.agents.values()]
    .filter((a) => a.role === "agent" || [...S.convs.values()].some((c) => c.assignee_id === a.id))
    .sort((x, y) => (x.display_name || x.username).localeCompare(y.display_name || y.username));
  const existing = new Map([...body.children].map((tr) => [Number(tr.dataset.id), tr]));
  const rows = list.map((a) => {
    const row = existing.get(a.id) || buildAgentRow(a);
    updateAgentRow(row, a);
    return row;
  });
  rows.forEach((row, i) => {
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
  });
  while (body.children.length > rows.length) body.lastElementChild.remove();
  byTestId("agent-count").textContent = String(list.length);
  byTestId("agents-empty").hidden = list.length > 0;
}

async function forceState(agentId, select) {
  await command("force_state", { agent_id: agentId, state: select.value }).catch(() => {});
}

// ------------------------------------------------------------------ monitor (read-only)
function monitorItem(direction, text, at, who) {
  const when = new Date(at);
  return h(
    "li",
    { class: `mon-item mon-${direction}`, "data-testid": "monitor-item" },
    h("div", { class: "mon-meta" }, who, " · ", Number.isNaN(when.getTime()) ? "" : when.toLocaleTimeString(currentLang())),
    h("div", { class: "mon-text" }, text || ""),
  );
}

function whoFor(direction, authorId) {
  if (direction === "in") return t("tl.customer");
  if (direction === "note") return `${t("tl.note")} · ${agentName(authorId)}`;
  return authorId ? agentName(authorId) : t("tl.system");
}

async function openMonitor(id) {
  let data;
  try {
    data = await command("monitor", { conversation_id: id });
  } catch {
    return;
  }
  const conv = data.conversation || {};
  S.monitor = { id };
  byTestId("monitor-title").textContent = st("sup.monitor_title", { id });
  byTestId("monitor-sub").textContent = [data.customer?.display_name, channelName(conv.channel), conv.queue, stateLabel(conv.state)]
    .filter(Boolean)
    .join(" · ");
  const items = ((data.history && data.history.items) || []).filter((m) => m.conversation_id === id).reverse();
  fill(
    byTestId("monitor-log"),
    items.map((m) => monitorItem(m.direction, m.text, m.created_at, whoFor(m.direction, m.author_id))),
  );
  byTestId("monitor").hidden = false;
}

function monitorEvent(ev) {
  const p = ev.payload || {};
  let direction = null;
  if (ev.type === "message.received") direction = "in";
  else if (ev.type === "message.sent") direction = "out";
  else if (ev.type === "note.added") direction = "note";
  if (direction) {
    const log = byTestId("monitor-log");
    log.appendChild(monitorItem(direction, p.text, ev.at, whoFor(direction, ev.agent_id)));
    log.scrollTop = log.scrollHeight;
  } else if (ev.type.startsWith("conversation.")) {
    const c = S.convs.get(ev.conversation_id);
    const sub = byTestId("monitor-sub");
    if (!c) sub.textContent = `${sub.textContent.split(" · ").slice(0, -1).join(" · ")} · ${stateLabel("closed")}`;
  }
}

function closeMonitor() {
  S.monitor = null;
  byTestId("monitor").hidden = true;
}

// ------------------------------------------------------------------ reports
function reportParams(extra = {}) {
  return { tz: TZ, ...extra };
}

function csvHref(report, extra = {}) {
  const url = new URL(`/api/v1/reports/${report}`, location.origin);
  for (const [k, v] of Object.entries({ ...reportParams(extra), format: "csv" })) url.searchParams.set(k, v);
  return url.pathname + url.search;
}

function renderExports() {
  for (const a of byTestId("exports").querySelectorAll("a[data-report]")) {
    const extra = a.dataset.group ? { group_by: a.dataset.group } : {};
    if (a.dataset.report === "timeseries") extra.bucket = "hour";
    if (a.dataset.report === "workflow") {
      const midnight = new Date();
      midnight.setHours(0, 0, 0, 0);
      extra.from = midnight.toISOString();
    }
    a.href = csvHref(a.dataset.report, extra);
    a.setAttribute("download", "");
  }
}

async function loadQueues() {
  try {
    const body = await getJson("/api/v1/queues");
    for (const q of body.items || []) S.thresholds.set(q.name, q.sl_threshold_s);
  } catch {
    // tiles fall back to 20 s
  }
  const select = byTestId("staffing-queue");
  const keep = select.value;
  fill(select, [h("option", { value: "" }, st("sup.staff.all")), ...[...S.thresholds.keys()].sort().map((q) => h("option", { value: q }, q))]);
  select.value = keep;
}

function thresholdList() {
  const set = new Set([20, ...S.thresholds.values()]);
  return [...set].sort((a, b) => a - b).join(",");
}

async function loadBase() {
  const thresholds = thresholdList();
  const [byQueue, byChannel] = await Promise.all([
    getJson("/api/v1/reports/summary", reportParams({ group_by: "queue", thresholds })),
    getJson("/api/v1/reports/summary", reportParams({ group_by: "channel", thresholds })),
  ]);
  S.base.queue = { rows: byQueue.rows, asOf: byQueue.as_of_seq, defaultThreshold: 20 };
  S.base.channel = { rows: byChannel.rows, asOf: byChannel.as_of_seq, defaultThreshold: 20 };
  S.summary = byQueue.total;
  const asOf = Math.min(byQueue.as_of_seq, byChannel.as_of_seq);
  S.outcomes = S.outcomes.filter((o) => o.seq > asOf);
}

async function loadCharts() {
  const [series, waits, agents] = await Promise.all([
    getJson("/api/v1/reports/timeseries", reportParams({ bucket: "hour", thresholds: "20" })),
    getJson("/api/v1/reports/wait-distribution", reportParams()),
    getJson("/api/v1/reports/agents", reportParams()),
  ]);
  S.occupancy = new Map(agents.items.map((a) => [a.agent_id, a.occupancy]));
  renderArrivalsChart(series);
  renderWaitsChart(waits);
  renderOccupancyChart(agents);
}

async function refreshReports() {
  try {
    await loadBase();
    await loadCharts();
    await loadWorkflow();
    S.asOf = new Date();
    byTestId("as-of").textContent = st("sup.as_of", { time: S.asOf.toLocaleTimeString(currentLang()) });
  } catch (err) {
    toast(st("sup.load_failed", { what: st("sup.today"), detail: err.message }), "error");
  }
  renderAll();
  prefillStaffing();
}

// ------------------------------------------------------------------ workflow KPIs

function table(testId, head, rows) {
  const el = byTestId(testId);
  if (!rows.length) {
    fill(el, h("tbody", {}, h("tr", {}, h("td", { class: "muted" }, st("sup.wf.none")))));
    return;
  }
  fill(el, h("thead", {}, h("tr", {}, head.map((k) => h("th", {}, st(k))))), h("tbody", {}, rows.map((cells) => h("tr", { "data-testid": `${testId}-row` }, cells.map((c) => h("td", {}, String(c)))))));
}

async function loadWorkflow() {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const report = await getJson("/api/v1/reports/workflow", { from: midnight.toISOString() });
  table(
    "wf-sla",
    ["sup.wf.queue", "sup.wf.metric", "sup.wf.started", "sup.wf.breached"],
    report.sla.map((r) => [r.queue, r.metric.replace("_", " "), r.started, `${r.breached} (${pct(r.breach_rate)})`]),
  );
  table(
    "wf-complaints",
    ["sup.wf.category", "sup.wf.severity", "sup.wf.opened", "sup.wf.escalated", "sup.wf.resolved"],
    report.complaints.map((r) => [r.category, r.severity, r.opened, r.escalated, r.resolved]),
  );
  table(
    "wf-csat",
    ["sup.wf.key", "sup.wf.rate", "sup.wf.avg"],
    [...report.csat_by_channel.map((r) => [channelName(r.key), `${pct(r.response_rate)} (${r.answers}/${r.surveys})`, r.avg_score ?? "—"]), ...report.csat_by_agent.map((r) => [r.key, `${pct(r.response_rate)} (${r.answers}/${r.surveys})`, r.avg_score ?? "—"])],
  );
}

function addAlert(ev) {
  const list = byTestId("wf-alerts");
  const when = new Date(ev.at).toLocaleTimeString(currentLang());
  list.prepend(h("li", { "data-testid": "wf-alert", "data-reason": ev.payload.reason }, `${when} · ${ev.payload.text}`));
  while (list.children.length > 20) list.lastChild.remove();
}

// ------------------------------------------------------------------ SVG charts
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  return el;
}

function tick(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function niceMax(value) {
  if (value <= 0) return 1;
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= value) return m * exp;
  return 10 * exp;
}

function legend(items) {
  return h(
    "div",
    { class: "legend" },
    items.map(([cls, label]) => h("span", { class: "legend-item" }, h("span", { class: `swatch ${cls}` }), label)),
  );
}

function emptyChart(box) {
  fill(box, h("p", { class: "empty-hint" }, st("sup.chart.empty")));
}

function renderArrivalsChart(series) {
  const box = byTestId("chart-arrivals");
  const points = series.points || [];
  if (!points.some((p) => p.contacts || p.out_of_hours_contacts)) return emptyChart(box);
  const W = 720;
  const H = 220;
  const pad = { l: 36, r: 40, t: 12, b: 26 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const max = niceMax(Math.max(...points.map((p) => p.contacts + p.out_of_hours_contacts)));
  const bw = iw / points.length;
  const y = (v) => pad.t + ih - (v / max) * ih;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-label": st("sup.chart.arrivals") });
  for (const f of [0, 0.5, 1]) {
    root.appendChild(svg("line", { x1: pad.l, x2: W - pad.r, y1: y(max * f), y2: y(max * f), class: "grid-line" }));
    root.appendChild(svg("text", { x: pad.l - 6, y: y(max * f) + 4, class: "axis", "text-anchor": "end" }, tick(max * f)));
    root.appendChild(svg("text", { x: W - pad.r + 6, y: pad.t + ih - f * ih + 4, class: "axis" }, `${Math.round(f * 100)}%`));
  }
  const target = 0.8;
  root.appendChild(svg("line", { x1: pad.l, x2: W - pad.r, y1: pad.t + ih - target * ih, y2: pad.t + ih - target * ih, class: "target-line" }));
  const line = [];
  points.forEach((p, i) => {
    const x = pad.l + i * bw;
    const inside = p.contacts;
    const outside = p.out_of_hours_contacts;
    if (inside) root.appendChild(svg("rect", { x: x + bw * 0.15, width: bw * 0.7, y: y(inside), height: y(0) - y(inside), class: "bar bar-arrivals", "data-testid": "arrival-bar" }, svg("title", {}, `${new Date(p.start).toLocaleTimeString(currentLang(), { hour: "2-digit", minute: "2-digit" })}: ${inside}`)));
    if (outside) root.appendChild(svg("rect", { x: x + bw * 0.15, width: bw * 0.7, y: y(inside + outside), height: y(inside) - y(inside + outside), class: "bar bar-outside" }));
    const level = p.service_levels?.[0]?.counting_abandons;
    if (level !== null && level !== undefined) line.push([x + bw / 2, pad.t + ih - level * ih]);
    const hour = new Date(p.start).getHours();
    if (hour % 3 === 0 || points.length <= 8) root.appendChild(svg("text", { x: x + bw / 2, y: H - 8, class: "axis", "text-anchor": "middle" }, String(hour).padStart(2, "0")));
  });
  if (line.length) {
    root.appendChild(svg("polyline", { points: line.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" "), class: "sl-line" }));
    for (const [a, b] of line) root.appendChild(svg("circle", { cx: a, cy: b, r: 3, class: "sl-dot", "data-testid": "sl-dot" }));
  }
  const threshold = series.thresholds?.[0] ?? 20;
  fill(
    box,
    root,
    legend([
      ["sw-arrivals", st("sup.legend.arrivals")],
      ["sw-sl", st("sup.legend.sl", { t: threshold })],
      ["sw-target", st("sup.legend.target", { n: Math.round(target * 100) })],
    ]),
  );
}

function binLabel(b) {
  if (b.low_s === 0 && b.high_s !== null) return st("sup.bin.first", { high: b.high_s });
  if (b.high_s === null) return st("sup.bin.last", { low: b.low_s });
  return st("sup.bin.mid", { low: b.low_s, high: b.high_s });
}

function renderWaitsChart(dist) {
  const box = byTestId("chart-waits");
  const bins = dist.bins || [];
  if (!dist.answered && !dist.abandoned) return emptyChart(box);
  const W = 310;
  const H = 220;
  const pad = { l: 28, r: 6, t: 12, b: 46 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const max = niceMax(Math.max(...bins.map((b) => b.answered + b.abandoned)));
  const bw = iw / bins.length;
  const y = (v) => pad.t + ih - (v / max) * ih;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-label": st("sup.chart.waits") });
  for (const f of [0, 0.5, 1]) {
    root.appendChild(svg("line", { x1: pad.l, x2: W - pad.r, y1: y(max * f), y2: y(max * f), class: "grid-line" }));
    root.appendChild(svg("text", { x: pad.l - 4, y: y(max * f) + 4, class: "axis", "text-anchor": "end" }, tick(max * f)));
  }
  bins.forEach((b, i) => {
    const x = pad.l + i * bw + bw * 0.12;
    const w = bw * 0.76;
    if (b.answered) root.appendChild(svg("rect", { x, width: w, y: y(b.answered), height: y(0) - y(b.answered), class: "bar bar-answered", "data-testid": "wait-bar" }, svg("title", {}, `${binLabel(b)}: ${b.answered}`)));
    if (b.abandoned) root.appendChild(svg("rect", { x, width: w, y: y(b.answered + b.abandoned), height: y(b.answered) - y(b.answered + b.abandoned), class: "bar bar-abandoned" }, svg("title", {}, `${binLabel(b)}: ${b.abandoned}`)));
    const lx = x + w / 2;
    root.appendChild(svg("text", { x: lx, y: H - pad.b + 14, class: "axis axis-small", "text-anchor": "end", transform: `rotate(-35 ${lx} ${H - pad.b + 14})` }, binLabel(b)));
  });
  fill(box, root, legend([["sw-answered", st("sup.legend.answered")], ["sw-abandoned", st("sup.legend.abandoned")]]));
}

function renderOccupancyChart(report) {
  const box = byTestId("chart-occupancy");
  const items = (report.items || []).filter((a) => a.occupancy !== null);
  if (!items.length) return emptyChart(box);
  const W = 310;
  const row = 24;
  const pad = { l: 84, r: 44, t: 6, b: 6 };
  const H = pad.t + pad.b + row * items.length;
  const iw = W - pad.l - pad.r;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-label": st("sup.chart.occupancy") });
  items.forEach((a, i) => {
    const top = pad.t + i * row;
    const name = a.name || `#${a.agent_id}`;
    root.appendChild(svg("text", { x: pad.l - 6, y: top + 15, class: "axis", "text-anchor": "end" }, name.length > 14 ? `${name.slice(0, 13)}…` : name));
    root.appendChild(svg("rect", { x: pad.l, y: top + 4, width: iw, height: row - 8, class: "bar-track" }));
    root.appendChild(svg("rect", { x: pad.l, y: top + 4, width: Math.max(1, iw * a.occupancy), height: row - 8, class: "bar bar-occupancy", "data-testid": "occupancy-bar" }, svg("title", {}, `${name}: ${pct(a.occupancy)}`)));
    root.appendChild(svg("text", { x: W - pad.r + 6, y: top + 15, class: "axis" }, pct(a.occupancy)));
  });
  fill(box, root);
}

// ------------------------------------------------------------------ staffing helper
function availableNow() {
  return [...S.agents.values()].filter((a) => a.role === "agent" && a.state === "available").length;
}

function renderStaffingLive() {
  byTestId("staffing-available").textContent = String(availableNow());
  const needed = Number.parseInt(byTestId("staffing-needed").textContent, 10);
  const gap = byTestId("staffing-gap");
  if (Number.isNaN(needed)) {
    gap.hidden = true;
    return;
  }
  const short = needed - availableNow();
  gap.hidden = false;
  gap.className = `pill ${short > 0 ? "pill-bad" : "pill-ok"}`;
  gap.textContent = short > 0 ? st("sup.staff.short", { n: short }) : st("sup.staff.ok");
}

let staffingPrefilled = false;
function prefillStaffing() {
  if (staffingPrefilled || !S.summary) return;
  const form = byTestId("staffing-form");
  const hours = Math.max(0.25, (Date.now() - new Date().setHours(0, 0, 0, 0)) / 3600000);
  const total = S.summary;
  form.elements.arrivals.value = String(Math.round((total.contacts / hours) * 10) / 10 || 10);
  const aht = total.aht_s !== null ? total.aht_s + (total.acw_avg_s || 0) : 180;
  form.elements.aht.value = String(Math.round(aht));
  staffingPrefilled = true;
  calculateStaffing();
}

async function calculateStaffing(ev) {
  if (ev) ev.preventDefault();
  const form = byTestId("staffing-form");
  const queue = form.elements.queue.value;
  const params = {
    arrivals_per_hour: form.elements.arrivals.value,
    aht_s: form.elements.aht.value,
    target_sl: String(Number(form.elements.target.value) / 100),
    threshold_s: form.elements.threshold.value,
    queue,
  };
  try {
    const plan = await getJson("/api/v1/reports/staffing", reportParams(params));
    const first = plan.rows[0];
    byTestId("staffing-needed").textContent = String(first.agents);
    fill(
      byTestId("staffing-table"),
      plan.around.map((r) =>
        h(
          "tr",
          { class: r.agents === first.agents ? "chosen" : "", "data-testid": "staffing-row" },
          h("td", {}, String(r.agents)),
          h("td", {}, pct(r.service_level)),
          h("td", {}, secs(r.asa_s)),
          h("td", {}, pct(r.occupancy)),
        ),
      ),
    );
  } catch (err) {
    byTestId("staffing-needed").textContent = "–";
    clear(byTestId("staffing-table"));
    toast(st("sup.load_failed", { what: st("sup.staffing"), detail: err.message }), "error");
  }
  renderStaffingLive();
}

function onStaffingQueue() {
  const form = byTestId("staffing-form");
  const q = form.elements.queue.value;
  form.elements.threshold.value = String(q && S.thresholds.has(q) ? S.thresholds.get(q) : 20);
}

// ------------------------------------------------------------------ connection
let connTimer = null;
let lastConn = { state: "connecting" };
function renderConn(detail) {
  lastConn = detail;
  const box = byTestId("conn-status");
  const text = box.querySelector(".conn-text");
  clearInterval(connTimer);
  box.dataset.state = detail.state;
  const paint = () => {
    if (detail.state === "open") text.textContent = t("conn.connected");
    else if (detail.state === "connecting") text.textContent = t("conn.connecting");
    else if (detail.state === "closed") text.textContent = t("conn.offline");
    else if (detail.retryAt) text.textContent = t("conn.reconnecting", { n: Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000)) });
    else text.textContent = t("conn.reconnecting_now");
  };
  paint();
  if (detail.state === "reconnecting" && detail.retryAt) connTimer = setInterval(paint, 250);
  document.body.classList.toggle("disconnected", detail.state !== "open");
}

function onSnapshot(data) {
  S.convs = new Map();
  S.episodes = new Map();
  for (const c of data.conversations || []) {
    S.convs.set(c.id, { ...c });
    S.episodes.set(c.id, { answered: !WAITING.has(c.state), arrivedAt: Date.parse(c.waiting_since || c.created_at) });
  }
  S.agents = new Map((data.agents || []).map((a) => [a.id, { ...a }]));
  // The snapshot does not say whether an assigned call is still ringing the agent's phone or
  // already talking: both count as on a call until call.ended or wrap-up says otherwise.
  S.talking = new Set([...S.convs.values()].filter((c) => S.voice.has(c.channel) && c.state === "assigned").map((c) => c.id));
  renderAll();
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderAll();
  });
}

function renderAll() {
  renderPhone();
  renderTiles();
  renderConversations();
  renderAgents();
}

function start() {
  applyI18n();
  applySupervisorI18n();
  document.title = `${st("sup.title")} · ${t("app.brand")}`;
  bindLanguageSelect(byTestId("lang-select"));
  document.addEventListener("langchange", () => {
    applySupervisorI18n();
    document.title = `${st("sup.title")} · ${t("app.brand")}`;
    renderConn(lastConn);
    // Rows hold translated buttons and options: rebuild them in the new language.
    byTestId("conversation-rows").replaceChildren();
    byTestId("agent-rows").replaceChildren();
    renderAll();
    loadQueues();
    refreshReports();
  });
  renderExports();
  byTestId("logout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
    location.assign("/login");
  });
  byTestId("refresh").addEventListener("click", () => {
    refreshReports();
    loadPhone();
  });
  byTestId("monitor-close").addEventListener("click", closeMonitor);
  byTestId("staffing-form").addEventListener("submit", calculateStaffing);
  byTestId("staffing-queue").addEventListener("change", onStaffingQueue);

  const client = new ProtocolClient(agentSocketUrl("/ws/supervisor"));
  S.client = client;
  client.addEventListener("status", (e) => renderConn(e.detail));
  client.addEventListener("welcome", (e) => {
    S.me = e.detail.user;
    setChannels(e.detail.channels);
    setVoiceChannels(e.detail.channels);
    byTestId("user-name").textContent = S.me.display_name || S.me.username;
  });
  client.addEventListener("snapshot", (e) => onSnapshot(e.detail));
  client.addEventListener("resync", () => {
    refreshReports();
    loadPhone();
  });
  client.addEventListener("event", (e) => {
    if (e.detail.type === "supervisor.alert") {
      addAlert(e.detail);
      if (!e.detail.replayed) toast(e.detail.payload.text, "warn");
    }
    applyEvent(e.detail);
    scheduleRender();
  });
  client.start();
  loadQueues().then(refreshReports);
  setInterval(renderAll, 1000); // waits and times in state tick
  setInterval(refreshReports, REFRESH_MS + Math.random() * 10000);
  setInterval(loadPhone, PHONE_REFRESH_MS);
}

start();
