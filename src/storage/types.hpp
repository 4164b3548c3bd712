#pragma once
// Storage's data types and its error (docs/api.md for the shapes, docs/guarantees.md for
// what the store promises). The roles (storage/roles.hpp) speak in these.

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace taskstream::storage {

/// What an operator (and a client) should make of a storage failure
/// (docs/reliability.md, "Database faults").
enum class StorageCondition {
  error,        ///< a failed statement: a bug or bad data, not the database's state
  unavailable,  ///< the server is down or unreachable, the connection died, or every connection stayed busy
  disk_full,    ///< no space left for the database (SQLITE_FULL, SQLSTATE 53100)
  read_only,    ///< the database cannot be written (a read-only file or file system, SQLSTATE 25006)
};

class StorageError : public std::runtime_error {
 public:
  StorageError(const std::string& what, bool retriable, StorageCondition condition = StorageCondition::error)
      : std::runtime_error(what), retriable_(retriable), condition_(condition) {}
  bool is_retriable() const noexcept { return retriable_; }
  StorageCondition condition() const noexcept { return condition_; }
  /// The database cannot take work now (down, full, read-only): no request or message is
  /// at fault, and the same work succeeds once it is back. Requests get 503/507; consumers
  /// hold their batch (never dead-letter it) until it is back.
  bool is_outage() const noexcept { return condition_ != StorageCondition::error; }

 private:
  bool retriable_;
  StorageCondition condition_;
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
  std::string subject;      ///< ce_subject: the task id; empty when none
  std::string data_schema;  ///< the payload's schema, "task-event/v1" (events::current_schema); empty: unknown
};

/// Builds the outbox records of one change once the store knows its `seq` (and, for an
/// update, the task before and after). Called inside the transaction; must not block.
/// `before` is null for a create, `after` is null for a delete. For a create the store may
/// call it once before the transaction with seq = INT64_MAX and write the real seq into
/// each payload's top-level "seq" member itself (storage/impl/common.hpp, prebuild_events),
/// so it must be a pure function of its arguments (it may run more than once).
using EventFactory = std::function<std::vector<OutboxRecord>(const Task* before, const Task* after, std::int64_t seq)>;

enum class ChangeStatus { ok, not_found, version_conflict };

struct ChangeResult {
  ChangeStatus status = ChangeStatus::ok;
  std::optional<Task> task;  ///< the task after the change (or as it is, on version_conflict)
  std::int64_t seq = 0;      ///< the seq given to the change's events
};

/// A list_tasks cursor: the created_at and id of the last task of a page, "~" between
/// them (a keyset position, readable, and exactly describable in the OpenAPI).
inline constexpr std::string_view kCursorPattern =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z~"
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

struct TaskPage {
  std::vector<Task> items;
  std::optional<std::string> next_cursor;  ///< pass back as `cursor`; of the form kCursorPattern
};

/// One row of a task's audit trail, written by the audit consumer.
struct AuditEntry {
  std::string event_id, user_id, task_id, type, action;
  std::optional<std::int64_t> seq;
  std::string occurred_at;   ///< the event's timestamp
  std::string task_data;     ///< the task snapshot, JSON text
  std::string source_topic;
  std::int32_t source_partition = -1;
  std::int64_t source_offset = -1;
  std::string recorded_at;   ///< filled by the store when empty
  bool operator==(const AuditEntry&) const = default;
};

/// The delivery state of one channel of a notification.
struct ChannelStatus {
  std::string channel;  ///< in_app | email | sms
  std::string status;   ///< pending | sent | failed | skipped
  std::string detail;   ///< why (failed/skipped), or empty
  std::string updated_at;
  bool operator==(const ChannelStatus&) const = default;
};

struct Notification {
  std::string id;        ///< UUID, filled by the caller
  std::string user_id;
  std::optional<std::string> task_id;
  std::string type, title, message;
  std::optional<std::string> email;
  std::string event_id;  ///< the notification.request event it came from (unique)
  std::vector<ChannelStatus> channels;  ///< in the order they were created
  bool read = false;     ///< exactly when read_at is set
  std::string created_at;
  std::optional<std::string> read_at;
  /// Where the notification.request came from (empty/-1 when unknown): an email that runs
  /// out of attempts is dead-lettered naming it.
  std::string source_topic;
  std::int32_t source_partition = -1;
  std::int64_t source_offset = -1;
  bool operator==(const Notification&) const = default;
};

/// The notification's status of `channel`, or null when it has no such channel.
inline const ChannelStatus* find_channel(const Notification& n, std::string_view channel) {
  for (const auto& c : n.channels)
    if (c.channel == channel) return &c;
  return nullptr;
}

/// A pending email leased by claim_due_emails.
struct EmailClaim {
  std::string notification_id;
  int attempts = 0;                          ///< counting this one
  std::optional<std::string> first_failure;  ///< RFC 3339, set by the first retry_email_later
};

/// What an operator did (docs/operations.md, "Console"): kept for the console's action log.
struct OperatorAction {
  std::int64_t id = 0;  ///< assigned by record_operator_action
  std::string at;       ///< RFC 3339 UTC
  std::string actor;    ///< the operator's email, or "cli (<os user>)"
  std::string action;   ///< dlq.redrive | dlq.dry_run | email.retry
  std::string target;   ///< the topic, or the notification id
  std::string filter;   ///< the redrive filter (empty: all)
  std::int64_t seen = 0, matched = 0, sent = 0;
  std::string outcome;  ///< ok | error
  std::string detail;
};

/// An email channel in the queue, as the console shows it.
struct QueuedEmail {
  std::string notification_id, user_id, email, title, status, detail, updated_at;
  int attempts = 0;
  std::int64_t next_attempt_ms = 0;
  std::optional<std::string> first_failure;
};

struct EmailQueue {
  std::int64_t pending = 0, failed = 0;
  std::vector<QueuedEmail> items;  ///< pending (soonest first), then failed (latest first)
};

struct OutboxStats {
  std::int64_t waiting = 0;                    ///< rows not yet published
  std::optional<std::string> oldest_waiting;   ///< created_at of the oldest waiting row
};

}  // namespace taskstream::storage
