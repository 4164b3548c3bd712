#include "storage/postgres_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/impl/connection_pool.hpp"

namespace taskstream::storage {

namespace {

constexpr auto kPoolWait = std::chrono::seconds(30);
// pg_advisory_xact_lock key for migrations: arbitrary, but every taskstream version must
// use the same one, or two versions could migrate at once.
constexpr std::string_view kMigrationLockKey = "8391171410424171";

// Migration n is kMigrations[n-1]; append only, never edit one that has shipped.
// Text columns that are compared or ordered (ids, timestamps) use COLLATE "C": bytewise,
// like SQLite, whatever locale the database was created with, so RFC 3339 strings sort
// by time and the keyset cursor compares exactly as the index orders.
constexpr std::string_view kMigrations[] = {
    R"sql(
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
)sql",
    // 2: the audit trail and notifications. No foreign keys to users: events may name
    // users this database does not know. recorded_order is the insertion order, the last
    // tie-break of a task's history (ordered in code, see impl::order_history).
    R"sql(
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
)sql",
    // 3: deadline reminders. One row per reminder sent: a task whose due_at moves is a new
    // key, so it is reminded again. No foreign key to tasks (rows outlive their task, like
    // audit_log). tasks_due_open serves tasks_due_without_reminder's range scan.
    R"sql(
CREATE TABLE reminders_sent (
  task_id text COLLATE "C" NOT NULL,
  due_at  text COLLATE "C" NOT NULL,
  kind    text COLLATE "C" NOT NULL,
  sent_at text COLLATE "C" NOT NULL,
  PRIMARY KEY (task_id, due_at, kind)
);
CREATE INDEX tasks_due_open ON tasks (due_at, id) WHERE status <> 'done' AND due_at IS NOT NULL;
)sql",
    // 4: the email queue (see the SQLite migration 4 for the why).
    R"sql(
ALTER TABLE notifications ADD COLUMN source_topic text NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN source_partition integer NOT NULL DEFAULT -1;
ALTER TABLE notifications ADD COLUMN source_offset bigint NOT NULL DEFAULT -1;
ALTER TABLE notification_channels ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE notification_channels ADD COLUMN next_attempt_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE notification_channels ADD COLUMN first_failure text;
CREATE INDEX notification_emails_due ON notification_channels (next_attempt_ms)
  WHERE channel = 'email' AND status = 'pending';
)sql",
    // 5: what operators did (see the SQLite migration 5).
    R"sql(
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
)sql",
};

constexpr std::string_view kTaskColumns =
    "id, user_id, title, description, status, priority, due_at, created_at, updated_at, completed_at, version";
constexpr std::string_view kOutboxColumns =
    "id, topic, key, payload, event_id, event_type, traceparent, user_id, seq, created_at";
constexpr std::string_view kAuditColumns =
    "event_id, user_id, task_id, type, action, seq, occurred_at, task_data, source_topic, source_partition, "
    "source_offset, recorded_at";

/// A StorageError that knows whether the connection died (the pool must drop it then).
class PgError final : public StorageError {
 public:
  PgError(const std::string& what, bool retriable, bool connection_lost, StorageCondition condition = StorageCondition::error)
      : StorageError(what, retriable, connection_lost ? StorageCondition::unavailable : condition), connection_lost_(connection_lost) {}
  bool connection_lost() const noexcept { return connection_lost_; }

 private:
  bool connection_lost_;
};

// SQLSTATEs worth retrying: the server or the network failed, or the transaction lost a
// race that a second attempt would win.
bool retriable_state(std::string_view state) {
  return state.starts_with("08") ||  // connection exception
         state == "40001" ||         // serialization_failure
         state == "40P01" ||         // deadlock_detected
         state == "55P03" ||         // lock_not_available
         state == "53300" ||         // too_many_connections
         state == "57P01" || state == "57P02" || state == "57P03";  // admin/crash shutdown, cannot connect now
}

StorageCondition condition_of(std::string_view state) {
  if (state.starts_with("08") || state == "53300" || state == "57P01" || state == "57P02" || state == "57P03")
    return StorageCondition::unavailable;
  if (state == "53100") return StorageCondition::disk_full;
  if (state == "25006") return StorageCondition::read_only;
  return StorageCondition::error;
}

std::string one_line(std::string message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  return message;
}

/// Owns a PGresult.
class Result final {
 public:
  explicit Result(PGresult* res) : res_(res) {}
  ~Result() { PQclear(res_); }
  Result(Result&& other) noexcept : res_(std::exchange(other.res_, nullptr)) {}
  Result& operator=(Result&&) = delete;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  int rows() const { return PQntuples(res_); }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(res_, row, col), static_cast<std::size_t>(PQgetlength(res_, row, col)));
  }
  std::optional<std::string> optional_text(int row, int col) const {
    if (PQgetisnull(res_, row, col)) return std::nullopt;
    return text(row, col);
  }
  bool is_null(int row, int col) const { return PQgetisnull(res_, row, col) != 0; }
  std::optional<std::int64_t> optional_int64(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return int64(row, col);
  }
  std::int64_t int64(int row, int col) const {
    std::int64_t v = 0;
    const char* p = PQgetvalue(res_, row, col);
    const auto [end, ec] = std::from_chars(p, p + PQgetlength(res_, row, col), v);
    if (ec != std::errc()) throw StorageError(fmt::format("postgres: column {} is not an integer", col), false);
    return v;
  }

 private:
  PGresult* res_;
};

/// A text-format query parameter; nullopt is SQL NULL.
using Param = std::optional<std::string>;

Param param(std::int64_t v) { return std::to_string(v); }

