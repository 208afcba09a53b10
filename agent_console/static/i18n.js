// The one string catalog of the console (English and Simplified Chinese) and its helpers.
// Elements declare their text with data-i18n / data-i18n-placeholder / data-i18n-title /
// data-i18n-aria-label; code calls t(key, params). Placeholders look like {name}.

const CATALOG = {
  en: {
    "app.title": "Agent console",
    "app.brand": "Interaction Hub",
    "login.title": "Sign in",
    "login.subtitle": "Agent console of the contact center",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.busy": "Signing in…",
    "login.failed": "Wrong username or password.",
    "login.error": "Could not sign in: {detail}",
    "login.language": "Language",
    "top.logout": "Log out",
    "top.language": "Language",
    "top.shortcuts": "Shortcuts",
    "state.label": "My state",
    "state.available": "Available",
    "state.away": "Away",
    "state.away_break": "Away · Break",
    "state.away_lunch": "Away · Lunch",
    "state.away_meeting": "Away · Meeting",
    "state.offline": "Offline",
    "state.changed": "Your state is now {state}{reason}.",
    "conn.connecting": "Connecting…",
    "conn.connected": "Connected",
    "conn.reconnecting": "Reconnecting in {n} s",
    "conn.reconnecting_now": "Reconnecting…",
    "conn.offline": "Disconnected",
    "conn.resync": "Connection restored; view rebuilt from the server.",
    "offers.title": "Offers",
    "offers.none": "No offers. Incoming conversations ring here.",
    "offers.incoming": "Incoming {channel}",
    "offers.expires": "{n} s",
    "offers.more": "+{n} more waiting",
    "offers.accept": "Accept",
    "offers.reject": "Reject",
    "offers.accept_hint": "A",
    "offers.reject_hint": "R",
    "offers.expired": "The offer from {name} expired.",
    "offers.rescinded": "The offer from {name} was withdrawn.",
    "offers.segment": "Segment: {segment}",
    "offers.priority": "Priority {n}",
    "offers.yours": "Your customer",
    "offers.why.last_agent": "You served this customer last; it comes to you before the queue.",
    "offers.why.account_owner": "You own this customer's account; it comes to you before the queue.",
    "convs.title": "My conversations",
    "convs.none": "No conversations assigned to you.",
    "convs.unread": "{n} awaiting reply",
    "convs.sla": "Time since the customer has been waiting",
    "convs.wrap_up": "Wrap-up",
    "convs.unknown_customer": "Customer #{id}",
    "conv.empty_title": "No conversation open",
    "conv.empty_body": "Accept an offer or pick a conversation on the left. Press J / K to move between conversations.",
    "conv.number": "#{id}",
    "conv.queue": "Queue {queue}",
    "conv.priority": "P{n}",
    "conv.also_viewing": "Also viewing:",
    "conv.customer": "Customer",
    "conv.readonly_transferred": "This conversation was transferred; it is read-only for you now.",
    "conv.readonly_closed": "This conversation is closed.",
    "conv.readonly_other": "This conversation is not assigned to you; it is read-only.",
    "conv.load_older": "Load older history",
    "conv.history_start": "Beginning of this customer's history",
    "conv.separator": "Conversation #{id} · {channel}",
    "conv.today": "Today",
    "conv.yesterday": "Yesterday",
    "state.conv.queued": "Queued",
    "state.conv.offered": "Offered",
    "state.conv.assigned": "Assigned",
    "state.conv.wrap_up": "Wrap-up",
    "state.conv.closed": "Closed",
    "tl.you": "You",
    "tl.agent": "Agent",
    "tl.system": "System",
    "tl.customer": "Customer",
    "tl.note": "Internal note",
    "tl.transfer_note": "Transfer note",
    "tl.auto_reply": "Automatic reply",
    "tl.voicemail": "Voicemail",
    "tl.call": "Call",
    "tl.recording": "Recording",
    "tl.csat": "Satisfaction rating: {score} / 5",
    "tl.edited": "edited",
    "tl.attachment": "Attachment",
    "tl.att.kind.photo": "photo",
    "tl.att.kind.video": "video",
    "tl.att.kind.audio": "audio",
    "tl.att.kind.file": "file",
    "tl.att.pending": "{kind}, fetching…",
    "tl.att.failed": "{kind} unavailable",
    "tl.att.retry": "Retry",
    "tl.status.pending": "Pending",
    "tl.status.queued": "Queued",
    "tl.status.sending": "Sending",
    "tl.status.sent": "Sent",
    "tl.status.delivered": "Delivered",
    "tl.status.read": "Read",
    "tl.status.undelivered": "Undelivered",
    "tl.status.failed": "Failed",
    "tl.failed_detail": "Failed: {detail}",
    "tl.ev.assigned": "Assigned to {agent}",
    "tl.ev.transferred_agent": "{by} transferred to {agent}",
    "tl.ev.transferred_queue": "{by} transferred to queue {queue}",
    "tl.ev.wrap_up": "Wrap-up started",
    "tl.ev.closed": "Conversation closed{disposition}",
    "tl.ev.reopened": "Conversation reopened",
    "tl.ev.queued": "Queued in {queue}",
    "tl.ev.labels": "Labels: {labels}",
    "tl.ev.priority": "Priority set to {n}",
    "composer.reply": "Reply",
    "composer.note": "Internal note",
    "composer.placeholder": "Type a reply…  (Ctrl+Enter to send)",
    "composer.note_placeholder": "Write an internal note; @username notifies a colleague…",
    "composer.send": "Send",
    "composer.add_note": "Add note",
    "composer.sending": "Sending…",
    "composer.via": "Send via",
    "composer.via_default": "{channel} · {address} (this conversation)",
    "composer.via_other": "{channel} · {address}",
    "composer.opted_out": "opted out",
    "composer.undeliverable": "undeliverable",
    "composer.window_closed": "24-hour window closed",
    "composer.canned": "Canned responses",
    "composer.canned_pick": "Insert canned response…",
    "composer.hint": "Ctrl+Enter send · / focus · J/K next/previous",
    "composer.empty": "Write something first.",
    "composer.mention_hint": "Mention a colleague",
    "profile.title": "Customer",
    "profile.name": "Name",
    "profile.segment": "Segment",
    "profile.language": "Language",
    "profile.tags": "Tags",
    "profile.tags_hint": "comma-separated",
    "profile.save": "Save profile",
    "profile.saved": "Customer profile saved.",
    "profile.merge": "Merge…",
    "profile.merge_prompt": "Merge which customer into this one? Enter their customer number.",
    "profile.merge_force": "They have conflicting verified identifiers ({detail}). Merge anyway?",
    "profile.merged": "Customer #{other} merged into this one. Undo?",
    "profile.unmerged": "Merge undone.",
    "profile.endpoints": "Endpoints",
    "profile.verified": "verified",
    "profile.opted_out": "opted out: {channels}",
    "profile.undeliverable": "undeliverable: {reason}",
    "profile.conversations": "Conversations",
    "profile.since": "Customer since {date}",
    "profile.none": "No conversation open.",
    "actions.title": "Actions",
    "actions.transfer": "Transfer…",
    "actions.labels": "Labels",
    "actions.labels_hint": "comma-separated, e.g. billing, refund",
    "actions.labels_save": "Set labels",
    "actions.labels_saved": "Labels updated.",
    "actions.priority": "Priority",
    "actions.priority_saved": "Priority updated.",
    "actions.priority.low": "Low",
    "actions.priority.normal": "Normal",
    "actions.priority.high": "High",
    "actions.priority.urgent": "Urgent",
    "actions.wrap_up": "Wrap up",
    "actions.wrap_up_done": "Conversation is in wrap-up.",
    "actions.disposition": "Disposition",
    "actions.disposition_hint": "e.g. resolved",
    "actions.disposition_required": "Choose a disposition code first.",
    "actions.close": "Close conversation",
    "actions.closed": "Conversation closed.",
    "disp.resolved": "Resolved",
    "disp.follow_up": "Follow-up needed",
    "disp.escalated": "Escalated",
    "disp.no_response": "No response from customer",
    "disp.spam": "Spam",
    "disp.duplicate": "Duplicate",
    "transfer.title": "Transfer conversation",
    "transfer.to_agent": "To an agent",
    "transfer.to_queue": "To a team / queue",
    "transfer.agent": "Agent",
    "transfer.queue": "Queue",
    "transfer.note": "Note for the next agent",
    "transfer.note_placeholder": "What has been done, what is left…",
    "transfer.confirm": "Transfer",
    "transfer.cancel": "Cancel",
    "transfer.done": "Conversation transferred.",
    "transfer.pick_agent": "Choose an agent.",
    "transfer.pick_queue": "Enter a queue.",
    "mention.toast": "{who} mentioned you in conversation #{id}",
    "mention.toast_short": "You were mentioned in a note",
    "error.command": "{detail}",
    "error.timeout": "The server did not answer in time.",
    "error.generic": "Something went wrong: {detail}",
    "shortcuts.title": "Keyboard shortcuts",
    "shortcuts.accept": "Accept the ringing offer",
    "shortcuts.reject": "Reject the ringing offer",
    "shortcuts.send": "Send the reply / note",
    "shortcuts.next": "Next / previous conversation",
    "shortcuts.focus": "Focus the reply box",
    "shortcuts.help": "Show this help",
    "shortcuts.close": "Close",
    "time.s": "{n}s",
    "time.ms": "{m}m {s}s",
    "time.hm": "{h}h {m}m",
    "time.d": "{d}d {h}h",
    "channel.sms": "SMS",
    "channel.mms": "MMS",
    "channel.whatsapp": "WhatsApp",
    "channel.email": "Email",
    "channel.telegram": "Telegram",
    "channel.webchat": "Web chat",
    "channel.voice": "Voice",
    "channel.wechat": "WeChat",
    "channel.app": "App",
    "channel.api": "API",
    "kind.phone": "Phone",
    "kind.email": "Email",
    "kind.telegram": "Telegram",
    "kind.webchat": "Web chat",
    "kind.wechat": "WeChat",
    "kind.app": "App",
    "kind.api": "API",
  },
  "zh-CN": {
    "app.title": "坐席工作台",
    "app.brand": "全渠道联络中心",
    "login.title": "登录",
    "login.subtitle": "联络中心坐席工作台",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.busy": "正在登录…",
    "login.failed": "用户名或密码错误。",
    "login.error": "无法登录：{detail}",
    "login.language": "语言",
    "top.logout": "退出登录",
    "top.language": "语言",
    "top.shortcuts": "快捷键",
    "state.label": "我的状态",
    "state.available": "空闲",
    "state.away": "离开",
    "state.away_break": "离开 · 休息",
    "state.away_lunch": "离开 · 午餐",
    "state.away_meeting": "离开 · 会议",
    "state.offline": "离线",
    "state.changed": "您的状态已变为 {state}{reason}。",
    "conn.connecting": "正在连接…",
    "conn.connected": "已连接",
    "conn.reconnecting": "{n} 秒后重新连接",
    "conn.reconnecting_now": "正在重新连接…",
    "conn.offline": "已断开",
    "conn.resync": "连接已恢复，视图已从服务器重建。",
    "offers.title": "待接会话",
    "offers.none": "暂无待接会话。新会话会在这里响铃。",
    "offers.incoming": "新的{channel}会话",
    "offers.expires": "{n} 秒",
    "offers.more": "另有 {n} 个等待中",
    "offers.accept": "接受",
    "offers.reject": "拒绝",
    "offers.accept_hint": "A",
    "offers.reject_hint": "R",
    "offers.expired": "来自 {name} 的分配已超时。",
    "offers.rescinded": "来自 {name} 的分配已撤回。",
    "offers.segment": "客户分群：{segment}",
    "offers.priority": "优先级 {n}",
    "offers.yours": "您的客户",
    "offers.why.last_agent": "您上次服务过这位客户，会话先分配给您，再分配给队列。",
    "offers.why.account_owner": "您是这位客户的客户经理，会话先分配给您，再分配给队列。",
    "convs.title": "我的会话",
    "convs.none": "暂无分配给您的会话。",
    "convs.unread": "{n} 条待回复",
    "convs.sla": "客户已等待的时间",
    "convs.wrap_up": "话后处理",
    "convs.unknown_customer": "客户 #{id}",
    "conv.empty_title": "未打开会话",
    "conv.empty_body": "接受一个分配，或在左侧选择会话。按 J / K 切换会话。",
    "conv.number": "#{id}",
    "conv.queue": "队列 {queue}",
    "conv.priority": "P{n}",
    "conv.also_viewing": "同时查看：",
    "conv.customer": "客户",
    "conv.readonly_transferred": "此会话已转接，您现在只能查看。",
    "conv.readonly_closed": "此会话已关闭。",
    "conv.readonly_other": "此会话未分配给您，只能查看。",
    "conv.load_older": "加载更早的记录",
    "conv.history_start": "该客户记录的开始",
    "conv.separator": "会话 #{id} · {channel}",
    "conv.today": "今天",
    "conv.yesterday": "昨天",
    "state.conv.queued": "排队中",
    "state.conv.offered": "分配中",
    "state.conv.assigned": "处理中",
    "state.conv.wrap_up": "话后处理",
    "state.conv.closed": "已关闭",
    "tl.you": "我",
    "tl.agent": "坐席",
    "tl.system": "系统",
    "tl.customer": "客户",
    "tl.note": "内部备注",
    "tl.transfer_note": "转接备注",
    "tl.auto_reply": "自动回复",
    "tl.voicemail": "语音留言",
    "tl.call": "通话",
    "tl.recording": "录音",
    "tl.csat": "满意度评分：{score} / 5",
    "tl.edited": "已编辑",
    "tl.attachment": "附件",
    "tl.att.kind.photo": "照片",
    "tl.att.kind.video": "视频",
    "tl.att.kind.audio": "音频",
    "tl.att.kind.file": "文件",
    "tl.att.pending": "{kind}，正在获取…",
    "tl.att.failed": "{kind}无法获取",
    "tl.att.retry": "重试",
    "tl.status.pending": "待发送",
    "tl.status.queued": "排队中",
    "tl.status.sending": "发送中",
    "tl.status.sent": "已发送",
    "tl.status.delivered": "已送达",
    "tl.status.read": "已读",
    "tl.status.undelivered": "未送达",
    "tl.status.failed": "发送失败",
    "tl.failed_detail": "发送失败：{detail}",
    "tl.ev.assigned": "已分配给 {agent}",
    "tl.ev.transferred_agent": "{by} 转接给 {agent}",
    "tl.ev.transferred_queue": "{by} 转接到队列 {queue}",
    "tl.ev.wrap_up": "进入话后处理",
    "tl.ev.closed": "会话已关闭{disposition}",
    "tl.ev.reopened": "会话已重新打开",
    "tl.ev.queued": "进入队列 {queue}",
    "tl.ev.labels": "标签：{labels}",
    "tl.ev.priority": "优先级设为 {n}",
    "composer.reply": "回复",
    "composer.note": "内部备注",
    "composer.placeholder": "输入回复…（Ctrl+Enter 发送）",
    "composer.note_placeholder": "写内部备注；@用户名 可通知同事…",
    "composer.send": "发送",
    "composer.add_note": "添加备注",
    "composer.sending": "正在发送…",
    "composer.via": "发送渠道",
    "composer.via_default": "{channel} · {address}（本会话）",
    "composer.via_other": "{channel} · {address}",
    "composer.opted_out": "已退订",
    "composer.undeliverable": "无法送达",
    "composer.window_closed": "24 小时窗口已关闭",
    "composer.canned": "快捷回复",
    "composer.canned_pick": "插入快捷回复…",
    "composer.hint": "Ctrl+Enter 发送 · / 聚焦输入框 · J/K 切换会话",
    "composer.empty": "请先输入内容。",
    "composer.mention_hint": "提及同事",
    "profile.title": "客户",
    "profile.name": "姓名",
    "profile.segment": "客户分群",
    "profile.language": "语言",
    "profile.tags": "标签",
    "profile.tags_hint": "用逗号分隔",
    "profile.save": "保存资料",
    "profile.saved": "客户资料已保存。",
    "profile.merge": "合并…",
    "profile.merge_prompt": "要将哪位客户合并到此客户？请输入客户编号。",
    "profile.merge_force": "两者的已验证标识有冲突（{detail}）。仍要合并吗？",
    "profile.merged": "客户 #{other} 已合并到此客户。要撤销吗？",
    "profile.unmerged": "合并已撤销。",
    "profile.endpoints": "联系方式",
    "profile.verified": "已验证",
    "profile.opted_out": "已退订：{channels}",
    "profile.undeliverable": "无法送达：{reason}",
    "profile.conversations": "会话记录",
    "profile.since": "客户创建于 {date}",
    "profile.none": "未打开会话。",
    "actions.title": "操作",
    "actions.transfer": "转接…",
    "actions.labels": "会话标签",
    "actions.labels_hint": "用逗号分隔，例如 账单, 退款",
    "actions.labels_save": "设置标签",
    "actions.labels_saved": "标签已更新。",
    "actions.priority": "优先级",
    "actions.priority_saved": "优先级已更新。",
    "actions.priority.low": "低",
    "actions.priority.normal": "普通",
    "actions.priority.high": "高",
    "actions.priority.urgent": "紧急",
    "actions.wrap_up": "话后处理",
    "actions.wrap_up_done": "会话已进入话后处理。",
    "actions.disposition": "处理结果",
    "actions.disposition_hint": "例如 resolved",
    "actions.disposition_required": "请先选择处理结果代码。",
    "actions.close": "关闭会话",
    "actions.closed": "会话已关闭。",
    "disp.resolved": "已解决",
    "disp.follow_up": "需要跟进",
    "disp.escalated": "已升级",
    "disp.no_response": "客户无回应",
    "disp.spam": "垃圾信息",
    "disp.duplicate": "重复",
    "transfer.title": "转接会话",
    "transfer.to_agent": "转给坐席",
    "transfer.to_queue": "转到团队 / 队列",
    "transfer.agent": "坐席",
    "transfer.queue": "队列",
    "transfer.note": "给下一位坐席的备注",
    "transfer.note_placeholder": "已完成的处理，待处理的事项…",
    "transfer.confirm": "转接",
    "transfer.cancel": "取消",
    "transfer.done": "会话已转接。",
    "transfer.pick_agent": "请选择坐席。",
    "transfer.pick_queue": "请输入队列。",
    "mention.toast": "{who} 在会话 #{id} 中提到了您",
    "mention.toast_short": "有人在备注中提到了您",
    "error.command": "{detail}",
    "error.timeout": "服务器未及时响应。",
    "error.generic": "出错了：{detail}",
    "shortcuts.title": "键盘快捷键",
    "shortcuts.accept": "接受正在响铃的分配",
    "shortcuts.reject": "拒绝正在响铃的分配",
    "shortcuts.send": "发送回复 / 备注",
    "shortcuts.next": "下一个 / 上一个会话",
    "shortcuts.focus": "聚焦回复框",
    "shortcuts.help": "显示本帮助",
    "shortcuts.close": "关闭",
    "time.s": "{n}秒",
    "time.ms": "{m}分{s}秒",
    "time.hm": "{h}小时{m}分",
    "time.d": "{d}天{h}小时",
    "channel.sms": "短信",
    "channel.mms": "彩信",
    "channel.whatsapp": "WhatsApp",
    "channel.email": "邮件",
    "channel.telegram": "Telegram",
    "channel.webchat": "网页聊天",
    "channel.voice": "电话",
    "channel.wechat": "微信",
    "channel.app": "应用",
    "channel.api": "API",
    "kind.phone": "电话号码",
    "kind.email": "邮箱",
    "kind.telegram": "Telegram",
    "kind.webchat": "网页聊天",
    "kind.wechat": "微信",
    "kind.app": "应用",
    "kind.api": "API",
  },
};

