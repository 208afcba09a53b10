// The /admin area: people, teams & queues, channels. Every action goes through the
// documented REST API (so all of it is scriptable too); stored text is placed with
// textContent only (dom.js). Admins change everything; supervisors see their team's people
// and adjust their skills and capacity.
import { byTestId, fill, h } from "/static/dom.js";
import { bindLanguageSelect, has, t } from "/static/i18n.js";
import { applyAdminI18n, at } from "/static/admin-i18n.js";

const SELECTIONS = ["longest_idle", "best_proficiency", "least_busy", "round_robin", "random"];
const ROLES = ["agent", "supervisor", "admin"];
const state = { me: null, agents: [], teams: [], queues: [], channels: null, tab: "people" };

async function api(method, path, body) {
  const write = method !== "GET";
  const resp = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...(write ? { "Content-Type": "application/json" } : {}) },
    body: write ? JSON.stringify(body ?? {}) : undefined,
  });
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 403) throw new Error(at("forbidden"));
  if (!resp.ok) throw new Error(data.detail || `HTTP ${resp.status}`);
  return data;
}

function say(text, ok = true) {
  const box = byTestId("admin-status");
  box.textContent = text;
  box.className = `admin-status ${ok ? "ok" : "bad"}`;
}

const isAdmin = () => state.me?.role === "admin";

// "billing:4, lang.zh:5" <-> [{name, proficiency}] and {sms: 2}
function parsePairs(text) {
  const out = [];
  for (const part of text.split(/[,;\n]/)) {
    const item = part.trim();
    if (!item) continue;
    const [name, value] = item.split(":").map((s) => s.trim());
    const number = value === undefined || value === "" ? 3 : Number(value);
    if (!name || Number.isNaN(number)) throw new Error(`${item}: name:number`);
    out.push([name, number]);
  }
  return out;
}
const skillsText = (skills) => skills.map((s) => `${s.name}:${s.proficiency}`).join(", ");
const capacityText = (cap) => Object.entries(cap || {}).map(([k, v]) => `${k}:${v}`).join(", ");

function field(label, input) {
  return h("label", {}, h("span", {}, label), input);
}

// ------------------------------------------------------------------ people
async function loadPeople() {
  const [agents, teams] = await Promise.all([api("GET", "/api/v1/agents"), api("GET", "/api/v1/teams")]);
  state.agents = agents.items;
  state.teams = teams.items;
}

function visibleAgents() {
  if (isAdmin()) return state.agents;
  const mine = state.agents.find((a) => a.id === state.me.id)?.team;
  return state.agents.filter((a) => mine && a.team === mine);
}

function renderPeople(view) {
  const rows = visibleAgents().map((a) =>
    h(
      "tr",
      { "data-testid": "person-row", "data-username": a.username },
      h("td", {}, a.username),
      h("td", {}, a.display_name),
      h("td", {}, at(`role.${a.role}`)),
      h("td", {}, a.team ?? ""),
      h("td", {}, h("div", { class: "admin-chips" }, a.skills.map((s) => h("span", { class: "admin-chip" }, `${s.name} ${s.proficiency}`)))),
      h("td", {}, capacityText(a.capacity)),
      h("td", {}, has(`state.${a.state}`) ? t(`state.${a.state}`) : a.state),
      h("td", {}, a.active ? at("yes") : at("no")),
      h(
        "td",
        { class: "admin-actions" },
        h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "person-edit", onclick: () => personForm(a) }, at("edit")),
        isAdmin()
          ? [
              h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "person-reset", onclick: () => resetPassword(a) }, at("reset_password")),
              h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "person-active", onclick: () => setActive(a, !a.active) }, a.active ? at("deactivate") : at("activate")),
            ]
          : null,
      ),
    ),
  );
  fill(
    view,
    h(
      "section",
      { class: "admin-panel", "data-testid": "people-panel" },
      h("h2", {}, at("people.title")),
      h("p", { class: "muted small" }, at("people.help")),
      h("div", { "data-testid": "person-secret" }),
      h(
        "table",
        { class: "admin-table" },
        h("thead", {}, h("tr", {}, ["username", "name", "role", "team", "skills", "capacity", "state", "active", "actions"].map((k) => h("th", {}, at(k))))),
        h("tbody", {}, rows),
      ),
      h("div", { "data-testid": "person-form-slot" }),
      isAdmin() ? h("button", { type: "button", class: "btn", "data-testid": "person-new", onclick: () => personForm(null) }, at("people.add")) : null,
    ),
    isAdmin() ? importPanel() : null,
  );
}