/// A one-dimensional array literal in PostgreSQL's text format: every element quoted
/// (backslash and double quote escaped) or NULL, so any text survives as given.
class ArrayLiteral final {
 public:
  void add(std::string_view text) {
    open_element();
    out_ += '"';
    for (const char c : text) {
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_ += '"';
  }
  void add(std::int64_t value) {
    open_element();
    out_ += std::to_string(value);
  }
  void add(const std::optional<std::int64_t>& value) {
    if (value) return add(*value);
    open_element();
    out_ += "NULL";
  }
  std::string finish() && { return std::move(out_) + "}"; }

 private:
  void open_element() { out_ += out_.size() == 1 ? "" : ","; }
  std::string out_ = "{";
};

/// One libpq connection; closed on destruction.
class Connection final {
 public:
  explicit Connection(const std::string& url) {
    // Entries before "dbname" are defaults that the URL's own parameters override.
    const char* keys[] = {"connect_timeout", "fallback_application_name", "client_encoding", "dbname", nullptr};
    const char* values[] = {"10", "taskstream", "UTF8", url.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (!conn_) throw StorageError("postgres: out of memory creating a connection", true, StorageCondition::unavailable);
    if (PQstatus(conn_) != CONNECTION_OK) {
      const auto message = one_line(PQerrorMessage(conn_));
      PQfinish(conn_);
      // Retriable: the server may just be starting or restarting; a wrong password or
      // database name shows in the message and keeps failing the same way.
      throw StorageError("postgres: cannot connect: " + message, true, StorageCondition::unavailable);
    }
    // libpq prints server notices (e.g. "drop cascades to ...") on stderr by default,
    // bypassing the service's log format.
    PQsetNoticeProcessor(
        conn_, [](void*, const char* message) { spdlog::debug("postgres: {}", one_line(message)); }, nullptr);
  }
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool lost() const { return PQstatus(conn_) != CONNECTION_OK; }
  /// False while a transaction is open or failed: such a connection must not be reused.
  bool idle() const { return PQtransactionStatus(conn_) == PQTRANS_IDLE; }

  /// One statement with $1.. parameters (extended protocol: values never touch the SQL).
  Result query(std::string_view sql, const std::vector<Param>& params = {}) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    const std::string text(sql);
    return check(PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                              nullptr, 0),
                 sql);
  }

  /// Several statements without parameters (simple protocol), e.g. a migration.
  void script(std::string_view sql) {
    const std::string text(sql);
    check(PQexec(conn_, text.c_str()), sql);
  }

 private:
  Result check(PGresult* raw, std::string_view sql) {
    Result res(raw);
    const auto status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return res;
    const bool lost_now = lost();
    const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
    const std::string message = one_line(raw ? PQresultErrorMessage(raw) : PQerrorMessage(conn_));
    throw PgError(fmt::format("postgres: {}{} (in: {})", lost_now ? "connection lost: " : "",
                              message.empty() ? PQresStatus(status) : message, sql.substr(0, 60)),
                  lost_now || (state && retriable_state(state)), lost_now, state ? condition_of(state) : StorageCondition::unavailable);
  }

  PGconn* conn_ = nullptr;
};

/// BEGIN on construction; ROLLBACK on destruction unless committed.
class Transaction final {
 public:
  explicit Transaction(Connection& conn) : conn_(conn) { conn_.query("BEGIN"); }
  ~Transaction() {
    if (done_ || conn_.lost() || conn_.idle()) return;
    try {
      conn_.query("ROLLBACK");
    } catch (const StorageError& e) {
      spdlog::warn("postgres: rollback failed: {}", e.what());
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    try {
      conn_.query("COMMIT");
    } catch (const PgError& e) {
      if (!e.connection_lost()) throw;
      throw PgError(std::string(e.what()) + "; the change may or may not have been committed", true, true);
    }
    done_ = true;
  }

 private:
  Connection& conn_;
  bool done_ = false;
};

Task read_task(const Result& r, int row) {
  Task t;
  t.id = r.text(row, 0);
  t.user_id = r.text(row, 1);
  t.title = r.text(row, 2);
  t.description = r.optional_text(row, 3);
  t.status = r.text(row, 4);
  t.priority = r.text(row, 5);
  t.due_at = r.optional_text(row, 6);
  t.created_at = r.text(row, 7);
  t.updated_at = r.text(row, 8);
  t.completed_at = r.optional_text(row, 9);
  t.version = r.int64(row, 10);
  return t;
}

std::vector<OutboxRecord> read_outbox(const Result& r) {
  std::vector<OutboxRecord> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    OutboxRecord o;
    o.id = r.int64(i, 0);
    o.topic = r.text(i, 1);
    o.key = r.text(i, 2);
    o.payload = r.text(i, 3);
    o.event_id = r.text(i, 4);
    o.event_type = r.text(i, 5);
    o.traceparent = r.text(i, 6);
    o.user_id = r.text(i, 7);
    o.seq = r.int64(i, 8);
    o.created_at = r.text(i, 9);
    out.push_back(std::move(o));
  }
  return out;
}

std::optional<User> read_user(const Result& r) {
  if (r.rows() == 0) return std::nullopt;
  return User{r.text(0, 0), r.text(0, 1), r.text(0, 2), r.text(0, 3)};
}

std::vector<Param> task_params(const Task& t) {
  return {t.id,         t.user_id,    t.title,        t.description,  t.status,          t.priority,
          t.due_at,     t.created_at, t.updated_at,   t.completed_at, param(t.version)};
}

