// The page's state and every action on it. One state object; an action changes it and calls
// emit(), which re-renders the views once per microtask. Views read `state` and call actions;
// they never call the API or the socket themselves.
//
// What is never lost:
// - An open edit lives in `state.drafts` (by task id), apart from the task it edits: a live
//   update changes the task under it and the list around it, never the draft. A draft is kept
//   in sessionStorage too, so it survives an expired session and a reload of the tab.
// - Every PATCH sends If-Match with the version the edit started from; a 412 opens the
//   conflict view (yours beside theirs). A failed request keeps what was typed.
// - Deletes wait a few seconds for an undo before they are sent (at once when the page goes).

import { api, ApiError, setToken, setUnauthorizedHandler } from "./api.js";
import { LiveSocket } from "./live.js";
import * as model from "./model.js";
import { fromLocalInput, localizeTimes, toLocalInput } from "./time.js";

const TOKEN_KEY = "taskstream.token";
const DRAFTS_KEY = "taskstream.drafts";
const SIGNOUT_KEY = "taskstream.signed-out";
export const PAGE_SIZE = 100; // rows shown at a time, and tasks per API page
export const UNDO_MS = 5000;
const TOAST_MS = 6000;

const emptyAdd = () => ({ title: "", description: "", priority: "medium", status: "todo", due: "", dueInvalid: false, expanded: false, busy: false, error: null, errors: {}, uncertain: null });

export const state = {
  session: { phase: "starting", token: null, user: null, notice: "" }, // phase: starting | signed-out | signed-in | expired
  auth: { email: "", password: "", busy: false, error: "", errors: {} },
  live: "signed-out",
  tasks: new Map(),
  load: { loading: false, done: false, error: null },
  view: { filter: "all", sort: "created", query: "", shown: PAGE_SIZE },
  drafts: new Map(),
  add: emptyAdd(),
  pending: new Map(), // id -> {task, batch}: deleted, waiting for an undo
  notifications: { items: [], live: [], unread: 0, open: false, loading: false, error: null, readLocally: new Set() },
  history: null, // {taskId, title, items, loading, error, behind}
  toasts: [],
  confirmSignOut: false,
  shortcutsOpen: false,
  focus: null, // {id, control} or {selector}: where keyboard focus goes after the next render
  now: Date.now(),
};

// ---- rendering --------------------------------------------------------------------------------

let renderer = () => {};
let scheduled = false;
export function setRenderer(fn) {
  renderer = fn;
}
export function emit() {
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => {
    scheduled = false;
    renderer();
    saveDrafts();
  });
}

/// Keyboard focus after the next render: a task row's control, or a selector. With `from` (a
/// selector, or "row" for the target's own row), only if the focus is still inside it (or
/// nowhere) by then: an answer that comes late never takes the focus from where the user went.
export function focusNext(target) {
  state.focus = target;
  emit();
}

// ---- toasts -----------------------------------------------------------------------------------

let toastSeq = 0;
export function toast(text, { action = null, timeout = TOAST_MS, kind = "info" } = {}) {
  const id = ++toastSeq;
  state.toasts = [...state.toasts, { id, text, action, kind }];
  if (timeout) setTimeout(() => dismissToast(id), timeout);
  emit();
  return id;
}
export function dismissToast(id) {
  const before = state.toasts.length;
  state.toasts = state.toasts.filter((t) => t.id !== id);
  if (state.toasts.length !== before) emit();
}

// ---- the socket -------------------------------------------------------------------------------

let loadBuffer = null; // frames that arrive while the list loads, applied again over it (one per load)
const live = new LiveSocket({
  onFrame(frame) {
    if (frame.type === "notification") return liveNotification(frame.notification);
    if (frame.type === "resumed" || frame.type === "pong" || frame.type === "error") return;
    if (loadBuffer) loadBuffer.push(frame);
    applyFrame(frame);
  },
  onStatus(s) {
    const before = state.live;
    state.live = s;
    if (s === "live") {
      if (!state.load.done && !state.load.loading) loadTasks();
      // Notifications are not replayed by a resume: fetch what came while away.
      if (before === "reconnecting") loadNotifications();
    }
    emit();
  },
  onRefetch() {
    loadTasks();
  },
  onFailedOpen() {
    // An upgrade refused before opening: a 401 (expired token) looks like any other failure
    // to a browser, so ask the API; a 401 there leads back to sign-in.
    if (state.session.phase === "signed-in") api.me().catch(() => {});
  },
  onExpired() {
    expire();
  },
});
export const liveSocket = live;

/// A task from an API answer (this page's own change): into the list unless the list holds a
/// newer version; remembered by a load in progress, whose older page must not undo it.
function applyAnswer(task) {
  if (loadBuffer) loadBuffer.push({ type: "answer", task });
  return model.applyTask(state.tasks, task);
}