export const LANGUAGES = [
  ["en", "English"],
  ["zh-CN", "简体中文"],
];
const STORAGE_KEY = "hub.console.lang";

function pick(raw) {
  if (!raw) return null;
  if (CATALOG[raw]) return raw;
  return raw.toLowerCase().startsWith("zh") ? "zh-CN" : raw.toLowerCase().startsWith("en") ? "en" : null;
}

function initialLang() {
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    stored = null; // storage can be blocked; fall back to the browser language
  }
  return pick(stored) || pick(navigator.language) || "en";
}

let lang = initialLang();

/** The active language code ("en" or "zh-CN"). */
export function currentLang() {
  return lang;
}

/** Translate a key; unknown keys fall back to English, then to the key itself. */
export function t(key, params = {}) {
  const text = CATALOG[lang][key] ?? CATALOG.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** True when the catalog knows the key. */
export function has(key) {
  return key in CATALOG.en;
}

/** Fill every element that declares a catalog key. */
export function applyI18n(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const [attr, name] of [
    ["i18nPlaceholder", "placeholder"],
    ["i18nTitle", "title"],
    ["i18nAriaLabel", "aria-label"],
  ]) {
    const sel = `[data-${attr.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}]`;
    for (const el of root.querySelectorAll(sel)) el.setAttribute(name, t(el.dataset[attr]));
  }
}

