// Small DOM helpers: elements are built node by node, so text is always text (never parsed as HTML) and no
// inline style attribute is ever written (the Content-Security-Policy forbids them).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

// Replace an element's children; null, undefined and false children are left out (replaceChildren would
// write them as text).
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const link = (href, ...children) => h("a", { href }, ...children);

export function stateBadge(state) {
  const name = state || "none";
  return h("span", { class: `badge st-${name}`, title: name }, name.replace(/_/g, " "));
}

export function stateDot(state, title, href) {
  const attrs = { class: `dot st-${state || "none"}`, title: title || state || "none" };
  return href ? h("a", { ...attrs, href }) : h("span", attrs);
}

const pad = (n) => String(n).padStart(2, "0");

// Local time, compact: "2026-01-02 13:04:05".
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} m ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} m`;
}

export function table(headers, rows, { empty = "Nothing here yet.", cls = "" } = {}) {
  if (!rows.length) return h("p", { class: "muted empty" }, empty);
  return h(
    "table",
    { class: `table ${cls}` },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((cells) => (cells instanceof Node ? cells : h("tr", {}, cells.map((c) => h("td", {}, c)))))),
  );
}

export function errorBox(message) {
  return h("div", { class: "error", role: "alert" }, message);
}

let flashTimer = null;
// A message at the top of the page: success for a moment, errors until the next one.
export function flash(message, kind = "ok") {
  const box = document.getElementById("flash");
  box.textContent = message;
  box.className = `flash flash-${kind}`;
  clearTimeout(flashTimer);
  if (kind === "ok") flashTimer = setTimeout(() => box.classList.add("hidden"), 4000);
}

// On navigation: an error belonged to the page left; a success message ("Triggered ...") outlives it.
export function clearFlash({ errorsOnly = false } = {}) {
  const box = document.getElementById("flash");
  if (errorsOnly && !box.classList.contains("flash-error")) return;
  box.className = "flash hidden";
  box.textContent = "";
}

// A button that runs an async action, disabled while it runs; errors (the API's detail) go to the flash.
export function actionButton(label, action, { cls = "btn", confirmText = null, testid = null } = {}) {
  const button = h("button", { class: cls, type: "button", "data-testid": testid });
  button.textContent = label;
  button.addEventListener("click", async () => {
    if (confirmText && !window.confirm(confirmText)) return;
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      flash(error.message, "error");
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

export function section(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

export function pre(text, cls = "code") {
  return h("pre", { class: cls }, text);
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

export function kv(pairs) {
  return h(
    "dl",
    { class: "kv" },
    pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v === null || v === undefined || v === "" ? "—" : v)]),
  );
}