/// A frame or an answer remembered during a load, applied again over what was loaded.
function replay(tasks, item) {
  if (item.type === "answer") model.applyTask(tasks, item.task);
  else model.applyFrame(tasks, item);
}

function applyFrame(frame) {
  const r = model.applyFrame(state.tasks, frame);
  if (!r.kind) return;
  const draft = state.drafts.get(r.id);
  if (r.kind === "created") {
    rememberCreated(state.tasks.get(r.id));
    settleUncertainAdd(state.tasks.get(r.id));
  }
  if (r.kind === "deleted") {
    state.pending.delete(r.id);
    if (draft) draft.gone = true;
  } else if (draft && r.kind === "updated") {
    // Tell the editor what changed elsewhere; the draft itself stays as the user left it.
    const now = state.tasks.get(r.id);
    draft.changedElsewhere = model.diff(draft.base, now).map((d) => d.field);
  }
  emit();
}

// ---- session ----------------------------------------------------------------------------------

setUnauthorizedHandler(() => expire());

/// The `sub` claim of a JWT (not verified: only to find this tab's drafts again).
function tokenSubject(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).sub ?? null;
  } catch {
    return null;
  }
}

/// At page load: a stored token is checked with GET /users/me.
export async function boot() {
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) {
    state.session = { phase: "signed-out", token: null, user: null, notice: "" };
    restoreDrafts(null);
    return emit();
  }
  setToken(token);
  state.session.token = token;
  try {
    const user = await api.me();
    await beginSession(token, user);
  } catch (err) {
    if (err instanceof ApiError && err.kind === "auth") {
      // Expired while the page was closed: sign in again, the drafts of this tab wait.
      const sub = tokenSubject(token);
      state.session = { phase: "signed-in", token, user: { id: sub, email: savedEmail(sub) }, notice: "" };
      restoreDrafts(sub);
      return expire();
    }
    // The server is unreachable: say so on the sign-in page, keep the stored token and try
    // again in a few seconds (unless the user signs in meanwhile).
    state.session = { phase: "signed-out", token: null, user: null, notice: err.message };
    setToken(null);
    setTimeout(() => {
      if (state.session.phase === "signed-out" && !state.auth.busy && localStorage.getItem(TOKEN_KEY) === token) boot();
    }, 3000);
    emit();
  }
}

export function setAuthField(field, value) {
  state.auth[field] = value;
  if (state.auth.errors[field]) state.auth.errors = { ...state.auth.errors, [field]: undefined };
  emit();
}

export async function authenticate(register) {
  const a = state.auth;
  const email = a.email.trim();
  const errors = {};
  if (!email) errors.email = "Enter your email address.";
  else if (!/^[^\s@]+@[^\s@]+$/.test(email)) errors.email = "Enter an email address like name@example.com.";
  if (!a.password) errors.password = "Enter your password.";
  else if (register && model.charCount(a.password) < 8) errors.password = "Use at least 8 characters for a new password.";
  a.errors = errors;
  a.error = "";
  if (Object.keys(errors).length) {
    emit();
    return focusNext({ selector: errors.email ? "#email" : "#password" });
  }
  a.busy = true;
  emit();
  try {
    if (register) await api.register(email, a.password);
    const t = await api.token(email, a.password);
    setToken(t.access_token);
    const user = await api.me();
    a.password = "";
    await beginSession(t.access_token, user);
  } catch (err) {
    if (err.kind === "validation" && err.field) a.errors = { [err.field]: err.message };
    else if (err.status === 401) a.error = "That email and password do not match an account. Check them, or create an account.";
    else if (err.status === 409) a.errors = { email: "An account with this email already exists. Sign in instead." };
    else a.error = err.message;
    setToken(null);
  } finally {
    a.busy = false;
    emit();
  }
}

async function beginSession(token, user) {
  const previous = state.session.user;
  const sameUser = previous && previous.id === user.id;
  if (!sameUser) clearUserData();
  localStorage.setItem(TOKEN_KEY, token);
  setToken(token);
  state.session = { phase: "signed-in", token, user, notice: "" };
  state.auth = { email: "", password: "", busy: false, error: "", errors: {} };
  if (!sameUser) restoreDrafts(user.id);
  state.load = { loading: false, done: false, error: null };
  live.start(token);
  // Deletes refused while the session had expired go now.
  if (state.pending.size) flushDeletes();
  // The list loads once the socket is open (so no change falls between the two), or after a
  // short wait when it cannot open.
  setTimeout(() => {
    if (state.session.token === token && !state.load.done && !state.load.loading) loadTasks();
  }, 1500);
  loadNotifications();
  focusNext({ selector: state.drafts.size ? ".editor [data-control=title]" : "#new-title" });
}

/// The token was refused (expired): back to sign-in, keeping every draft and the list.
export function expire() {
  if (state.session.phase !== "signed-in") return;
  const user = state.session.user;
  live.stop();
  setToken(null);
  localStorage.removeItem(TOKEN_KEY);
  state.session = { phase: "expired", token: null, user, notice: "Your session has expired. Sign in again to carry on: your unsaved changes are kept." };
  state.auth = { email: user?.email ?? "", password: "", busy: false, error: "", errors: {} };
  state.notifications.open = false;
  state.history = null;
  emit();
  focusNext({ selector: "#password" });
}

