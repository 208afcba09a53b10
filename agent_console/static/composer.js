// The composer under the timeline: reply or internal note, channel picker, canned
// responses (a picker and "/" search), typing indicator to the customer, Ctrl+Enter to send.
import { app, command, notify } from "/static/app.js";
import { channelInfo, channelName, replyChannels, sessionWindow, showsTyping } from "/static/channels.js";
import { byTestId, fill, h } from "/static/dom.js";
import { t } from "/static/i18n.js";
import { patchConversation } from "/static/lists.js";
import { readonlyReason, renderAll, renderReadonly, showStored } from "/static/conversation.js";

let lastTypingSent = 0;

export function initComposer() {
  const form = byTestId("composer");
  const input = byTestId("reply-input");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    send();
  });
  for (const btn of form.querySelectorAll(".mode-btn")) {
    btn.addEventListener("click", () => setMode(btn.dataset.mode, { focus: true }));
  }
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      send();
    }
  });
  input.addEventListener("input", () => {
    byTestId("composer-error").textContent = "";
    sendTyping();
  });
  byTestId("canned-select").addEventListener("change", async (ev) => {
    const id = ev.target.value;
    ev.target.value = "";
    const item = app.canned.find((c) => String(c.id) === id);
    if (item) insertText(await expandedFor(item));
  });
  initCannedMenu(input);
}

// ------------------------------------------------------------------ canned responses
// Typing "/" at the start of the box opens a list of canned responses filtered by what
// follows (shortcut, title or text, searched by the hub: the agent's team's and all-team
// ones, the customer's language first); arrows move, Enter or Tab inserts the text with
// its placeholders filled by the hub for this conversation. Rendered as text only.
let cannedMatches = [];
let cannedActive = 0;
let cannedAsked = 0;
let cannedTimer = null;

function cannedMenu() {
  let menu = document.querySelector('[data-testid="canned-menu"]');
  if (!menu) {
    menu = h("ul", { class: "canned-menu", "data-testid": "canned-menu", role: "listbox", hidden: true });
    byTestId("reply-input").closest(".composer-input-wrap").appendChild(menu);
  }
  return menu;
}

/** The "/query" being typed: from the start of the box to the caret, with no whitespace. */
function slashQuery(input) {
  const upto = input.value.slice(0, input.selectionStart ?? input.value.length);
  const m = /^\/(\S*)$/.exec(upto);
  return m ? m[1] : null;
}

function hideCanned() {
  cannedAsked += 1; // answers still on their way are stale
  clearTimeout(cannedTimer);
  cannedMatches = [];
  cannedMenu().hidden = true;
}

function renderCannedMenu(query) {
  const menu = cannedMenu();
  const items = cannedMatches.map((c, i) =>
    h(
      "li",
      {
        class: `canned-option ${i === cannedActive ? "active" : ""}`,
        role: "option",
        "aria-selected": i === cannedActive ? "true" : "false",
        "data-testid": "canned-option",
        "data-shortcut": c.shortcut,
        onmousedown: (ev) => {
          ev.preventDefault(); // keep focus in the textarea
          pickCanned(i);
        },
      },
      h("span", { class: "canned-shortcut" }, `/${c.shortcut}`),
      c.title ? h("strong", {}, ` ${c.title}`) : null,
      c.language ? h("span", { class: "pill canned-lang" }, c.language) : null,
      h("div", { class: "canned-preview muted small" }, c.expanded ?? c.text),
    ),
  );
  fill(
    menu,
    h("li", { class: "canned-hint muted small" }, t(items.length ? "composer.canned_hint" : "composer.canned_none", { q: query })),
    items,
  );
  menu.hidden = false;
  if (items.length) items[cannedActive].scrollIntoView({ block: "nearest" });
}

async function searchCanned(query) {
  const asked = ++cannedAsked;
  const args = { q: query };
  if (app.current) args.conversation_id = app.current.id;
  try {
    const result = await command("canned", args, { quiet: true });
    if (asked !== cannedAsked) return;
    cannedMatches = (result.items || []).slice(0, 8);
    cannedActive = 0;
    renderCannedMenu(query);
  } catch {
    if (asked === cannedAsked) hideCanned();
  }
}

