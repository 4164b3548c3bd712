#include "storage/sqlite/sqlite_store.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/sqlite/rows.hpp"

namespace taskstream::storage {

using namespace sqlite;

bool SqliteStore::processed(const std::string& consumer_group, const std::string& event_id) {
  return db_->read([&](Connection& conn) {
    Statement s(conn, "SELECT 1 FROM processed_events WHERE consumer_group = ?1 AND event_id = ?2");
    s.bind(1, consumer_group).bind(2, event_id);
    return s.step();
  });
}

std::size_t SqliteStore::record_audit(const std::string& consumer_group, const std::vector<AuditEntry>& entries) {
  impl::require_event_ids(entries);
  if (entries.empty()) return 0;
  return db_->write([&](Connection& conn) {
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
  return db_->read([&](Connection& conn) {
    Statement s(conn, fmt::format("SELECT {} FROM audit_log WHERE user_id = ?1 AND task_id = ?2 ORDER BY rowid",
                                  kAuditColumns));
    s.bind(1, user_id).bind(2, task_id);
    std::vector<AuditEntry> rows;
    while (s.step()) rows.push_back(read_audit(s));
    return impl::order_history(std::move(rows));
  });
}

std::int64_t SqliteStore::record_operator_action(const OperatorAction& a) {
  return db_->write([&](Connection& conn) {
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
  return db_->read([&](Connection& conn) {
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

}  // namespace taskstream::storage
