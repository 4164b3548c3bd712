#pragma once
// SQLite rows <-> storage types, and the steps several roles' queries share (loading a
// task, the next per-user seq, outbox inserts, processed_events, notifications with their
// channels). Internal to src/storage/sqlite. Blocking: on the connection given.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/impl/common.hpp"
#include "storage/sqlite/database.hpp"

namespace taskstream::storage::sqlite {

// The column lists both backends select and insert in this order (storage/impl/common.hpp).
using impl::kAuditColumns;
using impl::kOutboxColumns;
using impl::kTaskColumns;

constexpr std::string_view kMarkProcessed =
    "INSERT INTO processed_events (consumer_group, event_id, processed_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";

// Rows read by a statement whose columns are kTaskColumns, kOutboxColumns, kAuditColumns
// (in that order), or id, email, password_hash, created_at for a user.
Task read_task(const Statement& s);
OutboxRecord read_outbox(const Statement& s);
User read_user(const Statement& s);
AuditEntry read_audit(const Statement& s);
/// Binds ?1..?11 of `s` to `t` in kTaskColumns order.
void write_task(Statement& s, const Task& t);

/// The user's task, or nullopt (another user's task too).
std::optional<Task> load_task(Connection& conn, const std::string& user_id, const std::string& task_id);
/// The next per-user seq. The upsert takes it and creates the row on a user's first change;
/// inside the write transaction nobody else can interleave, so seqs have no gaps.
std::int64_t next_seq(Connection& conn, const std::string& user_id);
/// Inserts a change's outbox rows (impl::fill_outbox_defaults fills what the factory left).
void insert_outbox(Connection& conn, std::vector<OutboxRecord> records, const std::string& user_id, std::int64_t seq);
/// Inserts the processed_events row of (group, event_id) unless there is one; true when
/// it did, i.e. the group had not processed the event yet. `s` is a kMarkProcessed
/// statement with ?1 (group) and ?3 (processed_at) bound; bindings survive reset().
bool mark_processed(Connection& conn, Statement& s, const std::string& event_id);
/// Notifications with their channels: `filter` is the WHERE (and ORDER/LIMIT) applied to
/// the notifications table; its parameters are bound by `bind`. Newest first.
std::vector<Notification> query_notifications(Connection& conn, std::string_view filter,
                                              const std::function<void(Statement&)>& bind);
/// The notification whose `column` is `value`, with its channels.
std::optional<Notification> load_notification(Connection& conn, std::string_view column, const std::string& value);

}  // namespace taskstream::storage::sqlite
