-- what operators did (redrives, dry runs, email retries), for the console's log.
CREATE TABLE operator_actions (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  at      TEXT NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  target  TEXT NOT NULL,
  filter  TEXT NOT NULL DEFAULT '',
  seen    INTEGER NOT NULL DEFAULT 0,
  matched INTEGER NOT NULL DEFAULT 0,
  sent    INTEGER NOT NULL DEFAULT 0,
  outcome TEXT NOT NULL,
  detail  TEXT NOT NULL DEFAULT ''
);
