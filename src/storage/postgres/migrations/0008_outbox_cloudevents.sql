-- The CloudEvents attributes the relay cannot read from the other columns (docs/events.md,
-- "CloudEvents"): the event's subject (ce_subject, the task id) and the schema of its
-- payload ("task-event/v1": ce_dataschema and the schema_version header). Rows written
-- before this migration keep '' and are sent without those two headers.
ALTER TABLE outbox ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN data_schema TEXT NOT NULL DEFAULT '';
