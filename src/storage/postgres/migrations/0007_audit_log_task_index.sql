-- A task's history (task_history) reads WHERE user_id = $1 AND task_id = $2 ORDER BY
-- recorded_order. The index of migration 2 held seq and occurred_at, which no query
-- reads (the trail is ordered in code from recorded order), so the rows were sorted
-- after the scan; with recorded_order as its last column the index gives them in order.
-- (bench/data_growth, docs/benchmarks.md "Cost as data grows".) Built without
-- CONCURRENTLY (migrations run in a transaction): audit_log writes wait for the build.
DROP INDEX audit_log_task;
CREATE INDEX audit_log_task ON audit_log (user_id, task_id, recorded_order);
