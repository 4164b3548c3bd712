-- A task's history (task_history) reads WHERE user_id = ? AND task_id = ? ORDER BY rowid.
-- The index of migration 2 also held seq and occurred_at, which no query reads (the
-- trail is ordered in code from recorded order): SQLite scanned it, then sorted the rows
-- by rowid in a temporary B-tree. An index entry ends with its rowid, so (user_id,
-- task_id) alone gives a task's rows in rowid order: no sort, and 32 bytes less per row
-- (bench/data_growth, docs/benchmarks.md "Cost as data grows").
DROP INDEX audit_log_task;
CREATE INDEX audit_log_task ON audit_log (user_id, task_id);
