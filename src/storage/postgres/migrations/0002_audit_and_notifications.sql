-- the audit trail and notifications. No foreign keys to users: events may name
-- users this database does not know. recorded_order is the insertion order, the last
-- tie-break of a task's history (ordered in code, see impl::order_history).
CREATE TABLE audit_log (
  event_id         text COLLATE "C" PRIMARY KEY,
  user_id          text COLLATE "C" NOT NULL,
  task_id          text COLLATE "C" NOT NULL,
  type             text NOT NULL,
  action           text NOT NULL,
  seq              bigint,
  occurred_at      text COLLATE "C" NOT NULL,
  task_data        text NOT NULL,
  source_topic     text NOT NULL,
  source_partition integer NOT NULL,
  source_offset    bigint NOT NULL,
  recorded_at      text COLLATE "C" NOT NULL,
  recorded_order   bigserial NOT NULL
);
CREATE INDEX audit_log_task ON audit_log (user_id, task_id, seq, occurred_at);
CREATE TABLE notifications (
  id         text COLLATE "C" PRIMARY KEY,
  user_id    text COLLATE "C" NOT NULL,
  task_id    text COLLATE "C",
  type       text NOT NULL,
  title      text NOT NULL,
  message    text NOT NULL,
  email      text,
  event_id   text COLLATE "C" NOT NULL UNIQUE,
  read_at    text COLLATE "C",
  created_at text COLLATE "C" NOT NULL
);
CREATE INDEX notifications_user_created ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_user_unread ON notifications (user_id, created_at DESC, id DESC) WHERE read_at IS NULL;
CREATE TABLE notification_channels (
  notification_id text COLLATE "C" NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
  channel         text COLLATE "C" NOT NULL,
  position        integer NOT NULL,  -- order in the request
  status          text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
  detail          text NOT NULL DEFAULT '',
  updated_at      text COLLATE "C" NOT NULL,
  PRIMARY KEY (notification_id, channel)
);
