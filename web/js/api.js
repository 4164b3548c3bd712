// The HTTP API client (the routes of README's "API"; /openapi.json describes them). Every
// failure becomes an ApiError with a kind the views act on and a message in plain words that
// says what went wrong and what to do; a 422's `detail` ("title: must be …") names its field.

const TIMEOUT_MS = 15000;

export class ApiError extends Error {
  /// kind: "network" | "timeout" | "auth" | "conflict" | "validation" | "notfound" | "rate"
  ///       | "server" | "request"
  constructor(kind, message, { status = 0, field = null, detail = "", retryAfter = 0 } = {}) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.field = field;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

let token = null;
let onUnauthorized = () => {};

export function setToken(t) {
  token = t;
}
/// Called with the ApiError when a request made with a token answers 401 (expired or revoked).
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

const FIELD_NAMES = { title: "Title", description: "Description", status: "Status", priority: "Priority", due_at: "Due date", email: "Email", password: "Password" };

/// "title: must be 1 to 200 characters" -> {field: "title", message: "Title must be 1 to 200 characters."}
export function fieldOf(detail) {
  const m = /^([a-z_]+): (.*)$/s.exec(detail || "");
  if (!m || !(m[1] in FIELD_NAMES)) return { field: null, message: detail };
  let text = m[2].replace(/\.$/, "");
  return { field: m[1], message: `${FIELD_NAMES[m[1]]} ${text}.` };
}

function errorFor(status, data, res) {
  const detail = typeof data?.detail === "string" ? data.detail : "";
  switch (status) {
    case 401:
      return new ApiError("auth", "Your session has ended. Sign in again to carry on; nothing you typed is lost.", { status, detail });
    case 404:
      return new ApiError("notfound", "It is no longer there: it was deleted, perhaps on another device.", { status, detail });
    case 412:
      return new ApiError("conflict", "This task was changed elsewhere while you edited it.", { status, detail });
    case 413:
      return new ApiError("validation", "That is too much text to send at once.", { status, detail });
    case 422: {
      const { field, message } = fieldOf(detail);
      return new ApiError("validation", message || "Something in the form is not valid.", { status, field, detail });
    }
    case 429: {
      const retryAfter = Number(res.headers.get("Retry-After")) || 0;
      const wait = retryAfter ? `Wait ${retryAfter} seconds, then try again.` : "Wait a moment, then try again.";
      return new ApiError("rate", `Too many attempts. ${wait}`, { status, detail, retryAfter });
    }
    default:
      if (status >= 500)
        return new ApiError("server", `The server had a problem (error ${status}). Nothing you typed is lost; try again in a moment.`, { status, detail });
      return new ApiError("request", detail || `The request was refused (error ${status}).`, { status, detail });
  }
}

/// One request. Resolves to {data, etag, status}; rejects with an ApiError.
export async function request(method, path, { body, ifMatch, keepalive = false, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && token) headers.Authorization = "Bearer " + token;
  if (ifMatch !== undefined) headers["If-Match"] = `"${ifMatch}"`;
  const sentWith = token;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    if (err && (err.name === "TimeoutError" || err.name === "AbortError"))
      throw new ApiError("timeout", "The server took too long to answer. Nothing you typed is lost; try again.");
    throw new ApiError("network", "Can't reach taskstream: you may be offline. Nothing you typed is lost; try again when you are back online.");
  }
  let data = null;
  if (res.status !== 204) data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = errorFor(res.status, data, res);
    if (res.status === 401 && auth && sentWith) onUnauthorized(err);
    throw err;
  }
  return { data, etag: res.headers.get("ETag"), status: res.status };
}

const get = async (path) => (await request("GET", path)).data;

export const api = {
  register: (email, password) => request("POST", "/auth/register", { body: { email, password }, auth: false }).then((r) => r.data),
  token: (email, password) => request("POST", "/auth/token", { body: { email, password }, auth: false }).then((r) => r.data),
  me: () => get("/users/me"),
  listTasks: (cursor, limit = 100) => get(`/tasks?limit=${limit}` + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "")),
  getTask: (id) => get(`/tasks/${encodeURIComponent(id)}`),
  createTask: async (fields) => (await request("POST", "/tasks", { body: fields })).data,
  /// PATCH with If-Match: the version the change was made on (412 when it is stale).
  updateTask: async (id, fields, version) => (await request("PATCH", `/tasks/${encodeURIComponent(id)}`, { body: fields, ifMatch: version })).data,
  deleteTask: (id, { keepalive = false } = {}) => request("DELETE", `/tasks/${encodeURIComponent(id)}`, { keepalive }),
  history: (id) => get(`/tasks/${encodeURIComponent(id)}/history`),
  notifications: (limit = 50) => get(`/notifications?limit=${limit}`),
  markRead: async (id) => (await request("POST", `/notifications/${encodeURIComponent(id)}/read`)).data,
  markAllRead: async () => (await request("POST", "/notifications/read-all")).data,
};