/// The task row, locked until the transaction ends so concurrent updates of it queue.
std::optional<Task> lock_task(Connection& conn, const std::string& user_id, const std::string& task_id) {
  const auto r = conn.query(fmt::format("SELECT {} FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE", kTaskColumns),
                            {task_id, user_id});
  if (r.rows() == 0) return std::nullopt;
  return read_task(r, 0);
}

// The upsert row-locks the user's counter until commit: a concurrent change of the same
// user waits here and then sees the committed value, so seqs never repeat or skip, and
// within a user, outbox ids (taken after this) follow seq order. It runs after the task
// row is locked, so every transaction takes at most one task lock and then this one, and
// cannot deadlock with another.
std::int64_t next_seq(Connection& conn, const std::string& user_id) {
  const auto r = conn.query(
      "INSERT INTO user_seq (user_id, last_seq) VALUES ($1, 1) "
      "ON CONFLICT (user_id) DO UPDATE SET last_seq = user_seq.last_seq + 1 RETURNING last_seq",
      {user_id});
  return r.int64(0, 0);
}

void insert_outbox(Connection& conn, std::vector<OutboxRecord> records, const std::string& user_id, std::int64_t seq) {
  const auto now = events::now_rfc3339();
  for (auto& r : records) {
    impl::fill_outbox_defaults(r, user_id, seq, now);
    conn.query(
        "INSERT INTO outbox (topic, key, payload, event_id, event_type, traceparent, user_id, seq, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        {r.topic, r.key, r.payload, r.event_id, r.event_type, r.traceparent, r.user_id, param(r.seq), r.created_at});
  }
}

AuditEntry read_audit(const Result& r, int row) {
  AuditEntry a;
  a.event_id = r.text(row, 0);
  a.user_id = r.text(row, 1);
  a.task_id = r.text(row, 2);
  a.type = r.text(row, 3);
  a.action = r.text(row, 4);
  a.seq = r.optional_int64(row, 5);
  a.occurred_at = r.text(row, 6);
  a.task_data = r.text(row, 7);
  a.source_topic = r.text(row, 8);
  a.source_partition = static_cast<std::int32_t>(r.int64(row, 9));
  a.source_offset = r.int64(row, 10);
  a.recorded_at = r.text(row, 11);
  return a;
}

/// Inserts the processed_events row of (group, event_id) unless there is one; true when
/// it did. A concurrent transaction inserting the same row makes this wait for its outcome.
bool mark_processed(Connection& conn, const std::string& group, const std::string& event_id) {
  return conn
             .query("INSERT INTO processed_events (consumer_group, event_id, processed_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    {group, event_id, events::now_rfc3339()})
             .rows() > 0;
}

/// Notifications with their channels, newest first: `filter` is the WHERE (and ORDER/LIMIT)
/// applied to the notifications table. One statement, so one snapshot.
std::vector<Notification> query_notifications(Connection& conn, std::string_view filter,
                                              const std::vector<Param>& params) {
  const auto r = conn.query(
      fmt::format("SELECT n.id, n.user_id, n.task_id, n.type, n.title, n.message, n.email, n.event_id, n.read_at, "
                  "n.created_at, n.source_topic, n.source_partition, n.source_offset, "
                  "c.channel, c.status, c.detail, c.updated_at "
                  "FROM (SELECT * FROM notifications {}) n "
                  "LEFT JOIN notification_channels c ON c.notification_id = n.id "
                  "ORDER BY n.created_at DESC, n.id DESC, c.position",
                  filter),
      params);
  std::vector<Notification> out;
  for (int i = 0; i < r.rows(); ++i) {
    auto id = r.text(i, 0);
    if (out.empty() || out.back().id != id) {
      Notification n;
      n.id = std::move(id);
      n.user_id = r.text(i, 1);
      n.task_id = r.optional_text(i, 2);
      n.type = r.text(i, 3);
      n.title = r.text(i, 4);
      n.message = r.text(i, 5);
      n.email = r.optional_text(i, 6);
      n.event_id = r.text(i, 7);
      n.read_at = r.optional_text(i, 8);
      n.read = n.read_at.has_value();
      n.created_at = r.text(i, 9);
      n.source_topic = r.text(i, 10);
      n.source_partition = static_cast<std::int32_t>(r.int64(i, 11));
      n.source_offset = r.int64(i, 12);
      out.push_back(std::move(n));
    }
    if (!r.is_null(i, 13)) {
      out.back().channels.push_back(ChannelStatus{r.text(i, 13), r.text(i, 14), r.text(i, 15), r.text(i, 16)});
    }
  }
  return out;
}

std::optional<Notification> load_notification(Connection& conn, std::string_view column, const std::string& value) {
  auto found = query_notifications(conn, fmt::format("WHERE {} = $1", column), {value});
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

}  // namespace

struct PostgresStore::Impl {
  Impl(const std::string& url, std::size_t max_connections)
      : pool([url] { return std::make_unique<Connection>(url); }, max_connections == 0 ? 1 : max_connections,
             std::chrono::duration_cast<std::chrono::milliseconds>(kPoolWait)),
        url(url) {}

  using Lease = impl::ConnectionPool<Connection>::Lease;

  /// Runs a read-only `fn(conn)`. Reads change nothing, so one that finds its
  /// connection dead is simply run again on a fresh one.
  template <class F>
  auto read(F&& fn) {
    for (int attempt = 0;; ++attempt) {
      auto lease = pool.acquire();
      try {
        return fn(*lease);
      } catch (const PgError& e) {
        retire_if_unusable(lease);
        if (!e.connection_lost() || attempt > 0) throw;
        spdlog::info("postgres: reconnecting after a lost connection");
      }
    }
  }

  /// Runs `fn(conn)` in a transaction and commits when it returns normally; exceptions
  /// roll back and propagate unchanged. Only a dead BEGIN is retried: after it, a lost
  /// connection leaves the outcome unknown to us, which only the caller can resolve.
  template <class F>
  auto write(F&& fn) {
    for (int attempt = 0;; ++attempt) {
      auto lease = pool.acquire();
      std::optional<Transaction> txn;
      try {
        txn.emplace(*lease);
      } catch (const PgError& e) {
        retire_if_unusable(lease);
        if (!e.connection_lost() || attempt > 0) throw;
        spdlog::info("postgres: reconnecting after a lost connection");
        continue;
      }
      try {
        if constexpr (std::is_void_v<decltype(fn(*lease))>) {
          fn(*lease);
          txn->commit();
          return;
        } else {
          auto result = fn(*lease);
          txn->commit();
          return result;
        }
      } catch (...) {
        txn.reset();  // rolls back while the lease is still ours
        retire_if_unusable(lease);
        throw;
      }
    }
  }

  static void retire_if_unusable(Lease& lease) {
    if (lease->lost()) {
      lease.discard_all();
    } else if (!lease->idle()) {
      lease.discard();
    }
  }

  impl::ConnectionPool<Connection> pool;
  std::string url;
  std::mutex lease_mutex;
  std::unique_ptr<Connection> lease_conn;  // holds the relay's advisory lock while it lives
  std::chrono::steady_clock::time_point lease_next_try{};  // a follower asks again only after this
};

PostgresStore::PostgresStore(const std::string& url, std::size_t max_connections)
    : impl_(std::make_unique<Impl>(url, max_connections)) {
  // Connect now so a bad URL or password fails at start, not on the first request.
  impl_->read([](Connection&) {});
}

PostgresStore::~PostgresStore() = default;

void PostgresStore::migrate() { migrate_to(static_cast<std::int64_t>(std::size(kMigrations))); }

std::int64_t PostgresStore::schema_version() {
  return impl_->read([](Connection& conn) -> std::int64_t {
    if (conn.query("SELECT to_regclass('schema_migrations')").is_null(0, 0)) return 0;
    return conn.query("SELECT coalesce(max(version), 0) FROM schema_migrations").int64(0, 0);
  });
}

void PostgresStore::migrate_to(std::int64_t target) {
  target = std::min(target, static_cast<std::int64_t>(std::size(kMigrations)));
  impl_->write([target](Connection& conn) {
    // Held to the end of this transaction: a second process migrating at the same time
    // waits, then finds the versions recorded and has nothing left to do.
    conn.query(fmt::format("SELECT pg_advisory_xact_lock({})", kMigrationLockKey));
    conn.script("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at text NOT NULL)");
    const auto applied = conn.query("SELECT coalesce(max(version), 0) FROM schema_migrations").int64(0, 0);
    const auto known = static_cast<std::int64_t>(std::size(kMigrations));
    if (applied > known) {
      spdlog::warn("postgres: schema is at version {}, newer than this build knows ({})", applied, known);
    }
    for (auto version = applied + 1; version <= target; ++version) {
      conn.script(kMigrations[version - 1]);
      conn.query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                 {param(version), events::now_rfc3339()});
      spdlog::info("postgres: applied migration {}", version);
    }
  });
}

bool PostgresStore::hold_relay_lease() {
  // Advisory locks are per database; the key includes the schema, so deployments (or
  // tests) in different schemas of one database each get their own relay.
  constexpr const char* kTryLock = "SELECT pg_try_advisory_lock(hashtext(current_schema() || '.taskstream.outbox-relay'))";
  std::lock_guard lock(impl_->lease_mutex);
  try {
    if (impl_->lease_conn && !impl_->lease_conn->lost()) {
      // Held: make sure the session (and so the lock) is still there.
      impl_->lease_conn->query("SELECT 1");
      return true;
    }
    impl_->lease_conn.reset();
    const auto now = std::chrono::steady_clock::now();
    if (now < impl_->lease_next_try) return false;
    impl_->lease_next_try = now + std::chrono::seconds(2);  // a follower retries every 2 s, not every poll
    auto conn = std::make_unique<Connection>(impl_->url);
    if (conn->query(kTryLock).text(0, 0) != "t") return false;  // another instance holds it
    spdlog::info("postgres: this instance now runs the outbox relay");
    impl_->lease_conn = std::move(conn);
    return true;
  } catch (const std::exception& e) {
    spdlog::warn("postgres: relay lease: {}", e.what());
    impl_->lease_conn.reset();
    return false;
  }
}

bool PostgresStore::ping() {
  try {
    return impl_->read([](Connection& conn) { return conn.query("SELECT 1").int64(0, 0) == 1; });
  } catch (const StorageError&) {
    return false;
  }
}

std::optional<User> PostgresStore::create_user(const std::string& email, const std::string& password_hash) {
  return impl_->write([&](Connection& conn) -> std::optional<User> {
    User user{events::new_event_id(), email, password_hash, events::now_rfc3339()};
    // DO NOTHING: a concurrent registration of the same email waits for the first to
    // commit and then inserts nothing, rather than failing with a unique violation.
    const auto r = conn.query(
        "INSERT INTO users (id, email, email_key, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (email_key) DO NOTHING RETURNING id",
        {user.id, user.email, impl::email_key(email), user.password_hash, user.created_at});
    if (r.rows() == 0) return std::nullopt;
    return user;
  });
}

std::optional<User> PostgresStore::find_user_by_email(const std::string& email) {
  return impl_->read([&](Connection& conn) {
    return read_user(
        conn.query("SELECT id, email, password_hash, created_at FROM users WHERE email_key = $1", {impl::email_key(email)}));
  });
}

std::optional<User> PostgresStore::find_user(const std::string& id) {
  return impl_->read([&](Connection& conn) {
    return read_user(conn.query("SELECT id, email, password_hash, created_at FROM users WHERE id = $1", {id}));
  });
}

std::optional<User> PostgresStore::first_user() {
  return impl_->read([&](Connection& conn) {
    return read_user(conn.query("SELECT id, email, password_hash, created_at FROM users ORDER BY created_at, id LIMIT 1"));
  });
}

ChangeResult PostgresStore::create_task(const Task& task, const EventFactory& events) {
  return impl_->write([&](Connection& conn) {
    conn.query(fmt::format("INSERT INTO tasks ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", kTaskColumns),
               task_params(task));
    const auto seq = next_seq(conn, task.user_id);
    insert_outbox(conn, events(nullptr, &task, seq), task.user_id, seq);
    return ChangeResult{ChangeStatus::ok, task, seq};
  });
}

ChangeResult PostgresStore::update_task(const std::string& user_id, const std::string& task_id,
                                        const std::function<bool(Task&)>& mutate,
                                        std::optional<std::int64_t> expected_version, const std::string& now,
                                        const EventFactory& events) {
  return impl_->write([&](Connection& conn) {
    const auto before = lock_task(conn, user_id, task_id);
    Task after;
    if (auto early = impl::plan_update(before, mutate, expected_version, now, after)) return *early;
    conn.query(
        "UPDATE tasks SET title = $3, description = $4, status = $5, priority = $6, due_at = $7, updated_at = $8, "
        "completed_at = $9, version = $10 WHERE id = $1 AND user_id = $2",
        {after.id, after.user_id, after.title, after.description, after.status, after.priority, after.due_at,
         after.updated_at, after.completed_at, param(after.version)});
    const auto seq = next_seq(conn, user_id);
    insert_outbox(conn, events(&*before, &after, seq), user_id, seq);
    return ChangeResult{ChangeStatus::ok, std::move(after), seq};
  });
}

ChangeResult PostgresStore::delete_task(const std::string& user_id, const std::string& task_id,
                                        const EventFactory& events) {
  return impl_->write([&](Connection& conn) {
    const auto r = conn.query(
        fmt::format("DELETE FROM tasks WHERE id = $1 AND user_id = $2 RETURNING {}", kTaskColumns), {task_id, user_id});
    if (r.rows() == 0) return ChangeResult{ChangeStatus::not_found, std::nullopt, 0};
    const auto before = read_task(r, 0);
    const auto seq = next_seq(conn, user_id);
    insert_outbox(conn, events(&before, nullptr, seq), user_id, seq);
    return ChangeResult{ChangeStatus::ok, before, seq};
  });
}

std::optional<Task> PostgresStore::get_task(const std::string& user_id, const std::string& task_id) {
  return impl_->read([&](Connection& conn) -> std::optional<Task> {
    const auto r =
        conn.query(fmt::format("SELECT {} FROM tasks WHERE id = $1 AND user_id = $2", kTaskColumns), {task_id, user_id});
    if (r.rows() == 0) return std::nullopt;
    return read_task(r, 0);
  });
}

TaskPage PostgresStore::list_tasks(const std::string& user_id, const std::optional<std::string>& status, int limit,
                                   const std::optional<std::string>& cursor) {
  const auto after = cursor ? std::optional(impl::decode_cursor(*cursor)) : std::nullopt;
  limit = impl::clamp_page_limit(limit);
  return impl_->read([&](Connection& conn) {
    // Built per shape so the cursor condition is a range on the (user_id, created_at, id)
    // index: a deep page costs what the first does.
    std::vector<Param> params{user_id, param(limit + 1)};  // one extra row: is there a next page?
    std::string sql = fmt::format("SELECT {} FROM tasks WHERE user_id = $1", kTaskColumns);
    if (status) {
      params.push_back(*status);
      sql += fmt::format(" AND status = ${}", params.size());
    }
    if (after) {
      params.push_back(after->created_at);
      params.push_back(after->id);
      sql += fmt::format(" AND (created_at, id) < (${}, ${})", params.size() - 1, params.size());
    }
    sql += " ORDER BY created_at DESC, id DESC LIMIT $2";
    const auto r = conn.query(sql, params);
    TaskPage page;
    for (int i = 0; i < r.rows() && i < limit; ++i) page.items.push_back(read_task(r, i));
    if (r.rows() > limit) page.next_cursor = impl::encode_cursor(page.items.back());
    return page;
  });
}

std::vector<OutboxRecord> PostgresStore::fetch_unpublished(int limit) {
  return impl_->read([&](Connection& conn) {
    return read_outbox(conn.query(
        fmt::format("SELECT {} FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1", kOutboxColumns),
        {param(impl::clamp_batch_limit(limit))}));
  });
}

void PostgresStore::mark_published(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  std::string array = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) array += (i ? "," : "") + std::to_string(ids[i]);
  array += "}";
  impl_->write([&](Connection& conn) {
    conn.query("UPDATE outbox SET published_at = $1 WHERE id = ANY($2::bigint[]) AND published_at IS NULL",
               {events::now_rfc3339(), array});
  });
}