function teamList() {
  return h("datalist", { id: "admin-teams" }, state.teams.map((t) => h("option", { value: t.name })));
}

function personForm(agent) {
  const slot = byTestId("person-form-slot");
  const creating = agent === null;
  const input = (name, value, extra = {}) => h("input", { name, value: value ?? "", "data-testid": `person-${name}`, ...extra });
  const role = h("select", { name: "role", "data-testid": "person-role", disabled: !isAdmin() }, ROLES.map((r) => h("option", { value: r, selected: (agent?.role ?? "agent") === r }, at(`role.${r}`))));
  const form = h(
    "form",
    { class: "admin-form", "data-testid": "person-form" },
    h("h3", { class: "wide" }, creating ? at("people.add") : at("people.edit", { name: agent.username })),
    creating ? field(at("username"), input("username", "", { required: true, pattern: "[A-Za-z0-9_.\\-]+" })) : null,
    field(at("name"), input("display_name", agent?.display_name)),
    field(at("role"), role),
    field(at("team"), input("team", agent?.team, { list: "admin-teams", disabled: !isAdmin() })),
    teamList(),
    field(at("skills"), input("skills", agent ? skillsText(agent.skills) : "")),
    field(at("capacity"), input("capacity", agent ? capacityText(agent.capacity) : "")),
    creating ? field(at("password"), input("password", "", { type: "text", placeholder: at("people.generate"), minlength: 8 })) : null,
    h(
      "div",
      { class: "admin-buttons" },
      h("button", { type: "submit", class: "btn", "data-testid": "person-save" }, at("save")),
      h("button", { type: "button", class: "btn btn-ghost", onclick: () => fill(slot) }, at("cancel")),
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = Object.fromEntries(new FormData(form).entries());
    try {
      const body = {
        display_name: data.display_name ?? "",
        skills: parsePairs(data.skills || "").map(([name, proficiency]) => ({ name, proficiency })),
      };
      const cap = Object.fromEntries(parsePairs(data.capacity || ""));
      if (Object.keys(cap).length || !creating) body.capacity = cap;
      if (isAdmin()) {
        body.role = role.value;
        if (data.team) body.team = data.team;
      }
      if (creating) {
        const password = data.password || crypto.getRandomValues(new Uint32Array(3)).join("-");
        await api("POST", "/api/v1/agents", { ...body, username: data.username, password });
        await refresh();
        showSecret(at("people.password_once", { name: data.username }), password);
        say(at("people.created", { name: data.username }));
      } else {
        if (!Object.keys(body.capacity).length) delete body.capacity;
        await api("PATCH", `/api/v1/agents/${agent.id}`, body);
        await refresh();
        say(at("saved"));
      }
    } catch (err) {
      say(err.message, false);
    }
  });
  fill(slot, form);
  form.querySelector("input")?.focus();
}

function showSecret(label, secret) {
  fill(byTestId("person-secret"), h("p", {}, label, " ", h("span", { class: "admin-secret", "data-testid": "secret-value" }, secret)));
}

async function resetPassword(agent) {
  try {
    const out = await api("POST", `/api/v1/agents/${agent.id}/password-reset`);
    showSecret(at("people.password_once", { name: agent.username }), out.password);
  } catch (err) {
    say(err.message, false);
  }
}

async function setActive(agent, active) {
  try {
    await api("PATCH", `/api/v1/agents/${agent.id}`, { active });
    await refresh();
    say(at("saved"));
  } catch (err) {
    say(err.message, false);
  }
}

