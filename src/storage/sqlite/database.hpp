#pragma once
// The SQLite driver under SqliteStore (storage/sqlite/sqlite_store.hpp): connections with
// their statement cache, statements, transactions, and the Database that pools connections,
// commits this process's writers as a group and checkpoints the WAL off the commit path.
// Internal to src/storage/sqlite; the queries per role are in the files beside it.
//
// Thread-safety: a Connection (and its Statements) is used by one thread at a time (a lease
// of the pool); Database::read/write are safe from any thread.
// Blocking: everything here blocks on file I/O; write() also waits for this process's
// other writers (a group commit) and other processes' (up to the busy timeout).

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "storage/impl/connection_pool.hpp"
#include "storage/types.hpp"

namespace taskstream::storage::sqlite {

constexpr int kBusyTimeoutMs = 10'000;
constexpr std::size_t kMaxConnections = 16;
constexpr auto kPoolWait = std::chrono::seconds(30);

/// SQLITE_BUSY or SQLITE_LOCKED: another writer held the database past the busy timeout.
bool retriable_code(int rc);
/// What a result code means for operators and clients (types.hpp, StorageCondition).
StorageCondition condition_of(int rc);
/// Throws the StorageError of `rc` on `db` (null: no handle yet).
[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what);

/// One open database handle; closed on destruction.
class Connection final {
 public:
  /// Opens `path` (created if missing) in WAL mode with this service's pragmas.
  explicit Connection(const std::string& path);
  ~Connection() {
    for (auto& [sql, entry] : statements_) sqlite3_finalize(entry.stmt);
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return db_; }
  /// Rows changed by the last INSERT, UPDATE or DELETE on this connection.
  std::int64_t changes() const { return sqlite3_changes64(db_); }

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
  CachedStatement* take(std::string_view sql, sqlite3_stmt*& stmt);
  /// Returns an entry from take(): its statement reset, bindings cleared, ready again.
  static void give_back(CachedStatement& entry) {
    sqlite3_reset(entry.stmt);
    sqlite3_clear_bindings(entry.stmt);
    entry.in_use = false;
  }

  /// Runs `sql` (one or more statements, no parameters) with sqlite3_exec.
  void exec(const std::string& sql);

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
  /// Binds without SQLite's copy: `value` must stay alive and unchanged until the statement
  /// has run (or is reset). For large values bound once, such as an event's payload.
  Statement& bind_static(int index, std::string_view value) {
    check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC));
    return *this;
  }
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
inline void run_sql(Connection& conn, std::string_view sql) { Statement(conn, sql).run(); }

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

/// The database file: the connection pool, the group commit of writers and the WAL
/// checkpointer (see the file comment).
class Database final {
 public:
  explicit Database(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // ---- WAL checkpoints, off the commit path.
  // SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold: it
  // copies the WAL into the database file and fsyncs it while every writer (and so every
  // API change) waits, which was the POST p99. Installing a WAL hook turns it off; the
  // hook wakes this thread instead, which checkpoints PASSIVE on a connection of its own:
  // it copies what is committed without blocking writers or readers.
  static constexpr int kCheckpointPages = 4096;  ///< 16 MiB of WAL at 4 KiB pages

  static int on_wal_commit(void* self, sqlite3*, const char*, int pages) {
    if (pages >= kCheckpointPages) {
      auto* impl = static_cast<Database*>(self);
      {
        std::lock_guard lock(impl->checkpoint_mutex);
        impl->checkpoint_wanted = true;
      }
      impl->checkpoint_cv.notify_one();
    }
    return SQLITE_OK;
  }

  void checkpoint_loop(const std::string& path);

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
  void submit(WriteJob& job);

  void run_batch(const std::vector<WriteJob*>& batch);

  impl::ConnectionPool<Connection> pool;
  // Writers of this process queue here rather than in SQLite's sleep-and-retry busy
  // handler, which is unfair and slow under contention.
  std::mutex write_mutex;
  std::deque<WriteJob*> write_queue;
  bool leader_active = false;
};

}  // namespace taskstream::storage::sqlite