export function hasUnsavedWork() {
  for (const d of state.drafts.values()) if (d.gone || d.conflict || Object.keys(model.changedFields(d.base, draftFields(d))).length) return true;
  return !!(state.add.title.trim() || state.add.description.trim());
}

/// Sign-out: sends the deletes waiting for an undo, closes the socket, and forgets every
/// task, draft, notification and field of this user on this page.
export function signOut({ confirmed = false } = {}) {
  if (!confirmed && hasUnsavedWork()) {
    state.confirmSignOut = true;
    emit();
    return focusNext({ selector: "#confirm-signout" });
  }
  flushDeletes({ keepalive: true });
  live.stop();
  setToken(null);
  localStorage.removeItem(TOKEN_KEY);
  localStorage.setItem(SIGNOUT_KEY, String(Date.now()));
  sessionStorage.removeItem(DRAFTS_KEY);
  clearUserData();
  state.session = { phase: "signed-out", token: null, user: null, notice: "" };
  state.auth = { email: "", password: "", busy: false, error: "", errors: {} };
  emit();
  focusNext({ selector: "#email" });
}

export function cancelSignOut() {
  state.confirmSignOut = false;
  emit();
  focusNext({ selector: "#signout" });
}

function clearUserData() {
  state.tasks = new Map();
  state.load = { loading: false, done: false, error: null };
  state.view = { filter: "all", sort: "created", query: "", shown: PAGE_SIZE };
  state.drafts = new Map();
  state.add = emptyAdd();
  for (const p of state.pending.values()) clearTimeout(p.batch.timer);
  state.pending = new Map();
  state.notifications = { items: [], live: [], unread: 0, open: false, loading: false, error: null, readLocally: new Set() };
  state.history = null;
  state.toasts = [];
  state.confirmSignOut = false;
  state.shortcutsOpen = false;
}

// Other tabs of this browser: a sign-out there signs out here; a sign-in there (a new token)
// is taken up here, keeping this tab's drafts when it is the same account.
window.addEventListener("storage", async (e) => {
  if (e.key === SIGNOUT_KEY && e.newValue && state.session.phase !== "signed-out") return signOut({ confirmed: true });
  if (e.key !== TOKEN_KEY || !e.newValue || e.newValue === state.session.token) return;
  setToken(e.newValue);
  try {
    const user = await api.me();
    await beginSession(e.newValue, user);
  } catch {
    setToken(state.session.token);
  }
});

// ---- drafts in sessionStorage -----------------------------------------------------------------

let savedDrafts = "";
function saveDrafts() {
  const user = state.session.user;
  if (!user) return;
  const drafts = [...state.drafts.values()].map((d) => ({ id: d.id, base: d.base, fields: d.fields }));
  const { title, description, priority, status, due, expanded } = state.add;
  const text = JSON.stringify({ user: user.id, email: user.email, drafts, add: { title, description, priority, status, due, expanded } });
  if (text === savedDrafts) return;
  savedDrafts = text;
  try {
    sessionStorage.setItem(DRAFTS_KEY, text);
  } catch {
    // Storage full or disabled: the drafts still live in memory.
  }
}

function readSaved() {
  try {
    return JSON.parse(sessionStorage.getItem(DRAFTS_KEY) || "null");
  } catch {
    return null;
  }
}

function savedEmail(userId) {
  const saved = readSaved();
  return saved && saved.user === userId ? saved.email ?? "" : "";
}

function restoreDrafts(userId) {
  const saved = readSaved();
  if (!saved || !userId || saved.user !== userId) return;
  for (const d of saved.drafts ?? []) state.drafts.set(d.id, newDraft(d.base, d.fields));
  if (saved.add) Object.assign(state.add, saved.add);
}

// ---- loading ----------------------------------------------------------------------------------

/// The whole list, a page of PAGE_SIZE at a time along the API's cursor; the first page shows
/// at once. Frames that arrive meanwhile are applied again over what was loaded.
let loadAgain = false;
export async function loadTasks() {
  if (state.load.loading) {
    // Asked again while loading (a resume the server could not serve): once more after.
    loadAgain = true;
    return;
  }
  loadAgain = false;
  const token = state.session.token;
  state.load = { loading: true, done: false, error: null };
  const frames = (loadBuffer = []);
  emit();
  try {
    const loaded = new Map();
    let cursor = null;
    let first = true;
    do {
      const page = await api.listTasks(cursor, PAGE_SIZE);
      if (state.session.token !== token) return;
      for (const t of page.items) loaded.set(t.id, t);
      cursor = page.next_cursor;
      if (first || !cursor) {
        // Show what is here so far; tasks not loaded yet stay as they were.
        const merged = first && cursor ? new Map([...state.tasks, ...loaded]) : new Map(loaded);
        for (const f of frames) replay(merged, f);
        state.tasks = merged;
        first = false;
        emit();
      }
    } while (cursor);
    state.load = { loading: false, done: true, error: null };
  } catch (err) {
    state.load = { loading: false, done: state.load.done, error: err.kind === "auth" ? null : err.message };
  } finally {
    if (loadBuffer === frames) loadBuffer = null;
    emit();
    if (loadAgain && state.session.token === token) loadTasks();
  }
}

