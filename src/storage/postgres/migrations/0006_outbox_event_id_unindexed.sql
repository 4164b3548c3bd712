-- The outbox's event_id loses its UNIQUE index: no query reads the outbox by event id
-- (consumers deduplicate in processed_events), event ids are fresh UUIDv7s, and the index
-- was a third B-tree insert for every event on the commit path (docs/benchmarks.md).
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_event_id_key;
