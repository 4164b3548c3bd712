#include "storage/sqlite/rows.hpp"

#include <fmt/format.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"

namespace taskstream::storage::sqlite {

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
  r.subject = s.text(10);
  r.data_schema = s.text(11);
  return r;
}

User read_user(const Statement& s) { return User{s.text(0), s.text(1), s.text(2), s.text(3)}; }

std::optional<Task> load_task(Connection& conn, const std::string& user_id, const std::string& task_id) {
  Statement s(conn, fmt::format("SELECT {} FROM tasks WHERE id = ?1 AND user_id = ?2", kTaskColumns));
  s.bind(1, task_id).bind(2, user_id);
  if (!s.step()) return std::nullopt;
  return read_task(s);
}

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
  if (records.empty()) return;
  const auto now = events::now_rfc3339();
  // All of a change's records in one statement (two for a task change): one statement to
  // run instead of one per row. Its text depends only on the row count (cached by it).
  constexpr int kColumns = 11;
  thread_local std::vector<std::string> sql_by_rows;
  if (sql_by_rows.size() < records.size() + 1) sql_by_rows.resize(records.size() + 1);
  auto& sql = sql_by_rows[records.size()];
  if (sql.empty()) {
    sql = "INSERT INTO outbox (topic, key, payload, event_id, event_type, traceparent, user_id, seq, created_at, subject, "
          "data_schema) VALUES ";
    for (std::size_t i = 0; i < records.size(); ++i) {
      sql += i ? ", (" : "(";
      for (int c = 1; c <= kColumns; ++c) sql += fmt::format("{}?{}", c > 1 ? ", " : "", static_cast<int>(i) * kColumns + c);
      sql += ")";
    }
  }
  Statement s(conn, sql);
  for (std::size_t i = 0; i < records.size(); ++i) {
    auto& r = records[i];
    impl::fill_outbox_defaults(r, user_id, seq, now);
    const int b = static_cast<int>(i) * kColumns;
    // `records` outlives the run below: the payload is bound without a copy.
    s.bind(b + 1, r.topic).bind(b + 2, r.key).bind_static(b + 3, r.payload).bind(b + 4, r.event_id).bind(b + 5, r.event_type);
    s.bind(b + 6, r.traceparent).bind(b + 7, r.user_id).bind(b + 8, r.seq).bind(b + 9, r.created_at);
    s.bind(b + 10, r.subject).bind(b + 11, r.data_schema);
  }
  s.run();
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


bool mark_processed(Connection& conn, Statement& s, const std::string& event_id) {
  s.bind(2, event_id);
  s.run();
  s.reset();
  return conn.changes() > 0;
}

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

}  // namespace taskstream::storage::sqlite
