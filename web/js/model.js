// The task model, without the DOM: limits, validation, applying live frames, filtering,
// sorting and counting, and the differences between two versions of a task. Everything here
// is a pure function, tested under Node (tests/web/model.test.mjs).

export const LIMITS = Object.freeze({ title: 200, description: 10000 });
export const STATUSES = Object.freeze(["todo", "in_progress", "done"]);
export const PRIORITIES = Object.freeze(["low", "medium", "high"]);
export const STATUS_LABEL = Object.freeze({ todo: "To do", in_progress: "In progress", done: "Done" });
export const PRIORITY_LABEL = Object.freeze({ low: "Low", medium: "Medium", high: "High" });
export const FIELD_LABEL = Object.freeze({
  title: "Title",
  description: "Description",
  status: "Status",
  priority: "Priority",
  due_at: "Due",
});
/// The writable fields, in the order forms and comparisons show them.
export const FIELDS = Object.freeze(["title", "description", "status", "priority", "due_at"]);
/// How long before its due time a task counts as "due soon".
export const DUE_SOON_MS = 24 * 3600 * 1000;

/// Length in Unicode code points, as the server counts it (not UTF-16 units).
export function charCount(s) {
  let n = 0;
  for (const _ of s ?? "") n++;
  return n;
}

/// Client-side checks of a task's fields, with the server's limits; {field: message}.
/// `dueInvalid`: the date input holds something that is not a whole date and time.
export function validate(fields, { dueInvalid = false } = {}) {
  const errors = {};
  const title = (fields.title ?? "").trim();
  const n = charCount(title);
  if (n === 0) errors.title = "Enter a title: it can't be empty or only spaces.";
  else if (n > LIMITS.title) errors.title = `The title is ${n - LIMITS.title} characters too long (${LIMITS.title} at most).`;
  const d = charCount(fields.description ?? "");
  if (d > LIMITS.description) errors.description = `The description is ${d - LIMITS.description} characters too long (${LIMITS.description} at most).`;
  if (dueInvalid) errors.due_at = "Enter a whole date and time, or clear the field.";
  return errors;
}

/// Counter text for a field near or over its limit, else null (shown from 80 % of it).
export function counter(value, limit) {
  const n = charCount(value ?? "");
  if (n < limit * 0.8) return null;
  return { text: `${n} / ${limit}`, over: n > limit };
}

/// The body of a PATCH: the fields of `fields` that differ from `base` (a task), normalised
/// as the API stores them (title trimmed, empty description = null).
export function changedFields(base, fields) {
  const out = {};
  const norm = normalise(fields);
  for (const f of FIELDS) {
    if (!(f in norm)) continue;
    if (!sameValue(f, norm[f], base[f])) out[f] = norm[f];
  }
  return out;
}

/// Fields as the API takes them: title trimmed, empty description null, due_at UTC or null.
export function normalise(fields) {
  const out = {};
  if ("title" in fields) out.title = (fields.title ?? "").trim();
  if ("description" in fields) out.description = fields.description ? fields.description : null;
  if ("status" in fields) out.status = fields.status;
  if ("priority" in fields) out.priority = fields.priority;
  if ("due_at" in fields) out.due_at = fields.due_at || null;
  return out;
}

export function sameValue(field, a, b) {
  if (field === "due_at") return sameInstant(a, b);
  if (field === "description") return (a || null) === (b || null);
  return a === b;
}

function sameInstant(a, b) {
  if (!a || !b) return !a && !b;
  return Date.parse(a) === Date.parse(b);
}

/// Applies one /ws frame to `tasks` (a Map id -> task), in place. Returns what changed:
/// {kind: "created"|"updated"|"deleted"|null, id}. A change whose version is not newer than
/// what the map holds is ignored, so a frame that crosses a refetch cannot undo anything.
export function applyFrame(tasks, frame) {
  const id = frame.task_id;
  const changes = frame.changes || {};
  if (!id) return { kind: null, id };
  if (frame.type === "task_deleted" || changes.deleted) {
    const had = tasks.delete(id);
    return { kind: had ? "deleted" : null, id };
  }
  const have = tasks.get(id);
  if (frame.type === "task_created" && !have) {
    tasks.set(id, { ...changes });
    return { kind: "created", id };
  }
  if (!have) return { kind: null, id };
  if (changes.version !== undefined && changes.version <= (have.version ?? 0)) return { kind: null, id };
  tasks.set(id, { ...have, ...changes });
  return { kind: "updated", id };
}