// An answer of GET /notifications is used only when no newer load started and no read state
// changed (here or on the server) while it was on its way: a stale answer would show as unread
// what was just marked read. readEpoch moves when a mark starts and when it is answered.
let notificationLoads = 0;
let readEpoch = 0;

export async function loadNotifications() {
  const n = state.notifications;
  const load = ++notificationLoads;
  const epoch = readEpoch;
  n.loading = true;
  emit();
  try {
    const data = await api.notifications(50);
    if (load !== notificationLoads || state.notifications !== n) return;
    if (epoch !== readEpoch) return void setTimeout(loadNotifications, 0);
    n.items = data.items;
    n.unread = data.unread_count ?? data.items.filter((i) => !i.read).length;
    n.error = null;
    // Live ones now stored leave the live list; any the user marked read before that are
    // marked read now.
    const stored = new Set(data.items.map(model.notificationKey));
    n.live = n.live.filter((l) => !stored.has(model.notificationKey(l)));
    for (const item of data.items) {
      if (!item.read && n.readLocally.has(item.event_id)) {
        n.readLocally.delete(item.event_id);
        markRead(item);
      }
    }
  } catch (err) {
    n.error = err.kind === "auth" ? null : err.message;
  } finally {
    if (load === notificationLoads) n.loading = false;
    emit();
  }
}

// ---- adding -----------------------------------------------------------------------------------

export function setAddField(field, value, { dueInvalid } = {}) {
  const a = state.add;
  a[field] = value;
  if (dueInvalid !== undefined) a.dueInvalid = dueInvalid;
  const key = field === "due" ? "due_at" : field;
  if (a.errors[key]) a.errors = { ...a.errors, [key]: undefined };
  a.error = null;
  emit();
}

/// Adds in flight, by body: the next task can be typed and added while one is on its way, but
/// the same one pressed twice is sent once.
const addsInFlight = new Set();

/// Does the add box still hold what `body` sent?
function boxHolds(body) {
  const a = state.add;
  return a.title.trim() === body.title && (a.description || null) === (body.description ?? null);
}

export async function addTask() {
  const a = state.add;
  const fields = { title: a.title, description: a.description, priority: a.priority, status: a.status };
  const due = fromLocalInput(a.due);
  const errors = model.validate(fields, { dueInvalid: a.dueInvalid || due === undefined });
  a.errors = errors;
  if (Object.keys(errors).length) {
    emit();
    const first = errors.title ? "#new-title" : errors.description ? "#new-description" : "#new-due";
    if (!a.expanded && !errors.title) a.expanded = true;
    return focusNext({ selector: first });
  }
  const body = model.normalise({ ...fields, due_at: due });
  if (body.description === null) delete body.description;
  if (body.due_at === null) delete body.due_at;
  const key = JSON.stringify(body);
  if (addsInFlight.has(key)) return; // Enter pressed again while this very add is on its way
  // Sent again after an attempt whose answer was lost: if that one arrived live meanwhile, it
  // went through; do not send it twice. Otherwise this attempt decides.
  if (a.uncertain) {
    const since = a.uncertain.since;
    const arrived = recentCreated.find((c) => c.n > since && c.title === body.title);
    if (arrived) return settleUncertainAdd(arrived);
    a.uncertain = null;
  }
  addsInFlight.add(key);
  const session = state.session;
  a.busy = true;
  a.error = null;
  emit();
  const createdBefore = createdSeq;
  try {
    const task = await api.createTask(body);
    if (state.session !== session) return; // signed out meanwhile
    applyAnswer(task);
    // Empty the form, unless the user already typed the next task while this one was sent.
    if (boxHolds(body)) state.add = { ...emptyAdd(), expanded: state.add.expanded };
    // Back to the box for the next task, unless the user went elsewhere while this was sent
    // (the task can show up live before its answer does).
    focusNext({ selector: "#new-title", from: "#add-form" });
  } catch (err) {
    if (state.session !== session) return;
    const now = state.add;
    if (!boxHolds(body)) {
      // The box holds the next task already: this one's text goes into the message, with a
      // way to send it again, so nothing typed is lost.
      failedAdd(body, err, createdBefore);
      return;
    }
    if (err.kind === "validation" && err.field) now.errors = { [err.field]: err.message };
    else now.error = err.message;
    // The answer may be what was lost, not the request: if the task shows up live, it was
    // added after all (see applyFrame), and sending it again would add it twice.
    if (err.kind === "network" || err.kind === "timeout" || err.kind === "server") {
      now.uncertain = { title: body.title, at: Date.now(), since: createdBefore };
      // Its frame may have come before the error did.
      const arrived = recentCreated.find((c) => c.n > createdBefore && c.title === body.title);
      if (arrived) settleUncertainAdd(arrived);
    }
  } finally {
    addsInFlight.delete(key);
    state.add.busy = addsInFlight.size > 0;
    emit();
  }
}

