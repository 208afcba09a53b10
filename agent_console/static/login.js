// The login page: POST /login as JSON, then follow the redirect the server names.
import { applyI18n, bindLanguageSelect, t } from "/static/i18n.js";

const form = document.getElementById("login-form");
const errorBox = document.querySelector('[data-testid="login-error"]');
const submit = document.querySelector('[data-testid="login-submit"]');

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

// Only our own pages are valid targets; anything else falls back to the console.
function safeRedirect(target) {
  return typeof target === "string" && /^\/[a-z]/.test(target) ? target : "/console";
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username || !password) {
    showError(t("login.failed"));
    return;
  }
  showError("");
  submit.disabled = true;
  submit.textContent = t("login.busy");
  try {
    const resp = await fetch("/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ username, password }),
    });
    const body = await resp.json().catch(() => ({}));
    if (resp.ok && body.ok) {
      location.assign(safeRedirect(body.redirect));
      return;
    }
    showError(resp.status === 401 ? t("login.failed") : t("login.error", { detail: body.detail || resp.status }));
  } catch (err) {
    showError(t("login.error", { detail: String(err.message || err) }));
  }
  submit.disabled = false;
  submit.textContent = t("login.submit");
});

bindLanguageSelect(document.getElementById("lang-select"));
applyI18n();
document.addEventListener("langchange", () => {
  document.title = `${t("login.title")} · ${t("app.brand")}`;
});
document.title = `${t("login.title")} · ${t("app.brand")}`;