function importPanel() {
  const text = h("textarea", { "data-testid": "import-csv", spellcheck: "false", placeholder: "username,display_name,role,team,skills,capacity" });
  const file = h("input", { type: "file", accept: ".csv,text/csv", "data-testid": "import-file" });
  const result = h("div", { "data-testid": "import-result" });
  file.addEventListener("change", async () => {
    if (file.files?.[0]) text.value = await file.files[0].text();
  });
  const run = async (dryRun) => {
    try {
      const out = await api("POST", "/api/v1/agents/import", { csv: text.value, dry_run: dryRun });
      const summary = at(dryRun ? "import.summary" : "import.done", out);
      fill(
        result,
        h("p", { "data-testid": "import-summary" }, summary),
        h(
          "table",
          { class: "admin-table" },
          h("thead", {}, h("tr", {}, [at("import.line"), at("username"), at("team"), at("skills"), at("import.action"), at("password")].map((x) => h("th", {}, x)))),
          h(
            "tbody",
            {},
            out.rows.map((r) =>
              h(
                "tr",
                { class: r.action === "error" ? "error" : "", "data-testid": "import-row" },
                h("td", {}, String(r.line)),
                h("td", {}, r.username),
                h("td", {}, r.team ?? ""),
                h("td", {}, skillsText(r.skills)),
                h("td", {}, r.action === "error" ? `${at("import.error")}: ${r.error}` : at(`import.${r.action}`)),
                h("td", {}, r.password ? h("span", { class: "admin-secret" }, r.password) : ""),
              ),
            ),
          ),
        ),
      );
      if (!dryRun) await refresh(false);
    } catch (err) {
      say(err.message, false);
    }
  };
  return h(
    "section",
    { class: "admin-panel admin-import", "data-testid": "import-panel" },
    h("h2", {}, at("import.title")),
    h("p", { class: "muted small" }, at("import.help")),
    h("div", { class: "admin-form" }, h("div", { class: "wide" }, text), h("div", { class: "wide" }, file)),
    h(
      "div",
      { class: "admin-buttons", style: { display: "flex", gap: "8px", marginTop: "8px" } },
      h("button", { type: "button", class: "btn btn-ghost", "data-testid": "import-preview", onclick: () => run(true) }, at("import.preview")),
      h("button", { type: "button", class: "btn", "data-testid": "import-run", onclick: () => run(false) }, at("import.run")),
    ),
    result,
  );
}

// ------------------------------------------------------------------ teams and queues
async function loadQueues() {
  const [teams, queues] = await Promise.all([api("GET", "/api/v1/teams"), api("GET", "/api/v1/queues")]);
  state.teams = teams.items;
  state.queues = queues.items;
}

function renderQueues(view) {
  const teamName = h("input", { "data-testid": "team-name", required: true, maxlength: 100 });
  const teamForm = h(
    "form",
    { class: "admin-form", "data-testid": "team-form" },
    field(at("name"), teamName),
    h("div", {}, h("button", { type: "submit", class: "btn", "data-testid": "team-add" }, at("teams.add"))),
  );
  teamForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/v1/teams", { name: teamName.value.trim() });
      say(at("teams.created", { name: teamName.value.trim() }));
      await refresh(false);
    } catch (err) {
      say(err.message, false);
    }
  });
  fill(
    view,
    h(
      "section",
      { class: "admin-panel", "data-testid": "teams-panel" },
      h("h2", {}, at("teams.title")),
      h(
        "table",
        { class: "admin-table" },
        h("thead", {}, h("tr", {}, [at("name"), at("teams.people"), at("teams.queues")].map((x) => h("th", {}, x)))),
        h("tbody", {}, state.teams.map((t) => h("tr", { "data-testid": "team-row", "data-team": t.name }, h("td", {}, t.name), h("td", {}, String(t.agents)), h("td", {}, t.queues.join(", "))))),
      ),
      isAdmin() ? teamForm : null,
    ),
    h(
      "section",
      { class: "admin-panel", "data-testid": "queues-panel" },
      h("h2", {}, at("queues.title")),
      h(
        "table",
        { class: "admin-table" },
        h("thead", {}, h("tr", {}, [at("name"), at("team"), at("queues.steps"), at("queues.sl"), at("actions")].map((x) => h("th", {}, x)))),
        h(
          "tbody",
          {},
          state.queues.map((q) =>
            h(
              "tr",
              { "data-testid": "queue-row", "data-queue": q.name },
              h("td", {}, q.name),
              h("td", {}, q.team ?? ""),
              h("td", {}, q.steps.map((s) => `${s.expression || "*"}${s.timeout_s ? ` (${s.timeout_s}s)` : ""}`).join(" → ")),
              h("td", {}, String(q.sl_threshold_s)),
              h("td", {}, isAdmin() ? h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "queue-edit", onclick: () => queueForm(q) }, at("edit")) : null),
            ),
          ),
        ),
      ),
      h("div", { "data-testid": "queue-form-slot" }),
      isAdmin() ? h("button", { type: "button", class: "btn", "data-testid": "queue-new", onclick: () => queueForm(null) }, at("queues.add")) : null,
    ),
  );
}

