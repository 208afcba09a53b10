// The unified history of a customer across channels: messages, calls, voicemails, notes,
// CSAT, plus conversation events seen live. Items are keyed (m:<message id>, e:<seq>) so a
// message that arrives both from history and from an event is shown once.
import { agentName, app, command } from "/static/app.js";
import { channelBadge, channelName } from "/static/channels.js";
import { h } from "/static/dom.js";
import { clock, dayLabel, has, t } from "/static/i18n.js";
import { callEntry } from "/static/phone.js";

const STATUS_ICON = {
  pending: "◷",
  queued: "◷",
  sending: "◷",
  sent: "✓",
  delivered: "✓✓",
  read: "✓✓",
  undelivered: "⚠",
  failed: "⚠",
};

export class Timeline {
  constructor(list, scroller) {
    this.list = list;
    this.scroller = scroller;
    this.items = new Map(); // key -> item
    this.nodes = new Map(); // key -> {version, node}
  }

  reset() {
    this.items.clear();
    this.nodes.clear();
    this.list.replaceChildren();
  }

  has(key) {
    return this.items.has(key);
  }

  /** Forget built nodes (after a language change every line is rebuilt). */
  invalidate() {
    this.nodes.clear();
  }

  /** Add or update a message (MessageOut shape, possibly partial from an event). */
  upsertMessage(msg, { seq = null } = {}) {
    const key = `m:${msg.id}`;
    const prev = this.items.get(key);
    const merged = prev ? { ...prev.msg, ...dropUndefined(msg) } : msg;
    this.items.set(key, {
      key,
      type: "message",
      msg: merged,
      seq: seq ?? prev?.seq ?? null,
      time: Date.parse(merged.created_at) || Date.now(),
      order: merged.id,
      version: (prev?.version || 0) + 1,
    });
  }

  /**
   * Apply an attachment's new state (a `message.attachment_updated` event, a retry's answer)
   * to the message showing it; false when it is not shown.
   */
  patchAttachment(messageId, change) {
    const item = this.items.get(`m:${messageId}`);
    const atts = item?.msg.attachments || [];
    const i = atts.findIndex((a) => a.id === change.id);
    if (i < 0) return false;
    const next = [...atts];
    next[i] = { ...atts[i], ...dropUndefined(change) };
    item.msg = { ...item.msg, attachments: next };
    item.version += 1;
    return true;
  }

  /** Patch a message already shown (status, edit); false when it is not shown. */
  patchMessage(id, patch) {
    const item = this.items.get(`m:${id}`);
    if (!item) return false;
    item.msg = { ...item.msg, ...dropUndefined(patch) };
    item.version += 1;
    return true;
  }

  message(id) {
    const item = this.items.get(`m:${id}`);
    return item ? item.msg : null;
  }

  /** A conversation event line (transfer, wrap-up, close...). */
  addEvent(ev, text) {
    const key = `e:${ev.seq}`;
    if (this.items.has(key)) return;
    this.items.set(key, {
      key,
      type: "event",
      ev,
      text,
      seq: ev.seq,
      time: Date.parse(ev.at) || Date.now(),
      order: Number.MAX_SAFE_INTEGER,
      version: 1,
    });
  }

