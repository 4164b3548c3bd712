// taskstream's web page: sign in, the task list, and live updates over /ws.
//
// State model: `tasks` (id -> task) is filled from GET /tasks and then kept current by the
// WebSocket frames of SPEC section 6. Frames carry the user's `seq`; the page remembers the
// last one it applied and, after a reconnect, asks for what it missed by opening
// /ws?last_seq=N (the same as sending {"type":"resume","last_seq":N}, without the race
// against a live frame). When the server cannot replay (recovered:false) the page
// refetches the list. An update older than what the page shows (its `version` is not newer)
// is ignored, so a frame that crosses a refetch cannot undo anything.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  token: localStorage.getItem("taskstream.token"),
  tasks: new Map(),
  lastSeq: null, // null: nothing applied yet on this page
  socket: null,
  retry: 500,
  closing: false,
};

// ---- HTTP ---------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 && state.token) {
    signOut();
    throw new Error("Your session ended; please sign in again.");
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.detail || res.statusText);
  return data;
}

function showError(where, err) {
  $(where).textContent = err ? String(err.message || err) : "";
}

// ---- signing in ---------------------------------------------------------------------------

async function authenticate(register) {
  showError("#auth-error", null);
  const email = $("#email").value.trim();
  const password = $("#password").value;
  try {
    if (register) await api("POST", "/auth/register", { email, password });
    const t = await api("POST", "/auth/token", { email, password });
    state.token = t.access_token;
    localStorage.setItem("taskstream.token", state.token);
    await start();
  } catch (err) {
    showError("#auth-error", err);
  }
}

function signOut() {
  state.token = null;
  localStorage.removeItem("taskstream.token");
  state.closing = true;
  if (state.socket) state.socket.close();
  state.socket = null;
  state.tasks.clear();
  state.lastSeq = null;
  render();
  $("#notifications").replaceChildren();
  showScreen();
}

function showScreen() {
  $("#auth").hidden = !!state.token;
  $("#app").hidden = !state.token;
  $("#signout").hidden = !state.token;
}

// ---- tasks --------------------------------------------------------------------------------