OutboxStats PostgresStore::outbox_stats() {
  return impl_->read([](Connection& conn) {
    const auto r = conn.query(
        "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL), "
        "(SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1)");
    return OutboxStats{r.int64(0, 0), r.optional_text(0, 1)};
  });
}

std::vector<OutboxRecord> PostgresStore::events_after(const std::string& user_id, const std::string& topic,
                                                      std::int64_t after_seq, int limit) {
  return impl_->read([&](Connection& conn) {
    return read_outbox(conn.query(fmt::format("SELECT {} FROM outbox WHERE user_id = $1 AND topic = $2 AND seq > $3 "
                                              "ORDER BY seq, id LIMIT $4",
                                              kOutboxColumns),
                                  // Never below 0: reminder rows have seq 0 and belong to no resumable stream.
                                  {user_id, topic, param(std::max<std::int64_t>(after_seq, 0)),
                                   param(impl::clamp_batch_limit(limit))}));
  });
}

std::int64_t PostgresStore::user_last_seq(const std::string& user_id) {
  return impl_->read([&](Connection& conn) -> std::int64_t {
    const auto r = conn.query("SELECT last_seq FROM user_seq WHERE user_id = $1", {user_id});
    return r.rows() ? r.int64(0, 0) : 0;
  });
}

std::size_t PostgresStore::prune_outbox(const std::string& published_before) {
  return impl_->write([&](Connection& conn) {
    const auto r = conn.query(
        "WITH gone AS (DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1 RETURNING 1) "
        "SELECT count(*) FROM gone",
        {published_before});
    return static_cast<std::size_t>(r.int64(0, 0));
  });
}