  /** Bring the DOM in line with the items, reusing unchanged nodes (audio keeps playing). */
  render({ stick = null } = {}) {
    this._followAttachments();
    const nearBottom =
      stick ?? this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < 80;
    const sorted = [...this.items.values()].sort((a, b) => a.time - b.time || a.order - b.order);
    const wanted = [];
    let lastDay = null;
    let lastConv = null;
    const currentConv = app.current ? app.current.id : null;
    for (const item of sorted) {
      const day = new Date(item.time).toDateString();
      if (day !== lastDay) {
        wanted.push(this._cached(`d:${day}`, 1, () => daySeparator(item.time)));
        lastDay = day;
      }
      if (item.type === "message" && item.msg.conversation_id !== lastConv) {
        lastConv = item.msg.conversation_id;
        const convKey = `c:${lastConv}:${item.key}`;
        wanted.push(this._cached(convKey, 1, () => convSeparator(item.msg, lastConv === currentConv)));
      }
      wanted.push(this._cached(item.key, item.version, () => renderItem(item, currentConv, this)));
    }
    const live = new Set(wanted);
    for (const [key, entry] of this.nodes) if (!live.has(entry.node)) this.nodes.delete(key);
    let cursor = this.list.firstChild;
    for (const node of wanted) {
      if (node === cursor) cursor = cursor.nextSibling;
      else this.list.insertBefore(node, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    if (nearBottom) this.scrollToBottom();
  }

  // Media fetched (or given up) after the message arrived: the timeline follows those events
  // itself, from the first render on (the protocol client exists by then).
  _followAttachments() {
    if (this._following || !app.client) return;
    this._following = true;
    app.client.addEventListener("event", (e) => {
      const ev = e.detail;
      if (ev.type !== "message.attachment_updated") return;
      const p = ev.payload || {};
      const change = { id: p.attachment_id, state: p.state, url: p.url ?? null, size: p.size, error: p.error };
      if (this.patchAttachment(p.message_id, change)) this.render();
    });
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  _cached(key, version, build) {
    const entry = this.nodes.get(key);
    if (entry && entry.version === version) return entry.node;
    const node = build();
    this.nodes.set(key, { version, node });
    return node;
  }
}

function dropUndefined(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

function daySeparator(time) {
  return h("li", { class: "tl-day", "aria-hidden": "true" }, h("span", {}, dayLabel(new Date(time))));
}

function convSeparator(msg, isCurrent) {
  return h(
    "li",
    { class: `tl-conv-sep ${isCurrent ? "current" : ""}`, "data-testid": "conversation-separator", "data-conversation-id": msg.conversation_id },
    channelBadge(msg.channel),
    h("span", {}, t("conv.separator", { id: msg.conversation_id, channel: channelName(msg.channel) })),
  );
}

function authorOf(msg) {
  if (msg.direction === "in") {
    const c = app.current && app.current.customer;
    return (c && c.display_name) || t("tl.customer");
  }
  if (msg.author_id === null || msg.author_id === undefined) {
    if (msg.kind === "bot") return t("tl.bot");
    return msg.kind === "auto_reply" ? t("tl.auto_reply") : t("tl.system");
  }
  return agentName(msg.author_id);
}

// A voicemail: the caller's recording (played here) and its transcription as the text.
function isVoicemail(msg) {
  return msg.direction === "in" && Number.isFinite(Number(msg.metadata?.call?.recording_duration_s));
}

function kindLabel(msg) {
  if (msg.direction === "note") return t(msg.kind === "transfer_note" ? "tl.transfer_note" : "tl.note");
  if (isVoicemail(msg)) return t("tl.voicemail");
  if (msg.kind && msg.kind !== "message" && has(`tl.${msg.kind}`)) return t(`tl.${msg.kind}`);
  return null;
}

function formatBytes(n) {
  if (!Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

// What an attachment is, for the lines that stand in for it until (or instead of) its bytes.
function attachmentKind(type) {
  if (type.startsWith("image/")) return "photo";
  if (type.startsWith("video/")) return "video";
  if (type.startsWith("audio/")) return "audio";
  return "file";
}

function retryAttachment(timeline, msg, att, button) {
  button.disabled = true;
  command("retry_attachment", { attachment_id: att.id })
    .then((result) => {
      if (result.attachment && timeline.patchAttachment(msg.id, result.attachment)) timeline.render();
    })
    .catch(() => {
      button.disabled = false; // the toast said why
    });
}

function attachmentNode(att, msg, timeline) {
  const name = att.filename || `${t("tl.attachment")} ${att.id}`;
  const type = att.content_type || "";
  // Only our own attachment URLs are followed: a link never points at a provider.
  const url = att.url && att.url.startsWith("/api/v1/attachments/") ? att.url : null;
  const state = att.state || (url ? "fetched" : "failed");
  const kind = t(`tl.att.kind.${attachmentKind(type)}`);
  if (state === "pending") {
    return h(
      "div",
      { class: "att att-pending", "data-testid": "attachment", "data-state": "pending", "data-attachment-id": att.id, title: name },
      h("span", { class: "att-spinner", "aria-hidden": "true" }),
      h("span", {}, t("tl.att.pending", { kind })),
    );
  }
  if (state !== "fetched" || !url) {
    const button = h("button", { type: "button", class: "att-retry", "data-testid": "attachment-retry" }, t("tl.att.retry"));
    button.addEventListener("click", () => retryAttachment(timeline, msg, att, button));
    return h(
      "div",
      {
        class: "att att-failed",
        "data-testid": "attachment",
        "data-state": "failed",
        "data-attachment-id": att.id,
        title: att.error ? `${name}: ${att.error}` : name,
      },
      h("span", {}, t("tl.att.failed", { kind })),
      button,
    );
  }
  const common = { "data-testid": "attachment", "data-state": "fetched", "data-attachment-id": att.id };
  if (type.startsWith("image/")) {
    return h(
      "a",
      { ...common, class: "att att-image", href: url, target: "_blank", rel: "noopener", title: name },
      h("img", { src: url, alt: name, loading: "lazy" }),
    );
  }
  if (type.startsWith("audio/")) {
    return h(
      "div",
      { ...common, class: "att att-audio" },
      h("audio", { controls: true, preload: "metadata", src: url, "data-testid": "audio-player" }),
      h("a", { href: url, target: "_blank", rel: "noopener", class: "small" }, name),
    );
  }
  return h(
    "a",
    { ...common, class: "att att-file", href: url, target: "_blank", rel: "noopener" },
    h("span", { class: "att-icon", "aria-hidden": "true" }, "⎘"),
    h("span", {}, name),
    h("span", { class: "muted small" }, formatBytes(att.size)),
  );
}

function statusNode(msg) {
  if (msg.direction !== "out" || !msg.status) return null;
  const failed = msg.status === "failed" || msg.status === "undelivered";
  const label = has(`tl.status.${msg.status}`) ? t(`tl.status.${msg.status}`) : msg.status;
  const detail = [msg.error_code, msg.error_message].filter(Boolean).join(" ");
  return h(
    "span",
    {
      class: `tl-status st-${msg.status}`,
      "data-testid": "delivery-status",
      "data-status": msg.status,
      title: failed && detail ? t("tl.failed_detail", { detail }) : label,
    },
    h("span", { class: "tick", "aria-hidden": "true" }, STATUS_ICON[msg.status] || "·"),
    h("span", { class: "status-text" }, failed && detail ? t("tl.failed_detail", { detail }) : label),
  );
}

function csatNode(msg) {
  const score = Number(msg.metadata?.score ?? msg.score);
  if (!Number.isFinite(score) || score <= 0) return null;
  const n = Math.max(0, Math.min(5, Math.round(score)));
  return h(
    "div",
    { class: "tl-csat", "data-testid": "csat", title: t("tl.csat", { score }) },
    h("span", { class: "stars", "aria-hidden": "true" }, "★".repeat(n) + "☆".repeat(5 - n)),
    h("span", { class: "small" }, t("tl.csat", { score })),
  );
}

function durationNode(msg) {
  const secs = Number(msg.metadata?.duration ?? msg.metadata?.duration_s ?? msg.metadata?.call?.recording_duration_s);
  if (!Number.isFinite(secs) || secs <= 0) return null;
  const m = Math.floor(secs / 60);
  return h("span", { class: "muted small" }, `${m}:${String(Math.round(secs % 60)).padStart(2, "0")}`);
}

function renderItem(item, currentConv, timeline) {
  if (item.type === "event") {
    return h(
      "li",
      { class: "tl-item tl-event", "data-testid": "timeline-item", "data-seq": item.seq, "data-event": item.ev.type },
      h("span", { class: "tl-event-text" }, item.text),
      h("time", { class: "muted small", datetime: item.ev.at }, clock(item.ev.at)),
    );
  }
  const msg = item.msg;
  const direction = msg.direction || "in";
  const kind = kindLabel(msg);
  const other = msg.conversation_id !== currentConv;
  const atts = msg.attachments || [];
  if (msg.kind === "call") {
    // A phone call is not something said: one line with its outcome and figures.
    return h(
      "li",
      {
        class: `tl-item dir-system kind-call ${other ? "other-conv" : ""}`,
        "data-testid": "timeline-item",
        "data-message-id": msg.id,
        "data-seq": item.seq ?? "",
        "data-channel": msg.channel,
        "data-direction": direction,
        "data-conversation-id": msg.conversation_id,
      },
      callEntry(msg),
    );
  }
  return h(
    "li",
    {
      class: `tl-item dir-${direction} kind-${msg.kind || "message"} ${isVoicemail(msg) ? "kind-voicemail" : ""} ${other ? "other-conv" : ""}`,
      "data-testid": "timeline-item",
      "data-message-id": msg.id,
      "data-seq": item.seq ?? "",
      "data-channel": msg.channel,
      "data-direction": direction,
      "data-conversation-id": msg.conversation_id,
    },
    h(
      "div",
      { class: "tl-bubble" },
      h(
        "div",
        { class: "tl-head" },
        channelBadge(msg.channel),
        h("span", { class: "tl-author" }, authorOf(msg)),
        kind ? h("span", { class: "tl-kind" }, kind) : null,
        durationNode(msg),
        h("time", { class: "tl-time", datetime: msg.created_at || "" }, clock(msg.created_at || Date.now())),
        msg.edited_at ? h("span", { class: "tl-edited muted small" }, t("tl.edited")) : null,
      ),
      msg.text ? h("div", { class: "tl-text", "data-testid": "message-text" }, msg.text) : null,
      atts.length ? h("div", { class: "tl-attachments" }, atts.map((att) => attachmentNode(att, msg, timeline))) : null,
      msg.kind === "csat" ? csatNode(msg) : null,
      statusNode(msg),
    ),
  );
}
