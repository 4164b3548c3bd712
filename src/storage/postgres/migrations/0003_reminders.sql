-- deadline reminders. One row per reminder sent: a task whose due_at moves is a new
-- key, so it is reminded again. No foreign key to tasks (rows outlive their task, like
-- audit_log). tasks_due_open serves tasks_due_without_reminder's range scan.
CREATE TABLE reminders_sent (
  task_id text COLLATE "C" NOT NULL,
  due_at  text COLLATE "C" NOT NULL,
  kind    text COLLATE "C" NOT NULL,
  sent_at text COLLATE "C" NOT NULL,
  PRIMARY KEY (task_id, due_at, kind)
);
CREATE INDEX tasks_due_open ON tasks (due_at, id) WHERE status <> 'done' AND due_at IS NOT NULL;