function failedAdd(body, err, createdBefore) {
  toast(`“${body.title}” was not added: ${err.message}`, { kind: "error", timeout: 0, action: { label: "Retry", run: () => retryAdd(body, createdBefore) } });
}

async function retryAdd(body, createdBefore) {
  // Its answer may have been lost while the task was made: then it has arrived live.
  if (recentCreated.some((c) => c.n > createdBefore && c.title === body.title)) return toast(`“${body.title}” was added after all.`);
  const since = createdSeq;
  try {
    applyAnswer(await api.createTask(body));
    toast(`Added “${body.title}”.`);
  } catch (err) {
    failedAdd(body, err, since);
  }
}

// Tasks created live, newest last (a few): an add that failed can find itself among them.
let createdSeq = 0;
const recentCreated = [];
function rememberCreated(task) {
  recentCreated.push({ n: ++createdSeq, title: task.title });
  if (recentCreated.length > 20) recentCreated.shift();
}

/// A task created elsewhere with the title of an add whose answer was lost (within a minute):
/// that add went through. Clear the box instead of letting it be sent twice.
function settleUncertainAdd(task) {
  const a = state.add;
  if (!a.uncertain || Date.now() - a.uncertain.at > 60000) return;
  if (task.title !== a.uncertain.title || a.title.trim() !== task.title) return;
  state.add = { ...emptyAdd(), expanded: a.expanded };
  toast(`“${task.title}” was added after all: its answer had been lost on the way.`);
}

// ---- editing ----------------------------------------------------------------------------------

function newDraft(base, fields) {
  return {
    id: base.id,
    base,
    fields: fields ?? {
      title: base.title,
      description: base.description ?? "",
      status: base.status,
      priority: base.priority,
      due: toLocalInput(base.due_at),
    },
    dueInvalid: false,
    errors: {},
    error: null,
    saving: false,
    conflict: null, // {theirs}: the version saved elsewhere, after a 412
    merge: null, // theirs, shown beside each field while merging by hand
    gone: false, // deleted elsewhere while open
    changedElsewhere: [],
  };
}

/// The draft's fields as the API names them (due_at in UTC; undefined when not a whole date).
export function draftFields(d) {
  return { title: d.fields.title, description: d.fields.description, status: d.fields.status, priority: d.fields.priority, due_at: fromLocalInput(d.fields.due) };
}

export function startEdit(id) {
  const task = state.tasks.get(id);
  if (!task) return;
  if (!state.drafts.has(id)) state.drafts.set(id, newDraft(task));
  focusNext({ id, control: "title" });
}

export function editField(id, field, value, { dueInvalid } = {}) {
  const d = state.drafts.get(id);
  if (!d) return;
  d.fields = { ...d.fields, [field]: value };
  if (dueInvalid !== undefined) d.dueInvalid = dueInvalid;
  const key = field === "due" ? "due_at" : field;
  if (d.errors[key]) d.errors = { ...d.errors, [key]: undefined };
  d.error = null;
  emit();
}

export function cancelEdit(id) {
  state.drafts.delete(id);
  focusNext(state.tasks.has(id) ? { id, control: "edit" } : { selector: "#new-title" });
}

export async function saveEdit(id) {
  const d = state.drafts.get(id);
  if (!d || d.saving) return;
  const fields = draftFields(d);
  const errors = model.validate(d.fields, { dueInvalid: d.dueInvalid || fields.due_at === undefined });
  d.errors = errors;
  d.error = null;
  if (Object.keys(errors).length) {
    emit();
    return focusNext({ id, control: Object.keys(errors)[0] === "due_at" ? "due" : Object.keys(errors)[0] });
  }
  const base = d.merge ?? d.base;
  const body = model.changedFields(base, fields);
  if (!Object.keys(body).length) {
    // Nothing to send: the edit closes without a request.
    state.drafts.delete(id);
    if (d.merge) applyAnswer(d.merge);
    return focusNext({ id, control: "edit" });
  }
  await send(d, body, base.version);
}

/// PATCH the draft's change on `version`; success closes it, a 412 opens the conflict view.
async function send(d, body, version) {
  d.saving = true;
  emit();
  try {
    const task = await api.updateTask(d.id, body, version);
    applyAnswer(task);
    state.drafts.delete(d.id);
    focusNext({ id: d.id, control: "edit", from: "row" });
  } catch (err) {
    d.saving = false;
    if (err.kind === "conflict") return openConflict(d);
    if (err.kind === "notfound") d.gone = true;
    else if (err.kind === "validation" && err.field) d.errors = { [err.field]: err.message };
    else if (err.kind !== "auth") d.error = err.message;
    emit();
  }
}