function pickCanned(i) {
  const item = cannedMatches[i];
  if (!item) return;
  const input = byTestId("reply-input");
  const end = input.selectionStart ?? input.value.length;
  hideCanned();
  input.setSelectionRange(0, end);
  insertText(item.expanded ?? item.text, { replaceFrom: 0 });
}

/** The text of a canned response filled for the open conversation (by the hub). */
async function expandedFor(item) {
  if (!app.current) return item.text;
  try {
    const result = await command("canned", { q: item.shortcut, conversation_id: app.current.id }, { quiet: true });
    const found = (result.items || []).find((c) => c.id === item.id);
    return found ? found.expanded : item.text;
  } catch {
    return item.text;
  }
}

function initCannedMenu(input) {
  input.addEventListener("input", () => {
    const query = slashQuery(input);
    if (query === null) return hideCanned();
    clearTimeout(cannedTimer);
    cannedTimer = setTimeout(() => searchCanned(query), 120);
  });
  input.addEventListener("keydown", (ev) => {
    if (cannedMenu().hidden) return;
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      hideCanned();
      return;
    }
    if (!cannedMatches.length) return;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      const n = cannedMatches.length;
      cannedActive = (cannedActive + (ev.key === "ArrowDown" ? 1 : n - 1)) % n;
      renderCannedMenu(slashQuery(input) ?? "");
    } else if ((ev.key === "Enter" && !ev.ctrlKey && !ev.metaKey) || ev.key === "Tab") {
      ev.preventDefault();
      ev.stopImmediatePropagation();
      pickCanned(cannedActive);
    }
  });
  input.addEventListener("blur", () => setTimeout(hideCanned, 150));
  document.addEventListener("hub:mode", hideCanned);
}

export function setMode(mode, { focus = false, silent = false } = {}) {
  const form = byTestId("composer");
  if (mode === "reply" && readonlyReason() && !silent) mode = "note";
  form.dataset.mode = mode;
  form.classList.toggle("note-mode", mode === "note");
  for (const btn of form.querySelectorAll(".mode-btn")) {
    btn.classList.toggle("active", btn.dataset.mode === mode);
    btn.setAttribute("aria-selected", btn.dataset.mode === mode ? "true" : "false");
  }
  const input = byTestId("reply-input");
  input.dataset.i18nPlaceholder = mode === "note" ? "composer.note_placeholder" : "composer.placeholder";
  input.placeholder = t(input.dataset.i18nPlaceholder);
  const sendBtn = byTestId("reply-send");
  sendBtn.dataset.i18n = mode === "note" ? "composer.add_note" : "composer.send";
  sendBtn.textContent = t(sendBtn.dataset.i18n);
  byTestId("channel-select").closest(".composer-via").hidden = mode === "note";
  if (!silent && app.current) renderReadonly();
  if (focus) input.focus();
  notify("mode", { mode });
}

export function toggleMode() {
  setMode(byTestId("composer").dataset.mode === "note" ? "reply" : "note", { focus: true });
}

/** Insert text at the cursor of the reply box. */
export function insertText(text, { replaceFrom = null } = {}) {
  const input = byTestId("reply-input");
  const start = replaceFrom ?? input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? input.value.length;
  input.value = input.value.slice(0, start) + text + input.value.slice(end);
  const pos = start + text.length;
  input.focus();
  input.setSelectionRange(pos, pos);
  input.dispatchEvent(new Event("input"));
}

export function renderCanned() {
  const select = byTestId("canned-select");
  fill(
    select,
    h("option", { value: "" }, t("composer.canned_pick")),
    app.canned.map((c) => h("option", { value: String(c.id), title: c.text }, c.title || `/${c.shortcut}`)),
  );
  select.hidden = app.canned.length === 0;
}

/** Whether the conversation's own channel carries written replies (a phone call does not). */
function ownChannelReplies() {
  const info = channelInfo(app.current.conversation.channel);
  return !info || info.replies !== false;
}

/**
 * The reply targets: the conversation's own channel first, then the customer's other
 * endpoints. A channel that takes no written reply (a call, a voicemail) is never offered;
 * its conversation is answered on the customer's other channels, the same number first.
 */
