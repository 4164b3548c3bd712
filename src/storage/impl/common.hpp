#pragma once
// What both backends share and must agree on: cursor format, limits, email keys and the
// defaults a store fills into outbox records. Internal to src/storage.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/store.hpp"

namespace taskstream::storage::impl {

/// The columns of tasks, outbox and audit_log in the order both backends read and write them.
constexpr std::string_view kTaskColumns =
    "id, user_id, title, description, status, priority, due_at, created_at, updated_at, completed_at, version";
constexpr std::string_view kOutboxColumns =
    "id, topic, key, payload, event_id, event_type, traceparent, user_id, seq, created_at, subject, data_schema";
constexpr std::string_view kAuditColumns =
    "event_id, user_id, task_id, type, action, seq, occurred_at, task_data, source_topic, source_partition, "
    "source_offset, recorded_at";

/// Position after the last item of a page: the (created_at, id) keyset of that item.
struct CursorKey {
  std::string created_at;
  std::string id;
};

/// Opaque to callers: base64url (no padding) of "1\n<created_at>\n<id>". The leading
/// version lets the format change without misreading cursors clients still hold.
std::string encode_cursor(const Task& last);
/// Throws StorageError (not retriable) when `cursor` is not one encode_cursor made.
CursorKey decode_cursor(std::string_view cursor);

/// list_tasks page size: the interface promises 1..100, whatever the caller asks.
int clamp_page_limit(int limit) noexcept;
/// Outbox batch sizes: at least 1, at most 10000 (a relay asking for more is a bug).
int clamp_batch_limit(int limit) noexcept;

/// The key that makes emails unique case-insensitively. ASCII-only folding, done here
/// rather than with SQL lower() so SQLite and PostgreSQL (whose lower() depends on the
/// database locale) agree byte for byte.
std::string email_key(std::string_view email);

/// Fills what the EventFactory may leave empty: user_id, key (the user id), seq,
/// created_at (`now`) and event_id (a fresh UUID).
void fill_outbox_defaults(OutboxRecord& record, const std::string& user_id, std::int64_t seq, const std::string& now);

/// The events of a creation, built before its transaction: the factory runs with the seq
/// not yet known (kSeqPlaceholder), and stamp_seq() writes the real one into each payload's
/// top-level "seq" and into the record, inside the transaction. The writer that holds the
/// database's write lock then only copies bytes instead of building JSON (docs/benchmarks.md).
/// `ok` is false when a payload does not carry the placeholder exactly once (a factory that
/// is not the service's): the caller then runs the factory inside the transaction as before.
struct PrebuiltEvents {
  static constexpr std::int64_t kSeqPlaceholder = 9'223'372'036'854'775'807;  // INT64_MAX: 19 digits
  std::vector<OutboxRecord> records;
  std::vector<std::size_t> seq_at;  ///< offset of the placeholder's digits in each payload
  bool ok = false;
};
PrebuiltEvents prebuild_events(const EventFactory& events, const Task* before, const Task* after);
/// A copy of the prebuilt records with `seq` in place of the placeholder (a copy: a
/// transaction that is retried stamps again).
std::vector<OutboxRecord> stamp_seq(const PrebuiltEvents& pre, std::int64_t seq);

/// The backend-independent part of update_task. Returns the result to give back at once
/// (not found, version conflict, or nothing changed), or nullopt with `after` set to the task
/// to store: mutated, its identity (id, user_id, created_at) kept, version and updated_at advanced.
std::optional<ChangeResult> plan_update(const std::optional<Task>& before, const std::function<bool(Task&)>& mutate,
                                        std::optional<std::int64_t> expected_version, const std::string& now, Task& after);

/// list_notifications size: 1..200, whatever the caller asks.
int clamp_notification_limit(int limit) noexcept;

/// Throws StorageError (not retriable) when an entry has an empty event_id: stored, it
/// would make every later id-less entry a "duplicate" and drop it silently.
void require_event_ids(const std::vector<AuditEntry>& entries);

/// The same for one notification.
void require_event_id(const Notification& n);

/// The indexes of the entries whose event_id did not occur earlier in the batch, in order.
std::vector<std::size_t> first_occurrences(const std::vector<AuditEntry>& entries);

/// Orders a task's audit trail as store.hpp promises. `rows` come in recorded order.
std::vector<AuditEntry> order_history(std::vector<AuditEntry> rows);

/// An RFC 3339 timestamp as nanoseconds since the epoch (UTC), so timestamps written with
/// different offsets or fraction lengths compare as instants. nullopt when unparsable.
/// A timestamp without an offset is taken as UTC; digits beyond nanoseconds are ignored.
std::optional<std::int64_t> rfc3339_nanos(std::string_view text) noexcept;

/// `n` as create_notification stores it: created_at (empty: `now`), channels deduplicated
/// by name (first kept) with an empty updated_at set to created_at, read == read_at set
/// (read without read_at gets created_at).
Notification normalized(const Notification& n, const std::string& now);

}  // namespace taskstream::storage::impl