async function openConflict(d) {
  try {
    const theirs = await api.getTask(d.id);
    applyAnswer(theirs);
    d.conflict = { theirs };
    d.merge = null;
  } catch (err) {
    if (err.kind === "notfound") d.gone = true;
    else d.error = "This task was changed elsewhere, and the latest version could not be loaded: " + err.message;
  }
  emit();
  focusNext({ id: d.id, control: "conflict" });
}

/// The fields the user changed in this draft, against the version the edit began from.
export function yourChanges(d) {
  return model.changedFields(d.base, draftFields(d));
}

/// After a 412: "mine" saves the user's changes over the other version, "theirs" drops them,
/// "merge" opens the editor on the other version with the user's changes in it.
export async function resolveConflict(id, choice) {
  const d = state.drafts.get(id);
  if (!d || !d.conflict) return;
  const theirs = d.conflict.theirs;
  if (choice === "theirs") {
    state.drafts.delete(id);
    return focusNext({ id, control: "edit" });
  }
  const mine = yourChanges(d);
  if (choice === "mine") {
    d.conflict = null;
    d.base = theirs;
    d.changedElsewhere = [];
    const body = model.changedFields(theirs, { ...theirs, ...mine });
    if (!Object.keys(body).length) {
      state.drafts.delete(id);
      return focusNext({ id, control: "edit" });
    }
    return send(d, body, theirs.version);
  }
  // merge: the editor on their version, the user's changes applied, theirs shown beside.
  const merged = { ...theirs, ...mine };
  const next = newDraft(theirs, newDraft(merged).fields);
  next.merge = theirs;
  state.drafts.set(id, next);
  focusNext({ id, control: "title" });
}

/// The task was deleted elsewhere while edited: keep the text as a new task, or let it go.
export async function restoreAsNew(id) {
  const d = state.drafts.get(id);
  if (!d || d.saving) return;
  const f = model.normalise(draftFields(d));
  const body = { title: f.title, priority: f.priority, status: f.status };
  if (f.description) body.description = f.description;
  if (f.due_at) body.due_at = f.due_at;
  d.saving = true;
  emit();
  try {
    const task = await api.createTask(body);
    applyAnswer(task);
    state.drafts.delete(id);
    toast(`Saved “${task.title}” as a new task.`);
    focusNext({ id: task.id, control: "edit" });
  } catch (err) {
    d.saving = false;
    if (err.kind === "validation" && err.field) d.errors = { [err.field]: err.message };
    else d.error = err.message;
    emit();
  }
}

export function discardDraft(id) {
  state.drafts.delete(id);
  focusNext({ selector: "#new-title" });
}

// ---- status -----------------------------------------------------------------------------------

/// Sets a task's status (the checkbox, the shortcut). If-Match as for every PATCH: when the
/// task changed elsewhere meanwhile, the page shows the latest and says so.
/// The status the user last asked for, per task, while a change of it is on its way: the
/// checkbox shows it at once, and a second click waits for the first answer instead of racing
/// it with a stale If-Match.
const statusWanted = new Map();
export function shownStatus(task) {
  return statusWanted.get(task.id) ?? task.status;
}

export async function setStatus(id, status) {
  const first = state.tasks.get(id);
  if (!first) return;
  if (statusWanted.has(id)) {
    statusWanted.set(id, status);
    return emit();
  }
  if (first.status === status) return;
  statusWanted.set(id, status);
  const next = neighbourAfterHiding(id, { ...first, status });
  emit();
  try {
    for (;;) {
      const want = statusWanted.get(id);
      const task = state.tasks.get(id);
      if (!task || task.status === want) break;
      try {
        applyAnswer(await api.updateTask(id, { status: want }, task.version));
      } catch (err) {
        if (err.kind === "conflict") {
          try {
            applyAnswer(await api.getTask(id));
          } catch {
            // The list shows the latest when its frame arrives.
          }
          toast(`“${task.title}” was changed elsewhere just now; it shows the latest version. Try again if you still want it ${model.STATUS_LABEL[want].toLowerCase()}.`, { kind: "error" });
        } else if (err.kind !== "auth") {
          toast(`Could not change “${task.title}”: ${err.message}`, { kind: "error" });
        }
        return;
      }
      if (statusWanted.get(id) === want) {
        focusNext(next ?? { id, control: "check" });
        break;
      }
    }
  } finally {
    statusWanted.delete(id);
    emit();
  }
}

const STATUS_CYCLE = { todo: "in_progress", in_progress: "done", done: "todo" };
export function cycleStatus(id) {
  const t = state.tasks.get(id);
  if (t) setStatus(id, STATUS_CYCLE[t.status]);
}

