// Shared state of the console page and small helpers used by every panel.
import { byTestId, h } from "/static/dom.js";
import { t } from "/static/i18n.js";

export const app = {
  client: null, // ProtocolClient
  me: null, // welcome.user
  agents: new Map(), // id -> {id, username, display_name, state}
  offers: new Map(), // offer_id -> offer (+ deadline in client ms)
  conversations: new Map(), // id -> conversation summary (+ awaitingSince)
  queues: new Set(),
  canned: [],
  current: null, // the open conversation, see conversation.js
  skewMs: 0, // client clock minus server clock, estimated from live events
};

/** Server time now, corrected for the clock difference. */
export function serverNow() {
  return Date.now() - app.skewMs;
}

/** Milliseconds on the client clock at which a server timestamp happens. */
export function toClientMs(iso) {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? Date.now() : ms + app.skewMs;
}

/** A display name for an agent id. */
export function agentName(id) {
  if (id === null || id === undefined) return t("tl.system");
  if (app.me && id === app.me.id) return t("tl.you");
  const agent = app.agents.get(id);
  return agent ? agent.display_name || agent.username : `${t("tl.agent")} #${id}`;
}

/** Show a transient message at the bottom right. */
export function toast(text, kind = "info", ms = 5000) {
  const box = byTestId("toasts");
  const el = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status", "data-testid": "toast" }, text);
  box.appendChild(el);
  setTimeout(() => {
    el.classList.add("toast-out");
    setTimeout(() => el.remove(), 300);
  }, ms);
  return el;
}

/** Run a command; on failure show the server's sentence and re-throw. */
export async function command(name, args = {}, { quiet = false } = {}) {
  try {
    return await app.client.send(name, args);
  } catch (err) {
    if (!quiet) {
      const text = err.code === "timeout" ? t("error.timeout") : t("error.command", { detail: err.detail || String(err) });
      toast(text, "error", 7000);
    }
    throw err;
  }
}

/** Same-origin JSON GET with the session cookie (for reads the protocol does not cover). */
export async function getJson(path) {
  const resp = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
  return resp.json();
}

/** Same-origin JSON write with the session cookie; the server's sentence on failure. */
export async function sendJson(method, path, body) {
  const resp = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.detail || `HTTP ${resp.status}`);
  return data;
}

/** Tell the other modules something changed (they listen on document). */
export function notify(name, detail = {}) {
  document.dispatchEvent(new CustomEvent(`hub:${name}`, { detail }));
}