/** Switch language, remember the choice and tell the page to re-render. */
export function setLang(next) {
  lang = pick(next) || "en";
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // not remembered, still applied
  }
  applyI18n();
  document.dispatchEvent(new CustomEvent("langchange", { detail: { lang } }));
}

/** Fill a <select> with the languages and keep it in sync. */
export function bindLanguageSelect(select) {
  while (select.firstChild) select.removeChild(select.firstChild);
  for (const [code, name] of LANGUAGES) {
    const opt = document.createElement("option");
    opt.value = code;
    opt.textContent = name;
    select.appendChild(opt);
  }
  select.value = lang;
  select.addEventListener("change", () => setLang(select.value));
}

/** A channel's display name. */
export function channelName(channel) {
  const key = `channel.${channel}`;
  return has(key) ? t(key) : channel || "?";
}

/** A short duration: 42s, 3m 05s, 2h 10m, 1d 4h. */
export function duration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  if (s < 60) return t("time.s", { n: s });
  if (s < 3600) return t("time.ms", { m: Math.floor(s / 60), s: String(s % 60).padStart(2, "0") });
  if (s < 86400) return t("time.hm", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  return t("time.d", { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
}

/** A time of day, or date and time when not today. */
export function clock(date) {
  const d = date instanceof Date ? date : new Date(date);
  if (Number.isNaN(d.getTime())) return "";
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  const opts = sameDay
    ? { hour: "2-digit", minute: "2-digit" }
    : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat(lang, opts).format(d);
}

/** A calendar day label: Today, Yesterday or the date. */
export function dayLabel(date) {
  const d = date instanceof Date ? date : new Date(date);
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86400000);
  if (d.toDateString() === today.toDateString()) return t("conv.today");
  if (d.toDateString() === yesterday.toDateString()) return t("conv.yesterday");
  return new Intl.DateTimeFormat(lang, { year: "numeric", month: "long", day: "numeric" }).format(d);
}
