#include "storage/sqlite_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <exception>
#include <deque>
#include <string_view>
#include <condition_variable>
#include <semaphore>
#include <thread>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/impl/connection_pool.hpp"

namespace taskstream::storage {

namespace {

constexpr int kBusyTimeoutMs = 10'000;
constexpr std::size_t kMaxConnections = 16;
constexpr auto kPoolWait = std::chrono::seconds(30);

// Migration n is kMigrations[n-1]; append only, never edit one that has shipped.
constexpr std::string_view kMigrations[] = {
    R"sql(
CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  email         TEXT NOT NULL,
  email_key     TEXT NOT NULL UNIQUE,  -- ASCII-lower-cased email: uniqueness ignores case
  password_hash TEXT NOT NULL,
  created_at    TEXT NOT NULL
);
CREATE TABLE tasks (
  id           TEXT PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title        TEXT NOT NULL,
  description  TEXT,
  status       TEXT NOT NULL CHECK (status IN ('todo', 'in_progress', 'done')),
  priority     TEXT NOT NULL CHECK (priority IN ('low', 'medium', 'high')),
  due_at       TEXT,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  completed_at TEXT,
  version      INTEGER NOT NULL
);
CREATE INDEX tasks_user_created ON tasks (user_id, created_at DESC, id DESC);
CREATE TABLE user_seq (
  user_id  TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL
);
-- AUTOINCREMENT: ids are never reused, so a relay's "published up to id N" stays true.
CREATE TABLE outbox (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  topic        TEXT NOT NULL,
  key          TEXT NOT NULL,
  payload      TEXT NOT NULL,
  event_id     TEXT NOT NULL UNIQUE,
  event_type   TEXT NOT NULL,
  traceparent  TEXT NOT NULL DEFAULT '',
  user_id      TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  created_at   TEXT NOT NULL,
  published_at TEXT
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_user_topic_seq ON outbox (user_id, topic, seq);
CREATE TABLE processed_events (
  consumer_group TEXT NOT NULL,
  event_id       TEXT NOT NULL,
  processed_at   TEXT NOT NULL,
  PRIMARY KEY (consumer_group, event_id)
);
)sql",
    // 2: the audit trail and notifications. No foreign keys to users: events may name
    // users this database does not know. A task's history is ordered in code (see
    // impl::order_history) from rows read in recorded order, which is the rowid: SQLite
    // gives a new row a rowid above every existing one, and VACUUM keeps their order.
    R"sql(
CREATE TABLE audit_log (
  event_id         TEXT PRIMARY KEY,
  user_id          TEXT NOT NULL,
  task_id          TEXT NOT NULL,
  type             TEXT NOT NULL,
  action           TEXT NOT NULL,
  seq              INTEGER,
  occurred_at      TEXT NOT NULL,
  task_data        TEXT NOT NULL,
  source_topic     TEXT NOT NULL,
  source_partition INTEGER NOT NULL,
  source_offset    INTEGER NOT NULL,
  recorded_at      TEXT NOT NULL
);
CREATE INDEX audit_log_task ON audit_log (user_id, task_id, seq, occurred_at);
CREATE TABLE notifications (
  id         TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL,
  task_id    TEXT,
  type       TEXT NOT NULL,
  title      TEXT NOT NULL,
  message    TEXT NOT NULL,
  email      TEXT,
  event_id   TEXT NOT NULL UNIQUE,
  read_at    TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX notifications_user_created ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_user_unread ON notifications (user_id, created_at DESC, id DESC) WHERE read_at IS NULL;
CREATE TABLE notification_channels (
  notification_id TEXT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
  channel         TEXT NOT NULL,
  position        INTEGER NOT NULL,  -- order in the request
  status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
  detail          TEXT NOT NULL DEFAULT '',
  updated_at      TEXT NOT NULL,
  PRIMARY KEY (notification_id, channel)
);
)sql",
    // 3: deadline reminders. One row per reminder sent: a task whose due_at moves is a new
    // key, so it is reminded again. No foreign key to tasks (rows outlive their task, like
    // audit_log). tasks_due_open serves tasks_due_without_reminder's range scan.
    R"sql(
CREATE TABLE reminders_sent (
  task_id TEXT NOT NULL,
  due_at  TEXT NOT NULL,
  kind    TEXT NOT NULL,
  sent_at TEXT NOT NULL,
  PRIMARY KEY (task_id, due_at, kind)
);
CREATE INDEX tasks_due_open ON tasks (due_at, id) WHERE status <> 'done' AND due_at IS NOT NULL;
)sql",
    // 4: the email queue. A pending email channel is a queue entry: claim_due_emails leases
    // it (attempts + 1, next_attempt_ms pushed past the lease) and a failed attempt
    // reschedules it, so SMTP trouble never holds up the Kafka consumer. A notification
    // remembers the request's position so an email that runs out of attempts can be
    // dead-lettered with it.
    R"sql(
ALTER TABLE notifications ADD COLUMN source_topic TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN source_partition INTEGER NOT NULL DEFAULT -1;
ALTER TABLE notifications ADD COLUMN source_offset INTEGER NOT NULL DEFAULT -1;
ALTER TABLE notification_channels ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notification_channels ADD COLUMN next_attempt_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notification_channels ADD COLUMN first_failure TEXT;
CREATE INDEX notification_emails_due ON notification_channels (next_attempt_ms)
  WHERE channel = 'email' AND status = 'pending';
)sql",
    // 5: what operators did (redrives, dry runs, email retries), for the console's log.
    R"sql(
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
)sql",
};

constexpr std::string_view kTaskColumns =
    "id, user_id, title, description, status, priority, due_at, created_at, updated_at, completed_at, version";
constexpr std::string_view kOutboxColumns =
    "id, topic, key, payload, event_id, event_type, traceparent, user_id, seq, created_at";
constexpr std::string_view kAuditColumns =
    "event_id, user_id, task_id, type, action, seq, occurred_at, task_data, source_topic, source_partition, "
    "source_offset, recorded_at";

bool retriable_code(int rc) { return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED; }

StorageCondition condition_of(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL: return StorageCondition::disk_full;
    case SQLITE_READONLY: return StorageCondition::read_only;
    case SQLITE_IOERR:  // the file system failed a read or write (ENOSPC on the WAL shows here too)
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return StorageCondition::unavailable;
    default: return StorageCondition::error;
  }
}

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
  throw StorageError(fmt::format("sqlite: {}: {} (code {})", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc),
                     retriable_code(rc), condition_of(rc));
}