/// Puts a task from an API answer into the map unless the map already holds a newer one.
export function applyTask(tasks, task) {
  const have = tasks.get(task.id);
  if (have && (have.version ?? 0) > (task.version ?? 0)) return false;
  tasks.set(task.id, task);
  return true;
}

/// "overdue", "soon" (within DUE_SOON_MS) or null, for a task that is not done.
export function dueState(task, now = Date.now()) {
  if (!task.due_at || task.status === "done") return null;
  const t = Date.parse(task.due_at);
  if (Number.isNaN(t)) return null;
  if (t < now) return "overdue";
  if (t - now <= DUE_SOON_MS) return "soon";
  return null;
}

export const FILTERS = Object.freeze({
  all: () => true,
  active: (t) => t.status !== "done",
  in_progress: (t) => t.status === "in_progress",
  done: (t) => t.status === "done",
});
export const FILTER_LABEL = Object.freeze({ all: "All", active: "Active", in_progress: "In progress", done: "Done" });

/// Tasks per filter, over every task in `tasks` not in `hidden` (a Set of ids).
export function counts(tasks, hidden = new Set()) {
  const c = { all: 0, active: 0, in_progress: 0, done: 0 };
  for (const t of tasks.values()) {
    if (hidden.has(t.id)) continue;
    c.all++;
    if (t.status === "done") c.done++;
    else c.active++;
    if (t.status === "in_progress") c.in_progress++;
  }
  return c;
}

const PRIORITY_RANK = { high: 0, medium: 1, low: 2 };
const byCreatedDesc = (a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? 1 : -1);
export const SORTS = Object.freeze({
  created: byCreatedDesc,
  // Soonest due first; tasks without a due date last, newest first among themselves.
  due: (a, b) => {
    if (a.due_at && b.due_at) return Date.parse(a.due_at) - Date.parse(b.due_at) || byCreatedDesc(a, b);
    if (a.due_at) return -1;
    if (b.due_at) return 1;
    return byCreatedDesc(a, b);
  },
  priority: (a, b) => (PRIORITY_RANK[a.priority] ?? 1) - (PRIORITY_RANK[b.priority] ?? 1) || SORTS.due(a, b),
});
export const SORT_LABEL = Object.freeze({ created: "Newest first", due: "Due date", priority: "Priority" });

/// Does `task` match the search `query` (words, all of them, in title or description,
/// ignoring case and accents)?
export function matches(task, query) {
  const words = fold(query).split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const text = fold(task.title + "\n" + (task.description ?? ""));
  return words.every((w) => text.includes(w));
}

function fold(s) {
  return (s ?? "").normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
}

/// The tasks a list shows: the filter and search applied, sorted; hidden ids left out. A task
/// in `pinned` (one being edited) is always shown, so a change made elsewhere that moves it
/// out of the filter never takes an open edit off the screen.
export function visible(tasks, { filter = "all", sort = "created", query = "" } = {}, hidden = new Set(), pinned = new Set()) {
  const keep = FILTERS[filter] ?? FILTERS.all;
  const out = [];
  for (const t of tasks.values()) {
    if (hidden.has(t.id)) continue;
    if (pinned.has(t.id) || (keep(t) && matches(t, query))) out.push(t);
  }
  return out.sort(SORTS[sort] ?? SORTS.created);
}

/// What differs from task `a` to task `b`: [{field, from, to}] over the writable fields.
export function diff(a, b) {
  const out = [];
  for (const f of FIELDS) {
    const from = a ? a[f] ?? null : null;
    const to = b ? b[f] ?? null : null;
    if (!sameValue(f, from, to)) out.push({ field: f, from, to });
  }
  return out;
}

/// The history timeline: each audit entry with what it changed against the entry before it.
export function timeline(items) {
  let before = null;
  return items.map((e) => {
    const changes = e.action === "created" || e.action === "deleted" ? [] : diff(before, e.task);
    if (e.task) before = e.task;
    return { ...e, changes };
  });
}

/// A notification frame or item's key, for matching a live frame to its stored row.
export function notificationKey(n) {
  return n.event_id || n.id;
}

/// Merges the stored notifications with live ones not stored yet (by event_id), newest first.
export function mergeNotifications(stored, live) {
  const have = new Set(stored.map(notificationKey));
  const pending = live.filter((n) => !have.has(notificationKey(n)));
  return [...pending, ...stored];
}
