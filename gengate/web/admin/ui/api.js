// The one way the UI talks to gengate: /admin/api on the page's own origin, with the admin token.

const TOKEN = "gengate.admin.token";
const BASE = new URL("api/", document.baseURI);  // /admin/api/ under any root path

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN),
  set: (value) => sessionStorage.setItem(TOKEN, value),
  clear: () => sessionStorage.removeItem(TOKEN),
};

let onUnauthorized = () => {};
export function whenUnauthorized(handler) { onUnauthorized = handler; }

function url(path, params) {
  const u = new URL(path.replace(/^\//, ""), BASE);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, v);
  }
  return u;
}

// `call("GET", "/keys", {params})` → the parsed JSON; an error reply raises ApiError with the
// API's own message ({"error": {"code", "message"}}).
export async function call(method, path, { body, params, auth } = {}) {
  const bearer = auth ?? token.get();
  const headers = { Accept: "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let reply;
  try {
    reply = await fetch(url(path, params), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit",
    });
  } catch (exc) {
    throw new ApiError(0, "network_error", `gengate did not answer (${exc.message})`);
  }
  const text = await reply.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!reply.ok) {
    const err = data && data.error;
    const failure = new ApiError(reply.status, err?.code || `http_${reply.status}`,
      err?.message || `HTTP ${reply.status} ${reply.statusText}`.trim());
    if (reply.status === 401 && auth === undefined) onUnauthorized(failure);
    throw failure;
  }
  return data;
}

export const get = (path, params) => call("GET", path, { params });
export const post = (path, body) => call("POST", path, { body });
export const patch = (path, body) => call("PATCH", path, { body });
export const del = (path) => call("DELETE", path);