function stepRow(step, list) {
  const expr = h("input", { value: step.expression ?? "", "data-testid": "step-expression", placeholder: at("queues.step"), maxlength: 500 });
  const timeout = h("input", { type: "number", min: "1", step: "any", value: step.timeout_s ?? "", "data-testid": "step-timeout", placeholder: at("queues.timeout") });
  const check = h("div", { class: "check", "data-testid": "step-check" });
  const row = h("div", { class: "admin-step", "data-testid": "step-row" }, expr, timeout, h("button", { type: "button", class: "btn btn-ghost btn-sm", onclick: () => row.remove() }, at("remove")), check);
  let timer = null;
  const verify = async () => {
    try {
      const out = await api("POST", "/api/v1/routing/preview", { expression: expr.value });
      if (!out.valid) {
        check.className = "check bad";
        check.textContent = at("queues.check_bad", { error: out.error });
      } else {
        check.className = "check ok";
        const names = out.qualifies.map((q) => q.display_name || q.username).join(", ");
        check.textContent = out.qualifies.length ? at("queues.check_ok", { n: out.qualifies.length, available: out.available, names }) : at("queues.check_none");
      }
    } catch (err) {
      check.textContent = err.message;
    }
  };
  expr.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(verify, 250);
  });
  row.read = () => ({ expression: expr.value.trim(), timeout_s: timeout.value ? Number(timeout.value) : null });
  list.appendChild(row);
  verify();
}

// "mon-fri 09:00-18:00" lines <-> {"mon": "09:00-18:00", ...}
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
function parseHours(text) {
  const out = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const m = line.match(/^([a-z]{3})(?:-([a-z]{3}))?\s+(\d{2}:\d{2}-\d{2}:\d{2})$/i);
    if (!m) throw new Error(`${line}: day(-day) HH:MM-HH:MM`);
    const from = DAYS.indexOf(m[1].toLowerCase());
    const to = m[2] ? DAYS.indexOf(m[2].toLowerCase()) : from;
    if (from < 0 || to < from) throw new Error(`${line}: days are ${DAYS.join(" ")}`);
    for (let d = from; d <= to; d++) out[DAYS[d]] = m[3];
  }
  return out;
}
function hoursText(hours) {
  return Object.entries(hours || {}).map(([d, span]) => `${d} ${span}`).join("\n");
}

