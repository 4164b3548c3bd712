-- what operators did (storage/sqlite/migrations/0005_operator_actions.sql).
CREATE TABLE operator_actions (
  id      bigserial PRIMARY KEY,
  at      text NOT NULL,
  actor   text NOT NULL,
  action  text NOT NULL,
  target  text NOT NULL,
  filter  text NOT NULL DEFAULT '',
  seen    bigint NOT NULL DEFAULT 0,
  matched bigint NOT NULL DEFAULT 0,
  sent    bigint NOT NULL DEFAULT 0,
  outcome text NOT NULL,
  detail  text NOT NULL DEFAULT ''
);
