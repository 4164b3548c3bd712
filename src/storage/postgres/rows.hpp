#pragma once
// PostgreSQL rows <-> storage types, and the steps several roles' queries share (locking a
// task, the next per-user seq, outbox inserts, processed_events, notifications with their
// channels). Internal to src/storage/postgres. Blocking: on the connection given.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/impl/common.hpp"
#include "storage/postgres/database.hpp"

namespace taskstream::storage::postgres {

// The column lists both backends select and insert in this order (storage/impl/common.hpp).
using impl::kAuditColumns;
using impl::kOutboxColumns;
using impl::kTaskColumns;

// Rows of a result whose columns are kTaskColumns, kOutboxColumns, kAuditColumns (in that
// order), or id, email, password_hash, created_at for a user.
Task read_task(const Result& r, int row);
std::vector<OutboxRecord> read_outbox(const Result& r);
/// The first row's user, or nullopt when there is none.
std::optional<User> read_user(const Result& r);
AuditEntry read_audit(const Result& r, int row);
/// `t` as the $1..$11 parameters of kTaskColumns.
std::vector<Param> task_params(const Task& t);

/// The task row, locked until the transaction ends so concurrent updates of it queue.
std::optional<Task> lock_task(Connection& conn, const std::string& user_id, const std::string& task_id);
/// The next per-user seq. The upsert row-locks the user's counter until commit: a concurrent
/// change of the same user waits here and then sees the committed value, so seqs never repeat
/// or skip, and within a user, outbox ids (taken after this) follow seq order. It runs after
/// the task row is locked, so every transaction takes at most one task lock and then this
/// one, and cannot deadlock with another.
std::int64_t next_seq(Connection& conn, const std::string& user_id);
/// Inserts a change's outbox rows (impl::fill_outbox_defaults fills what the factory left).
void insert_outbox(Connection& conn, std::vector<OutboxRecord> records, const std::string& user_id, std::int64_t seq);
/// Inserts the processed_events row of (group, event_id) unless there is one; true when
/// it did. A concurrent transaction inserting the same row makes this wait for its outcome.
bool mark_processed(Connection& conn, const std::string& group, const std::string& event_id);
/// Notifications with their channels, newest first: `filter` is the WHERE (and ORDER/LIMIT)
/// applied to the notifications table. One statement, so one snapshot.
std::vector<Notification> query_notifications(Connection& conn, std::string_view filter, const std::vector<Param>& params);
/// The notification whose `column` is `value`, with its channels.
std::optional<Notification> load_notification(Connection& conn, std::string_view column, const std::string& value);

}  // namespace taskstream::storage::postgres