function queueForm(queue) {
  const slot = byTestId("queue-form-slot");
  const creating = queue === null;
  const options = queue?.options ?? {};
  const num = (name, value) => h("input", { type: "number", min: "0", step: "any", name, value: value ?? "", "data-testid": `queue-${name}` });
  const name = h("input", { name: "name", value: queue?.name ?? "", required: true, maxlength: 100, disabled: !creating, "data-testid": "queue-name" });
  const team = h("select", { name: "team", "data-testid": "queue-team" }, h("option", { value: "" }, at("queues.no_team")), state.teams.map((t) => h("option", { value: t.name, selected: queue?.team === t.name }, t.name)));
  const selection = h("select", { name: "selection", "data-testid": "queue-selection" }, SELECTIONS.map((s) => h("option", { value: s, selected: (queue?.selection ?? "longest_idle") === s }, at(`sel.${s}`))));
  const steps = h("div", { class: "admin-steps", "data-testid": "queue-steps" });
  for (const s of queue?.steps ?? [{ expression: "" }]) stepRow(s, steps);
  const form = h(
    "form",
    { class: "admin-form", "data-testid": "queue-form" },
    h("h3", { class: "wide" }, creating ? at("queues.add") : at("queues.edit", { name: queue.name })),
    field(at("queues.name"), name),
    field(at("team"), team),
    field(at("queues.selection"), selection),
    field(at("queues.priority"), num("priority", queue?.priority ?? 0)),
    field(at("queues.sl"), num("sl_threshold_s", queue?.sl_threshold_s ?? 20)),
    field(at("queues.offer_timeout"), num("offer_timeout_s", options.offer_timeout_s)),
    field(at("queues.wrap_up"), num("wrap_up_s", options.wrap_up_s)),
    field(at("queues.last_agent"), num("last_agent_wait_s", options.last_agent_wait_s)),
    h("h4", { class: "wide" }, at("queues.hours")),
    field(at("queues.hours_days"), h("textarea", { name: "hours", rows: 3, "data-testid": "queue-hours", placeholder: "mon-fri 09:00-18:00\nsat 10:00-14:00" }, hoursText(options.hours))),
    field(at("queues.zone"), h("input", { name: "zone", value: options.zone ?? "", placeholder: "Europe/Berlin", "data-testid": "queue-zone" })),
    field(at("queues.holidays"), h("input", { name: "holidays", value: (options.holidays ?? []).join(", "), placeholder: "2026-12-25, 2027-01-01", "data-testid": "queue-holidays" })),
    field(at("queues.closed_reply"), h("input", { name: "closed_reply", value: options.closed_reply?.default ?? "", maxlength: 1000, "data-testid": "queue-closed-reply" })),
    h("label", { class: "admin-check" }, h("input", { type: "checkbox", name: "csat", checked: options.csat === true, "data-testid": "queue-csat" }), ` ${at("queues.csat")}`),
    h("h4", { class: "wide" }, at("queues.steps")),
    steps,
    h(
      "div",
      { class: "admin-buttons" },
      h("button", { type: "button", class: "btn btn-ghost", "data-testid": "step-add", onclick: () => stepRow({ expression: "" }, steps) }, at("queues.add_step")),
      h("button", { type: "submit", class: "btn", "data-testid": "queue-save" }, at("save")),
      h("button", { type: "button", class: "btn btn-ghost", onclick: () => fill(slot) }, at("cancel")),
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = Object.fromEntries(new FormData(form).entries());
    const opts = { ...options };
    for (const key of ["offer_timeout_s", "wrap_up_s", "last_agent_wait_s"]) {
      if (data[key] === "" || data[key] === undefined) delete opts[key];
      else opts[key] = Number(data[key]);
    }
    try {
      const hours = parseHours(data.hours || "");
      if (Object.keys(hours).length) opts.hours = hours;
      else delete opts.hours;
    } catch (err) {
      say(err.message, false);
      return;
    }
    if (data.zone?.trim()) opts.zone = data.zone.trim();
    else delete opts.zone;
    const holidays = (data.holidays || "").split(",").map((x) => x.trim()).filter(Boolean);
    if (holidays.length) opts.holidays = holidays;
    else delete opts.holidays;
    if (data.closed_reply?.trim()) opts.closed_reply = { ...(options.closed_reply || {}), default: data.closed_reply.trim() };
    else delete opts.closed_reply;
    opts.csat = data.csat === "on";
    const queueName = creating ? name.value.trim() : queue.name;
    const body = {
      team: team.value || null,
      selection: selection.value,
      priority: Number(data.priority || 0),
      sl_threshold_s: Number(data.sl_threshold_s || 20),
      options: opts,
      steps: [...steps.querySelectorAll("[data-testid=step-row]")].map((r) => r.read()).map((s) => (s.timeout_s ? s : { expression: s.expression })),
    };
    try {
      await api("PUT", `/api/v1/queues/${encodeURIComponent(queueName)}`, body);
      await refresh(false);
      say(at("queues.saved", { name: queueName }));
    } catch (err) {
      say(err.message, false);
    }
  });
  fill(slot, form);
}

// ------------------------------------------------------------------ channels
async function loadChannels() {
  state.channels = await api("GET", "/api/v1/channels");
}

const when = (iso) => (iso ? new Date(iso).toLocaleString(document.documentElement.lang) : at("channels.never"));

