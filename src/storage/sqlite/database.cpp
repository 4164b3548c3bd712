#include "storage/sqlite/database.hpp"

#include <spdlog/spdlog.h>

namespace taskstream::storage::sqlite {

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

void fail(sqlite3* db, int rc, std::string_view what) {
  throw StorageError(fmt::format("sqlite: {}: {} (code {})", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc),
                     retriable_code(rc), condition_of(rc));
}


Connection::Connection(const std::string& path) {
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

Connection::CachedStatement* Connection::take(std::string_view sql, sqlite3_stmt*& stmt) {
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

void Connection::exec(const std::string& sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    const std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    throw StorageError(fmt::format("sqlite: {} (code {}) in: {}", message, rc, sql.substr(0, 60)),
                       retriable_code(rc), condition_of(rc));
  }
}

Database::Database(const std::string& path)
    : pool(
          [this, path] {
            auto conn = std::make_unique<Connection>(path);
            if (path != ":memory:") sqlite3_wal_hook(conn->handle(), &Database::on_wal_commit, this);
            return conn;
          },
          path == ":memory:" ? 1 : kMaxConnections, std::chrono::duration_cast<std::chrono::milliseconds>(kPoolWait)) {
  if (path != ":memory:") checkpointer = std::thread([this, path] { checkpoint_loop(path); });
}

Database::~Database() {
  {
    std::lock_guard lock(checkpoint_mutex);
    checkpoint_stop = true;
  }
  checkpoint_cv.notify_all();
  if (checkpointer.joinable()) checkpointer.join();
}
void Database::checkpoint_loop(const std::string& path) {
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
void Database::submit(WriteJob& job) {
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
void Database::run_batch(const std::vector<WriteJob*>& batch) {
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
}  // namespace taskstream::storage::sqlite
