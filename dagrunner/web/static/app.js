// The UI's entry: who is signed in, the header, and the hash router that renders one page at a time.

import { can, loadMe, logout, session } from "./js/api.js";
import { clearFlash, errorBox, fill, h } from "./js/dom.js";
import { routes } from "./js/routes.js";

const main = document.getElementById("main");
let generation = 0;
let timers = [];

function parseHash() {
  const raw = window.location.hash.replace(/^#/, "") || "/dags";
  const [path, query = ""] = raw.split("?");
  return { path, query: new URLSearchParams(query) };
}

// What a page gets: where to draw, and live refresh that stops when the user navigates away.
function makeContext(gen, query) {
  const alive = () => gen === generation;
  return {
    main,
    query,
    alive,
    // Call `refresh` again every 2 s while `active()` says something is running, else every 10 s; not while
    // the tab is hidden. `active()` is asked every 2 s, so after a write (a clear, a trigger) that makes the
    // page active again the next refresh comes within 2 s. Errors are shown by `refresh`; polling goes on.
    live(refresh, active) {
      let last = Date.now();
      const tick = async () => {
        if (!alive()) return;
        if (!document.hidden && (active() || Date.now() - last >= 10000)) {
          last = Date.now();
          try {
            await refresh();
          } catch {
            /* the page shows its own error */
          }
        }
        if (alive()) timers.push(setTimeout(tick, 2000));
      };
      timers.push(setTimeout(tick, 2000));
    },
    every(ms, fn) {
      const tick = async () => {
        if (!alive()) return;
        const again = await fn();
        if (again !== false && alive()) timers.push(setTimeout(tick, ms));
      };
      timers.push(setTimeout(tick, ms));
    },
  };
}

function updateHeader(section) {
  const top = document.getElementById("top");
  if (!session.user) {
    top.classList.add("hidden");
    return;
  }
  top.classList.remove("hidden");
  document.getElementById("who-name").textContent = session.user.username;
  const role = document.getElementById("who-role");
  role.textContent = session.user.role;
  role.className = `role-badge role-${session.user.role}`;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.section === section);
    if (a.classList.contains("admin-only")) a.classList.toggle("hidden", !can("admin"));
  }
}

async function render() {
  generation += 1;
  const gen = generation;
  timers.forEach(clearTimeout);
  timers = [];
  const { path, query } = parseHash();
  if (!session.user && path !== "/login") {
    try {
      await loadMe();
    } catch {
      window.location.hash = `#/login?next=${encodeURIComponent(path)}`;
      return;
    }
  }
  for (const route of routes) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    const params = match.slice(1).map((p) => (p === undefined ? undefined : decodeURIComponent(p)));
    updateHeader(route.section);
    clearFlash({ errorsOnly: true });
    fill(main, h("p", { class: "muted" }, "Loading…"));
    document.title = `${route.title(params)} · dagrunner`;
    try {
      await route.page(makeContext(gen, query), ...params);
    } catch (error) {
      if (gen === generation) fill(main, errorBox(error.message));
    }
    return;
  }
  updateHeader(null);
  fill(main, errorBox(`No page at ${path}.`), h("a", { href: "#/dags" }, "Back to the DAGs"));
}

window.addEventListener("hashchange", render);
window.addEventListener("dagrunner:unauthorized", () => {
  session.user = null;
  if (!window.location.hash.startsWith("#/login")) window.location.hash = "#/login";
});
document.getElementById("logout").addEventListener("click", async () => {
  await logout().catch(() => {});
  window.location.hash = "#/login";
});
render();
