#include "storage/sqlite/sqlite_store.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/sqlite/rows.hpp"

namespace taskstream::storage {

using namespace sqlite;

// One host, one file: the relay of this process always may run.
bool SqliteStore::hold_relay_lease() { return true; }

std::vector<OutboxRecord> SqliteStore::fetch_unpublished(int limit) {
  return db_->read([&](Connection& conn) {
    Statement s(conn, fmt::format("SELECT {} FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT ?1",
                                  kOutboxColumns));
    s.bind(1, impl::clamp_batch_limit(limit));
    std::vector<OutboxRecord> out;
    while (s.step()) out.push_back(read_outbox(s));
    return out;
  });
}

std::vector<OutboxRecord> SqliteStore::fetch_unpublished_skipping(int limit, const std::unordered_set<std::int64_t>& skip) {
  if (skip.empty()) return fetch_unpublished(limit);
  return db_->read([&](Connection& conn) {
    // One read transaction (one snapshot); a skipped row costs a step, not a decode.
    Statement s(conn, fmt::format("SELECT {} FROM outbox WHERE published_at IS NULL ORDER BY id", kOutboxColumns));
    const auto want = static_cast<std::size_t>(impl::clamp_batch_limit(limit));
    std::vector<OutboxRecord> out;
    while (out.size() < want && s.step())
      if (!skip.contains(s.int64(0))) out.push_back(read_outbox(s));
    return out;
  });
}

void SqliteStore::mark_published(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  // One statement per run of consecutive ids (a relay's batch is mostly one run) instead of
  // one per row: every id of [first, last] is in `ids`, so nothing else is touched.
  std::vector<std::int64_t> sorted(ids);
  std::sort(sorted.begin(), sorted.end());
  db_->write([&](Connection& conn) {
    const auto now = events::now_rfc3339();
    Statement s(conn, "UPDATE outbox SET published_at = ?1 WHERE id BETWEEN ?2 AND ?3 AND published_at IS NULL");
    s.bind_static(1, now);
    for (std::size_t i = 0; i < sorted.size();) {
      std::size_t j = i;
      while (j + 1 < sorted.size() && sorted[j + 1] <= sorted[j] + 1) ++j;  // duplicates stay in the run
      s.bind(2, sorted[i]).bind(3, sorted[j]).run();
      s.reset();
      i = j + 1;
    }
  });
}

OutboxStats SqliteStore::outbox_stats() {
  return db_->read([](Connection& conn) {
    Statement s(conn,
                "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL), "
                "(SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1)");
    s.step();
    return OutboxStats{s.int64(0), s.optional_text(1)};
  });
}

std::vector<OutboxRecord> SqliteStore::events_after(const std::string& user_id, const std::string& topic,
                                                    std::int64_t after_seq, int limit) {
  return db_->read([&](Connection& conn) {
    Statement s(conn, fmt::format("SELECT {} FROM outbox WHERE user_id = ?1 AND topic = ?2 AND seq > ?3 "
                                  "ORDER BY seq, id LIMIT ?4",
                                  kOutboxColumns));
    // Never below 0: reminder rows have seq 0 and are not part of any resumable stream.
    s.bind(1, user_id).bind(2, topic).bind(3, std::max<std::int64_t>(after_seq, 0));
    s.bind(4, impl::clamp_batch_limit(limit));
    std::vector<OutboxRecord> out;
    while (s.step()) out.push_back(read_outbox(s));
    return out;
  });
}

std::int64_t SqliteStore::user_last_seq(const std::string& user_id) {
  return db_->read([&](Connection& conn) -> std::int64_t {
    Statement s(conn, "SELECT last_seq FROM user_seq WHERE user_id = ?1");
    s.bind(1, user_id);
    return s.step() ? s.int64(0) : 0;
  });
}

std::size_t SqliteStore::prune_outbox(const std::string& published_before) {
  return db_->write([&](Connection& conn) {
    Statement s(conn, "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?1");
    s.bind(1, published_before).run();
    return static_cast<std::size_t>(conn.changes());
  });
}

std::vector<Task> SqliteStore::tasks_due_without_reminder(const std::string& kind, const std::string& until,
                                                          int limit) {
  return db_->read([&](Connection& conn) {
    // The conditions repeat tasks_due_open's WHERE so SQLite can use the partial index.
    Statement s(conn, fmt::format("SELECT {} FROM tasks t WHERE t.status <> 'done' AND t.due_at IS NOT NULL "
                                  "AND t.due_at <= ?1 AND NOT EXISTS (SELECT 1 FROM reminders_sent r "
                                  "WHERE r.task_id = t.id AND r.due_at = t.due_at AND r.kind = ?2) "
                                  "ORDER BY t.due_at, t.id LIMIT ?3",
                                  kTaskColumns));
    s.bind(1, until).bind(2, kind).bind(3, impl::clamp_batch_limit(limit));
    std::vector<Task> out;
    while (s.step()) out.push_back(read_task(s));
    return out;
  });
}

bool SqliteStore::record_reminder(const Task& task, const std::string& kind, const std::vector<OutboxRecord>& records) {
  if (!task.due_at) throw StorageError("record_reminder: the task has no due_at", false);
  return db_->write([&](Connection& conn) {
    Statement s(conn,
                "INSERT INTO reminders_sent (task_id, due_at, kind, sent_at) VALUES (?1, ?2, ?3, ?4) "
                "ON CONFLICT DO NOTHING");
    s.bind(1, task.id).bind(2, *task.due_at).bind(3, kind).bind(4, events::now_rfc3339()).run();
    if (conn.changes() == 0) return false;
    insert_outbox(conn, records, task.user_id, 0);
    return true;
  });
}

}  // namespace taskstream::storage
