-- users, tasks, the per-user seq, the transactional outbox and consumers' processed events.
-- Text columns that are compared or ordered (ids, timestamps) use COLLATE "C": bytewise,
-- like SQLite, whatever locale the database was created with, so RFC 3339 strings sort
-- by time and the keyset cursor compares exactly as the index orders.
CREATE TABLE users (
  id            text COLLATE "C" PRIMARY KEY,
  email         text NOT NULL,
  email_key     text COLLATE "C" NOT NULL UNIQUE,  -- ASCII-lower-cased email: uniqueness ignores case
  password_hash text NOT NULL,
  created_at    text COLLATE "C" NOT NULL
);
CREATE TABLE tasks (
  id           text COLLATE "C" PRIMARY KEY,
  user_id      text COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title        text NOT NULL,
  description  text,
  status       text NOT NULL CHECK (status IN ('todo', 'in_progress', 'done')),
  priority     text NOT NULL CHECK (priority IN ('low', 'medium', 'high')),
  due_at       text COLLATE "C",
  created_at   text COLLATE "C" NOT NULL,
  updated_at   text COLLATE "C" NOT NULL,
  completed_at text COLLATE "C",
  version      bigint NOT NULL
);
CREATE INDEX tasks_user_created ON tasks (user_id, created_at DESC, id DESC);
CREATE TABLE user_seq (
  user_id  text COLLATE "C" PRIMARY KEY,
  last_seq bigint NOT NULL
);
CREATE TABLE outbox (
  id           bigserial PRIMARY KEY,
  topic        text NOT NULL,
  key          text NOT NULL,
  payload      text NOT NULL,
  event_id     text COLLATE "C" NOT NULL UNIQUE,
  event_type   text NOT NULL,
  traceparent  text NOT NULL DEFAULT '',
  user_id      text COLLATE "C" NOT NULL,
  seq          bigint NOT NULL,
  created_at   text COLLATE "C" NOT NULL,
  published_at text COLLATE "C"
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_user_topic_seq ON outbox (user_id, topic, seq);
CREATE TABLE processed_events (
  consumer_group text NOT NULL,
  event_id       text COLLATE "C" NOT NULL,
  processed_at   text COLLATE "C" NOT NULL,
  PRIMARY KEY (consumer_group, event_id)
);
