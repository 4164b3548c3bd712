#pragma once
// Storage: users, tasks and the transactional outbox, behind one interface with a SQLite
// and a PostgreSQL backend (SPEC sections 4 and 5).
//
// Every method is one transaction. A task change, the next per-user `seq` and the outbox
// rows of its events commit together or not at all.
// Blocking: every method blocks on the database; call from a DB worker thread, never
// from a thread that serves requests.
// Thread-safety: a Store is safe to call from several threads at once (a backend keeps a
// connection per thread or a pool).
// Errors: StorageError (with is_retriable() for busy/locked/connection loss).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/settings.hpp"

namespace taskstream::storage {

class StorageError : public std::runtime_error {
 public:
  StorageError(const std::string& what, bool retriable) : std::runtime_error(what), retriable_(retriable) {}
  bool is_retriable() const noexcept { return retriable_; }

 private:
  bool retriable_;
};

struct User {
  std::string id;  ///< UUID
  std::string email;
  std::string password_hash;  ///< Argon2id, libsodium's string format
  std::string created_at;     ///< RFC 3339 UTC
};

struct Task {
  std::string id;  ///< UUID
  std::string user_id;
  std::string title;
  std::optional<std::string> description;
  std::string status = "todo";      ///< todo | in_progress | done
  std::string priority = "medium";  ///< low | medium | high
  std::optional<std::string> due_at;
  std::string created_at;
  std::string updated_at;
  std::optional<std::string> completed_at;
  std::int64_t version = 1;  ///< grows by one per change; If-Match compares it
  bool operator==(const Task&) const = default;
};

/// One message to publish, as the outbox stores it.
struct OutboxRecord {
  std::int64_t id = 0;  ///< assigned by the store; publication order within a user
  std::string topic;
  std::string key;  ///< user id
  std::string payload;  ///< the event JSON
  std::string event_id;
  std::string event_type;
  std::string traceparent;  ///< empty when none
  std::string user_id;
  std::int64_t seq = 0;
  std::string created_at;
};

/// Builds the outbox records of one change once the store knows its `seq` (and, for an
/// update, the task before and after). Called inside the transaction; must not block.
/// `before` is null for a create, `after` is null for a delete.
using EventFactory = std::function<std::vector<OutboxRecord>(const Task* before, const Task* after, std::int64_t seq)>;

enum class ChangeStatus { ok, not_found, version_conflict };

struct ChangeResult {
  ChangeStatus status = ChangeStatus::ok;
  std::optional<Task> task;  ///< the task after the change (or as it is, on version_conflict)
  std::int64_t seq = 0;      ///< the seq given to the change's events
};

struct TaskPage {
  std::vector<Task> items;
  std::optional<std::string> next_cursor;  ///< opaque; pass back as `cursor`
};

struct OutboxStats {
  std::int64_t waiting = 0;                    ///< rows not yet published
  std::optional<std::string> oldest_waiting;   ///< created_at of the oldest waiting row
};

class Store {
 public:
  virtual ~Store() = default;

  /// Applies pending migrations (idempotent). Called at start by serve/worker/migrate.
  virtual void migrate() = 0;
  /// True when the database answers (readiness).
  virtual bool ping() = 0;

  // ---- users
  /// nullopt when the email (compared case-insensitively) is taken.
  virtual std::optional<User> create_user(const std::string& email, const std::string& password_hash) = 0;
  virtual std::optional<User> find_user_by_email(const std::string& email) = 0;
  virtual std::optional<User> find_user(const std::string& id) = 0;

  // ---- tasks (always scoped to the owner: another user's task is not_found)
  /// Inserts `task` (id, timestamps, version=1 filled by the caller) and its events.
  virtual ChangeResult create_task(const Task& task, const EventFactory& events) = 0;
  /// Loads the task, lets `mutate` change it (return false: nothing to change, no event,
  /// no version bump), bumps version and updated_at=`now`, stores it and its events.
  /// With `expected_version` set and different from the stored one: version_conflict.
  virtual ChangeResult update_task(const std::string& user_id, const std::string& task_id,
                                   const std::function<bool(Task&)>& mutate, std::optional<std::int64_t> expected_version,
                                   const std::string& now, const EventFactory& events) = 0;
  virtual ChangeResult delete_task(const std::string& user_id, const std::string& task_id, const EventFactory& events) = 0;
  virtual std::optional<Task> get_task(const std::string& user_id, const std::string& task_id) = 0;
  /// Newest first (created_at desc, id desc); `limit` 1..100; `status` filters when set.
  /// Throws StorageError (not retriable) on a malformed cursor.
  virtual TaskPage list_tasks(const std::string& user_id, const std::optional<std::string>& status, int limit,
                              const std::optional<std::string>& cursor) = 0;

  // ---- outbox
  /// The oldest unpublished rows, by id, at most `limit`.
  virtual std::vector<OutboxRecord> fetch_unpublished(int limit) = 0;
  /// Marks rows published (idempotent).
  virtual void mark_published(const std::vector<std::int64_t>& ids) = 0;
  virtual OutboxStats outbox_stats() = 0;
  /// Rows of `topic` for `user_id` with seq > `after_seq`, published or not, by seq (resume).
  virtual std::vector<OutboxRecord> events_after(const std::string& user_id, const std::string& topic, std::int64_t after_seq,
                                                 int limit) = 0;
};

/// The backend DATABASE_URL names. Throws StorageError when it cannot connect.
std::unique_ptr<Store> open_store(const config::DatabaseUrl& url);

}  // namespace taskstream::storage