bool PostgresStore::processed(const std::string& consumer_group, const std::string& event_id) {
  return impl_->read([&](Connection& conn) {
    return conn.query("SELECT 1 FROM processed_events WHERE consumer_group = $1 AND event_id = $2",
                      {consumer_group, event_id})
               .rows() > 0;
  });
}

std::size_t PostgresStore::record_audit(const std::string& consumer_group, const std::vector<AuditEntry>& entries) {
  impl::require_event_ids(entries);
  if (entries.empty()) return 0;
  // The whole batch is one statement, one round trip: columns travel as arrays, unnest()
  // turns them back into rows. Duplicates inside the batch are dropped here (first kept),
  // so every row of the statement has its own event_id.
  const auto now = events::now_rfc3339();
  std::vector<ArrayLiteral> columns(12);
  for (const auto i : impl::first_occurrences(entries)) {
    const auto& e = entries[i];
    columns[0].add(e.event_id);
    columns[1].add(e.user_id);
    columns[2].add(e.task_id);
    columns[3].add(e.type);
    columns[4].add(e.action);
    columns[5].add(e.seq);
    columns[6].add(e.occurred_at);
    columns[7].add(e.task_data);
    columns[8].add(e.source_topic);
    columns[9].add(static_cast<std::int64_t>(e.source_partition));
    columns[10].add(e.source_offset);
    columns[11].add(e.recorded_at.empty() ? now : e.recorded_at);
  }
  std::vector<Param> params{consumer_group, now};
  for (auto& c : columns) params.emplace_back(std::move(c).finish());
  // processed_events rows go in by event_id, so two transactions of one group with
  // overlapping batches take their row locks in the same order and cannot deadlock; the
  // audit rows go in batch order, which recorded_order keeps. An audit row that another
  // group wrote already stays as it is (one audit row per event). IN rather than a join:
  // the planner's guess for a join of two CTEs is 50x the rows, which made it JIT-compile
  // the statement and doubled its time.
  constexpr std::string_view kSql = R"sql(
WITH input AS (
  SELECT t.event_id COLLATE "C" AS event_id, t.user_id, t.task_id, t.type, t.action, t.seq, t.occurred_at,
         t.task_data, t.source_topic, t.source_partition, t.source_offset, t.recorded_at, t.ord
  FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[],
              $11::text[], $12::integer[], $13::bigint[], $14::text[])
       WITH ORDINALITY AS t(event_id, user_id, task_id, type, action, seq, occurred_at, task_data, source_topic,
                            source_partition, source_offset, recorded_at, ord)
), fresh AS (
  INSERT INTO processed_events (consumer_group, event_id, processed_at)
  SELECT $1, event_id, $2 FROM input ORDER BY event_id
  ON CONFLICT DO NOTHING
  RETURNING event_id
), audited AS (
  INSERT INTO audit_log (event_id, user_id, task_id, type, action, seq, occurred_at, task_data, source_topic,
                         source_partition, source_offset, recorded_at)
  SELECT i.event_id, i.user_id, i.task_id, i.type, i.action, i.seq, i.occurred_at, i.task_data, i.source_topic,
         i.source_partition, i.source_offset, i.recorded_at
  FROM input i WHERE i.event_id IN (SELECT event_id FROM fresh)
  ORDER BY i.ord
  ON CONFLICT (event_id) DO NOTHING
)
SELECT count(*) FROM fresh
)sql";
  return impl_->write([&](Connection& conn) { return static_cast<std::size_t>(conn.query(kSql, params).int64(0, 0)); });
}