/// Where focus goes when `id` leaves the list after a change (to `changed`): the next row,
/// else the previous one, else the add box. Null when the task stays in view.
function neighbourAfterHiding(id, changed) {
  const hidden = new Set(state.pending.keys());
  const pinned = new Set(state.drafts.keys());
  const rows = model.visible(state.tasks, state.view, hidden, pinned);
  if (changed) {
    const after = model.visible(new Map(state.tasks).set(id, changed), state.view, hidden, pinned);
    if (after.some((t) => t.id === id)) return null;
  }
  const i = rows.findIndex((t) => t.id === id);
  const other = rows[i + 1] ?? rows[i - 1];
  return other ? { id: other.id, control: "check" } : { selector: "#new-title" };
}

// ---- deleting, with undo ----------------------------------------------------------------------

let batchSeq = 0;

/// Deletes after UNDO_MS unless undone; the rows leave the list at once.
export function deleteTasks(ids, label) {
  ids = ids.filter((id) => state.tasks.has(id) && !state.pending.has(id));
  if (!ids.length) return;
  const next = ids.length === 1 ? neighbourAfterHiding(ids[0]) : firstRowAfterHiding(ids);
  const batch = { id: ++batchSeq, ids, timer: null, toast: 0 };
  for (const id of ids) {
    state.pending.set(id, { task: state.tasks.get(id), batch });
    state.drafts.delete(id);
  }
  batch.toast = toast(label, { action: { label: "Undo", run: () => undoDelete(batch.id) }, timeout: UNDO_MS, kind: "undo" });
  batch.timer = setTimeout(() => commitBatch(batch), UNDO_MS);
  lastBatch = batch;
  focusNext(next);
}

let lastBatch = null;

/// The first row left in the list once `ids` are gone, else the add box.
function firstRowAfterHiding(ids) {
  const hidden = new Set([...state.pending.keys(), ...ids]);
  const first = model.visible(state.tasks, state.view, hidden, new Set(state.drafts.keys()))[0];
  return first ? { id: first.id, control: "check" } : { selector: "#new-title" };
}

export function deleteTask(id) {
  const t = state.tasks.get(id);
  if (t) deleteTasks([id], `Deleted “${t.title}”.`);
}

export function clearCompleted() {
  const ids = [...state.tasks.values()].filter((t) => t.status === "done" && !state.pending.has(t.id)).map((t) => t.id);
  if (ids.length) deleteTasks(ids, `Cleared ${ids.length} completed ${ids.length === 1 ? "task" : "tasks"}.`);
}

export function undoDelete(batchId = lastBatch?.id) {
  const ids = [];
  for (const [id, p] of state.pending) if (p.batch.id === batchId) ids.push(id);
  if (!ids.length) return;
  const batch = state.pending.get(ids[0]).batch;
  clearTimeout(batch.timer);
  for (const id of ids) state.pending.delete(id);
  dismissToast(batch.toast);
  toast(ids.length === 1 ? `Restored “${state.tasks.get(ids[0])?.title ?? "the task"}”.` : `Restored ${ids.length} tasks.`);
  focusNext({ id: ids[0], control: "check" });
}

async function commitBatch(batch, { keepalive = false } = {}) {
  const ids = batch.ids.filter((id) => state.pending.get(id)?.batch === batch);
  const failed = [];
  await Promise.all(
    ids.map(async (id) => {
      try {
        await api.deleteTask(id, { keepalive });
      } catch (err) {
        // 401: the session expired; the delete waits for the next sign-in (beginSession).
        if (err.kind === "auth") return;
        if (err.kind !== "notfound") return failed.push({ id, err });
      }
      state.pending.delete(id);
      state.tasks.delete(id);
      if (loadBuffer) loadBuffer.push({ type: "task_deleted", task_id: id, changes: { deleted: true } });
    }),
  );
  for (const { id } of failed) state.pending.delete(id);
  if (failed.length && state.session.phase === "signed-in") {
    const what = failed.length === 1 ? `“${state.tasks.get(failed[0].id)?.title ?? "A task"}” was not deleted` : `${failed.length} tasks were not deleted`;
    toast(`${what}: ${failed[0].err.message} It is back in the list.`, { kind: "error", timeout: 10000 });
  }
  emit();
}

/// Sends every delete still waiting for its undo (sign-out, the page closing).
export function flushDeletes({ keepalive = false } = {}) {
  const batches = new Set([...state.pending.values()].map((p) => p.batch));
  for (const b of batches) {
    clearTimeout(b.timer);
    commitBatch(b, { keepalive });
  }
}
window.addEventListener("pagehide", () => flushDeletes({ keepalive: true }));

// ---- finding ----------------------------------------------------------------------------------

export function setView(change) {
  state.view = { ...state.view, ...change, shown: PAGE_SIZE };
  emit();
}
export function showMore() {
  state.view = { ...state.view, shown: state.view.shown + PAGE_SIZE };
  emit();
}