/// One open database handle; closed on destruction.
class Connection final {
 public:
  explicit Connection(const std::string& path) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                   nullptr);
    if (rc != SQLITE_OK) {
      const std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close_v2(db_);
      throw StorageError(fmt::format("sqlite: cannot open '{}': {}", path, message), false);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    exec("PRAGMA foreign_keys = ON");
    if (path != ":memory:") {
      // 4 KiB pages (set before the file has content; a no-op on an existing database):
      // each dirty page is a WAL frame, and a change touches a few rows, so 16 KiB pages
      // wrote 4x the bytes per commit (docs/benchmarks.md).
      exec("PRAGMA page_size = 4096");
      // WAL lets readers run beside the single writer. Switching needs a moment of
      // exclusive access, which another process opening the file at the same time may
      // hold; the busy handler does not cover this pragma, hence the retries.
      for (int attempt = 0;; ++attempt) {
        try {
          exec("PRAGMA journal_mode = WAL");
          break;
        } catch (const StorageError& e) {
          if (!e.is_retriable() || attempt >= 50) throw;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    }
    // synchronous stays FULL (the default): an acknowledged change survives power loss.
    // A 64 MiB page cache (the default is 2 MiB) keeps the random-keyed indexes (event ids
    // are UUIDs) in memory: without it a batch of audit rows thrashes the cache and spends
    // most of its time re-reading pages.
    exec("PRAGMA cache_size = -65536");
    // Savepoints (one per change in a group commit) keep the original of each page they
    // change in a statement journal; in memory that is a copy, in a temporary file (the
    // default) it was a write system call per page and a fifth of a commit's time.
    exec("PRAGMA temp_store = MEMORY");
  }
  ~Connection() {
    for (auto& [sql, entry] : statements_) sqlite3_finalize(entry.stmt);
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return db_; }

  struct CachedStatement {
    sqlite3_stmt* stmt;
    bool in_use;
  };

  /// A prepared statement for `sql`, from this connection's cache: preparing (parsing and
  /// planning) cost more than running the statements of a task change, and the same few
  /// statements run again and again. Returns the cache entry (hand it back with
  /// give_back()), or null with `stmt` freshly prepared for the caller to finalize: when
  /// the cached one is in use (a statement nested in a loop over itself) or the cache is
  /// full of other SQL. Entries stay put in the map, so the pointer stays valid.
  CachedStatement* take(std::string_view sql, sqlite3_stmt*& stmt) {
    auto it = statements_.find(sql);
    if (it != statements_.end() && !it->second.in_use) {
      it->second.in_use = true;
      stmt = it->second.stmt;
      return &it->second;
    }
    const bool keep = it == statements_.end() && statements_.size() < kMaxCachedStatements;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), keep ? SQLITE_PREPARE_PERSISTENT : 0,
                                      &stmt, nullptr);
    if (rc != SQLITE_OK) fail(db_, rc, fmt::format("prepare '{}'", sql.substr(0, 60)));
    if (!keep) return nullptr;
    return &statements_.emplace(std::string(sql), CachedStatement{stmt, true}).first->second;
  }
  /// Returns an entry from take(): its statement reset, bindings cleared, ready again.
  static void give_back(CachedStatement& entry) {
    sqlite3_reset(entry.stmt);
    sqlite3_clear_bindings(entry.stmt);
    entry.in_use = false;
  }

  void exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    if (rc != SQLITE_OK) {
      const std::string message = error ? error : sqlite3_errstr(rc);
      sqlite3_free(error);
      throw StorageError(fmt::format("sqlite: {} (code {}) in: {}", message, rc, sql.substr(0, 60)),
                         retriable_code(rc), condition_of(rc));
    }
  }

 private:
  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view sql) const noexcept { return std::hash<std::string_view>{}(sql); }
  };
  static constexpr std::size_t kMaxCachedStatements = 64;

  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, CachedStatement, SqlHash, std::equal_to<>> statements_;
};

/// A prepared statement; binds are 1-based, columns 0-based as in the C API.
class Statement final {
 public:
  Statement(Connection& conn, std::string_view sql) : db_(conn.handle()), cached_(conn.take(sql, stmt_)) {}
  ~Statement() {
    if (cached_) Connection::give_back(*cached_);
    else sqlite3_finalize(stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::string_view value) {
    check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, const std::optional<std::string>& value) {
    if (value) return bind(index, std::string_view(*value));
    check(sqlite3_bind_null(stmt_, index));
    return *this;
  }
  Statement& bind(int index, const std::optional<std::int64_t>& value) {
    if (value) return bind(index, *value);
    check(sqlite3_bind_null(stmt_, index));
    return *this;
  }

  /// True when a row is ready, false when done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, rc, fmt::format("step '{}'", std::string_view(sqlite3_sql(stmt_)).substr(0, 60)));
  }
  /// Runs a statement that returns no rows (or whose rows do not matter).
  void run() {
    while (step()) {
    }
  }
  /// Makes the statement ready to run again with new bindings.
  void reset() { sqlite3_reset(stmt_); }

  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
  }
  std::optional<std::string> optional_text(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return text(col);
  }
  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::optional<std::int64_t> optional_int64(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return int64(col);
  }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail(db_, rc, "bind");
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  Connection::CachedStatement* cached_;  ///< null: stmt_ is ours to finalize
};

/// Runs one statement that returns no rows through the statement cache (BEGIN, COMMIT,
/// SAVEPOINT...: sqlite3_exec would parse it again each time).
void run_sql(Connection& conn, std::string_view sql) { Statement(conn, sql).run(); }