std::vector<AuditEntry> PostgresStore::task_history(const std::string& user_id, const std::string& task_id) {
  return impl_->read([&](Connection& conn) {
    const auto r = conn.query(fmt::format("SELECT {} FROM audit_log WHERE user_id = $1 AND task_id = $2 "
                                          "ORDER BY recorded_order",
                                          kAuditColumns),
                              {user_id, task_id});
    std::vector<AuditEntry> rows;
    rows.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) rows.push_back(read_audit(r, i));
    return impl::order_history(std::move(rows));
  });
}

std::pair<Notification, bool> PostgresStore::create_notification(const std::string& consumer_group,
                                                                 const Notification& n) {
  impl::require_event_id(n);
  const auto stored = impl::normalized(n, events::now_rfc3339());
  return impl_->write([&](Connection& conn) -> std::pair<Notification, bool> {
    // A concurrent call for the same event and group waits in mark_processed until the
    // first commits, then finds the row and reads the notification it stored.
    if (!mark_processed(conn, consumer_group, stored.event_id)) {
      auto existing = load_notification(conn, "event_id", stored.event_id);
      return {existing ? std::move(*existing) : stored, false};
    }
    const auto inserted = conn.query(
        "INSERT INTO notifications (id, user_id, task_id, type, title, message, email, event_id, read_at, created_at, "
        "source_topic, source_partition, source_offset) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (event_id) DO NOTHING RETURNING 1",
        {stored.id, stored.user_id, stored.task_id, stored.type, stored.title, stored.message, stored.email,
         stored.event_id, stored.read_at, stored.created_at, stored.source_topic,
         param(static_cast<std::int64_t>(stored.source_partition)), param(stored.source_offset)});
    if (inserted.rows() == 0) {  // another consumer group created it
      return {*load_notification(conn, "event_id", stored.event_id), false};
    }
    if (!stored.channels.empty()) {
      ArrayLiteral channel, status, detail, updated_at;
      for (const auto& c : stored.channels) {
        channel.add(c.channel);
        status.add(c.status);
        detail.add(c.detail);
        updated_at.add(c.updated_at);
      }
      conn.query(
          "INSERT INTO notification_channels (notification_id, channel, position, status, detail, updated_at) "
          "SELECT $1, t.channel, t.ord - 1, t.status, t.detail, t.updated_at "
          "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY "
          "AS t(channel, status, detail, updated_at, ord)",
          {stored.id, std::move(channel).finish(), std::move(status).finish(), std::move(detail).finish(),
           std::move(updated_at).finish()});
    }
    return {stored, true};
  });
}

