-- the audit trail and notifications. No foreign keys to users: events may name
-- users this database does not know. A task's history is ordered in code (see
-- impl::order_history) from rows read in recorded order, which is the rowid: SQLite
-- gives a new row a rowid above every existing one, and VACUUM keeps their order.
CREATE TABLE audit_log (
  event_id         TEXT PRIMARY KEY,
  user_id          TEXT NOT NULL,
  task_id          TEXT NOT NULL,
  type             TEXT NOT NULL,
  action           TEXT NOT NULL,
  seq              INTEGER,
  occurred_at      TEXT NOT NULL,
  task_data        TEXT NOT NULL,
  source_topic     TEXT NOT NULL,
  source_partition INTEGER NOT NULL,
  source_offset    INTEGER NOT NULL,
  recorded_at      TEXT NOT NULL
);
CREATE INDEX audit_log_task ON audit_log (user_id, task_id, seq, occurred_at);
CREATE TABLE notifications (
  id         TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL,
  task_id    TEXT,
  type       TEXT NOT NULL,
  title      TEXT NOT NULL,
  message    TEXT NOT NULL,
  email      TEXT,
  event_id   TEXT NOT NULL UNIQUE,
  read_at    TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX notifications_user_created ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_user_unread ON notifications (user_id, created_at DESC, id DESC) WHERE read_at IS NULL;
CREATE TABLE notification_channels (
  notification_id TEXT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
  channel         TEXT NOT NULL,
  position        INTEGER NOT NULL,  -- order in the request
  status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
  detail          TEXT NOT NULL DEFAULT '',
  updated_at      TEXT NOT NULL,
  PRIMARY KEY (notification_id, channel)
);