function channelCard(c) {
  const result = h("div", { class: "muted", "data-testid": "channel-result" });
  const done = (out) => {
    result.textContent = at(out.ok ? "channels.ok" : "channels.failed", { detail: out.detail });
    result.style.color = out.ok ? "var(--ok)" : "var(--bad)";
  };
  const to = h("input", { "data-testid": "channel-test-to", placeholder: at("channels.test_to"), size: 18 });
  const label = c.labels[document.documentElement.lang] || c.labels[document.documentElement.lang.slice(0, 2)] || c.label;
  return h(
    "article",
    { class: "admin-card", "data-testid": "channel-card", "data-channel": c.name },
    h("header", {}, h("span", { class: "badge", style: { background: c.colour } }, c.badge), h("strong", {}, label), h("span", { class: `admin-pill ${c.enabled ? "on" : "off"}`, "data-testid": "channel-state" }, c.enabled ? at("channels.on") : at("channels.off"))),
    c.webhooks.length
      ? h("div", {}, h("div", { class: "muted" }, at("channels.webhooks")), c.webhooks.map((url) => h("div", { class: "row" }, h("code", { "data-testid": "channel-webhook" }, url), h("button", { type: "button", class: "btn btn-ghost btn-sm", onclick: async () => { await navigator.clipboard?.writeText(url).catch(() => {}); say(at("channels.copied")); } }, at("channels.copy")))))
      : null,
    c.addresses.length ? h("div", {}, h("div", { class: "muted" }, at("channels.addresses")), c.addresses.map((a) => h("code", { "data-testid": "channel-address" }, a))) : null,
    c.enabled ? h("div", { class: "muted" }, `${at("channels.last_inbound")}: `, h("span", { "data-testid": "channel-last-inbound" }, when(c.last_inbound_at))) : null,
    c.enabled ? h("div", { class: "muted" }, `${at("channels.last_error")}: `, h("span", { "data-testid": "channel-last-error" }, c.last_error ? `${c.last_error} (${when(c.last_error_at)})` : at("channels.none"))) : null,
    c.actions.includes("test_send")
      ? h("div", { class: "row" }, to, h("button", { type: "button", class: "btn btn-sm", "data-testid": "channel-test", onclick: async () => { try { done(await api("POST", `/api/v1/channels/${c.name}/test`, { to: to.value })); } catch (err) { done({ ok: false, detail: err.message }); } } }, at("channels.test")))
      : null,
    c.actions.includes("register_webhook")
      ? h("div", { class: "row" }, h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "channel-register", onclick: async () => { try { done(await api("POST", `/api/v1/channels/${c.name}/webhook`)); } catch (err) { done({ ok: false, detail: err.message }); } } }, at("channels.register")))
      : null,
    result,
  );
}

function renderChannels(view) {
  fill(
    view,
    h(
      "section",
      { class: "admin-panel", "data-testid": "channels-panel" },
      h("h2", {}, at("channels.title")),
      h("p", { class: "muted small", "data-testid": "channels-help" }, at("channels.help", { url: state.channels.public_url })),
      h("div", { class: "admin-cards" }, state.channels.items.map(channelCard)),
    ),
  );
}

// ------------------------------------------------------------------ integration tokens
const SCOPES = ["inbound", "read", "reports", "admin"];

async function loadTokens() {
  state.tokens = (await api("GET", "/api/v1/tokens")).items;
}

