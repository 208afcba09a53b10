// The hub's embeddable web chat widget: one plain script, no build step, no dependencies.
// A host page embeds it with
//   <script src="https://HUB/chat/widget.js" data-site="demo" async></script>
// and it speaks the visitor protocol v1 (channels/webchat/PROTOCOL.md) over /ws/chat.
// Everything lives in an open Shadow DOM so host styles neither leak in nor out. Data is only
// ever placed with textContent and checked attributes (never innerHTML), and nothing here
// needs 'unsafe-inline' or 'unsafe-eval', so a strict host CSP can keep its script-src.
(() => {
  "use strict";
  if (window.HubChat && window.HubChat.version) return; // embedded twice: keep the first

  const VERSION = 1;
  const MAX_TEXT = 4000;
  // A frame is at most 8 MiB and a file travels inside it as base64 (4 characters per 3
  // bytes): room for the largest upload the hub takes (5 MiB).
  const MAX_FRAME = 8 * 1024 * 1024;
  const FRAME_SLACK = 64 * 1024;
  const PING_MS = 25000;
  // At most one typing hint per 2 s is forwarded; every 3 s keeps the frame budget
  // (60 a minute per visitor) for messages.
  const TYPING_EVERY_MS = 3000;
  const TYPING_IDLE_MS = 4000;
  const AGENT_TYPING_MS = 30000;
  const INLINE_IMAGES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  // ------------------------------------------------------------------ the script tag
  const script =
    document.currentScript ||
    // currentScript is null when another script re-inserts or wraps this one: find the tag.
    document.querySelector('script[data-site][src*="/chat/widget.js"]') ||
    document.querySelector('script[src*="/chat/widget.js"]');
  if (!script || !script.src) return;
  const ds = script.dataset;
  const site = ds.site;
  if (!site) {
    console.warn("HubChat: data-site is missing on the widget's script tag");
    return;
  }
  const hub = new URL(script.src, location.href);
  // The hub may live under a path prefix: everything before /chat/widget.js is the base.
  const basePath = hub.pathname.replace(/\/chat\/widget\.js$/, "");
  const hubBase = hub.origin + basePath;
  const wsUrl =
    hubBase.replace(/^http/, "ws") + "/ws/chat?site=" + encodeURIComponent(site);
  const filesPrefix = basePath + "/chat/files/";
  const storeKey = "hub-chat:" + site;

  // ------------------------------------------------------------------ strings
  const STRINGS = {
    en: {
      title: "Chat with us",
      greeting: "Hi! How can we help you today?",
      open: "Open chat",
      close: "Close chat",
      online: "Online",
      offline: "Offline",
      connecting: "Connecting…",
      reconnecting: "Connection lost, reconnecting…",
      placeholder: "Type a message…",
      send: "Send",
      attach: "Attach a file",
      typing: "{name} is typing…",
      someone: "An agent",
      waiting: "Waiting for an agent…",
      queue: "You are number {pos} in the queue",
      wait_1: ", about 1 minute",
      wait_n: ", about {n} minutes",
      joined: "{name} joined",
      closed: "Conversation closed",
      bot_status: "{name} answers first.",
      handoff: "Talk to a person",
      rated: "Thank you for your rating!",
      prechat_intro: "Before we start, please tell us a little about yourself.",
      name: "Name",
      email: "Email",
      topic: "Topic",
      choose: "Choose…",
      start: "Start chat",
      offline_intro: "We're away right now. Leave a message and we'll reply by email.",
      message: "Message",
      offline_send: "Send message",
      offline_done: "Thank you! We'll get back to you by email.",
      sending: "Sending…",
      not_sent: "Not sent",
      read: "Read",
      file_type: "This type of file can't be sent.",
      file_size: "The file is too large (at most {max}).",
      too_long: "The message is too long (at most {max} characters).",
      required: "Please fill in: {field}.",
      bad_email: "Please enter a valid email address.",
      sign_in: "Please sign in to chat with us.",
      unread: "{n} unread",
      err_bad_frame: "Something went wrong. Please try again.",
      err_too_large: "That is too large to send.",
      err_rate_limited: "You're sending messages too quickly. Please wait a moment.",
      err_identity_refused: "We could not verify who you are.",
      err_not_allowed: "Sorry, that is not allowed here.",
      err_unavailable: "Chat is unavailable right now. Please try again later.",
    },
    zh: {
      title: "在线客服",
      greeting: "您好！有什么可以帮您？",
      open: "打开聊天",
      close: "关闭聊天",
      online: "在线",
      offline: "离线",
      connecting: "正在连接…",
      reconnecting: "连接已断开，正在重新连接…",
      placeholder: "输入消息…",
      send: "发送",
      attach: "添加附件",
      typing: "{name}正在输入…",
      someone: "客服",
      waiting: "正在等待客服…",
      queue: "您在队列中排第 {pos} 位",
      wait_1: "，大约 1 分钟",
      wait_n: "，大约 {n} 分钟",
      joined: "{name}已加入",
      closed: "会话已结束",
      bot_status: "{name}先为您解答。",
      handoff: "转人工客服",
      rated: "感谢您的评价！",
      prechat_intro: "开始之前，请简单介绍一下您自己。",
      name: "姓名",
      email: "电子邮箱",
      topic: "咨询类型",
      choose: "请选择…",
      start: "开始聊天",
      offline_intro: "我们现在不在线。请留言，我们会通过电子邮件回复您。",
      message: "留言",
      offline_send: "发送留言",
      offline_done: "谢谢！我们会通过电子邮件回复您。",
      sending: "发送中…",
      not_sent: "未发送",
      read: "已读",
      file_type: "不支持发送此类文件。",
      file_size: "文件太大（最大 {max}）。",
      too_long: "消息太长（最多 {max} 个字符）。",
      required: "请填写：{field}。",
      bad_email: "请输入有效的电子邮箱地址。",
      sign_in: "请先登录再开始聊天。",
      unread: "{n} 条未读",
      err_bad_frame: "出错了，请重试。",
      err_too_large: "内容太大，无法发送。",
      err_rate_limited: "您发送得太快了，请稍等片刻。",
      err_identity_refused: "无法验证您的身份。",
      err_not_allowed: "抱歉，此操作不被允许。",
      err_unavailable: "聊天暂时不可用，请稍后再试。",
    },
  };
  const lang =
    ds.lang === "zh" || ds.lang === "en"
      ? ds.lang
      : /^zh/i.test(navigator.language || "")
        ? "zh"
        : "en";
  const t = (key, vars) =>
    (STRINGS[lang][key] || STRINGS.en[key] || key).replace(/\{(\w+)\}/g, (_, k) =>
      vars && vars[k] !== undefined ? String(vars[k]) : "",
    );

  // ------------------------------------------------------------------ storage
  // Storage may be blocked (third-party iframes, privacy modes): the widget then works for
  // the page's lifetime only.
  const store = {
    get(key) {
      try {
        return localStorage.getItem(key);
      } catch {
        return null;
      }
    },
    set(key, value) {
      try {
        localStorage.setItem(key, value);
      } catch {
        /* not kept across reloads */
      }
    },
  };

  // ------------------------------------------------------------------ DOM helpers
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = String(value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "value" || key === "disabled" || key === "hidden") el[key] = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function icon(path) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const p = document.createElementNS(SVG_NS, "path");
    p.setAttribute("d", path);
    svg.appendChild(p);
    return svg;
  }
  const ICON_CHAT =
    "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z";
  const ICON_CLOSE =
    "M5.6 4.2 12 10.6l6.4-6.4 1.4 1.4-6.4 6.4 6.4 6.4-1.4 1.4-6.4-6.4-6.4 6.4-1.4-1.4 6.4-6.4-6.4-6.4z";
  const ICON_SEND = "M2 21 23 12 2 3v7l15 2-15 2z";
  const ICON_ATTACH = "M11 5h2v6h6v2h-6v6h-2v-6H5v-2h6z";
  const ICON_FILE = "M6 2h8l5 5v15H6V2zm7 1.5V8h4.5L13 3.5z";

  function fileLabel(name) {
    return [icon(ICON_FILE), document.createTextNode(name)];
  }

  /** Text with http(s) links as <a> elements; everything else stays plain text. */
  function linkified(text) {
    const frag = document.createDocumentFragment();
    const re = /\bhttps?:\/\/[^\s<>"']+/gi;
    let last = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const url = m[0].replace(/[.,;:!?)\]}]+$/, "");
      let href = null;
      try {
        const parsed = new URL(url);
        if (parsed.protocol === "http:" || parsed.protocol === "https:") href = parsed.href;
      } catch {
        href = null;
      }
      if (!href) continue;
      frag.appendChild(document.createTextNode(text.slice(last, m.index)));
      frag.appendChild(
        h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, url),
      );
      last = m.index + url.length;
      re.lastIndex = last;
    }
    frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  /** A file link of a message if it is the hub's own (its /chat/files/), else null. */
  function hubFileUrl(raw) {
    try {
      const url = new URL(String(raw), hubBase + "/");
      if (url.origin === hub.origin && url.pathname.startsWith(filesPrefix)) return url.href;
    } catch {
      /* not a URL */
    }
    return null;
  }

  function formatBytes(n) {
    if (n >= 1048576) return (Math.round((n / 1048576) * 10) / 10).toString() + " MB";
    if (n >= 1024) return Math.round(n / 1024) + " KB";
    return n + " B";
  }

  function newClientMsgId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** A colour the CSS engine accepts, else null (the value ends up in a custom property). */
  function cssColour(value) {
    return value && window.CSS && CSS.supports("color", value) ? value : null;
  }

  /** Dark text on light accent colours, white on dark ones (hex colours; others get white). */
  function textOn(colour) {
    const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(colour);
    if (!m) return "#fff";
    let hex = m[1];
    if (hex.length === 3) hex = hex.replace(/./g, "$&$&");
    const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.6 ? "#1f2328" : "#fff";
  }

  // ------------------------------------------------------------------ styles
  const CSS_TEXT = `
:host{all:initial}
*{box-sizing:border-box}
[hidden]{display:none!important}
.root{--a:#1f6feb;--at:#fff;position:fixed;bottom:20px;right:20px;z-index:2147483000;
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","PingFang SC",
"Microsoft YaHei",sans-serif;
color:#1f2328;text-align:left}
.root.left{right:auto;left:20px}
button{font:inherit;cursor:pointer}
.launcher{width:58px;height:58px;border-radius:50%;border:0;background:var(--a);color:var(--at);
box-shadow:0 4px 16px rgba(0,0,0,.28);display:flex;align-items:center;justify-content:center;
position:relative;transition:transform .15s}
.launcher:hover{transform:scale(1.06)}
.launcher svg{width:28px;height:28px;fill:currentColor}
.badge{position:absolute;top:-3px;right:-3px;min-width:20px;height:20px;border-radius:10px;
background:#cf222e;color:#fff;font-size:12px;font-weight:600;line-height:20px;padding:0 6px}
.win{position:absolute;bottom:74px;right:0;width:370px;height:min(600px,calc(100vh - 110px));
background:#fff;border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.28);display:flex;
flex-direction:column;overflow:hidden}
.left .win{right:auto;left:0}
.head{background:var(--a);color:var(--at);padding:14px 12px 14px 16px;display:flex;
align-items:center;gap:9px}
.dot{flex:none;width:10px;height:10px;border-radius:50%;background:#8c959f;
box-shadow:0 0 0 2px rgba(255,255,255,.7)}
.dot.on{background:#2da44e}
.title{margin:0;flex:1;font-size:16px;font-weight:600;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}
.x{background:none;border:0;color:inherit;padding:4px;border-radius:6px;display:flex}
.x svg{width:20px;height:20px;fill:currentColor}
.x:hover{background:rgba(255,255,255,.18)}
.status{background:#f6f8fa;color:#57606a;font-size:12.5px;padding:6px 16px;
border-bottom:1px solid #eaeef2;display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.handoff{margin-left:auto;border:1px solid var(--a,#0b7285);color:var(--a,#0b7285);
background:#fff;border-radius:14px;padding:3px 10px;font:inherit;cursor:pointer}
.handoff:disabled{opacity:.5;cursor:default}
.body{flex:1;overflow-y:auto;padding:14px 12px;display:flex;flex-direction:column;gap:6px}
.list{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;gap:6px}
.msg{display:flex;flex-direction:column;max-width:82%}
.msg.in{align-self:flex-end;align-items:flex-end}
.msg.out,.greet{align-self:flex-start;align-items:flex-start}
.who{font-size:11.5px;color:#57606a;margin:4px 6px 2px}
.bub{padding:8px 12px;border-radius:16px;white-space:pre-wrap;overflow-wrap:anywhere;
max-width:100%}
.rating{display:flex;gap:2px;margin-top:6px}.rating .star{border:0;background:none;font-size:22px;line-height:1;color:#c9ced6;cursor:pointer;padding:0 2px}
.rating .star:hover,.rating .star:focus-visible,.rating .star:hover~.star{color:#f59f00}.rating .thanks{font-size:13px;color:#5c6370}
.in .bub{background:var(--a);color:var(--at);border-bottom-right-radius:5px}
.out .bub,.greet .bub{background:#eef1f4;color:#1f2328;border-bottom-left-radius:5px}
.bub a{color:inherit;text-decoration:underline}
.bub img{display:block;max-width:100%;max-height:220px;border-radius:10px;margin:4px 0}
.bub.media{padding:4px}
.bub.media img{margin:0}
.bub.media .file{margin:4px 8px}
.file{display:flex;align-items:center;gap:4px;margin-top:4px}
.file svg{flex:none;width:16px;height:16px;fill:currentColor}
.meta{font-size:11px;color:#8c959f;margin:2px 6px 0}
.pending .bub{opacity:.7}
.failed .meta{color:#cf222e}
.typing{font-size:12.5px;color:#57606a;font-style:italic;padding:2px 16px 4px}
.err{background:#ffebe9;color:#a40e26;font-size:12.5px;padding:7px 16px}
.note{color:#57606a;font-size:13px;margin:0 0 4px}
.comp{display:flex;align-items:flex-end;gap:6px;padding:8px 10px;border-top:1px solid #eaeef2}
textarea,input,select{font:inherit;color:#1f2328;background:#fff;border:1px solid #d0d7de;
border-radius:10px;padding:8px 10px;outline:none;width:100%}
textarea{flex:1;resize:none;min-height:40px;max-height:120px;line-height:1.4}
textarea:focus,input:focus,select:focus{border-color:var(--a);box-shadow:0 0 0 1px var(--a)}
.ib{flex:none;width:40px;height:40px;border:0;border-radius:50%;background:none;color:#57606a;
display:flex;align-items:center;justify-content:center}
.ib:hover{background:#eef1f4}
.ib svg{width:22px;height:22px;fill:currentColor}
.ib.send{background:var(--a);color:var(--at)}
.ib.send svg{width:19px;height:19px}
.ib:disabled{opacity:.45;cursor:default}
.form{display:flex;flex-direction:column;gap:12px;padding:4px 4px 8px}
label{display:flex;flex-direction:column;gap:4px;font-size:13px;color:#3d444d;font-weight:500}
.req{color:#cf222e}
.btn{background:var(--a);color:var(--at);border:0;border-radius:10px;padding:10px;
font-weight:600;margin-top:4px}
.btn:disabled{opacity:.6}
.done{background:#dafbe1;color:#116329;border-radius:10px;padding:12px}
.hidden-input{position:absolute;width:1px;height:1px;opacity:0;pointer-events:none}
:focus-visible{outline:2px solid var(--a);outline-offset:2px}
@media (max-width:480px){
.root.open .win{position:fixed;inset:0;width:auto;height:auto;border-radius:0}
.root.open .launcher{display:none}}
@media (prefers-reduced-motion:reduce){.launcher{transition:none}}
`;

  function adoptStyles(shadow) {
    // A constructed stylesheet needs no 'unsafe-inline' in the host's style-src; a <style>
    // element is the fallback for browsers without constructable stylesheets.
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS_TEXT);
      shadow.adoptedStyleSheets = [sheet];
      return;
    } catch {
      /* fall back below */
    }
    shadow.appendChild(h("style", { text: CSS_TEXT }));
  }

  // ------------------------------------------------------------------ state
  const state = {
    token: store.get(storeKey),
    identity: ds.identifier && ds.hash
      ? { identifier: ds.identifier, hash: ds.hash, name: ds.name || "", email: ds.email || "" }
      : null,
    visitor: null, // welcome.visitor
    config: null, // welcome.config
    status: null, // the latest status
    live: false, // socket open and welcomed
    everLive: false,
    opened: false,
    lastId: 0,
    readId: 0, // the agent has read the visitor's messages up to this id
    seenId: Number(store.get(storeKey + ":seen")) || 0,
    identified: false, // the hub accepted state.identity on this connection
    // The pre-chat answers, kept so the hub hears them again after it forgot them.
    profile: parseJson(store.get(storeKey + ":profile")),
    // A new visitor connects only when they open the chat; until then the widget looks as
    // the site did at this browser's last welcome.
    look: parseJson(store.get(storeKey + ":look")) || {},
    prechatSent: null, // the prechat frame until its ack
    offlineSent: null, // the offline frame until its ack
    offlineDone: false,
  };

  function parseJson(raw) {
    try {
      const value = JSON.parse(raw || "null");
      return value && typeof value === "object" ? value : null;
    } catch {
      return null;
    }
  }
  const byId = new Map(); // message id -> <li>
  const pending = new Map(); // client_msg_id -> {frame, el} until acked

  // ------------------------------------------------------------------ the DOM
  const hostEl = h("div", { "data-hub-chat": site });
  // Host rules for divs must not hide the widget or break its fixed position (CSSOM styles
  // are not inline style attributes: a strict CSP allows them).
  for (const [prop, value] of [
    ["display", "block"],
    ["position", "static"],
    ["transform", "none"],
    ["filter", "none"],
    ["contain", "none"],
    ["visibility", "visible"],
    ["opacity", "1"],
  ]) {
    hostEl.style.setProperty(prop, value, "important");
  }
  const shadow = hostEl.attachShadow({ mode: "open" });
  adoptStyles(shadow);

  const badge = h("span", { class: "badge", "data-testid": "chat-unread", hidden: true });
  const launcherIcon = icon(ICON_CHAT);
  const launcher = h(
    "button",
    {
      class: "launcher",
      type: "button",
      "data-testid": "chat-launcher",
      "aria-label": t("open"),
      "aria-expanded": "false",
      onclick: () => (state.opened ? closeWindow() : openWindow()),
    },
    launcherIcon,
    badge,
  );

  const dot = h("span", { class: "dot", "data-testid": "chat-presence", role: "img" });
  const titleEl = h("h2", { class: "title", "data-testid": "chat-title" });
  const statusText_ = h("span", { "data-testid": "chat-status-text" });
  // While a bot answers, the visitor can ask for a person at any time.
  const handoffBtn = h("button", {
    type: "button",
    class: "handoff",
    "data-testid": "chat-handoff",
    hidden: true,
    onclick: () => {
      handoffBtn.disabled = true;
      sendAnswered("handoff", "", { type: "handoff" });
    },
  });
  const statusEl = h(
    "div",
    { class: "status", "data-testid": "chat-status", role: "status", hidden: true },
    statusText_,
    handoffBtn,
  );
  const greetText = h("div", { class: "bub" });
  const greetEl = h("div", { class: "greet", "data-testid": "chat-greeting" }, greetText);
  const list = h("ol", { class: "list", "data-testid": "chat-messages", "aria-live": "polite" });
  const note = h("p", { class: "note", "data-testid": "chat-note", hidden: true });
  const body = h("div", { class: "body" });
  const typingEl = h("div", { class: "typing", "data-testid": "chat-typing", hidden: true });
  const errorEl = h("div", {
    class: "err",
    "data-testid": "chat-error",
    role: "alert",
    hidden: true,
  });
  const input = h("textarea", {
    rows: "1",
    maxlength: String(MAX_TEXT),
    "data-testid": "chat-input",
    placeholder: t("placeholder"),
    "aria-label": t("placeholder"),
    onkeydown: (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        sendText();
      }
    },
    oninput: () => {
      autoGrow();
      typingInput();
    },
  });
  const fileInput = h("input", {
    type: "file",
    class: "hidden-input",
    tabindex: "-1",
    "aria-hidden": "true",
    "data-testid": "chat-file-input",
    onchange: () => {
      const file = fileInput.files && fileInput.files[0];
      fileInput.value = "";
      if (file) sendFile(file);
    },
  });
  const attachBtn = h(
    "button",
    {
      class: "ib",
      type: "button",
      "data-testid": "chat-attach",
      "aria-label": t("attach"),
      title: t("attach"),
      onclick: () => fileInput.click(),
    },
    icon(ICON_ATTACH),
  );
  const sendBtn = h(
    "button",
    {
      class: "ib send",
      type: "button",
      "data-testid": "chat-send",
      "aria-label": t("send"),
      title: t("send"),
      onclick: () => sendText(),
    },
    icon(ICON_SEND),
  );
  const composer = h("div", { class: "comp" }, attachBtn, input, sendBtn, fileInput);

  const win = h(
    "div",
    { class: "win", "data-testid": "chat-window", role: "dialog", hidden: true },
    h(
      "div",
      { class: "head" },
      dot,
      titleEl,
      h(
        "button",
        {
          class: "x",
          type: "button",
          "data-testid": "chat-close",
          "aria-label": t("close"),
          title: t("close"),
          onclick: () => closeWindow(),
        },
        icon(ICON_CLOSE),
      ),
    ),
    statusEl,
    body,
    typingEl,
    errorEl,
    composer,
  );
  const root = h("div", { class: "root", lang }, win, launcher);
  shadow.appendChild(root);
  win.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") closeWindow();
  });

  // Forms are built once and swapped into the body; their values survive re-renders.
  function field(label, control, required) {
    const mark = h("span", { class: "req", "aria-hidden": "true", text: " *", hidden: !required });
    control.required = !!required;
    return h("label", null, h("span", null, label, mark), control);
  }
  const pre = {
    name: h("input", { type: "text", autocomplete: "name", "data-testid": "prechat-name" }),
    email: h("input", { type: "email", autocomplete: "email", "data-testid": "prechat-email" }),
    topic: h("select", { "data-testid": "prechat-topic" }),
    submit: h("button", {
      class: "btn",
      type: "submit",
      "data-testid": "prechat-submit",
      text: t("start"),
    }),
  };
  pre.topicField = field(t("topic"), pre.topic);
  pre.form = h(
    "form",
    { class: "form", "data-testid": "prechat-form", novalidate: true, onsubmit: submitPrechat },
    h("p", { class: "note", text: t("prechat_intro") }),
    field(t("name"), pre.name),
    field(t("email"), pre.email),
    pre.topicField,
    pre.submit,
  );

  const off = {
    name: h("input", { type: "text", autocomplete: "name", "data-testid": "offline-name" }),
    email: h("input", { type: "email", autocomplete: "email", "data-testid": "offline-email" }),
    text: h("textarea", {
      rows: "4",
      maxlength: String(MAX_TEXT),
      "data-testid": "offline-message",
    }),
    submit: h("button", {
      class: "btn",
      type: "submit",
      "data-testid": "offline-submit",
      text: t("offline_send"),
    }),
  };
  off.form = h(
    "form",
    { class: "form", "data-testid": "offline-form", novalidate: true, onsubmit: submitOffline },
    h("p", { class: "note", text: t("offline_intro") }),
    field(t("name"), off.name),
    field(t("email"), off.email, true),
    field(t("message"), off.text, true),
    off.submit,
  );
  const offDone = h("div", {
    class: "done",
    "data-testid": "offline-done",
    role: "status",
    text: t("offline_done"),
  });

  function mount() {
    (document.body || document.documentElement).appendChild(hostEl);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });

  // ------------------------------------------------------------------ rendering
  function applyLook() {
    // Before the first welcome of this page: the site's look as the last welcome had it.
    const cfg = state.config || state.look;
    const colour = cssColour(ds.colour || ds.color) || cssColour(cfg.colour) || "#1f6feb";
    root.style.setProperty("--a", colour);
    root.style.setProperty("--at", textOn(colour));
    const position = ds.position || cfg.position;
    root.classList.toggle("left", position === "left");
    const title = ds.title || cfg.title || t("title");
    titleEl.textContent = title;
    win.setAttribute("aria-label", title);
    greetText.textContent = ds.greeting || cfg.greeting || t("greeting");
    const online = state.live && !offlineMode();
    dot.classList.toggle("on", online);
    dot.setAttribute("aria-label", online ? t("online") : t("offline"));
    dot.title = online ? t("online") : t("offline");
  }

  function offlineMode() {
    // An agent already talking with the visitor keeps the chat open past closing time.
    const talking = state.status && state.status.state === "assigned";
    return !!(state.config && state.config.offline) && !talking;
  }

  function needsPrechat() {
    const p = state.config && state.config.prechat;
    // A visitor with messages already started chatting (maybe in another tab).
    const started = byId.size > 0 || pending.size > 0;
    const named = (state.visitor && state.visitor.name) || state.profile || state.prechatSent;
    return !!(p && p.enabled) && !named && !started;
  }

  function mustSignIn() {
    return (
      !!state.config &&
      state.config.identity === "mandatory" &&
      !(state.visitor && state.visitor.verified) &&
      !state.identity
    );
  }

  /** Which view the body shows: the chat, the pre-chat form or the offline form. */
  function renderView() {
    applyLook();
    let view = "chat";
    if (state.config) {
      if (offlineMode()) view = "offline";
      else if (needsPrechat() && !mustSignIn()) view = "prechat";
    }
    const parts =
      view === "offline"
        ? [state.offlineDone ? offDone : off.form]
        : view === "prechat"
          ? [greetEl, pre.form]
          : [greetEl, list, note];
    if (body.childNodes.length !== parts.length || parts.some((p, i) => body.childNodes[i] !== p)) {
      body.replaceChildren(...parts);
    }
    if (view === "prechat") fillTopics();
    composer.hidden = view !== "chat";
    typingEl.hidden = view !== "chat" || !typingEl.textContent;
    const signIn = view === "chat" && mustSignIn();
    note.textContent = signIn ? t("sign_in") : "";
    note.hidden = !signIn;
    input.disabled = !state.everLive || signIn;
    sendBtn.disabled = attachBtn.disabled = !state.everLive || signIn;
    const upload = state.config && state.config.upload;
    attachBtn.hidden = !(upload && upload.types && upload.types.length);
    if (upload && upload.types) fileInput.accept = upload.types.join(",");
    renderStatus();
  }

  function fillTopics() {
    const p = state.config.prechat || {};
    const topics = Array.isArray(p.topics) ? p.topics : [];
    const required = Array.isArray(p.required) ? p.required : [];
    pre.topicField.hidden = topics.length === 0;
    const key = JSON.stringify(topics);
    if (pre.topic.dataset.key !== key) {
      pre.topic.dataset.key = key;
      pre.topic.replaceChildren(
        h("option", { value: "", text: t("choose") }),
        ...topics.map((tp) =>
          h("option", { value: String(tp.id), text: String(tp.label || tp.id) }),
        ),
      );
    }
    for (const name of ["name", "email", "topic"]) {
      pre[name].required = required.includes(name);
      pre[name].parentNode.querySelector(".req").hidden = !pre[name].required;
    }
    const known = state.visitor && state.visitor.email;
    if (known && !pre.email.value) pre.email.value = known;
  }

  function statusText() {
    if (!state.live) {
      if (!state.opened && !state.everLive) return "";
      if (state.everLive) return t("reconnecting");
      return attempt >= 3 ? t("err_unavailable") : t("connecting"); // refused again and again
    }
    const s = state.status;
    if (!s || offlineMode()) return "";
    if (s.state === "queued") {
      const pos = Number(s.position) || 0;
      if (!pos) return t("waiting");
      let text = t("queue", { pos });
      if (typeof s.expected_wait_s === "number" && s.expected_wait_s >= 0) {
        const n = Math.max(1, Math.round(s.expected_wait_s / 60));
        text += n === 1 ? t("wait_1") : t("wait_n", { n });
      }
      return text;
    }
    if (s.state === "assigned") return t("joined", { name: s.agent || t("someone") });
    if (s.state === "closed") return t("closed");
    if (s.state === "bot") return t("bot_status", { name: botName() });
    return "";
  }

  function botName() {
    return (state.config && state.config.bot) || "Bot";
  }

  function renderStatus() {
    const text = statusText();
    statusText_.textContent = text;
    const bot = state.live && state.status && state.status.state === "bot";
    handoffBtn.textContent = t("handoff");
    handoffBtn.hidden = !bot;
    if (!bot) handoffBtn.disabled = false;
    statusEl.hidden = !text;
  }

  let errorTimer = 0;
  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = !text;
    clearTimeout(errorTimer);
    if (text) errorTimer = setTimeout(() => showError(""), 10000);
  }

  function nearBottom() {
    return body.scrollHeight - body.scrollTop - body.clientHeight < 80;
  }
  let stick = true; // the visitor is reading the newest messages, not scrolled back
  body.addEventListener("scroll", () => {
    stick = nearBottom();
  });
  function scrollDown() {
    body.scrollTop = body.scrollHeight;
  }

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
  }

  function timeOf(iso) {
    const d = iso ? new Date(iso) : new Date();
    if (Number.isNaN(d.getTime())) return "";
    const locale = lang === "zh" ? "zh-CN" : "en";
    return d.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  }

  function attachmentNode(att) {
    const name = String(att.name || "file");
    const url = hubFileUrl(att.url);
    if (!url) return h("span", { class: "file" }, ...fileLabel(name));
    if (INLINE_IMAGES.includes(att.type)) {
      return h(
        "a",
        {
          href: url,
          target: "_blank",
          rel: "noopener noreferrer",
          "data-testid": "chat-image-link",
        },
        h("img", {
          src: url,
          alt: name,
          "data-testid": "chat-image",
          onload: () => stick && scrollDown(), // the list grew: keep the newest in view
        }),
      );
    }
    return h(
      "a",
      {
        class: "file",
        href: url,
        target: "_blank",
        rel: "noopener noreferrer",
        download: name,
        "data-testid": "chat-file",
      },
      ...fileLabel(name),
    );
  }

  /** The <li> of a message; the server's copy (with an id) or our own pending one. */
  function messageItem(m, pendingFile) {
    const dir = m.direction === "out" ? "out" : "in";
    const bub = h("div", { class: m.text ? "bub" : "bub media" });
    if (m.text) bub.appendChild(linkified(String(m.text)));
    for (const att of Array.isArray(m.attachments) ? m.attachments : []) {
      bub.appendChild(attachmentNode(att || {}));
    }
    if (pendingFile) bub.appendChild(h("span", { class: "file" }, ...fileLabel(pendingFile)));
    if (m.survey && m.id) bub.appendChild(ratingRow(Number(m.id)));
    const li = h(
      "li",
      { class: "msg " + dir, "data-testid": "chat-message", "data-direction": dir },
      dir === "out" ? h("div", { class: "who", text: m.bot ? botName() : m.author || t("someone") }) : null,
      bub,
      h("div", { class: "meta", text: m.id ? timeOf(m.at) : t("sending") }),
    );
    if (m.id) li.dataset.id = String(m.id);
    if (m.at) li.dataset.at = String(m.at);
    return li;
  }

  /** Stars 1-5 under a satisfaction survey; one answer, then thanks. */
  function ratingRow(messageId) {
    const row = h("div", { class: "rating", "data-testid": "chat-rating" });
    let rated = 0;
    try {
      rated = Number(sessionStorage.getItem("hub-rated-" + messageId) || 0);
    } catch (e) {
      rated = 0;
    }
    if (rated) {
      row.appendChild(h("span", { class: "thanks", text: t("rated") }));
      return row;
    }
    for (let n = 1; n <= 5; n++) {
      const star = h("button", { type: "button", class: "star", "data-testid": "chat-rate-" + n, "aria-label": n + "/5", text: "★" });
      star.addEventListener("click", () => {
        if (!state.live) return;
        sendAnswered("rate", "", { type: "rate", score: n, message_id: messageId });
        try {
          sessionStorage.setItem("hub-rated-" + messageId, String(n));
        } catch (e) {
          // storage may be off: the hub keeps the first answer anyway
        }
        row.replaceChildren(h("span", { class: "thanks", text: t("rated") }));
      });
      row.appendChild(star);
    }
    return row;
  }

  /** Place an item with an id in id order, before the pending ones. */
  function placeById(li, id) {
    let before = null;
    for (const child of list.children) {
      const cid = Number(child.dataset.id || 0);
      if (!cid || cid > id) {
        before = child;
        break;
      }
    }
    list.insertBefore(li, before);
  }

  function addMessage(m) {
    const id = Number(m.id);
    if (!id) return;
    const follow = nearBottom();
    const li = messageItem(m);
    const first = byId.size === 0;
    // The hub's copy wins over what is on screen (our pending one included).
    const known = byId.get(id) || (m.direction === "in" && claimPending(m, id, li));
    if (known) known.remove();
    placeById(li, id);
    byId.set(id, li);
    if (id > state.lastId) state.lastId = id;
    if (m.direction === "out") {
      setAgentTyping(false);
      if (!state.opened && id > state.seenId) updateUnread();
    }
    if (state.opened) markSeen();
    if (m.direction !== "out" && state.readId >= id) showRead();
    if (first && state.config) renderView();
    if (follow || m.direction !== "out") scrollDown();
  }

  /**
   * The hub pushes our own message to every tab before it acks it: the oldest pending
   * message with the same text (and a file or not) is that one, so it is not shown twice.
   * A frame naming its client_msg_id is matched exactly.
   */
  function claimPending(m, id, li) {
    const hasFile = Array.isArray(m.attachments) && m.attachments.length > 0;
    for (const p of pending.values()) {
      if (p.claimed) continue;
      const same = m.client_msg_id
        ? m.client_msg_id === p.frame.client_msg_id
        : p.frame.text === m.text && !!p.frame.file === hasFile;
      if (!same) continue;
      const el = p.el;
      p.claimed = id;
      p.el = li;
      return el;
    }
    return null;
  }

  /** "Read" under the visitor's last message the agent has read (one marker, not each). */
  function showRead() {
    let mark = null;
    for (const [id, li] of byId) {
      if (li.dataset.direction === "in" && id <= state.readId && (!mark || id > mark.id)) {
        mark = { id, li };
      }
    }
    for (const li of list.querySelectorAll("[data-read]")) {
      if (!mark || li !== mark.li) {
        delete li.dataset.read;
        li.lastChild.textContent = timeOf(li.dataset.at);
      }
    }
    if (mark && !mark.li.dataset.read) {
      mark.li.dataset.read = "true";
      mark.li.lastChild.textContent = timeOf(mark.li.dataset.at) + " · " + t("read");
    }
  }

  function updateUnread() {
    let n = 0;
    for (const [id, li] of byId) if (id > state.seenId && li.dataset.direction === "out") n++;
    badge.textContent = String(n);
    badge.hidden = n === 0 || state.opened;
    const label = n ? t("open") + " (" + t("unread", { n }) + ")" : t("open");
    launcher.setAttribute("aria-label", state.opened ? t("close") : label);
  }

  function markSeen() {
    if (state.lastId > state.seenId) {
      state.seenId = state.lastId;
      store.set(storeKey + ":seen", String(state.seenId));
    }
    updateUnread();
  }

  let agentTypingTimer = 0;
  function setAgentTyping(on, name) {
    clearTimeout(agentTypingTimer);
    typingEl.textContent = on ? t("typing", { name: name || t("someone") }) : "";
    typingEl.hidden = !on || composer.hidden;
    if (on) agentTypingTimer = setTimeout(() => setAgentTyping(false), AGENT_TYPING_MS);
  }

  // ------------------------------------------------------------------ the connection
  let ws = null;
  let attempt = 0;
  let retryTimer = 0;
  let pingTimer = 0;
  let awaitingPong = false;

  function connect() {
    if (ws) return;
    clearTimeout(retryTimer);
    retryTimer = 0;
    let sock;
    try {
      sock = new WebSocket(wsUrl);
    } catch {
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = () => {
      rawSend({
        type: "hello",
        v: VERSION,
        token: state.token || null,
        last_id: state.lastId,
        lang,
        page: location.href,
      });
    };
    sock.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object") handle(frame);
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      state.live = false;
      clearInterval(pingTimer);
      setAgentTyping(false);
      renderView();
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    const delay = Math.min(30, 2 ** attempt) * 1000; // 1, 2, 4 … 30 s
    attempt++;
    retryTimer = setTimeout(() => {
      retryTimer = 0;
      connect();
    }, delay);
  }

  function dropConnection() {
    if (!ws) return;
    const sock = ws;
    sock.onclose(); // reconnect now rather than after the browser's close handshake
    sock.close();
  }

  function rawSend(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  /** Send now if welcomed (else the frame waits for the next welcome, if it matters). */
  function send(frame) {
    return state.live && rawSend(frame);
  }

  // Frames the hub answers with one ack (or identified) or one error, oldest first. An
  // error names no frame, but the hub answers a socket's frames in order, so an error that
  // is not about the rate belongs to the oldest frame still unanswered.
  let awaiting = [];
  function sendAnswered(kind, key, frame) {
    if (send(frame)) awaiting.push({ kind, key });
  }
  function answered(kind, key) {
    const i = awaiting.findIndex((e) => e.kind === kind && (key === undefined || e.key === key));
    if (i >= 0) awaiting.splice(i, 1);
  }

  /** After a welcome (or a rate limit): everything not yet answered, in the order it matters. */
  function resendAll() {
    if (!state.live) return;
    awaiting = [];
    if (state.identity && !state.identified) sendIdentify();
    if (state.prechatSent) sendAnswered("prechat", "", state.prechatSent);
    if (state.offlineSent) sendAnswered("offline", "", state.offlineSent);
    for (const [key, p] of pending) sendAnswered("message", key, p.frame);
  }

  let resendTimer = 0;
  function resendSoon() {
    clearTimeout(resendTimer);
    resendTimer = setTimeout(resendAll, 15000);
  }

  const HANDLERS = {
    welcome: onWelcome,
    message: (f) => addMessage(f),
    // A typing frame may come without a name: the assigned agent's is the next best.
    typing: (f) => setAgentTyping(!!f.on, f.name || (state.status && state.status.agent)),
    status: (f) => {
      state.status = f;
      renderView();
    },
    ack: onAck,
    read: (f) => {
      const id = Number(f.id) || 0;
      if (id > state.readId) {
        state.readId = id;
        showRead();
      }
    },
    identified: () => {
      answered("identify");
      state.identified = true;
      const extra = { verified: true };
      if (state.identity.name && !(state.visitor && state.visitor.name)) {
        extra.name = state.identity.name;
      }
      state.visitor = Object.assign({}, state.visitor, extra);
      renderView();
    },
    pong: () => {
      awaitingPong = false;
    },
    error: onError,
  };

  function handle(frame) {
    const fn = HANDLERS[frame.type];
    if (fn) fn(frame);
  }

  function onWelcome(f) {
    if (state.token && f.token && f.token !== state.token) {
      // The hub did not know our token: a new visitor, whose history is not what we show.
      byId.clear();
      for (const li of [...list.children]) if (li.dataset.id) li.remove();
      state.lastId = 0;
      state.seenId = 0;
      store.set(storeKey + ":seen", "0");
    }
    if (f.token) {
      state.token = String(f.token);
      store.set(storeKey, state.token);
    }
    state.visitor = f.visitor || {};
    state.config = f.config || {};
    state.status = f.status || null;
    state.identified = !!state.visitor.verified;
    const { colour, position, title, greeting } = state.config;
    const look = { colour, position, title, greeting };
    store.set(storeKey + ":look", JSON.stringify(look));
    // The hub keeps the pre-chat answers only while a tab is open: tell it again.
    if (!state.visitor.name && !state.prechatSent && state.profile) {
      state.prechatSent = Object.assign({ type: "prechat" }, state.profile);
    }
    state.live = true;
    state.everLive = true;
    attempt = 0;
    for (const m of Array.isArray(f.messages) ? f.messages : []) addMessage(m);
    resendAll();
    clearInterval(pingTimer);
    awaitingPong = false;
    pingTimer = setInterval(() => {
      if (awaitingPong) {
        dropConnection(); // no pong for a whole period: the socket is dead
        return;
      }
      awaitingPong = rawSend({ type: "ping" });
    }, PING_MS);
    renderView();
    updateUnread();
    if (state.opened) {
      markSeen();
      scrollDown();
      const active = shadow.activeElement;
      if (!active || active.disabled) focusFirst();
    }
  }

  function onAck(f) {
    if (f.ref === "prechat") {
      answered("prechat");
      const sent = state.prechatSent;
      state.prechatSent = null;
      if (sent) {
        state.profile = { name: sent.name, email: sent.email, topic: sent.topic };
        store.set(storeKey + ":profile", JSON.stringify(state.profile));
        state.visitor = Object.assign({}, state.visitor, { name: sent.name });
      }
      pre.submit.disabled = false;
      renderView();
      if (state.opened && !composer.hidden) input.focus();
      return;
    }
    if (f.ref === "handoff") {
      answered("handoff");
      return;
    }
    if (f.ref === "rate") {
      answered("rate");
      return;
    }
    if (f.ref === "offline") {
      answered("offline");
      state.offlineSent = null;
      state.offlineDone = true;
      off.submit.disabled = false;
      renderView();
      return;
    }
    answered("message", f.client_msg_id);
    const p = pending.get(f.client_msg_id);
    if (!p) return;
    pending.delete(f.client_msg_id);
    const id = Number(f.id);
    if (p.claimed === id) return; // already shown as the hub's copy
    if (!id || byId.has(id)) {
      if (!p.claimed) p.el.remove(); // the hub's copy (pushed to every tab) is on screen
      return;
    }
    if (p.claimed) {
      // Two pending messages with the same text came back crossed: show this one too.
      addMessage({ id, direction: "in", text: p.frame.text, at: new Date().toISOString() });
      return;
    }
    p.el.classList.remove("pending");
    p.el.dataset.id = String(id);
    p.el.dataset.at = new Date().toISOString();
    p.el.lastChild.textContent = timeOf(p.el.dataset.at);
    p.el.remove();
    placeById(p.el, id);
    byId.set(id, p.el);
    if (id > state.lastId) state.lastId = id;
    if (state.opened) markSeen();
  }

  function onError(f) {
    const code = String(f.code || "");
    const text = STRINGS.en["err_" + code]
      ? t("err_" + code)
      : String(f.detail || t("err_bad_frame"));
    if (code === "rate_limited" || code === "unavailable") {
      // Not the frame's fault: what is unanswered goes again a little later. A limited
      // typing hint or ping (nothing unanswered) is not worth a word to the visitor.
      if (awaiting.length || !state.live) showError(text);
      if (awaiting.length) resendSoon();
      awaiting = [];
      return;
    }
    const entry = awaiting.shift();
    const p = entry && entry.kind === "message" && pending.get(entry.key);
    // The hub checks a file's bytes too: a file it refuses gets the file wording.
    showError(p && p.frame.file && code === "not_allowed" ? t("file_type") : text);
    if (!entry) return;
    if (entry.kind === "message") failMessage(entry.key);
    else if (entry.kind === "identify") state.identity = null;
    else if (entry.kind === "prechat") {
      // Refused (a topic gone, say): ask again rather than re-send it forever.
      state.prechatSent = null;
      state.profile = null;
      store.set(storeKey + ":profile", "");
      pre.submit.disabled = false;
    } else if (entry.kind === "offline") {
      state.offlineSent = null;
      off.submit.disabled = false;
    }
    renderView();
  }

  /** The hub refused this message outright: mark it and stop re-sending it. */
  function failMessage(key) {
    const p = pending.get(key);
    if (!p) return;
    pending.delete(key);
    p.el.classList.add("failed");
    p.el.classList.remove("pending");
    p.el.lastChild.textContent = t("not_sent");
    if (stick) scrollDown();
  }

  function sendIdentify() {
    // A site that verifies no identities refuses identify: do not ask.
    if (state.config && state.config.identity === "off") return;
    const id = state.identity;
    const frame = { type: "identify", identifier: id.identifier, hash: id.hash };
    if (id.name) frame.name = id.name;
    if (id.email) frame.email = id.email;
    sendAnswered("identify", "", frame);
  }

  // Another tab got a token while this one had nothing to lose: become the same visitor.
  window.addEventListener("storage", (ev) => {
    if (ev.key === storeKey + ":seen") {
      state.seenId = Math.max(state.seenId, Number(ev.newValue) || 0);
      updateUnread();
      return;
    }
    if (ev.key !== storeKey || !ev.newValue || ev.newValue === state.token) return;
    if (byId.size || pending.size) return;
    state.token = ev.newValue;
    dropConnection();
  });
  window.addEventListener("online", () => {
    if (!ws && (state.token || state.opened)) {
      attempt = 0;
      connect();
    }
  });

  // ------------------------------------------------------------------ sending
  function queueMessage(frame, fileName) {
    const li = messageItem({ direction: "in", text: frame.text }, fileName);
    li.classList.add("pending");
    list.appendChild(li);
    pending.set(frame.client_msg_id, { frame, el: li });
    sendAnswered("message", frame.client_msg_id, frame);
    scrollDown();
  }

  function sendText() {
    const text = input.value.trim();
    if (!text || input.disabled) return;
    if (text.length > MAX_TEXT) {
      showError(t("too_long", { max: MAX_TEXT }));
      return;
    }
    queueMessage({ type: "message", client_msg_id: newClientMsgId(), text });
    input.value = "";
    autoGrow();
    typingStop();
    showError("");
    input.focus();
  }

  function uploadLimit() {
    const upload = (state.config && state.config.upload) || {};
    const frameLimit = Math.floor(((MAX_FRAME - FRAME_SLACK) * 3) / 4);
    const configured = Number(upload.max_bytes) || frameLimit;
    return Math.min(configured, frameLimit);
  }

  function sendFile(file) {
    const upload = (state.config && state.config.upload) || {};
    const types = Array.isArray(upload.types) ? upload.types : [];
    if (!types.includes(file.type)) {
      showError(t("file_type"));
      return;
    }
    const limit = uploadLimit();
    if (file.size > limit) {
      showError(t("file_size", { max: formatBytes(limit) }));
      return;
    }
    showError("");
    const reader = new FileReader();
    reader.onload = () => {
      const result = String(reader.result || "");
      const data = result.slice(result.indexOf(",") + 1);
      queueMessage(
        {
          type: "message",
          client_msg_id: newClientMsgId(),
          text: "",
          file: { name: file.name, type: file.type, data },
        },
        file.name,
      );
    };
    reader.onerror = () => showError(t("err_bad_frame"));
    reader.readAsDataURL(file);
  }

  let typingOn = false;
  let typingSentAt = 0;
  let typingIdle = 0;
  function typingInput() {
    const now = Date.now();
    if (!input.value.trim()) {
      typingStop();
      return;
    }
    if (!typingOn || now - typingSentAt >= TYPING_EVERY_MS) {
      if (send({ type: "typing", on: true })) {
        typingOn = true;
        typingSentAt = now;
      }
    }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(typingStop, TYPING_IDLE_MS);
  }
  function typingStop() {
    clearTimeout(typingIdle);
    if (!typingOn) return;
    typingOn = false;
    typingSentAt = Date.now();
    send({ type: "typing", on: false });
  }

  const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

  /** The first problem with a form's fields, or "". */
  function checkFields(fields) {
    for (const [label, el, required, isEmail] of fields) {
      const value = el.value.trim();
      if (required && !value) {
        el.focus();
        return t("required", { field: label });
      }
      if (isEmail && value && !EMAIL_RE.test(value)) {
        el.focus();
        return t("bad_email");
      }
    }
    return "";
  }

  function submitPrechat(ev) {
    ev.preventDefault();
    const p = state.config.prechat || {};
    const required = Array.isArray(p.required) ? p.required : [];
    const hasTopics = Array.isArray(p.topics) && p.topics.length > 0;
    const problem = checkFields([
      [t("name"), pre.name, required.includes("name")],
      [t("email"), pre.email, required.includes("email"), true],
      [t("topic"), pre.topic, hasTopics && required.includes("topic")],
    ]);
    showError(problem);
    if (problem) return;
    state.prechatSent = {
      type: "prechat",
      name: pre.name.value.trim(),
      email: pre.email.value.trim(),
      topic: pre.topic.value,
    };
    pre.submit.disabled = true;
    sendAnswered("prechat", "", state.prechatSent);
    renderView();
  }

  function submitOffline(ev) {
    ev.preventDefault();
    const problem = checkFields([
      [t("email"), off.email, true, true],
      [t("message"), off.text, true],
    ]);
    showError(problem);
    if (problem) return;
    state.offlineSent = {
      type: "offline",
      name: off.name.value.trim(),
      email: off.email.value.trim(),
      text: off.text.value.trim(),
    };
    off.submit.disabled = true;
    sendAnswered("offline", "", state.offlineSent);
  }

  // ------------------------------------------------------------------ open / close
  function openWindow() {
    if (state.opened) return;
    state.opened = true;
    win.hidden = false;
    root.classList.add("open");
    launcher.replaceChildren(icon(ICON_CLOSE), badge);
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", t("close"));
    connect();
    renderView();
    markSeen();
    scrollDown();
    focusFirst();
  }

  function focusFirst() {
    const el = body.querySelector("input, select, textarea");
    (el || input).focus();
  }

  function closeWindow() {
    if (!state.opened) return;
    state.opened = false;
    win.hidden = true;
    root.classList.remove("open");
    launcher.replaceChildren(launcherIcon, badge);
    launcher.setAttribute("aria-expanded", "false");
    typingStop();
    updateUnread();
    if (shadow.activeElement) launcher.focus(); // focus was in the window: keep it near
  }

  window.HubChat = {
    version: VERSION,
    open: openWindow,
    close: closeWindow,
    /** Verified identity: hash is the site's hex HMAC-SHA256 of identifier. */
    identify(identifier, hash, extra) {
      if (!identifier || !hash) return;
      const more = extra || {};
      state.identity = {
        identifier: String(identifier),
        hash: String(hash),
        name: more.name ? String(more.name) : "",
        email: more.email ? String(more.email) : "",
      };
      state.identified = false;
      if (state.live) sendIdentify();
      else if (state.token) connect(); // a new visitor identifies when they open the chat
      renderView();
    },
  };

  renderView();
  // A returning visitor (a token kept) connects at once to see agent replies and the unread
  // count; a new one only when they open the chat, so a mere page view holds no socket.
  if (state.token) connect();
  window.dispatchEvent(new Event("hubchat:ready"));
})();
