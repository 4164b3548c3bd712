#include "storage/postgres/rows.hpp"

#include <fmt/format.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"

namespace taskstream::storage::postgres {

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
    o.subject = r.text(i, 10);
    o.data_schema = r.text(i, 11);
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

std::optional<Task> lock_task(Connection& conn, const std::string& user_id, const std::string& task_id) {
  const auto r = conn.query(fmt::format("SELECT {} FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE", kTaskColumns),
                            {task_id, user_id});
  if (r.rows() == 0) return std::nullopt;
  return read_task(r, 0);
}

std::int64_t next_seq(Connection& conn, const std::string& user_id) {
  const auto r = conn.query(
      "INSERT INTO user_seq (user_id, last_seq) VALUES ($1, 1) "
      "ON CONFLICT (user_id) DO UPDATE SET last_seq = user_seq.last_seq + 1 RETURNING last_seq",
      {user_id});
  return r.int64(0, 0);
}

void insert_outbox(Connection& conn, std::vector<OutboxRecord> records, const std::string& user_id, std::int64_t seq) {
  if (records.empty()) return;
  const auto now = events::now_rfc3339();
  // All of a change's records in one statement (two for a task change): one round trip
  // instead of one per row.
  constexpr int kColumns = 11;
  std::string sql =
      "INSERT INTO outbox (topic, key, payload, event_id, event_type, traceparent, user_id, seq, created_at, subject, data_schema) "
      "VALUES ";
  std::vector<Param> params;
  params.reserve(records.size() * kColumns);
  for (std::size_t i = 0; i < records.size(); ++i) {
    auto& r = records[i];
    impl::fill_outbox_defaults(r, user_id, seq, now);
    sql += i ? ", (" : "(";
    for (int c = 1; c <= kColumns; ++c) sql += fmt::format("{}${}", c > 1 ? ", " : "", static_cast<int>(i) * kColumns + c);
    sql += ")";
    params.insert(params.end(), {std::move(r.topic), std::move(r.key), std::move(r.payload), std::move(r.event_id), std::move(r.event_type),
                                 std::move(r.traceparent), std::move(r.user_id), param(r.seq), std::move(r.created_at),
                                 std::move(r.subject), std::move(r.data_schema)});
  }
  conn.query(sql, params);
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

bool mark_processed(Connection& conn, const std::string& group, const std::string& event_id) {
  return conn
             .query("INSERT INTO processed_events (consumer_group, event_id, processed_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    {group, event_id, events::now_rfc3339()})
             .rows() > 0;
}

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

}  // namespace taskstream::storage::postgres