async function loadTasks() {
  const all = [];
  let cursor = null;
  do {
    const page = await api("GET", "/tasks?limit=100" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    all.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  state.tasks = new Map(all.map((t) => [t.id, t]));
  render();
}

async function loadNotifications() {
  const data = await api("GET", "/notifications?limit=20");
  const list = $("#notifications");
  list.replaceChildren(...data.items.map((n) => notificationItem(n.title, n.message, n.created_at)));
}

function notificationItem(title, message, when) {
  const li = document.createElement("li");
  const strong = document.createElement("strong");
  strong.textContent = title;
  const p = document.createElement("div");
  p.textContent = message;
  const time = document.createElement("div");
  time.className = "when";
  time.textContent = when ? new Date(when).toLocaleString() : "";
  li.append(strong, p, time);
  return li;
}

function render() {
  const list = $("#tasks");
  const tasks = [...state.tasks.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
  list.replaceChildren(...tasks.map(taskItem));
  $("#empty").hidden = tasks.length > 0;
}

function taskItem(task) {
  const li = document.createElement("li");
  li.dataset.id = task.id;
  li.className = task.status === "done" ? "done" : "";
  const check = document.createElement("input");
  check.type = "checkbox";
  check.className = "complete";
  check.checked = task.status === "done";
  check.setAttribute("aria-label", "Done");
  check.addEventListener("change", () =>
    act(check.checked ? api("POST", `/tasks/${task.id}/complete`) : api("PATCH", `/tasks/${task.id}`, { status: "todo" })));
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = task.title;
  const edit = document.createElement("button");
  edit.className = "edit secondary";
  edit.textContent = "Edit";
  edit.addEventListener("click", () => startEdit(li, task));
  const del = document.createElement("button");
  del.className = "delete secondary";
  del.textContent = "Delete";
  del.addEventListener("click", () => act(api("DELETE", `/tasks/${task.id}`)));
  li.append(check, title, edit, del);
  return li;
}

function startEdit(li, task) {
  const input = document.createElement("input");
  input.className = "edit-title";
  input.value = task.title;
  input.maxLength = 200;
  const save = async () => {
    const value = input.value.trim();
    if (value && value !== task.title) await act(api("PATCH", `/tasks/${task.id}`, { title: value }));
    else render();
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") save();
    if (e.key === "Escape") render();
  });
  input.addEventListener("blur", save);
  li.querySelector(".title").replaceWith(input);
  input.focus();
}

// Changes show when their frame arrives (the same path as changes made elsewhere); the
// answer is applied too, so the page stays right when the socket is down.
async function act(promise) {
  showError("#app-error", null);
  try {
    const result = await promise;
    if (result && result.id) applyTask(result);
  } catch (err) {
    showError("#app-error", err);
    render();
  }
}

function applyTask(task) {
  const have = state.tasks.get(task.id);
  if (!have || (task.version ?? 0) >= (have.version ?? 0)) state.tasks.set(task.id, task);
  render();
}

// ---- live updates -------------------------------------------------------------------------

function applyFrame(frame) {
  if (frame.type === "notification") {
    const n = frame.notification;
    $("#notifications").prepend(notificationItem(n.title, n.message, n.created_at));
    return;
  }
  if (frame.type === "resumed") {
    state.lastSeq = frame.seq;
    if (!frame.recovered) refetch();
    return;
  }
  if (frame.type === "error" || typeof frame.seq !== "number") return;
  state.lastSeq = frame.seq;
  const changes = frame.changes || {};
  if (frame.type === "task_deleted" || changes.deleted) {
    state.tasks.delete(frame.task_id);
  } else if (frame.type === "task_created") {
    if (!state.tasks.has(frame.task_id)) state.tasks.set(frame.task_id, changes);
  } else {
    const have = state.tasks.get(frame.task_id);
    if (have && (changes.version === undefined || changes.version > (have.version ?? 0))) {
      state.tasks.set(frame.task_id, { ...have, ...changes });
    }
  }
  render();
}

async function refetch() {
  try {
    await Promise.all([loadTasks(), loadNotifications()]);
  } catch (err) {
    showError("#app-error", err);
  }
}

function setLive(on) {
  const el = $("#live");
  el.textContent = on ? "live" : "reconnecting…";
  el.className = "live " + (on ? "on" : "off");
}

function connect() {
  if (!state.token) return;
  state.closing = false;
  // Back after a drop: ask for exactly what was missed in the upgrade itself, so the
  // replay comes before any live frame.
  const resumeQuery = state.lastSeq !== null ? "?last_seq=" + state.lastSeq : "";
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" + resumeQuery;
  // Browsers cannot set an Authorization header on a WebSocket: the token rides in the
  // subprotocol list, as the server expects ("bearer", <token>).
  const ws = new WebSocket(url, ["bearer", state.token]);
  state.socket = ws;
  ws.onopen = () => {
    state.retry = 500;
    setLive(true);
    // With no frame seen yet, reload what the list shows (a resume went with the URL).
    if (state.lastSeq === null && state.connectedBefore) refetch();
    state.connectedBefore = true;
  };
  ws.onmessage = (e) => {
    try {
      applyFrame(JSON.parse(e.data));
    } catch (err) {
      console.warn("bad frame", err);
    }
  };
  ws.onclose = (e) => {
    if (state.socket !== ws) return;
    setLive(false);
    if (state.closing || !state.token) return;
    if (e.code === 1008 && e.reason === "token expired") return signOut();
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 5000);
  };
}

async function start() {
  showScreen();
  if (!state.token) return;
  // The socket first, so nothing that happens while the list loads is missed: frames
  // apply over the loaded list by version.
  connect();
  await refetch();
}

// ---- wiring -------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#auth-form").addEventListener("submit", (e) => {
    e.preventDefault();
    authenticate(false);
  });
  $("#register").addEventListener("click", () => authenticate(true));
  $("#signout").addEventListener("click", signOut);
  $("#add-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const title = $("#new-title").value.trim();
    if (!title) return;
    $("#new-title").value = "";
    act(api("POST", "/tasks", { title }));
  });
  start();
});