function renderTokens(view) {
  const name = h("input", { "data-testid": "token-name", required: true, maxlength: 100 });
  const boxes = SCOPES.map((scope) => h("label", { class: "admin-check" }, h("input", { type: "checkbox", value: scope, "data-testid": `token-scope-${scope}` }), ` ${scope}`));
  const secret = h("div", { "data-testid": "token-secret" });
  const form = h(
    "form",
    { class: "admin-form", "data-testid": "token-form" },
    field(at("name"), name),
    h("div", { class: "wide admin-chips" }, boxes),
    h("div", { class: "admin-buttons" }, h("button", { type: "submit", class: "btn", "data-testid": "token-create" }, at("tokens.create"))),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const scopes = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    try {
      const out = await api("POST", "/api/v1/tokens", { name: name.value.trim(), scopes });
      await refresh(false);
      fill(byTestId("token-secret"), h("p", {}, at("tokens.once"), " ", h("span", { class: "admin-secret", "data-testid": "token-value" }, out.token)));
    } catch (err) {
      say(err.message, false);
    }
  });
  const revoke = async (token) => {
    try {
      await api("DELETE", `/api/v1/tokens/${token.id}`);
      await refresh(false);
      say(at("tokens.revoked", { name: token.name }));
    } catch (err) {
      say(err.message, false);
    }
  };
  fill(
    view,
    h(
      "section",
      { class: "admin-panel", "data-testid": "tokens-panel" },
      h("h2", {}, at("tokens.title")),
      h("p", { class: "muted small" }, at("tokens.help")),
      secret,
      h(
        "table",
        { class: "admin-table" },
        h("thead", {}, h("tr", {}, [at("name"), at("tokens.scopes"), at("tokens.created"), at("tokens.last_used"), at("actions")].map((x) => h("th", {}, x)))),
        h(
          "tbody",
          {},
          state.tokens.map((tk) =>
            h(
              "tr",
              { "data-testid": "token-row", "data-token": tk.name },
              h("td", {}, tk.name),
              h("td", {}, tk.scopes.join(", ")),
              h("td", {}, `${when(tk.created_at)} · ${tk.created_by}`),
              h("td", {}, tk.last_used_at ? when(tk.last_used_at) : at("channels.never")),
              h("td", {}, tk.revoked_at ? at("tokens.is_revoked") : h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "token-revoke", onclick: () => revoke(tk) }, at("tokens.revoke"))),
            ),
          ),
        ),
      ),
      form,
    ),
  );
}

// ------------------------------------------------------------------ automation rules
const EVENTS = ["message.created", "conversation.opened", "conversation.assigned", "conversation.updated", "conversation.closed", "sla.warning", "sla.breached", "csat.received"];
// Each action type and how its one value field becomes the API's shape.
const ACTIONS = {
  set_queue: (v) => ({ queue: v }),
  assign_team: (v) => ({ team: v }),
  require_skills: (v) => ({ skills: list(v) }),
  set_priority: (v) => ({ priority: Number(v) }),
  add_labels: (v) => ({ labels: list(v) }),
  auto_reply: (v) => ({ text: v }),
  notify_supervisors: (v) => ({ text: v }),
  escalate: (v) => (v ? { priority_boost: Number(v) } : {}),
  close: (v) => ({ disposition: v }),
};
const list = (text) => text.split(",").map((x) => x.trim()).filter(Boolean);

async function loadRules() {
  state.rules = (await api("GET", "/api/v1/rules")).items;
}

function describe(obj) {
  return Object.entries(obj).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("; ");
}

function actionRow() {
  const type = h("select", { "data-testid": "rule-action-type" }, Object.keys(ACTIONS).map((a) => h("option", { value: a }, a)));
  const value = h("input", { "data-testid": "rule-action-value", maxlength: 2000, placeholder: at("rules.value") });
  return h("div", { class: "admin-step", "data-testid": "rule-action" }, type, value);
}

