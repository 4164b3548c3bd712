#include "storage/postgres/postgres_store.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/postgres/rows.hpp"

namespace taskstream::storage {

using namespace postgres;

bool PostgresStore::processed(const std::string& consumer_group, const std::string& event_id) {
  return db_->read([&](Connection& conn) {
    return conn.query("SELECT 1 FROM processed_events WHERE consumer_group = $1 AND event_id = $2",
                      {consumer_group, event_id})
               .rows() > 0;
  });
}

std::size_t PostgresStore::record_audit(const std::string& consumer_group, const std::vector<AuditEntry>& entries) {
  impl::require_event_ids(entries);
  if (entries.empty()) return 0;
  // The whole batch is one statement, one round trip: columns travel as arrays, unnest()
  // turns them back into rows. Duplicates inside the batch are dropped here (first kept),
  // so every row of the statement has its own event_id.
  const auto now = events::now_rfc3339();
  std::vector<ArrayLiteral> columns(12);
  for (const auto i : impl::first_occurrences(entries)) {
    const auto& e = entries[i];
    columns[0].add(e.event_id);
    columns[1].add(e.user_id);
    columns[2].add(e.task_id);
    columns[3].add(e.type);
    columns[4].add(e.action);
    columns[5].add(e.seq);
    columns[6].add(e.occurred_at);
    columns[7].add(e.task_data);
    columns[8].add(e.source_topic);
    columns[9].add(static_cast<std::int64_t>(e.source_partition));
    columns[10].add(e.source_offset);
    columns[11].add(e.recorded_at.empty() ? now : e.recorded_at);
  }
  std::vector<Param> params{consumer_group, now};
  for (auto& c : columns) params.emplace_back(std::move(c).finish());
  // processed_events rows go in by event_id, so two transactions of one group with
  // overlapping batches take their row locks in the same order and cannot deadlock; the
  // audit rows go in batch order, which recorded_order keeps. An audit row that another
  // group wrote already stays as it is (one audit row per event). IN rather than a join:
  // the planner's guess for a join of two CTEs is 50x the rows, which made it JIT-compile
  // the statement and doubled its time.
  constexpr std::string_view kSql = R"sql(
WITH input AS (
  SELECT t.event_id COLLATE "C" AS event_id, t.user_id, t.task_id, t.type, t.action, t.seq, t.occurred_at,
         t.task_data, t.source_topic, t.source_partition, t.source_offset, t.recorded_at, t.ord
  FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[],
              $11::text[], $12::integer[], $13::bigint[], $14::text[])
       WITH ORDINALITY AS t(event_id, user_id, task_id, type, action, seq, occurred_at, task_data, source_topic,
                            source_partition, source_offset, recorded_at, ord)
), fresh AS (
  INSERT INTO processed_events (consumer_group, event_id, processed_at)
  SELECT $1, event_id, $2 FROM input ORDER BY event_id
  ON CONFLICT DO NOTHING
  RETURNING event_id
), audited AS (
  INSERT INTO audit_log (event_id, user_id, task_id, type, action, seq, occurred_at, task_data, source_topic,
                         source_partition, source_offset, recorded_at)
  SELECT i.event_id, i.user_id, i.task_id, i.type, i.action, i.seq, i.occurred_at, i.task_data, i.source_topic,
         i.source_partition, i.source_offset, i.recorded_at
  FROM input i WHERE i.event_id IN (SELECT event_id FROM fresh)
  ORDER BY i.ord
  ON CONFLICT (event_id) DO NOTHING
)
SELECT count(*) FROM fresh
)sql";
  return db_->write([&](Connection& conn) { return static_cast<std::size_t>(conn.query(kSql, params).int64(0, 0)); });
}

std::vector<AuditEntry> PostgresStore::task_history(const std::string& user_id, const std::string& task_id) {
  return db_->read([&](Connection& conn) {
    const auto r = conn.query(fmt::format("SELECT {} FROM audit_log WHERE user_id = $1 AND task_id = $2 "
                                          "ORDER BY recorded_order",
                                          kAuditColumns),
                              {user_id, task_id});
    std::vector<AuditEntry> rows;
    rows.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) rows.push_back(read_audit(r, i));
    return impl::order_history(std::move(rows));
  });
}

std::int64_t PostgresStore::record_operator_action(const OperatorAction& a) {
  return db_->write([&](Connection& conn) {
    return conn
        .query("INSERT INTO operator_actions (at, actor, action, target, filter, seen, matched, sent, outcome, detail) "
               "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
               {a.at, a.actor, a.action, a.target, a.filter, param(a.seen), param(a.matched), param(a.sent), a.outcome, a.detail})
        .int64(0, 0);
  });
}

std::vector<OperatorAction> PostgresStore::list_operator_actions(int limit) {
  limit = std::clamp(limit, 1, 500);
  return db_->read([&](Connection& conn) {
    auto r = conn.query(
        "SELECT id, at, actor, action, target, filter, seen, matched, sent, outcome, detail FROM operator_actions "
        "ORDER BY id DESC LIMIT $1",
        {param(limit)});
    std::vector<OperatorAction> out;
    for (int i = 0; i < r.rows(); ++i)
      out.push_back({r.int64(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3), r.text(i, 4), r.text(i, 5), r.int64(i, 6), r.int64(i, 7),
                     r.int64(i, 8), r.text(i, 9), r.text(i, 10)});
    return out;
  });
}

}  // namespace taskstream::storage