void PostgresStore::set_channel_status(const std::string& notification_id, const std::string& channel,
                                       const std::string& status, const std::string& detail, const std::string& now) {
  impl_->write([&](Connection& conn) {
    conn.query(
        "UPDATE notification_channels SET status = $3, detail = $4, updated_at = $5 "
        "WHERE notification_id = $1 AND channel = $2",
        {notification_id, channel, status, detail, now});
  });
}

std::optional<Notification> PostgresStore::get_notification(const std::string& notification_id) {
  return impl_->read([&](Connection& conn) { return load_notification(conn, "id", notification_id); });
}

std::vector<EmailClaim> PostgresStore::claim_due_emails(std::int64_t now_ms, std::int64_t lease_ms, int limit) {
  limit = std::clamp(limit, 1, 1000);
  return impl_->write([&](Connection& conn) {
    // SKIP LOCKED: instances claiming at once take disjoint rows instead of queueing.
    const auto r = conn.query(
        "UPDATE notification_channels c SET attempts = c.attempts + 1, next_attempt_ms = $2 "
        "FROM (SELECT notification_id FROM notification_channels WHERE channel = 'email' AND status = 'pending' "
        "AND next_attempt_ms <= $1 ORDER BY next_attempt_ms LIMIT $3 FOR UPDATE SKIP LOCKED) due "
        "WHERE c.notification_id = due.notification_id AND c.channel = 'email' "
        "RETURNING c.notification_id, c.attempts, c.first_failure",
        {param(now_ms), param(now_ms + lease_ms), param(static_cast<std::int64_t>(limit))});
    std::vector<EmailClaim> out;
    for (int i = 0; i < r.rows(); ++i)
      out.push_back({r.text(i, 0), static_cast<int>(r.int64(i, 1)), r.optional_text(i, 2)});
    return out;
  });
}

void PostgresStore::retry_email_later(const std::string& notification_id, std::int64_t next_attempt_ms,
                                      const std::string& detail, const std::string& now) {
  impl_->write([&](Connection& conn) {
    conn.query(
        "UPDATE notification_channels SET next_attempt_ms = $2, detail = $3, updated_at = $4, "
        "first_failure = coalesce(first_failure, $4) "
        "WHERE notification_id = $1 AND channel = 'email' AND status = 'pending'",
        {notification_id, param(next_attempt_ms), detail, now});
  });
}

bool PostgresStore::rearm_failed_email(const std::string& event_id, const std::string& detail, const std::string& now) {
  return impl_->write([&](Connection& conn) {
    const auto r = conn.query(
        "UPDATE notification_channels SET status = 'pending', attempts = 0, next_attempt_ms = 0, "
        "first_failure = NULL, detail = $2, updated_at = $3 "
        "WHERE channel = 'email' AND status = 'failed' "
        "AND notification_id = (SELECT id FROM notifications WHERE event_id = $1) RETURNING 1",
        {event_id, detail, now});
    return r.rows() > 0;
  });
}

namespace {
constexpr std::string_view kQueuedEmailSelect =
    "SELECT n.id, n.user_id, coalesce(n.email, ''), n.title, c.status, c.detail, c.updated_at, c.attempts, c.next_attempt_ms, "
    "c.first_failure FROM notification_channels c JOIN notifications n ON n.id = c.notification_id WHERE c.channel = 'email' ";
}  // namespace

EmailQueue PostgresStore::email_queue(int limit) {
  limit = std::clamp(limit, 1, 500);
  return impl_->read([&](Connection& conn) {
    EmailQueue q;
    auto counts = conn.query(
        "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'failed') FROM notification_channels "
        "WHERE channel = 'email' AND status IN ('pending', 'failed')");
    q.pending = counts.int64(0, 0);
    q.failed = counts.int64(0, 1);
    for (const char* tail : {"AND c.status = 'pending' ORDER BY c.next_attempt_ms, n.id LIMIT $1",
                             "AND c.status = 'failed' ORDER BY c.updated_at DESC, n.id LIMIT $1"}) {
      auto r = conn.query(std::string(kQueuedEmailSelect) + tail, {param(limit)});
      for (int i = 0; i < r.rows(); ++i)
        q.items.push_back({r.text(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3), r.text(i, 4), r.text(i, 5), r.text(i, 6),
                           static_cast<int>(r.int64(i, 7)), r.int64(i, 8), r.optional_text(i, 9)});
    }
    return q;
  });
}

