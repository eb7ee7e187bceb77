// The login page: POST /auth/login, then back to where the user was going.

import { login } from "./api.js";
import { errorBox, fill, h } from "./dom.js";

export async function loginPage(ctx) {
  const error = h("div", { class: "login-error" });
  const username = h("input", { name: "username", id: "username", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { name: "password", id: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { class: "btn btn-primary", type: "submit" }, "Log in");
  const form = h(
    "form",
    { class: "login card", novalidate: true },
    h("h1", {}, "dagrunner"),
    h("p", { class: "muted" }, "Sign in to see your DAGs and runs."),
    h("label", { for: "username" }, "Username"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.replaceChildren();
    if (!username.value || !password.value) {
      fill(error, errorBox("Enter a username and a password."));
      return;
    }
    submit.disabled = true;
    try {
      await login(username.value, password.value);
      const next = ctx.query.get("next");
      window.location.hash = next && next !== "/login" ? `#${next}` : "#/dags";
    } catch (e) {
      fill(error, errorBox(e.status === 401 ? `Login failed: ${e.message}` : e.message));
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  document.getElementById("top").classList.add("hidden");
  fill(ctx.main, h("div", { class: "login-wrap" }, form));
  username.focus();
}