/// BEGIN on construction, ROLLBACK on destruction unless committed. A write transaction
/// starts IMMEDIATE: it takes the write lock up front, so it cannot fail half-way with a
/// deadlock when upgrading from a read.
class Transaction final {
 public:
  Transaction(Connection& conn, bool write) : conn_(conn) { run_sql(conn_, write ? "BEGIN IMMEDIATE" : "BEGIN"); }
  ~Transaction() {
    // Some errors (busy, I/O, full disk) already rolled SQLite back on their own.
    if (!done_ && !sqlite3_get_autocommit(conn_.handle())) {
      try {
        conn_.exec("ROLLBACK");
      } catch (const StorageError& e) {
        spdlog::warn("sqlite: rollback failed: {}", e.what());
      }
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    run_sql(conn_, "COMMIT");
    done_ = true;
  }

 private:
  Connection& conn_;
  bool done_ = false;
};

Task read_task(const Statement& s) {
  Task t;
  t.id = s.text(0);
  t.user_id = s.text(1);
  t.title = s.text(2);
  t.description = s.optional_text(3);
  t.status = s.text(4);
  t.priority = s.text(5);
  t.due_at = s.optional_text(6);
  t.created_at = s.text(7);
  t.updated_at = s.text(8);
  t.completed_at = s.optional_text(9);
  t.version = s.int64(10);
  return t;
}

OutboxRecord read_outbox(const Statement& s) {
  OutboxRecord r;
  r.id = s.int64(0);
  r.topic = s.text(1);
  r.key = s.text(2);
  r.payload = s.text(3);
  r.event_id = s.text(4);
  r.event_type = s.text(5);
  r.traceparent = s.text(6);
  r.user_id = s.text(7);
  r.seq = s.int64(8);
  r.created_at = s.text(9);
  return r;
}

User read_user(const Statement& s) { return User{s.text(0), s.text(1), s.text(2), s.text(3)}; }

std::optional<Task> load_task(Connection& conn, const std::string& user_id, const std::string& task_id) {
  Statement s(conn, fmt::format("SELECT {} FROM tasks WHERE id = ?1 AND user_id = ?2", kTaskColumns));
  s.bind(1, task_id).bind(2, user_id);
  if (!s.step()) return std::nullopt;
  return read_task(s);
}

// The upsert takes the next seq and creates the row on a user's first change; inside the
// write transaction nobody else can interleave, so seqs have no gaps.
std::int64_t next_seq(Connection& conn, const std::string& user_id) {
  Statement s(conn,
              "INSERT INTO user_seq (user_id, last_seq) VALUES (?1, 1) "
              "ON CONFLICT (user_id) DO UPDATE SET last_seq = user_seq.last_seq + 1 RETURNING last_seq");
  s.bind(1, user_id);
  if (!s.step()) throw StorageError("sqlite: user_seq upsert returned no row", false);
  const auto seq = s.int64(0);
  s.run();
  return seq;
}

void insert_outbox(Connection& conn, std::vector<OutboxRecord> records, const std::string& user_id, std::int64_t seq) {
  const auto now = events::now_rfc3339();
  for (auto& r : records) {
    impl::fill_outbox_defaults(r, user_id, seq, now);
    Statement s(conn,
                "INSERT INTO outbox (topic, key, payload, event_id, event_type, traceparent, user_id, seq, created_at) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    s.bind(1, r.topic).bind(2, r.key).bind(3, r.payload).bind(4, r.event_id).bind(5, r.event_type);
    s.bind(6, r.traceparent).bind(7, r.user_id).bind(8, r.seq).bind(9, r.created_at);
    s.run();
  }
}

AuditEntry read_audit(const Statement& s) {
  AuditEntry a;
  a.event_id = s.text(0);
  a.user_id = s.text(1);
  a.task_id = s.text(2);
  a.type = s.text(3);
  a.action = s.text(4);
  a.seq = s.optional_int64(5);
  a.occurred_at = s.text(6);
  a.task_data = s.text(7);
  a.source_topic = s.text(8);
  a.source_partition = static_cast<std::int32_t>(s.int64(9));
  a.source_offset = s.int64(10);
  a.recorded_at = s.text(11);
  return a;
}

constexpr std::string_view kMarkProcessed =
    "INSERT INTO processed_events (consumer_group, event_id, processed_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";

/// Inserts the processed_events row of (group, event_id) unless there is one; true when
/// it did, i.e. the group had not processed the event yet. `s` is a kMarkProcessed
/// statement with ?1 (group) and ?3 (processed_at) bound; bindings survive reset().
bool mark_processed(Connection& conn, Statement& s, const std::string& event_id) {
  s.bind(2, event_id);
  s.run();
  s.reset();
  return sqlite3_changes(conn.handle()) > 0;
}

/// Notifications with their channels: `filter` is the WHERE (and ORDER/LIMIT) applied to
/// the notifications table; its parameters are bound by `bind`. Newest first.
std::vector<Notification> query_notifications(Connection& conn, std::string_view filter,
                                              const std::function<void(Statement&)>& bind) {
  Statement s(conn, fmt::format("SELECT n.id, n.user_id, n.task_id, n.type, n.title, n.message, n.email, n.event_id, "
                                "n.read_at, n.created_at, n.source_topic, n.source_partition, n.source_offset, "
                                "c.channel, c.status, c.detail, c.updated_at "
                                "FROM (SELECT * FROM notifications {}) n "
                                "LEFT JOIN notification_channels c ON c.notification_id = n.id "
                                "ORDER BY n.created_at DESC, n.id DESC, c.position",
                                filter));
  bind(s);
  std::vector<Notification> out;
  while (s.step()) {
    auto id = s.text(0);
    if (out.empty() || out.back().id != id) {
      Notification n;
      n.id = std::move(id);
      n.user_id = s.text(1);
      n.task_id = s.optional_text(2);
      n.type = s.text(3);
      n.title = s.text(4);
      n.message = s.text(5);
      n.email = s.optional_text(6);
      n.event_id = s.text(7);
      n.read_at = s.optional_text(8);
      n.read = n.read_at.has_value();
      n.created_at = s.text(9);
      n.source_topic = s.text(10);
      n.source_partition = static_cast<std::int32_t>(s.int64(11));
      n.source_offset = s.int64(12);
      out.push_back(std::move(n));
    }
    if (!s.is_null(13)) out.back().channels.push_back(ChannelStatus{s.text(13), s.text(14), s.text(15), s.text(16)});
  }
  return out;
}

std::optional<Notification> load_notification(Connection& conn, std::string_view column, const std::string& value) {
  auto found = query_notifications(conn, fmt::format("WHERE {} = ?1", column), [&](Statement& s) { s.bind(1, value); });
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

void write_task(Statement& s, const Task& t) {
  s.bind(1, t.id).bind(2, t.user_id).bind(3, t.title).bind(4, t.description).bind(5, t.status);
  s.bind(6, t.priority).bind(7, t.due_at).bind(8, t.created_at).bind(9, t.updated_at).bind(10, t.completed_at);
  s.bind(11, t.version);
}

}  // namespace

struct SqliteStore::Impl {
  explicit Impl(const std::string& path)
      : pool(
            [this, path] {
              auto conn = std::make_unique<Connection>(path);
              if (path != ":memory:") sqlite3_wal_hook(conn->handle(), &Impl::on_wal_commit, this);
              return conn;
            },
            path == ":memory:" ? 1 : kMaxConnections, std::chrono::duration_cast<std::chrono::milliseconds>(kPoolWait)) {
    if (path != ":memory:") checkpointer = std::thread([this, path] { checkpoint_loop(path); });
  }

  ~Impl() {
    {
      std::lock_guard lock(checkpoint_mutex);
      checkpoint_stop = true;
    }
    checkpoint_cv.notify_all();
    if (checkpointer.joinable()) checkpointer.join();
  }

  // ---- WAL checkpoints, off the commit path.
  // SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold: it
  // copies the WAL into the database file and fsyncs it while every writer (and so every
  // API change) waits, which was the POST p99. Installing a WAL hook turns it off; the
  // hook wakes this thread instead, which checkpoints PASSIVE on a connection of its own:
  // it copies what is committed without blocking writers or readers.
  static constexpr int kCheckpointPages = 4096;  ///< 16 MiB of WAL at 4 KiB pages

  static int on_wal_commit(void* self, sqlite3*, const char*, int pages) {
    if (pages >= kCheckpointPages) {
      auto* impl = static_cast<Impl*>(self);
      {
        std::lock_guard lock(impl->checkpoint_mutex);
        impl->checkpoint_wanted = true;
      }
      impl->checkpoint_cv.notify_one();
    }
    return SQLITE_OK;
  }

  void checkpoint_loop(const std::string& path) {
    std::unique_ptr<Connection> conn;
    std::unique_lock lock(checkpoint_mutex);
    while (!checkpoint_stop) {
      // Also every few seconds: a quiet database then ends with a small WAL.
      checkpoint_cv.wait_for(lock, std::chrono::seconds(5), [&] { return checkpoint_wanted || checkpoint_stop; });
      if (checkpoint_stop) break;
      checkpoint_wanted = false;
      lock.unlock();
      try {
        if (!conn) conn = std::make_unique<Connection>(path);
        int log = 0, done = 0;
        const int rc = sqlite3_wal_checkpoint_v2(conn->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc != SQLITE_OK && !retriable_code(rc))
          spdlog::warn("sqlite: checkpoint: {} (code {})", sqlite3_errmsg(conn->handle()), rc);
      } catch (const StorageError& e) {
        spdlog::warn("sqlite: checkpoint: {}", e.what());
      }
      lock.lock();
      // At most a few checkpoints a second: until a writer restarts the WAL every commit
      // still reports it long, and each checkpoint ends with an fsync of the database.
      checkpoint_cv.wait_for(lock, std::chrono::milliseconds(250), [&] { return checkpoint_stop; });
    }
  }

  std::mutex checkpoint_mutex;
  std::condition_variable checkpoint_cv;
  bool checkpoint_wanted = false;
  bool checkpoint_stop = false;
  std::thread checkpointer;

  using Lease = impl::ConnectionPool<Connection>::Lease;

  /// Runs `fn(conn)` on a leased connection.
  template <class F>
  auto read(F&& fn) {
    auto lease = pool.acquire();
    return fn(*lease);
  }

  /// Runs `fn(conn)` inside a write transaction and commits when it returns normally.
  /// `fn` may return a value; exceptions roll back (its own changes only) and propagate
  /// unchanged.
  ///
  /// Group commit: writers of this process queue here; the first becomes the leader and
  /// runs every queued `fn` in ONE transaction, each inside its own SAVEPOINT (so one that
  /// throws undoes only its own changes), then commits once and wakes the others. Each call
  /// still returns only after its changes are durable, but N concurrent writers pay for one
  /// fsync instead of N: with synchronous=FULL the fsync, not the SQL, is what limits how
  /// many changes a second the API can take. The fns run one after another in queue order,
  /// each seeing the changes of those before it, exactly as if they had run one by one.
  template <class F>
  auto write(F&& fn) {
    using R = decltype(fn(std::declval<Connection&>()));
    std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
    std::exception_ptr error;
    WriteJob job;
    job.run = [&](Connection& conn) {
      try {
        if constexpr (std::is_void_v<R>) fn(conn);
        else result.emplace(fn(conn));
      } catch (...) {
        error = std::current_exception();
      }
      return error == nullptr;
    };
    submit(job);
    if (job.commit_error) std::rethrow_exception(job.commit_error);
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<R>) return std::move(*result);
  }

  struct WriteJob {
    std::function<bool(Connection&)> run;  ///< false when fn threw (its savepoint is rolled back)
    std::exception_ptr commit_error;       ///< BEGIN/COMMIT failed: nothing of the batch stayed
    enum class Next { wait, done, lead } next = Next::wait;  ///< set before `wake` is released
    std::binary_semaphore* wake = nullptr;  ///< the submitting thread's own (thread_local)
  };

  /// Runs `job` in a group commit. The first writer to find no leader leads: it takes what
  /// is queued (its own job first), runs it as one transaction, wakes each writer of the
  /// batch alone, and hands the lead to the oldest writer still queued, if any. Waking only
  /// the threads whose turn it is matters: with a shared condition variable every commit
  /// woke every waiting request thread (64 in serve) to find its job still queued.
  /// Invariant: the queue is empty whenever nobody leads.
  void submit(WriteJob& job) {
    thread_local std::binary_semaphore wake{0};
    job.wake = &wake;
    std::unique_lock lock(write_mutex);
    write_queue.push_back(&job);
    if (leader_active) {
      lock.unlock();
      wake.acquire();
      if (job.next == WriteJob::Next::done) return;
      lock.lock();  // handed the lead: leader_active stays true, our job is at the front
    } else {
      leader_active = true;
    }
    constexpr std::size_t kMaxBatch = 256;
    std::vector<WriteJob*> batch;
    while (!write_queue.empty() && batch.size() < kMaxBatch) {
      batch.push_back(write_queue.front());
      write_queue.pop_front();
    }
    lock.unlock();
    run_batch(batch);
    for (auto* j : batch) {
      if (j == &job) continue;
      auto* w = j->wake;
      j->next = WriteJob::Next::done;
      w->release();  // `j` may be gone from here on
    }
    lock.lock();
    if (write_queue.empty()) {
      leader_active = false;
      return;
    }
    auto* next = write_queue.front();
    auto* w = next->wake;
    next->next = WriteJob::Next::lead;
    w->release();
  }

  void run_batch(const std::vector<WriteJob*>& batch) {
    try {
      auto lease = pool.acquire();
      Connection& conn = *lease;
      Transaction txn(conn, true);
      if (batch.size() == 1) {
        if (!batch[0]->run(conn)) return;  // rolled back by ~Transaction, as before
      } else {
        for (auto* j : batch) {
          run_sql(conn, "SAVEPOINT w");
          if (!j->run(conn)) run_sql(conn, "ROLLBACK TO w");
          run_sql(conn, "RELEASE w");
        }
      }
      txn.commit();
    } catch (...) {
      for (auto* j : batch) j->commit_error = std::current_exception();
    }
  }

  impl::ConnectionPool<Connection> pool;
  // Writers of this process queue here rather than in SQLite's sleep-and-retry busy
  // handler, which is unfair and slow under contention.
  std::mutex write_mutex;
  std::deque<WriteJob*> write_queue;
  bool leader_active = false;
};

SqliteStore::SqliteStore(const std::string& path) : impl_(std::make_unique<Impl>(path)) {
  // Open one connection now so a bad path fails at start, not on the first request.
  impl_->read([](Connection&) {});
}

SqliteStore::~SqliteStore() = default;

void SqliteStore::migrate() { migrate_to(static_cast<std::int64_t>(std::size(kMigrations))); }

std::int64_t SqliteStore::schema_version() {
  return impl_->read([](Connection& conn) -> std::int64_t {
    Statement exists(conn, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
    if (!exists.step()) return 0;
    Statement s(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    s.step();
    return s.int64(0);
  });
}

void SqliteStore::migrate_to(std::int64_t target) {
  target = std::min(target, static_cast<std::int64_t>(std::size(kMigrations)));
  impl_->write([target](Connection& conn) {
    // Under BEGIN IMMEDIATE: a second process migrating at the same time waits here and
    // then finds the work done.
    conn.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
    Statement current(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    current.step();
    const auto applied = current.int64(0);
    const auto known = static_cast<std::int64_t>(std::size(kMigrations));
    if (applied > known) {
      spdlog::warn("sqlite: schema is at version {}, newer than this build knows ({})", applied, known);
    }
    for (auto version = applied + 1; version <= target; ++version) {
      conn.exec(std::string(kMigrations[version - 1]));
      Statement record(conn, "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)");
      record.bind(1, version).bind(2, events::now_rfc3339()).run();
      spdlog::info("sqlite: applied migration {}", version);
    }
  });
}

bool SqliteStore::ping() {
  try {
    return impl_->read([](Connection& conn) {
      Statement s(conn, "SELECT 1");
      return s.step() && s.int64(0) == 1;
    });
  } catch (const StorageError&) {
    return false;
  }
}

std::optional<User> SqliteStore::create_user(const std::string& email, const std::string& password_hash) {
  return impl_->write([&](Connection& conn) -> std::optional<User> {
    User user{events::new_event_id(), email, password_hash, events::now_rfc3339()};
    Statement s(conn,
                "INSERT INTO users (id, email, email_key, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5) "
                "ON CONFLICT (email_key) DO NOTHING");
    s.bind(1, user.id).bind(2, user.email).bind(3, impl::email_key(email)).bind(4, user.password_hash);
    s.bind(5, user.created_at).run();
    if (sqlite3_changes(conn.handle()) == 0) return std::nullopt;
    return user;
  });
}

std::optional<User> SqliteStore::find_user_by_email(const std::string& email) {
  return impl_->read([&](Connection& conn) -> std::optional<User> {
    Statement s(conn, "SELECT id, email, password_hash, created_at FROM users WHERE email_key = ?1");
    s.bind(1, impl::email_key(email));
    if (!s.step()) return std::nullopt;
    return read_user(s);
  });
}

std::optional<User> SqliteStore::find_user(const std::string& id) {
  return impl_->read([&](Connection& conn) -> std::optional<User> {
    Statement s(conn, "SELECT id, email, password_hash, created_at FROM users WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_user(s);
  });
}

std::optional<User> SqliteStore::first_user() {
  return impl_->read([&](Connection& conn) -> std::optional<User> {
    Statement s(conn, "SELECT id, email, password_hash, created_at FROM users ORDER BY created_at, id LIMIT 1");
    if (!s.step()) return std::nullopt;
    return read_user(s);
  });
}

ChangeResult SqliteStore::create_task(const Task& task, const EventFactory& events) {
  return impl_->write([&](Connection& conn) {
    Statement insert(conn, fmt::format("INSERT INTO tasks ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                                       kTaskColumns));
    write_task(insert, task);
    insert.run();
    const auto seq = next_seq(conn, task.user_id);
    insert_outbox(conn, events(nullptr, &task, seq), task.user_id, seq);
    return ChangeResult{ChangeStatus::ok, task, seq};
  });
}

ChangeResult SqliteStore::update_task(const std::string& user_id, const std::string& task_id,
                                      const std::function<bool(Task&)>& mutate,
                                      std::optional<std::int64_t> expected_version, const std::string& now,
                                      const EventFactory& events) {
  return impl_->write([&](Connection& conn) {
    const auto before = load_task(conn, user_id, task_id);
    Task after;
    if (auto early = impl::plan_update(before, mutate, expected_version, now, after)) return *early;
    Statement update(conn,
                     "UPDATE tasks SET title = ?3, description = ?4, status = ?5, priority = ?6, due_at = ?7, "
                     "updated_at = ?9, completed_at = ?10, version = ?11 WHERE id = ?1 AND user_id = ?2");
    // ?8 (created_at) is bound but unused so both statements share write_task's numbering.
    write_task(update, after);
    update.run();
    const auto seq = next_seq(conn, user_id);
    insert_outbox(conn, events(&*before, &after, seq), user_id, seq);
    return ChangeResult{ChangeStatus::ok, std::move(after), seq};
  });
}

ChangeResult SqliteStore::delete_task(const std::string& user_id, const std::string& task_id,
                                      const EventFactory& events) {
  return impl_->write([&](Connection& conn) {
    const auto before = load_task(conn, user_id, task_id);
    if (!before) return ChangeResult{ChangeStatus::not_found, std::nullopt, 0};
    Statement del(conn, "DELETE FROM tasks WHERE id = ?1 AND user_id = ?2");
    del.bind(1, task_id).bind(2, user_id).run();
    const auto seq = next_seq(conn, user_id);
    insert_outbox(conn, events(&*before, nullptr, seq), user_id, seq);
    return ChangeResult{ChangeStatus::ok, before, seq};
  });
}

std::optional<Task> SqliteStore::get_task(const std::string& user_id, const std::string& task_id) {
  return impl_->read([&](Connection& conn) { return load_task(conn, user_id, task_id); });
}

TaskPage SqliteStore::list_tasks(const std::string& user_id, const std::optional<std::string>& status, int limit,
                                 const std::optional<std::string>& cursor) {
  const auto after = cursor ? std::optional(impl::decode_cursor(*cursor)) : std::nullopt;
  limit = impl::clamp_page_limit(limit);
  return impl_->read([&](Connection& conn) {
    // Built per shape rather than with "? IS NULL OR ..." so that the cursor condition is
    // a range on the (user_id, created_at, id) index: a deep page costs what the first does.
    std::string sql = fmt::format("SELECT {} FROM tasks WHERE user_id = ?1", kTaskColumns);
    if (status) sql += " AND status = ?2";
    if (after) sql += " AND (created_at, id) < (?3, ?4)";
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?5";
    Statement s(conn, sql);
    s.bind(1, user_id);
    if (status) s.bind(2, *status);
    if (after) s.bind(3, after->created_at).bind(4, after->id);
    s.bind(5, limit + 1);  // one extra row tells whether another page exists
    TaskPage page;
    while (s.step()) page.items.push_back(read_task(s));
    if (page.items.size() > static_cast<std::size_t>(limit)) {
      page.items.pop_back();
      page.next_cursor = impl::encode_cursor(page.items.back());
    }
    return page;
  });
}

std::vector<OutboxRecord> SqliteStore::fetch_unpublished(int limit) {
  return impl_->read([&](Connection& conn) {
    Statement s(conn, fmt::format("SELECT {} FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT ?1",
                                  kOutboxColumns));
    s.bind(1, impl::clamp_batch_limit(limit));
    std::vector<OutboxRecord> out;
    while (s.step()) out.push_back(read_outbox(s));
    return out;
  });
}

void SqliteStore::mark_published(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  impl_->write([&](Connection& conn) {
    const auto now = events::now_rfc3339();
    Statement s(conn, "UPDATE outbox SET published_at = ?1 WHERE id = ?2 AND published_at IS NULL");
    for (const auto id : ids) {
      s.bind(1, now).bind(2, id).run();
      s.reset();
    }
  });
}

OutboxStats SqliteStore::outbox_stats() {
  return impl_->read([](Connection& conn) {
    Statement s(conn,
                "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL), "
                "(SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1)");
    s.step();
    return OutboxStats{s.int64(0), s.optional_text(1)};
  });
}

std::vector<OutboxRecord> SqliteStore::events_after(const std::string& user_id, const std::string& topic,
                                                    std::int64_t after_seq, int limit) {
  return impl_->read([&](Connection& conn) {
    Statement s(conn, fmt::format("SELECT {} FROM outbox WHERE user_id = ?1 AND topic = ?2 AND seq > ?3 "
                                  "ORDER BY seq, id LIMIT ?4",
                                  kOutboxColumns));
    // Never below 0: reminder rows have seq 0 and are not part of any resumable stream.
    s.bind(1, user_id).bind(2, topic).bind(3, std::max<std::int64_t>(after_seq, 0));
    s.bind(4, impl::clamp_batch_limit(limit));
    std::vector<OutboxRecord> out;
    while (s.step()) out.push_back(read_outbox(s));
    return out;
  });
}

std::int64_t SqliteStore::user_last_seq(const std::string& user_id) {
  return impl_->read([&](Connection& conn) -> std::int64_t {
    Statement s(conn, "SELECT last_seq FROM user_seq WHERE user_id = ?1");
    s.bind(1, user_id);
    return s.step() ? s.int64(0) : 0;
  });
}

std::size_t SqliteStore::prune_outbox(const std::string& published_before) {
  return impl_->write([&](Connection& conn) {
    Statement s(conn, "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?1");
    s.bind(1, published_before).run();
    return static_cast<std::size_t>(sqlite3_changes(conn.handle()));
  });
}

bool SqliteStore::processed(const std::string& consumer_group, const std::string& event_id) {
  return impl_->read([&](Connection& conn) {
    Statement s(conn, "SELECT 1 FROM processed_events WHERE consumer_group = ?1 AND event_id = ?2");
    s.bind(1, consumer_group).bind(2, event_id);
    return s.step();
  });
}

std::size_t SqliteStore::record_audit(const std::string& consumer_group, const std::vector<AuditEntry>& entries) {
  impl::require_event_ids(entries);
  if (entries.empty()) return 0;
  return impl_->write([&](Connection& conn) {
    const auto now = events::now_rfc3339();
    // Two statements prepared once for the batch; per entry, the processed_events insert
    // decides (by changes()) whether the audit row goes in. A duplicate later in the
    // batch finds the row the first one inserted.
    Statement mark(conn, kMarkProcessed);
    mark.bind(1, consumer_group).bind(3, now);
    Statement insert(conn, fmt::format("INSERT INTO audit_log ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                                       "?11, ?12) ON CONFLICT (event_id) DO NOTHING",
                                       kAuditColumns));
    std::size_t fresh = 0;
    for (const auto& e : entries) {
      if (!mark_processed(conn, mark, e.event_id)) continue;
      ++fresh;
      insert.bind(1, e.event_id).bind(2, e.user_id).bind(3, e.task_id).bind(4, e.type).bind(5, e.action);
      insert.bind(6, e.seq).bind(7, e.occurred_at).bind(8, e.task_data).bind(9, e.source_topic);
      insert.bind(10, static_cast<std::int64_t>(e.source_partition)).bind(11, e.source_offset);
      insert.bind(12, e.recorded_at.empty() ? now : e.recorded_at);
      insert.run();
      insert.reset();
    }
    return fresh;
  });
}

std::vector<AuditEntry> SqliteStore::task_history(const std::string& user_id, const std::string& task_id) {
  return impl_->read([&](Connection& conn) {
    Statement s(conn, fmt::format("SELECT {} FROM audit_log WHERE user_id = ?1 AND task_id = ?2 ORDER BY rowid",
                                  kAuditColumns));
    s.bind(1, user_id).bind(2, task_id);
    std::vector<AuditEntry> rows;
    while (s.step()) rows.push_back(read_audit(s));
    return impl::order_history(std::move(rows));
  });
}

std::pair<Notification, bool> SqliteStore::create_notification(const std::string& consumer_group,
                                                               const Notification& n) {
  impl::require_event_id(n);
  const auto stored = impl::normalized(n, events::now_rfc3339());
  return impl_->write([&](Connection& conn) -> std::pair<Notification, bool> {
    Statement mark(conn, kMarkProcessed);
    mark.bind(1, consumer_group).bind(3, events::now_rfc3339());
    if (!mark_processed(conn, mark, stored.event_id)) {
      auto existing = load_notification(conn, "event_id", stored.event_id);
      return {existing ? std::move(*existing) : stored, false};
    }
    Statement insert(conn,
                     "INSERT INTO notifications (id, user_id, task_id, type, title, message, email, event_id, read_at, "
                     "created_at, source_topic, source_partition, source_offset) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (event_id) DO NOTHING");
    insert.bind(1, stored.id).bind(2, stored.user_id).bind(3, stored.task_id).bind(4, stored.type);
    insert.bind(5, stored.title).bind(6, stored.message).bind(7, stored.email).bind(8, stored.event_id);
    insert.bind(9, stored.read_at).bind(10, stored.created_at).bind(11, stored.source_topic);
    insert.bind(12, static_cast<std::int64_t>(stored.source_partition)).bind(13, stored.source_offset).run();
    if (sqlite3_changes(conn.handle()) == 0) {  // another consumer group created it
      return {*load_notification(conn, "event_id", stored.event_id), false};
    }
    Statement channel(conn,
                      "INSERT INTO notification_channels (notification_id, channel, position, status, detail, "
                      "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    channel.bind(1, stored.id);
    for (std::size_t i = 0; i < stored.channels.size(); ++i) {
      const auto& c = stored.channels[i];
      channel.bind(2, c.channel).bind(3, static_cast<std::int64_t>(i)).bind(4, c.status).bind(5, c.detail);
      channel.bind(6, c.updated_at).run();
      channel.reset();
    }
    return {stored, true};
  });
}

void SqliteStore::set_channel_status(const std::string& notification_id, const std::string& channel,
                                     const std::string& status, const std::string& detail, const std::string& now) {
  impl_->write([&](Connection& conn) {
    Statement s(conn,
                "UPDATE notification_channels SET status = ?3, detail = ?4, updated_at = ?5 "
                "WHERE notification_id = ?1 AND channel = ?2");
    s.bind(1, notification_id).bind(2, channel).bind(3, status).bind(4, detail).bind(5, now).run();
  });
}

std::optional<Notification> SqliteStore::get_notification(const std::string& notification_id) {
  return impl_->read([&](Connection& conn) { return load_notification(conn, "id", notification_id); });
}

std::vector<EmailClaim> SqliteStore::claim_due_emails(std::int64_t now_ms, std::int64_t lease_ms, int limit) {
  limit = std::clamp(limit, 1, 1000);
  return impl_->write([&](Connection& conn) {
    Statement s(conn,
                "UPDATE notification_channels SET attempts = attempts + 1, next_attempt_ms = ?2 "
                "WHERE rowid IN (SELECT rowid FROM notification_channels WHERE channel = 'email' AND status = 'pending' "
                "AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms LIMIT ?3) "
                "RETURNING notification_id, attempts, first_failure");
    s.bind(1, now_ms).bind(2, now_ms + lease_ms).bind(3, limit);
    std::vector<EmailClaim> out;
    while (s.step()) out.push_back({s.text(0), static_cast<int>(s.int64(1)), s.optional_text(2)});
    return out;
  });
}

void SqliteStore::retry_email_later(const std::string& notification_id, std::int64_t next_attempt_ms,
                                    const std::string& detail, const std::string& now) {
  impl_->write([&](Connection& conn) {
    Statement s(conn,
                "UPDATE notification_channels SET next_attempt_ms = ?2, detail = ?3, updated_at = ?4, "
                "first_failure = coalesce(first_failure, ?4) "
                "WHERE notification_id = ?1 AND channel = 'email' AND status = 'pending'");
    s.bind(1, notification_id).bind(2, next_attempt_ms).bind(3, detail).bind(4, now).run();
  });
}

bool SqliteStore::rearm_failed_email(const std::string& event_id, const std::string& detail, const std::string& now) {
  return impl_->write([&](Connection& conn) {
    Statement s(conn,
                "UPDATE notification_channels SET status = 'pending', attempts = 0, next_attempt_ms = 0, "
                "first_failure = NULL, detail = ?2, updated_at = ?3 "
                "WHERE channel = 'email' AND status = 'failed' "
                "AND notification_id = (SELECT id FROM notifications WHERE event_id = ?1)");
    s.bind(1, event_id).bind(2, detail).bind(3, now).run();
    return sqlite3_changes(conn.handle()) > 0;
  });
}

namespace {
constexpr std::string_view kQueuedEmailSelect =
    "SELECT n.id, n.user_id, coalesce(n.email, ''), n.title, c.status, c.detail, c.updated_at, c.attempts, c.next_attempt_ms, "
    "c.first_failure FROM notification_channels c JOIN notifications n ON n.id = c.notification_id WHERE c.channel = 'email' ";
}  // namespace

EmailQueue SqliteStore::email_queue(int limit) {
  limit = std::clamp(limit, 1, 500);
  return impl_->read([&](Connection& conn) {
    EmailQueue q;
    Statement counts(conn,
                     "SELECT coalesce(sum(status = 'pending'), 0), coalesce(sum(status = 'failed'), 0) FROM notification_channels "
                     "WHERE channel = 'email' AND status IN ('pending', 'failed')");
    if (counts.step()) q.pending = counts.int64(0), q.failed = counts.int64(1);
    for (const char* tail : {"AND c.status = 'pending' ORDER BY c.next_attempt_ms, n.id LIMIT ?1",
                             "AND c.status = 'failed' ORDER BY c.updated_at DESC, n.id LIMIT ?1"}) {
      Statement s(conn, std::string(kQueuedEmailSelect) + tail);
      s.bind(1, limit);
      while (s.step())
        q.items.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6), static_cast<int>(s.int64(7)),
                           s.int64(8), s.optional_text(9)});
    }
    return q;
  });
}

bool SqliteStore::retry_email_now(const std::string& notification_id, const std::string& detail, const std::string& now) {
  return impl_->write([&](Connection& conn) {
    Statement s(conn,
                "UPDATE notification_channels SET attempts = CASE WHEN status = 'failed' THEN 0 ELSE attempts END, "
                "first_failure = CASE WHEN status = 'failed' THEN NULL ELSE first_failure END, "
                "status = 'pending', next_attempt_ms = 0, detail = ?2, updated_at = ?3 "
                "WHERE channel = 'email' AND notification_id = ?1 AND status IN ('pending', 'failed')");
    s.bind(1, notification_id).bind(2, detail).bind(3, now).run();
    return sqlite3_changes(conn.handle()) > 0;
  });
}

std::int64_t SqliteStore::record_operator_action(const OperatorAction& a) {
  return impl_->write([&](Connection& conn) {
    Statement s(conn,
                "INSERT INTO operator_actions (at, actor, action, target, filter, seen, matched, sent, outcome, detail) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    s.bind(1, a.at).bind(2, a.actor).bind(3, a.action).bind(4, a.target).bind(5, a.filter).bind(6, a.seen).bind(7, a.matched)
        .bind(8, a.sent).bind(9, a.outcome).bind(10, a.detail).run();
    return static_cast<std::int64_t>(sqlite3_last_insert_rowid(conn.handle()));
  });
}

std::vector<OperatorAction> SqliteStore::list_operator_actions(int limit) {
  limit = std::clamp(limit, 1, 500);
  return impl_->read([&](Connection& conn) {
    Statement s(conn,
                "SELECT id, at, actor, action, target, filter, seen, matched, sent, outcome, detail FROM operator_actions "
                "ORDER BY id DESC LIMIT ?1");
    s.bind(1, limit);
    std::vector<OperatorAction> out;
    while (s.step())
      out.push_back({s.int64(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.int64(6), s.int64(7), s.int64(8), s.text(9), s.text(10)});
    return out;
  });
}

std::vector<Notification> SqliteStore::list_notifications(const std::string& user_id, bool unread_only, int limit) {
  limit = impl::clamp_notification_limit(limit);
  return impl_->read([&](Connection& conn) {
    return query_notifications(conn,
                               fmt::format("WHERE user_id = ?1{} ORDER BY created_at DESC, id DESC LIMIT ?2",
                                           unread_only ? " AND read_at IS NULL" : ""),
                               [&](Statement& s) { s.bind(1, user_id).bind(2, limit); });
  });
}

std::optional<Notification> SqliteStore::mark_notification_read(const std::string& user_id,
                                                                const std::string& notification_id,
                                                                const std::string& now) {
  return impl_->write([&](Connection& conn) -> std::optional<Notification> {
    Statement s(conn, "UPDATE notifications SET read_at = coalesce(read_at, ?3) WHERE id = ?1 AND user_id = ?2");
    s.bind(1, notification_id).bind(2, user_id).bind(3, now).run();
    if (sqlite3_changes(conn.handle()) == 0) return std::nullopt;
    return load_notification(conn, "id", notification_id);
  });
}

std::int64_t SqliteStore::count_unread_notifications(const std::string& user_id) {
  return impl_->read([&](Connection& conn) -> std::int64_t {
    // "read_at IS NULL" as written lets SQLite count over the partial index notifications_user_unread.
    Statement s(conn, "SELECT count(*) FROM notifications WHERE user_id = ?1 AND read_at IS NULL");
    s.bind(1, user_id);
    return s.step() ? s.int64(0) : 0;
  });
}

std::size_t SqliteStore::mark_all_notifications_read(const std::string& user_id, const std::string& now) {
  return impl_->write([&](Connection& conn) {
    Statement s(conn, "UPDATE notifications SET read_at = ?2 WHERE user_id = ?1 AND read_at IS NULL");
    s.bind(1, user_id).bind(2, now).run();
    return static_cast<std::size_t>(sqlite3_changes(conn.handle()));
  });
}

std::vector<Task> SqliteStore::tasks_due_without_reminder(const std::string& kind, const std::string& until,
                                                          int limit) {
  return impl_->read([&](Connection& conn) {
    // The conditions repeat tasks_due_open's WHERE so SQLite can use the partial index.
    Statement s(conn, fmt::format("SELECT {} FROM tasks t WHERE t.status <> 'done' AND t.due_at IS NOT NULL "
                                  "AND t.due_at <= ?1 AND NOT EXISTS (SELECT 1 FROM reminders_sent r "
                                  "WHERE r.task_id = t.id AND r.due_at = t.due_at AND r.kind = ?2) "
                                  "ORDER BY t.due_at, t.id LIMIT ?3",
                                  kTaskColumns));
    s.bind(1, until).bind(2, kind).bind(3, impl::clamp_batch_limit(limit));
    std::vector<Task> out;
    while (s.step()) out.push_back(read_task(s));
    return out;
  });
}

bool SqliteStore::record_reminder(const Task& task, const std::string& kind, const std::vector<OutboxRecord>& records) {
  if (!task.due_at) throw StorageError("record_reminder: the task has no due_at", false);
  return impl_->write([&](Connection& conn) {
    Statement s(conn,
                "INSERT INTO reminders_sent (task_id, due_at, kind, sent_at) VALUES (?1, ?2, ?3, ?4) "
                "ON CONFLICT DO NOTHING");
    s.bind(1, task.id).bind(2, *task.due_at).bind(3, kind).bind(4, events::now_rfc3339()).run();
    if (sqlite3_changes(conn.handle()) == 0) return false;
    insert_outbox(conn, records, task.user_id, 0);
    return true;
  });
}

}  // namespace taskstream::storage
