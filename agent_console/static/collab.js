// The customer panel's shared notes and follow-up tasks (REST: /api/v1/customers/{id}/notes,
// /api/v1/customers/{id}/follow-ups, /api/v1/follow-ups/{id}/done). Notes are internal: all
// teams read them, or only the writer's team; a follow-up has an owner and a due date.
import { app, getJson, sendJson as send, toast } from "/static/app.js";
import { byTestId, fill, h } from "/static/dom.js";
import { currentLang, t } from "/static/i18n.js";

let customerId = null;

const when = (iso) => new Date(iso).toLocaleString(currentLang(), { dateStyle: "short", timeStyle: "short" });

function renderNotes(items) {
  fill(
    byTestId("customer-notes"),
    items.length
      ? items.map((n) =>
          h(
            "li",
            { class: "collab-item", "data-testid": "customer-note" },
            h("div", { class: "collab-text" }, n.text),
            h("div", { class: "muted small" }, `${n.author || t("tl.system")} · ${when(n.created_at)}${n.team ? ` · ${t("collab.team_only", { team: n.team })}` : ""}`),
          ),
        )
      : [h("li", { class: "muted small" }, t("collab.no_notes"))],
  );
}

function renderTasks(items) {
  fill(
    byTestId("follow-ups"),
    items.length
      ? items.map((f) =>
          h(
            "li",
            { class: "collab-item", "data-testid": "follow-up" },
            h("div", { class: "collab-text" }, f.title),
            h(
              "div",
              { class: "muted small" },
              f.due_at ? t("collab.due", { when: when(f.due_at) }) : t("collab.no_due"),
              " ",
              h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "follow-up-done", onclick: () => done(f) }, t("collab.done")),
            ),
          ),
        )
      : [h("li", { class: "muted small" }, t("collab.no_tasks"))],
  );
}

async function load() {
  const id = app.current?.customer?.id ?? null;
  byTestId("collab").hidden = id === null;
  if (id === null || id === customerId) return;
  customerId = id;
  try {
    const [notes, tasks] = await Promise.all([getJson(`/api/v1/customers/${id}/notes`), getJson(`/api/v1/follow-ups?customer_id=${id}`)]);
    if (customerId !== id) return;
    renderNotes(notes.items);
    renderTasks(tasks.items);
  } catch (err) {
    toast(err.message, "error");
  }
}

async function reload() {
  const id = customerId;
  customerId = null;
  if (id !== null) await load();
}

async function addNote(ev) {
  ev.preventDefault();
  const text = byTestId("note-text").value.trim();
  if (!text || customerId === null) return;
  try {
    await send("POST", `/api/v1/customers/${customerId}/notes`, { text, visibility: byTestId("note-visibility").value });
    byTestId("note-text").value = "";
    await reload();
  } catch (err) {
    toast(err.message, "error");
  }
}

async function addTask(ev) {
  ev.preventDefault();
  const title = byTestId("follow-up-title").value.trim();
  if (!title || customerId === null) return;
  const due = byTestId("follow-up-due").value; // local "YYYY-MM-DDTHH:MM"
  const body = { title, conversation_id: app.current?.id ?? null };
  if (due) body.due_at = new Date(due).toISOString();
  try {
    await send("POST", `/api/v1/customers/${customerId}/follow-ups`, body);
    byTestId("follow-up-title").value = "";
    byTestId("follow-up-due").value = "";
    await reload();
  } catch (err) {
    toast(err.message, "error");
  }
}

async function done(task) {
  try {
    await send("POST", `/api/v1/follow-ups/${task.id}/done`);
    await reload();
  } catch (err) {
    toast(err.message, "error");
  }
}

export function initCollab() {
  byTestId("note-form").addEventListener("submit", addNote);
  byTestId("follow-up-form").addEventListener("submit", addTask);
  document.addEventListener("hub:opened", load);
  document.addEventListener("langchange", reload);
}
