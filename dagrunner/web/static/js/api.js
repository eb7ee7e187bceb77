// The REST API client: JSON in and out, the CSRF token on every write, errors as ApiError with the API's detail.

const BASE = "/api/v1";

export const session = { user: null, csrf: null };

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// FastAPI's 422 detail is a list of {loc, msg}; ours is a string. Either becomes one readable line.
function detailText(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  return `HTTP ${status}`;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const response = await fetch(BASE + path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 300) };
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, detailText(data, response.status));
    if (response.status === 401 && !path.startsWith("/auth/")) {
      window.dispatchEvent(new CustomEvent("dagrunner:unauthorized"));
    }
    throw error;
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

// A query string from an object, skipping empty values.
export function qs(params) {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

export const enc = encodeURIComponent;

// Roles are ordered: viewer < operator < admin.
const RANK = { viewer: 0, operator: 1, admin: 2 };
export function can(role) {
  return session.user !== null && (RANK[session.user.role] ?? -1) >= RANK[role];
}

export async function loadMe() {
  const me = await get("/auth/me");
  session.user = { username: me.username, role: me.role };
  session.csrf = me.csrf_token;
  return me;
}

export async function login(username, password) {
  const me = await post("/auth/login", { username, password });
  session.user = { username: me.username, role: me.role };
  session.csrf = me.csrf_token;
  return me;
}

export async function logout() {
  try {
    await post("/auth/logout");
  } finally {
    session.user = null;
    session.csrf = null;
  }
}