function replyTargets() {
  const { conversation: conv, customer } = app.current;
  const own = conv.endpoint || {};
  const targets = ownChannelReplies()
    ? [
        {
          value: "",
          label: t("composer.via_default", { channel: channelName(conv.channel), address: own.address || "" }),
          channel: conv.channel,
          disabled: false,
        },
      ]
    : [];
  const endpoints = [...(customer.endpoints || [])].sort(
    (a, b) => Number(b.kind === own.kind && b.address === own.address) - Number(a.kind === own.kind && a.address === own.address),
  );
  for (const ep of endpoints) {
    for (const channel of replyChannels(ep.kind)) {
      if (channel === conv.channel && ep.kind === own.kind && ep.address === own.address) continue;
      const optedOut = (ep.opted_out || []).includes(channel) || (ep.opted_out || []).includes("all");
      // Free text on WhatsApp needs the customer's own recent WhatsApp message in this thread.
      const windowClosed = sessionWindow(channel) !== null && channel !== conv.channel;
      const flags = [
        optedOut ? t("composer.opted_out") : null,
        ep.undeliverable ? t("composer.undeliverable") : null,
        windowClosed ? t("composer.window_closed") : null,
      ].filter(Boolean);
      targets.push({
        value: JSON.stringify({ channel, endpoint: `${ep.kind}:${ep.address}` }),
        label: t("composer.via_other", { channel: channelName(channel), address: ep.address }) + (flags.length ? ` (${flags.join(", ")})` : ""),
        channel,
        disabled: optedOut || Boolean(ep.undeliverable) || windowClosed,
      });
    }
  }
  return targets;
}

export function renderChannelPicker() {
  const select = byTestId("channel-select");
  const previous = select.value;
  const targets = replyTargets();
  if (!targets.length) {
    fill(select, h("option", { value: "", disabled: true, "data-channel": "" }, t("composer.no_written_reply")));
    select.value = "";
    return;
  }
  fill(
    select,
    targets.map((tg) => h("option", { value: tg.value, disabled: tg.disabled, "data-channel": tg.channel }, tg.label)),
  );
  const usable = targets.filter((tg) => !tg.disabled);
  select.value = usable.some((tg) => tg.value === previous) ? previous : (usable[0] || targets[0]).value;
}

function selectedChannel() {
  const select = byTestId("channel-select");
  if (!select.value) return app.current?.conversation.channel;
  try {
    return JSON.parse(select.value).channel;
  } catch {
    return app.current?.conversation.channel;
  }
}

function sendTyping() {
  if (!app.current || byTestId("composer").dataset.mode === "note" || readonlyReason()) return;
  if (!showsTyping(selectedChannel())) return;
  const now = Date.now();
  if (now - lastTypingSent < 4000) return;
  lastTypingSent = now;
  command("typing", { conversation_id: app.current.id }, { quiet: true }).catch(() => {});
}

let sending = false;

export async function send() {
  if (!app.current || sending) return;
  const input = byTestId("reply-input");
  const errorBox = byTestId("composer-error");
  const text = input.value.trim();
  if (!text) {
    errorBox.textContent = t("composer.empty");
    return;
  }
  const note = byTestId("composer").dataset.mode === "note";
  if (!note && readonlyReason()) return;
  const cur = app.current;
  const args = { conversation_id: cur.id, text };
  if (!note) {
    const target = byTestId("channel-select").value;
    if (target) Object.assign(args, JSON.parse(target));
    else if (!ownChannelReplies()) {
      errorBox.textContent = t("composer.no_written_reply");
      return;
    }
  }
  const btn = byTestId("reply-send");
  sending = true;
  btn.disabled = true;
  btn.classList.add("busy");
  try {
    const result = await command(note ? "note" : "reply", args, { quiet: true });
    if (app.current === cur) showStored(result.message);
    if (app.current === cur) {
      input.value = "";
      errorBox.textContent = "";
      lastTypingSent = 0;
    }
    if (!note) patchConversation(cur.id, { unread: 0, awaitingSince: null, preview: text.slice(0, 140) });
    renderAll({ stick: true });
  } catch (err) {
    errorBox.textContent = err.code === "timeout" ? t("error.timeout") : err.detail || String(err);
  } finally {
    sending = false;
    btn.disabled = false;
    btn.classList.remove("busy");
    if (app.current) renderReadonly();
  }
}

export function focusReply() {
  const input = byTestId("reply-input");
  if (!byTestId("conversation").hidden) input.focus();
}

