-- The outbox's event_id loses its UNIQUE index: no query reads the outbox by event id
-- (consumers deduplicate in processed_events), event ids are fresh UUIDv7s, and the index
-- was a third B-tree insert for every event on the commit path (docs/benchmarks.md).
-- SQLite cannot drop a column constraint, so the table is rebuilt, ids and the
-- AUTOINCREMENT high-water mark kept: a relay's "published up to id N" stays true.
CREATE TABLE outbox_rebuilt (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  topic        TEXT NOT NULL,
  key          TEXT NOT NULL,
  payload      TEXT NOT NULL,
  event_id     TEXT NOT NULL,
  event_type   TEXT NOT NULL,
  traceparent  TEXT NOT NULL DEFAULT '',
  user_id      TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  created_at   TEXT NOT NULL,
  published_at TEXT
);
INSERT INTO outbox_rebuilt (id, topic, key, payload, event_id, event_type, traceparent, user_id, seq, created_at, published_at)
  SELECT id, topic, key, payload, event_id, event_type, traceparent, user_id, seq, created_at, published_at FROM outbox;
DELETE FROM sqlite_sequence WHERE name = 'outbox_rebuilt';
INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_rebuilt', seq FROM sqlite_sequence WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_user_topic_seq ON outbox (user_id, topic, seq);
