// @mention completion in the note composer: type "@" and a few letters, pick a colleague.
import { app, command } from "/static/app.js";
import { byTestId, fill, h } from "/static/dom.js";
import { t } from "/static/i18n.js";
import { insertText } from "/static/composer.js";

let matches = [];
let active = 0;
let anchor = null; // index of the "@" being completed

function menu() {
  return byTestId("mention-menu");
}

function hide() {
  menu().hidden = true;
  matches = [];
  anchor = null;
}

function query(input) {
  const upto = input.value.slice(0, input.selectionStart ?? input.value.length);
  const m = /(^|\s)@([\w.-]*)$/.exec(upto);
  return m ? { at: upto.length - m[2].length - 1, text: m[2].toLowerCase() } : null;
}

function render() {
  fill(
    menu(),
    h("li", { class: "mention-hint muted small" }, t("composer.mention_hint")),
    matches.map((a, i) =>
      h(
        "li",
        {
          class: `mention-option ${i === active ? "active" : ""}`,
          "data-testid": "mention-option",
          "data-username": a.username,
          onmousedown: (ev) => {
            ev.preventDefault(); // keep focus in the textarea
            pick(i);
          },
        },
        h("strong", {}, a.display_name || a.username),
        h("span", { class: "muted small" }, ` @${a.username}`),
      ),
    ),
  );
  menu().hidden = matches.length === 0;
}

function pick(i) {
  const a = matches[i];
  if (!a || anchor === null) return;
  const input = byTestId("reply-input");
  input.setSelectionRange(anchor, input.selectionStart);
  const from = anchor;
  hide();
  insertText(`@${a.username} `, { replaceFrom: from });
}

let loaded = false;
async function ensureAgents() {
  if (loaded) return;
  loaded = true;
  try {
    const result = await command("agents", {}, { quiet: true });
    for (const a of result.items || []) app.agents.set(a.id, a);
  } catch {
    loaded = false;
  }
}

export function initMentions() {
  const input = byTestId("reply-input");
  input.addEventListener("input", async () => {
    if (byTestId("composer").dataset.mode !== "note") return hide();
    const q = query(input);
    if (!q) return hide();
    await ensureAgents();
    anchor = q.at;
    matches = [...app.agents.values()]
      .filter((a) => a.id !== app.me?.id)
      .filter((a) => a.username.toLowerCase().startsWith(q.text) || String(a.display_name || "").toLowerCase().includes(q.text))
      .slice(0, 6);
    active = 0;
    render();
  });
  input.addEventListener("keydown", (ev) => {
    if (menu().hidden || !matches.length) return;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      active = (active + (ev.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
      render();
    } else if ((ev.key === "Enter" && !ev.ctrlKey && !ev.metaKey) || ev.key === "Tab") {
      ev.preventDefault();
      ev.stopImmediatePropagation();
      pick(active);
    } else if (ev.key === "Escape") {
      hide();
    }
  });
  input.addEventListener("blur", () => setTimeout(hide, 150));
  document.addEventListener("hub:mode", hide);
}