bool PostgresStore::retry_email_now(const std::string& notification_id, const std::string& detail, const std::string& now) {
  return impl_->write([&](Connection& conn) {
    const auto r = conn.query(
        "UPDATE notification_channels SET attempts = CASE WHEN status = 'failed' THEN 0 ELSE attempts END, "
        "first_failure = CASE WHEN status = 'failed' THEN NULL ELSE first_failure END, "
        "status = 'pending', next_attempt_ms = 0, detail = $2, updated_at = $3 "
        "WHERE channel = 'email' AND notification_id = $1 AND status IN ('pending', 'failed') RETURNING 1",
        {notification_id, detail, now});
    return r.rows() > 0;
  });
}

std::int64_t PostgresStore::record_operator_action(const OperatorAction& a) {
  return impl_->write([&](Connection& conn) {
    return conn
        .query("INSERT INTO operator_actions (at, actor, action, target, filter, seen, matched, sent, outcome, detail) "
               "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
               {a.at, a.actor, a.action, a.target, a.filter, param(a.seen), param(a.matched), param(a.sent), a.outcome, a.detail})
        .int64(0, 0);
  });
}

std::vector<OperatorAction> PostgresStore::list_operator_actions(int limit) {
  limit = std::clamp(limit, 1, 500);
  return impl_->read([&](Connection& conn) {
    auto r = conn.query(
        "SELECT id, at, actor, action, target, filter, seen, matched, sent, outcome, detail FROM operator_actions "
        "ORDER BY id DESC LIMIT $1",
        {param(limit)});
    std::vector<OperatorAction> out;
    for (int i = 0; i < r.rows(); ++i)
      out.push_back({r.int64(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3), r.text(i, 4), r.text(i, 5), r.int64(i, 6), r.int64(i, 7),
                     r.int64(i, 8), r.text(i, 9), r.text(i, 10)});
    return out;
  });
}

std::vector<Notification> PostgresStore::list_notifications(const std::string& user_id, bool unread_only, int limit) {
  limit = impl::clamp_notification_limit(limit);
  return impl_->read([&](Connection& conn) {
    return query_notifications(conn,
                               fmt::format("WHERE user_id = $1{} ORDER BY created_at DESC, id DESC LIMIT $2",
                                           unread_only ? " AND read_at IS NULL" : ""),
                               {user_id, param(limit)});
  });
}

std::optional<Notification> PostgresStore::mark_notification_read(const std::string& user_id,
                                                                  const std::string& notification_id,
                                                                  const std::string& now) {
  return impl_->write([&](Connection& conn) -> std::optional<Notification> {
    const auto r = conn.query(
        "UPDATE notifications SET read_at = coalesce(read_at, $3) WHERE id = $1 AND user_id = $2 RETURNING 1",
        {notification_id, user_id, now});
    if (r.rows() == 0) return std::nullopt;
    return load_notification(conn, "id", notification_id);
  });
}

std::int64_t PostgresStore::count_unread_notifications(const std::string& user_id) {
  return impl_->read([&](Connection& conn) {
    // Matches the partial index notifications_user_unread (user_id, ... WHERE read_at IS NULL).
    return conn.query("SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", {user_id})
        .int64(0, 0);
  });
}

std::size_t PostgresStore::mark_all_notifications_read(const std::string& user_id, const std::string& now) {
  return impl_->write([&](Connection& conn) {
    const auto r = conn.query(
        "WITH marked AS (UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL RETURNING 1) "
        "SELECT count(*) FROM marked",
        {user_id, now});
    return static_cast<std::size_t>(r.int64(0, 0));
  });
}

std::vector<Task> PostgresStore::tasks_due_without_reminder(const std::string& kind, const std::string& until,
                                                            int limit) {
  return impl_->read([&](Connection& conn) {
    const auto r = conn.query(fmt::format("SELECT {} FROM tasks t WHERE t.status <> 'done' AND t.due_at IS NOT NULL "
                                          "AND t.due_at <= $1 AND NOT EXISTS (SELECT 1 FROM reminders_sent r "
                                          "WHERE r.task_id = t.id AND r.due_at = t.due_at AND r.kind = $2) "
                                          "ORDER BY t.due_at, t.id LIMIT $3",
                                          kTaskColumns),
                              {until, kind, param(impl::clamp_batch_limit(limit))});
    std::vector<Task> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_task(r, i));
    return out;
  });
}

bool PostgresStore::record_reminder(const Task& task, const std::string& kind,
                                    const std::vector<OutboxRecord>& records) {
  if (!task.due_at) throw StorageError("record_reminder: the task has no due_at", false);
  return impl_->write([&](Connection& conn) {
    // A concurrent insert of the same key waits here for the first to commit, then inserts
    // nothing: exactly one caller gets true and writes the outbox rows.
    const auto r = conn.query(
        "INSERT INTO reminders_sent (task_id, due_at, kind, sent_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        {task.id, *task.due_at, kind, events::now_rfc3339()});
    if (r.rows() == 0) return false;
    insert_outbox(conn, records, task.user_id, 0);
    return true;
  });
}

void postgres_execute(const std::string& url, const std::string& sql) {
  Connection conn(url);
  conn.script(sql);
}

}  // namespace taskstream::storage
