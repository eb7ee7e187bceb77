// Users (admins only): who can sign in with which role; create, delete, and issue API tokens.

import { can, enc, del, get, post } from "./api.js";
import { actionButton, errorBox, fill, flash, fmtTime, h, table } from "./dom.js";

export async function usersPage(ctx) {
  if (!can("admin")) {
    fill(ctx.main, errorBox("The users page needs the admin role."));
    return;
  }
  const body = h("div");
  const tokenBox = h("div");
  async function refresh() {
    let data;
    try {
      data = await get("/users?limit=1000");
    } catch (e) {
      fill(body, errorBox(e.message));
      return;
    }
    if (!ctx.alive()) return;
    fill(body, 
      table(
        ["User", "Role", "Created", "Last login", ""],
        data.items.map((u) => [
          h("strong", {}, u.username),
          h("span", { class: `role-badge role-${u.role}` }, u.role),
          fmtTime(u.created_at),
          fmtTime(u.last_login),
          h(
            "span",
            { class: "actions" },
            actionButton("New token", async () => {
              const name = window.prompt(`A name for ${u.username}'s new API token`, "script");
              if (!name) return;
              const result = await post(`/users/${enc(u.username)}/tokens`, { name });
              fill(tokenBox, 
                h("section", { class: "card token" }, h("h2", {}, `Token ${name} for ${u.username}`), h("p", { class: "muted" }, "Shown once: copy it now. Scripts send it as Authorization: Bearer <token>."), h("pre", { class: "code" }, result.token)),
              );
            }, { cls: "btn btn-small" }),
            actionButton("Delete", async () => {
              await del(`/users/${enc(u.username)}`);
              flash(`User ${u.username} deleted`);
              await refresh();
            }, { cls: "btn btn-small btn-danger", confirmText: `Delete user ${u.username}?` }),
          ),
        ]),
      ),
    );
  }
  const username = h("input", { placeholder: "username", "aria-label": "New username", maxlength: 100, autocomplete: "off" });
  const password = h("input", { type: "password", placeholder: "password", "aria-label": "New password", autocomplete: "new-password" });
  const role = h("select", { "aria-label": "Role" }, ["viewer", "operator", "admin"].map((r) => h("option", { value: r }, r)));
  const create = h(
    "section",
    { class: "card" },
    h("h2", {}, "Add a user"),
    h(
      "div",
      { class: "inline-form" },
      username,
      password,
      role,
      actionButton("Create", async () => {
        await post("/users", { username: username.value.trim(), role: role.value, password: password.value });
        flash(`User ${username.value.trim()} created`);
        username.value = "";
        password.value = "";
        await refresh();
      }, { cls: "btn btn-primary" }),
    ),
  );
  fill(ctx.main, h("div", { class: "page-head" }, h("h1", {}, "Users")), tokenBox, body, create);
  await refresh();
}
