// The hub's channels, as the server declares them in the welcome frame (ChannelInfo):
// names, badges, colours, reply routes, session windows, typing and first-response targets.
// Nothing here names a channel: a new channel folder on the server is enough.
import { h } from "/static/dom.js";
import { currentLang, has, t } from "/static/i18n.js";

const byName = new Map(); // name -> info
const DEFAULT_FIRST_RESPONSE_S = 120;

/** Take the channel list of a welcome frame. */
export function setChannels(list) {
  byName.clear();
  for (const info of list || []) byName.set(info.name, info);
}

/** The declared facts of a channel, or undefined for one the hub does not run (old data). */
export function channelInfo(channel) {
  return byName.get(channel);
}

/** The channel's name in the reader's language. */
export function channelName(channel) {
  const info = byName.get(channel);
  if (!info) return channel || "?";
  // Channels declare names by language ("zh"); the console's language may carry a region.
  const lang = currentLang();
  const labels = info.labels || {};
  return labels[lang] || labels[lang.split("-")[0]] || info.label || channel;
}

/** An endpoint kind's name: the catalog's, else the name of a channel that reaches it. */
export function endpointKindName(kind) {
  if (has(`kind.${kind}`)) return t(`kind.${kind}`);
  for (const info of byName.values()) if (info.endpoint_kind === kind) return channelName(info.name);
  return kind;
}

/** Channels an agent can answer in text on an endpoint of this kind. */
export function replyChannels(kind) {
  return [...byName.values()].filter((i) => i.endpoint_kind === kind && i.replies).map((i) => i.name);
}

/** Seconds after the customer's last message during which free text may go out, or null. */
export function sessionWindow(channel) {
  return byName.get(channel)?.session_window_s ?? null;
}

/** Whether the customer sees our typing indicator on this channel. */
export function showsTyping(channel) {
  return Boolean(byName.get(channel)?.typing);
}

/** The first-response target in seconds. */
export function firstResponseTarget(channel) {
  return byName.get(channel)?.first_response_s ?? DEFAULT_FIRST_RESPONSE_S;
}

/** A small coloured channel badge. */
export function channelBadge(channel, { withName = false } = {}) {
  const info = byName.get(channel);
  const text = withName ? channelName(channel) : info?.badge || String(channel || "?").slice(0, 4).toUpperCase();
  const badge = h(
    "span",
    { class: "ch-badge", title: channelName(channel), "data-channel": channel, "data-testid": "channel-badge" },
    text,
  );
  if (info) badge.style.setProperty("--ch-colour", info.colour);
  return badge;
}
