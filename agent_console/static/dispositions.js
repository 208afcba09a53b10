// Wrap-up codes of the open conversation's queue, from the hub (`dispositions` command):
// the close form lists them and refuses to close without one when the queue requires it.
import { app, command } from "/static/app.js";
import { fill, h } from "/static/dom.js";
import { has, t } from "/static/i18n.js";

// "<conversation id>|<queue>" -> {items: [{code, label}], required}; a transfer to another
// queue asks again.
const cache = new Map();
const asked = new Set();

function keyOf(conv) {
  return `${conv.id}|${conv.queue || ""}`;
}

function label(item) {
  // The hub's default codes have translations; a team's own codes show their label.
  const key = `disp.${item.code}`;
  return has(key) ? t(key) : item.label || item.code;
}

async function load(conv, select) {
  const key = keyOf(conv);
  if (asked.has(key)) return;
  asked.add(key);
  try {
    const result = await command("dispositions", { conversation_id: conv.id }, { quiet: true });
    cache.set(key, { items: result.items || [], required: Boolean(result.required) });
  } catch {
    asked.delete(key);
    return;
  }
  if (app.current && keyOf(app.current.conversation) === key) fillDispositions(select, app.current.conversation);
}

/** Fill the disposition select of ``conv`` (keeping the agent's choice); loads the codes once. */
export function fillDispositions(select, conv) {
  const chosen = select.value;
  const known = cache.get(keyOf(conv));
  if (!known) load(conv, select);
  const items = known ? known.items : [];
  fill(
    select,
    h("option", { value: "" }, t(known?.required ? "actions.disposition_hint_required" : "actions.disposition_hint")),
    items.map((item) => h("option", { value: item.code, "data-testid": "disposition-option" }, label(item))),
  );
  select.required = Boolean(known?.required);
  select.value = items.some((item) => item.code === chosen) ? chosen : "";
}

/** Whether the conversation's queue requires a disposition to close (unknown: not yet loaded). */
export function dispositionRequired(conv) {
  return Boolean(cache.get(keyOf(conv))?.required);
}
