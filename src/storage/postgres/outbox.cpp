#include "storage/postgres/postgres_store.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/postgres/rows.hpp"

namespace taskstream::storage {

using namespace postgres;

bool PostgresStore::hold_relay_lease() {
  // Advisory locks are per database; the key includes the schema, so deployments (or
  // tests) in different schemas of one database each get their own relay.
  constexpr const char* kTryLock = "SELECT pg_try_advisory_lock(hashtext(current_schema() || '.taskstream.outbox-relay'))";
  std::lock_guard lock(db_->lease_mutex);
  try {
    if (db_->lease_conn && !db_->lease_conn->lost()) {
      // Held: make sure the session (and so the lock) is still there.
      db_->lease_conn->query("SELECT 1");
      return true;
    }
    db_->lease_conn.reset();
    const auto now = std::chrono::steady_clock::now();
    if (now < db_->lease_next_try) return false;
    db_->lease_next_try = now + std::chrono::seconds(2);  // a follower retries every 2 s, not every poll
    auto conn = std::make_unique<Connection>(db_->url);
    if (conn->query(kTryLock).text(0, 0) != "t") return false;  // another instance holds it
    spdlog::info("postgres: this instance now runs the outbox relay");
    db_->lease_conn = std::move(conn);
    return true;
  } catch (const std::exception& e) {
    spdlog::warn("postgres: relay lease: {}", e.what());
    db_->lease_conn.reset();
    return false;
  }
}

std::vector<OutboxRecord> PostgresStore::fetch_unpublished(int limit) {
  return db_->read([&](Connection& conn) {
    return read_outbox(conn.query(
        fmt::format("SELECT {} FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1", kOutboxColumns),
        {param(impl::clamp_batch_limit(limit))}));
  });
}

std::vector<OutboxRecord> PostgresStore::fetch_unpublished_skipping(int limit, const std::unordered_set<std::int64_t>& skip) {
  if (skip.empty()) return fetch_unpublished(limit);
  const int want = impl::clamp_batch_limit(limit);
  return db_->read([&](Connection& conn) {
    // The ids first (an index-only scan of outbox_unpublished): that one snapshot decides
    // which rows are returned. Then the rows of those not skipped (their columns never
    // change; only this relay marks them, and it does not hold them).
    const auto ids = conn.query("SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
                                {param(static_cast<std::int64_t>(want) + static_cast<std::int64_t>(skip.size()))});
    std::string array = "{";
    int taken = 0;
    for (int i = 0; i < ids.rows() && taken < want; ++i) {
      const auto id = ids.int64(i, 0);
      if (skip.contains(id)) continue;
      array += (taken++ ? "," : "") + std::to_string(id);
    }
    array += "}";
    std::vector<OutboxRecord> out;
    if (taken > 0)
      out = read_outbox(conn.query(fmt::format("SELECT {} FROM outbox WHERE id = ANY($1::bigint[]) ORDER BY id", kOutboxColumns), {array}));
    return out;
  });
}

void PostgresStore::mark_published(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  std::string array = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) array += (i ? "," : "") + std::to_string(ids[i]);
  array += "}";
  db_->write([&](Connection& conn) {
    conn.query("UPDATE outbox SET published_at = $1 WHERE id = ANY($2::bigint[]) AND published_at IS NULL",
               {events::now_rfc3339(), array});
  });
}

OutboxStats PostgresStore::outbox_stats() {
  return db_->read([](Connection& conn) {
    const auto r = conn.query(
        "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL), "
        "(SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1)");
    return OutboxStats{r.int64(0, 0), r.optional_text(0, 1)};
  });
}

std::vector<OutboxRecord> PostgresStore::events_after(const std::string& user_id, const std::string& topic,
                                                      std::int64_t after_seq, int limit) {
  return db_->read([&](Connection& conn) {
    return read_outbox(conn.query(fmt::format("SELECT {} FROM outbox WHERE user_id = $1 AND topic = $2 AND seq > $3 "
                                              "ORDER BY seq, id LIMIT $4",
                                              kOutboxColumns),
                                  // Never below 0: reminder rows have seq 0 and belong to no resumable stream.
                                  {user_id, topic, param(std::max<std::int64_t>(after_seq, 0)),
                                   param(impl::clamp_batch_limit(limit))}));
  });
}

std::int64_t PostgresStore::user_last_seq(const std::string& user_id) {
  return db_->read([&](Connection& conn) -> std::int64_t {
    const auto r = conn.query("SELECT last_seq FROM user_seq WHERE user_id = $1", {user_id});
    return r.rows() ? r.int64(0, 0) : 0;
  });
}

std::size_t PostgresStore::prune_outbox(const std::string& published_before) {
  return db_->write([&](Connection& conn) {
    const auto r = conn.query(
        "WITH gone AS (DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1 RETURNING 1) "
        "SELECT count(*) FROM gone",
        {published_before});
    return static_cast<std::size_t>(r.int64(0, 0));
  });
}

std::vector<Task> PostgresStore::tasks_due_without_reminder(const std::string& kind, const std::string& until,
                                                            int limit) {
  return db_->read([&](Connection& conn) {
    const auto r = conn.query(fmt::format("SELECT {} FROM tasks t WHERE t.status <> 'done' AND t.due_at IS NOT NULL "
                                          "AND t.due_at <= $1 AND NOT EXISTS (SELECT 1 FROM reminders_sent r "
                                          "WHERE r.task_id = t.id AND r.due_at = t.due_at AND r.kind = $2) "
                                          "ORDER BY t.due_at, t.id LIMIT $3",
                                          kTaskColumns),
                              {until, kind, param(impl::clamp_batch_limit(limit))});
    std::vector<Task> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_task(r, i));
    return out;
  });
}

bool PostgresStore::record_reminder(const Task& task, const std::string& kind,
                                    const std::vector<OutboxRecord>& records) {
  if (!task.due_at) throw StorageError("record_reminder: the task has no due_at", false);
  return db_->write([&](Connection& conn) {
    // A concurrent insert of the same key waits here for the first to commit, then inserts
    // nothing: exactly one caller gets true and writes the outbox rows.
    const auto r = conn.query(
        "INSERT INTO reminders_sent (task_id, due_at, kind, sent_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        {task.id, *task.due_at, kind, events::now_rfc3339()});
    if (r.rows() == 0) return false;
    insert_outbox(conn, records, task.user_id, 0);
    return true;
  });
}

}  // namespace taskstream::storage
