// Admin page: the audit log, newest first, filtered and paged through GET /api/v1/audit.
// Every stored value (actors, actions, details) is placed with textContent only (dom.js).
import { byTestId, h } from "/static/dom.js";

const FILTERS = ["actor", "action", "target_type", "target_id"];
let next = null;

function status(text) {
  byTestId("audit-status").textContent = text;
}

function query(before) {
  const form = new FormData(byTestId("audit-filter"));
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = String(form.get(name) || "").trim();
    if (value) params.set(name, value);
  }
  params.set("limit", "50");
  if (before) params.set("before", String(before));
  return params;
}

// Stored times are UTC; a time without a zone would otherwise be read as local time.
function when(iso) {
  return new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`).toLocaleString();
}

function row(e) {
  const target = e.target_id === null ? e.target_type : `${e.target_type} ${e.target_id}`;
  const details = Object.keys(e.details || {}).length ? JSON.stringify(e.details) : "";
  return h(
    "tr",
    { "data-testid": "audit-row", "data-action": e.action },
    h("td", {}, when(e.created_at)),
    h("td", {}, e.actor),
    h("td", {}, h("code", {}, e.action)),
    h("td", {}, target),
    h("td", {}, e.ip || "—"),
    h("td", { class: "admin-text" }, details),
  );
}

async function load(before) {
  const resp = await fetch(`/api/v1/audit?${query(before)}`, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    status(data.detail || `HTTP ${resp.status}`);
    return;
  }
  const rows = byTestId("audit-rows");
  if (!before) rows.replaceChildren();
  for (const e of data.items) rows.appendChild(row(e));
  next = data.next;
  byTestId("audit-older").hidden = next === null;
  status(rows.children.length ? "" : "No entries.");
}

byTestId("audit-filter").addEventListener("submit", (ev) => {
  ev.preventDefault();
  load(null);
});
byTestId("audit-older").addEventListener("click", () => load(next));
load(null);