function renderRules(view) {
  const name = h("input", { "data-testid": "rule-name", required: true, maxlength: 100 });
  const event = h("select", { "data-testid": "rule-event" }, EVENTS.map((e) => h("option", { value: e }, e)));
  const channel = h("input", { "data-testid": "rule-channel", placeholder: "sms, whatsapp" });
  const contains = h("input", { "data-testid": "rule-contains", placeholder: "refund, 退款" });
  const regex = h("input", { "data-testid": "rule-regex", maxlength: 300 });
  const queue = h("input", { "data-testid": "rule-queue", placeholder: "support" });
  const hours = h("select", { "data-testid": "rule-hours" }, ["", "open", "closed"].map((x) => h("option", { value: x }, at(x ? `rules.${x}` : "rules.any"))));
  const position = h("input", { type: "number", value: "0", "data-testid": "rule-position" });
  const actions = h("div", { class: "wide" }, actionRow());
  const form = h(
    "form",
    { class: "admin-form", "data-testid": "rule-form" },
    field(at("name"), name),
    field(at("rules.event"), event),
    field(at("rules.channel"), channel),
    field(at("rules.contains"), contains),
    field(at("rules.regex"), regex),
    field(at("rules.queue"), queue),
    field(at("rules.hours"), hours),
    field(at("rules.position"), position),
    h("h3", { class: "wide" }, at("rules.actions")),
    actions,
    h(
      "div",
      { class: "admin-buttons" },
      h("button", { type: "button", class: "btn btn-ghost", "data-testid": "rule-add-action", onclick: () => actions.append(actionRow()) }, at("rules.add_action")),
      h("button", { type: "submit", class: "btn", "data-testid": "rule-save" }, at("rules.save")),
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const conditions = {};
    if (channel.value.trim()) conditions.channel = list(channel.value);
    if (contains.value.trim()) conditions.text_contains = list(contains.value);
    if (regex.value.trim()) conditions.text_regex = regex.value.trim();
    if (queue.value.trim()) conditions.queue = list(queue.value);
    if (hours.value) conditions.business_hours = hours.value;
    const acts = [...actions.querySelectorAll("[data-testid=rule-action]")].map((row) => {
      const type = row.querySelector("select").value;
      return { type, ...ACTIONS[type](row.querySelector("input").value.trim()) };
    });
    try {
      const out = await api("POST", "/api/v1/rules", { name: name.value.trim(), event: event.value, conditions, actions: acts, position: Number(position.value) || 0 });
      await refresh(false);
      say(at("rules.saved", { name: out.name }));
    } catch (err) {
      say(err.message, false);
    }
  });
  const remove = async (rule) => {
    try {
      await api("DELETE", `/api/v1/rules/${rule.id}`);
      await refresh(false);
      say(at("rules.deleted", { name: rule.name }));
    } catch (err) {
      say(err.message, false);
    }
  };
  const rows = state.rules.map((r) =>
    h(
      "tr",
      { "data-testid": "rule-row", "data-rule": r.name },
      h("td", {}, String(r.position)),
      h("td", {}, r.name),
      h("td", {}, r.event),
      h("td", {}, describe(r.conditions) || "—"),
      h("td", {}, r.actions.map((a) => `${a.type}${Object.keys(a).length > 1 ? ` (${describe(Object.fromEntries(Object.entries(a).filter(([k]) => k !== "type")))})` : ""}`).join(" → ")),
      h("td", {}, r.enabled ? "✓" : "—"),
      h("td", { "data-testid": "rule-fired" }, String(r.fired)),
      h("td", {}, h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "rule-delete", onclick: () => remove(r) }, at("rules.delete"))),
    ),
  );
  fill(
    view,
    h(
      "section",
      { class: "admin-panel", "data-testid": "rules-panel" },
      h("h2", {}, at("rules.title")),
      h("p", { class: "muted small" }, at("rules.help")),
      rows.length
        ? h(
            "table",
            { class: "admin-table" },
            h("thead", {}, h("tr", {}, [at("rules.position"), at("name"), at("rules.event"), at("rules.conditions"), at("rules.actions"), at("rules.enabled"), at("rules.fired"), at("actions")].map((x) => h("th", {}, x)))),
            h("tbody", {}, rows),
          )
        : h("p", { class: "muted" }, at("rules.none")),
      form,
    ),
  );
}

// ------------------------------------------------------------------ the page
const TABS = {
  people: [loadPeople, renderPeople],
  queues: [loadQueues, renderQueues],
  channels: [loadChannels, renderChannels],
  tokens: [loadTokens, renderTokens],
  rules: [loadRules, renderRules],
};

async function refresh(clearStatus = true) {
  const [load, render] = TABS[state.tab];
  if (clearStatus) say("");
  await load();
  render(byTestId("admin-view"));
  applyAdminI18n();
}

async function show(tab) {
  state.tab = TABS[tab] && (["people", "queues"].includes(tab) || isAdmin()) ? tab : "people";
  for (const a of document.querySelectorAll("[data-tab]")) a.classList.toggle("active", a.dataset.tab === state.tab);
  try {
    await refresh();
  } catch (err) {
    say(err.message, false);
  }
}

async function main() {
  bindLanguageSelect(byTestId("lang-select"));
  state.me = await api("GET", "/api/v1/me");
  byTestId("user-name").textContent = state.me.username;
  for (const el of document.querySelectorAll("[data-admin-only]")) el.hidden = !isAdmin();
  applyAdminI18n();
  document.addEventListener("langchange", () => show(state.tab));
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  await show(location.hash.slice(1) || "people");
  document.body.dataset.ready = "true";
}

main().catch((err) => say(err.message, false));
