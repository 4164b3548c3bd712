// The web page's pure logic under Node (node --test), run by tests/unit/web_model_test.cpp
// with TZ=Asia/Kolkata (UTC+05:30, no daylight saving) so local-time conversions are exact.

import test from "node:test";
import assert from "node:assert/strict";
import * as model from "../../web/js/model.js";
import { fromLocalInput, toLocalInput, formatWhen, relative, localizeTimes } from "../../web/js/time.js";
import { fieldOf } from "../../web/js/api.js";

const task = (over = {}) => ({
  id: "t1",
  title: "Buy milk",
  description: null,
  status: "todo",
  priority: "medium",
  due_at: null,
  created_at: "2026-12-01T10:00:00.000Z",
  updated_at: "2026-12-01T10:00:00.000Z",
  version: 1,
  ...over,
});

test("limits count code points, as the server does", () => {
  assert.equal(model.charCount("añ😀"), 3);
  assert.deepEqual(model.validate({ title: "😀".repeat(200) }), {});
  assert.match(model.validate({ title: "😀".repeat(201) }).title, /1 characters too long \(200 at most\)/);
  assert.match(model.validate({ title: "x".repeat(5000) }).title, /4800 characters too long/);
  assert.match(model.validate({ title: "   " }).title, /can't be empty/);
  assert.match(model.validate({ title: "ok", description: "d".repeat(10001) }).description, /1 characters too long \(10000 at most\)/);
  assert.match(model.validate({ title: "ok" }, { dueInvalid: true }).due_at, /whole date and time/);
});

test("the counter shows from 80 % of the limit and says when it is over", () => {
  assert.equal(model.counter("x".repeat(159), 200), null);
  assert.deepEqual(model.counter("x".repeat(160), 200), { text: "160 / 200", over: false });
  assert.deepEqual(model.counter("x".repeat(201), 200), { text: "201 / 200", over: true });
});

test("a PATCH body holds only what changed, normalised", () => {
  const base = task({ due_at: "2026-12-03T04:00:00.000Z" });
  assert.deepEqual(model.changedFields(base, { title: " Buy milk ", description: "", status: "todo", priority: "medium", due_at: "2026-12-03T04:00:00Z" }), {});
  assert.deepEqual(model.changedFields(base, { title: "Buy oat milk", description: "2 l", status: "done", priority: "high", due_at: null }), {
    title: "Buy oat milk",
    description: "2 l",
    status: "done",
    priority: "high",
    due_at: null,
  });
});

test("frames apply by version: an older or repeated change never undoes a newer one", () => {
  const tasks = new Map();
  assert.equal(model.applyFrame(tasks, { type: "task_created", task_id: "t1", seq: 1, changes: task() }).kind, "created");
  assert.equal(model.applyFrame(tasks, { type: "task_created", task_id: "t1", seq: 1, changes: task() }).kind, null);
  assert.equal(model.applyFrame(tasks, { type: "task_updated", task_id: "t1", seq: 2, changes: { title: "B", version: 2 } }).kind, "updated");
  assert.equal(model.applyFrame(tasks, { type: "task_updated", task_id: "t1", seq: 2, changes: { title: "A", version: 2 } }).kind, null);
  assert.equal(tasks.get("t1").title, "B");
  assert.equal(model.applyFrame(tasks, { type: "task_updated", task_id: "nope", seq: 3, changes: { title: "x", version: 9 } }).kind, null);
  assert.equal(model.applyTask(tasks, task({ title: "old", version: 1 })), false);
  assert.equal(tasks.get("t1").title, "B");
  assert.equal(model.applyFrame(tasks, { type: "task_deleted", task_id: "t1", seq: 4, changes: { deleted: true } }).kind, "deleted");
  assert.equal(tasks.size, 0);
});

test("due state: overdue, soon (24 h), none when done or far", () => {
  const now = Date.parse("2026-12-03T12:00:00Z");
  assert.equal(model.dueState(task({ due_at: "2026-12-03T11:59:00Z" }), now), "overdue");
  assert.equal(model.dueState(task({ due_at: "2026-12-04T11:00:00Z" }), now), "soon");
  assert.equal(model.dueState(task({ due_at: "2026-12-05T12:00:00Z" }), now), null);
  assert.equal(model.dueState(task({ due_at: "2026-12-01T12:00:00Z", status: "done" }), now), null);
});

test("filters, counts, search, sort; an edited task stays in view whatever the filter", () => {
  const tasks = new Map(
    [
      task({ id: "a", title: "Write report", status: "in_progress", priority: "high", created_at: "2026-12-01T01:00:00Z" }),
      task({ id: "b", title: "Café visit", description: "with Ana", status: "todo", priority: "low", due_at: "2026-12-02T00:00:00Z", created_at: "2026-12-01T02:00:00Z" }),
      task({ id: "c", title: "Pay rent", status: "done", due_at: "2026-12-01T00:00:00Z", created_at: "2026-12-01T03:00:00Z" }),
    ].map((t) => [t.id, t]),
  );
  assert.deepEqual(model.counts(tasks), { all: 3, active: 2, in_progress: 1, done: 1 });
  assert.deepEqual(model.counts(tasks, new Set(["c"])), { all: 2, active: 2, in_progress: 1, done: 0 });
  const ids = (v, hidden, pinned) => model.visible(tasks, v, hidden, pinned).map((t) => t.id);
  assert.deepEqual(ids({ filter: "all" }), ["c", "b", "a"]);
  assert.deepEqual(ids({ filter: "active" }), ["b", "a"]);
  assert.deepEqual(ids({ filter: "done" }), ["c"]);
  assert.deepEqual(ids({ filter: "done" }, new Set(), new Set(["a"])), ["c", "a"]);
  assert.deepEqual(ids({ query: "cafe ANA" }), ["b"]);
  assert.deepEqual(ids({ query: "report rent" }), []);
  assert.deepEqual(ids({ sort: "due" }), ["c", "b", "a"]);
  assert.deepEqual(ids({ sort: "priority" }), ["a", "c", "b"]);
  assert.deepEqual(ids({}, new Set(["b"])), ["c", "a"]);
});

test("the history timeline says what each change changed", () => {
  const t1 = task();
  const t2 = task({ title: "Buy oat milk", version: 2 });
  const t3 = task({ title: "Buy oat milk", status: "done", priority: "high", version: 3 });
  const tl = model.timeline([
    { event_id: "1", action: "created", task: t1 },
    { event_id: "2", action: "updated", task: t2 },
    { event_id: "3", action: "completed", task: t3 },
    { event_id: "4", action: "deleted", task: null },
  ]);
  assert.deepEqual(tl[0].changes, []);
  assert.deepEqual(tl[1].changes, [{ field: "title", from: "Buy milk", to: "Buy oat milk" }]);
  assert.deepEqual(tl[2].changes.map((c) => c.field), ["status", "priority"]);
  assert.deepEqual(tl[3].changes, []);
});

test("a live notification shows until its stored row arrives, then once", () => {
  const stored = [{ id: "n1", event_id: "e1", title: "old" }];
  const live = [{ event_id: "e2", title: "new" }, { event_id: "e1", title: "old" }];
  assert.deepEqual(model.mergeNotifications(stored, live).map(model.notificationKey), ["e2", "e1"]);
});

test("due dates: local input <-> UTC in the browser's zone (here UTC+05:30)", () => {
  assert.equal(process.env.TZ, "Asia/Kolkata");
  assert.equal(fromLocalInput("2031-03-04T09:30"), "2031-03-04T04:00:00.000Z");
  assert.equal(toLocalInput("2031-03-04T04:00:00.000Z"), "2031-03-04T09:30");
  assert.equal(toLocalInput("2031-03-04T04:00:00Z"), "2031-03-04T09:30");
  assert.equal(fromLocalInput(""), null);
  assert.equal(fromLocalInput("2031-03-04"), undefined);
  assert.equal(toLocalInput(null), "");
  const now = new Date("2031-03-04T03:00:00Z"); // 08:30 local
  assert.match(formatWhen("2031-03-04T04:00:00Z", now, "en-GB"), /^Today 9:30$/);
  assert.match(formatWhen("2031-03-05T04:00:00Z", now, "en-GB"), /^Tomorrow 9:30$/);
  assert.match(formatWhen("2032-01-05T04:00:00Z", now, "en-GB"), /2032/);
  assert.equal(relative("2031-03-04T03:00:10Z", now.getTime(), "en"), "just now");
  assert.match(relative("2031-03-04T03:30:00Z", now.getTime(), "en"), /30 min/);
  assert.equal(localizeTimes('"Pay rent" is due at 2031-03-04T04:00:00.000Z.', now, "en-GB"), '"Pay rent" is due today at 9:30.');
  assert.equal(localizeTimes("was due at 2032-01-05T04:00:00Z", now, "en-GB"), "was due on 5 Jan 2032 at 9:30");
});

test("a 422 detail names its field", () => {
  assert.deepEqual(fieldOf("title: must be 1 to 200 characters"), { field: "title", message: "Title must be 1 to 200 characters." });
  assert.deepEqual(fieldOf("due_at: must be an RFC 3339 date-time, e.g. 2026-12-01T17:00:00Z"), {
    field: "due_at",
    message: "Due date must be an RFC 3339 date-time, e.g. 2026-12-01T17:00:00Z.",
  });
  assert.deepEqual(fieldOf("something else"), { field: null, message: "something else" });
});