// ---- history ----------------------------------------------------------------------------------

export async function openHistory(id) {
  const task = state.tasks.get(id);
  state.history = { taskId: id, title: task?.title ?? "", items: [], loading: true, error: null, behind: false, returnTo: { id, control: "history" } };
  emit();
  await refreshHistory(id, 0);
}

async function refreshHistory(id, attempt) {
  const h = state.history;
  if (!h || h.taskId !== id) return;
  try {
    const data = await api.history(id);
    if (state.history !== h) return;
    h.items = model.timeline(data.items);
    h.loading = false;
    h.error = null;
    // The audit trail is written by a consumer, a moment after the change: say so, and look
    // again, while the task is newer than the trail.
    const task = state.tasks.get(id);
    const last = data.items.at(-1)?.task;
    h.behind = !!(task && (!last || (last.version ?? 0) < (task.version ?? 0)));
    if (h.behind && attempt < 10) setTimeout(() => refreshHistory(id, attempt + 1), 500 * (attempt + 1));
  } catch (err) {
    if (state.history !== h) return;
    h.loading = false;
    h.error = err.kind === "notfound" ? "This task has no history yet: its first event is still on its way. Try again in a moment." : err.message;
  }
  emit();
}

export function closeHistory() {
  const back = state.history?.returnTo;
  state.history = null;
  focusNext(back && state.tasks.has(back.id) ? back : { selector: "#new-title" });
}

// ---- notifications ----------------------------------------------------------------------------

function liveNotification(n) {
  const list = state.notifications;
  if (list.items.some((i) => i.event_id === n.event_id) || list.live.some((i) => i.event_id === n.event_id)) return;
  list.live = [{ ...n, read: false, live: true }, ...list.live];
  toast(`${n.title}${n.message ? " — " + localizeTimes(n.message) : ""}`, { action: { label: "Show", run: () => openNotifications() }, kind: "notification" });
  // The stored row is written by the notification consumer, a moment after the frame.
  let tries = 0;
  const look = () => {
    if (!list.live.some((i) => i.event_id === n.event_id) || ++tries > 6 || state.notifications !== list) return;
    loadNotifications().then(() => setTimeout(look, 1000 * tries));
  };
  setTimeout(look, 800);
  emit();
}

export function unreadCount() {
  const n = state.notifications;
  return n.unread + n.live.filter((l) => !l.read).length;
}

export function openNotifications() {
  state.notifications.open = true;
  emit();
  loadNotifications();
}

export function closeNotifications() {
  state.notifications.open = false;
  focusNext({ selector: "#notifications-button" });
}

export async function markRead(item) {
  const n = state.notifications;
  if (item.read) return;
  if (!item.id || item.live) {
    // Not stored yet: read here now, and on the server once its row is there.
    item.read = true;
    n.readLocally.add(item.event_id);
    return emit();
  }
  item.read = true;
  n.unread = Math.max(0, n.unread - 1);
  readEpoch++;
  emit();
  try {
    const updated = await api.markRead(item.id);
    readEpoch++;
    Object.assign(item, updated);
  } catch (err) {
    if (err.kind === "auth") return;
    item.read = false;
    n.unread++;
    toast(`Could not mark it read: ${err.message}`, { kind: "error" });
  }
  emit();
}

/// Marks every notification read, at once on the page (back as it was if the server refuses).
export async function markAllRead() {
  const n = state.notifications;
  const before = { unread: n.unread, items: n.items.filter((i) => !i.read), live: n.live.filter((l) => !l.read) };
  for (const i of before.items) i.read = true;
  for (const l of before.live) {
    l.read = true;
    n.readLocally.add(l.event_id);
  }
  n.unread = 0;
  readEpoch++;
  emit();
  try {
    await api.markAllRead();
  } catch (err) {
    for (const i of before.items) i.read = false;
    for (const l of before.live) {
      l.read = false;
      n.readLocally.delete(l.event_id);
    }
    n.unread = before.unread;
    if (err.kind !== "auth") toast(`Could not mark them read: ${err.message}`, { kind: "error" });
  } finally {
    readEpoch++;
    emit();
  }
}

/// A notification about a task: close the panel and go to the task.
export function showTask(taskId) {
  state.notifications.open = false;
  if (state.tasks.has(taskId)) {
    state.view = { ...state.view, filter: "all", query: "" };
    focusNext({ id: taskId, control: "check" });
  } else {
    toast("That task is no longer in your list.");
    focusNext({ selector: "#notifications-button" });
  }
}

// ---- misc -------------------------------------------------------------------------------------

export function setShortcutsOpen(open) {
  state.shortcutsOpen = open;
  emit();
  if (!open) focusNext({ selector: "#shortcuts-button" });
}

// Due and overdue marks follow the clock.
setInterval(() => {
  state.now = Date.now();
  if (state.session.phase === "signed-in" && state.tasks.size) emit();
}, 30000);
