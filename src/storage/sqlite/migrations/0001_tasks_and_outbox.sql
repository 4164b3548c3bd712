-- users, tasks, the per-user seq, the transactional outbox and consumers' processed events.
CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  email         TEXT NOT NULL,
  email_key     TEXT NOT NULL UNIQUE,  -- ASCII-lower-cased email: uniqueness ignores case
  password_hash TEXT NOT NULL,
  created_at    TEXT NOT NULL
);
CREATE TABLE tasks (
  id           TEXT PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title        TEXT NOT NULL,
  description  TEXT,
  status       TEXT NOT NULL CHECK (status IN ('todo', 'in_progress', 'done')),
  priority     TEXT NOT NULL CHECK (priority IN ('low', 'medium', 'high')),
  due_at       TEXT,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  completed_at TEXT,
  version      INTEGER NOT NULL
);
CREATE INDEX tasks_user_created ON tasks (user_id, created_at DESC, id DESC);
CREATE TABLE user_seq (
  user_id  TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL
);
-- AUTOINCREMENT: ids are never reused, so a relay's "published up to id N" stays true.
CREATE TABLE outbox (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  topic        TEXT NOT NULL,
  key          TEXT NOT NULL,
  payload      TEXT NOT NULL,
  event_id     TEXT NOT NULL UNIQUE,
  event_type   TEXT NOT NULL,
  traceparent  TEXT NOT NULL DEFAULT '',
  user_id      TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  created_at   TEXT NOT NULL,
  published_at TEXT
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_user_topic_seq ON outbox (user_id, topic, seq);
CREATE TABLE processed_events (
  consumer_group TEXT NOT NULL,
  event_id       TEXT NOT NULL,
  processed_at   TEXT NOT NULL,
  PRIMARY KEY (consumer_group, event_id)
);
