#include "storage/postgres/postgres_store.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/postgres/rows.hpp"

namespace taskstream::storage {

using namespace postgres;

ChangeResult PostgresStore::create_task(const Task& task, const EventFactory& events) {
  static const std::string insert_sql =
      fmt::format("INSERT INTO tasks ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", kTaskColumns);
  // The events' JSON is built before the transaction (impl::prebuild_events).
  auto pre = impl::prebuild_events(events, nullptr, &task);
  if (pre.ok && !pre.records.empty()) {
    // The whole change as one statement inside the transaction (BEGIN, it, COMMIT: three
    // round trips instead of five): the task, the user's next seq, and the outbox rows with
    // that seq written into each payload's placeholder (which prebuild_events found exactly
    // once in each). In write(), so a dead pooled connection is still found by BEGIN and retried.
    const auto now = events::now_rfc3339();
    constexpr int kTask = 11, kColumns = 10;
    std::string sql = fmt::format(
        "WITH t AS (INSERT INTO tasks ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)), "
        "s AS (INSERT INTO user_seq (user_id, last_seq) VALUES ($2, 1) "
        "ON CONFLICT (user_id) DO UPDATE SET last_seq = user_seq.last_seq + 1 RETURNING last_seq) "
        "INSERT INTO outbox (topic, key, payload, event_id, event_type, traceparent, user_id, seq, created_at, subject, "
        "data_schema) "
        "SELECT v.topic, v.key, replace(v.payload, '\"seq\":{}', '\"seq\":' || s.last_seq), v.event_id, v.event_type, "
        "v.traceparent, v.user_id, s.last_seq, v.created_at, v.subject, v.data_schema FROM s, (VALUES ",
        kTaskColumns, impl::PrebuiltEvents::kSeqPlaceholder);
    auto params = task_params(task);
    params.reserve(kTask + pre.records.size() * kColumns);
    for (std::size_t i = 0; i < pre.records.size(); ++i) {
      auto& r = pre.records[i];
      impl::fill_outbox_defaults(r, task.user_id, impl::PrebuiltEvents::kSeqPlaceholder, now);
      sql += i ? ", (" : "(";
      for (int c = 1; c <= kColumns; ++c) sql += fmt::format("{}${}", c > 1 ? ", " : "", kTask + static_cast<int>(i) * kColumns + c);
      sql += ")";
      params.insert(params.end(), {std::move(r.topic), std::move(r.key), std::move(r.payload), std::move(r.event_id),
                                   std::move(r.event_type), std::move(r.traceparent), std::move(r.user_id), std::move(r.created_at),
                                   std::move(r.subject), std::move(r.data_schema)});
    }
    sql += ") AS v (topic, key, payload, event_id, event_type, traceparent, user_id, created_at, subject, data_schema) "
           "RETURNING seq";
    return db_->write([&](Connection& conn) {
      const auto r = conn.query(sql, params);
      if (r.rows() == 0) throw StorageError("postgres: creating a task wrote no outbox row", false);
      return ChangeResult{ChangeStatus::ok, task, r.int64(0, 0)};
    });
  }
  return db_->write([&](Connection& conn) {
    conn.query(insert_sql, task_params(task));
    const auto seq = next_seq(conn, task.user_id);
    insert_outbox(conn, pre.ok ? impl::stamp_seq(pre, seq) : events(nullptr, &task, seq), task.user_id, seq);
    return ChangeResult{ChangeStatus::ok, task, seq};
  });
}

ChangeResult PostgresStore::update_task(const std::string& user_id, const std::string& task_id,
                                        const std::function<bool(Task&)>& mutate,
                                        std::optional<std::int64_t> expected_version, const std::string& now,
                                        const EventFactory& events) {
  return db_->write([&](Connection& conn) {
    const auto before = lock_task(conn, user_id, task_id);
    Task after;
    if (auto early = impl::plan_update(before, mutate, expected_version, now, after)) return *early;
    conn.query(
        "UPDATE tasks SET title = $3, description = $4, status = $5, priority = $6, due_at = $7, updated_at = $8, "
        "completed_at = $9, version = $10 WHERE id = $1 AND user_id = $2",
        {after.id, after.user_id, after.title, after.description, after.status, after.priority, after.due_at,
         after.updated_at, after.completed_at, param(after.version)});
    const auto seq = next_seq(conn, user_id);
    insert_outbox(conn, events(&*before, &after, seq), user_id, seq);
    return ChangeResult{ChangeStatus::ok, std::move(after), seq};
  });
}

ChangeResult PostgresStore::delete_task(const std::string& user_id, const std::string& task_id,
                                        const EventFactory& events) {
  return db_->write([&](Connection& conn) {
    const auto r = conn.query(
        fmt::format("DELETE FROM tasks WHERE id = $1 AND user_id = $2 RETURNING {}", kTaskColumns), {task_id, user_id});
    if (r.rows() == 0) return ChangeResult{ChangeStatus::not_found, std::nullopt, 0};
    const auto before = read_task(r, 0);
    const auto seq = next_seq(conn, user_id);
    insert_outbox(conn, events(&before, nullptr, seq), user_id, seq);
    return ChangeResult{ChangeStatus::ok, before, seq};
  });
}

std::optional<Task> PostgresStore::get_task(const std::string& user_id, const std::string& task_id) {
  return db_->read([&](Connection& conn) -> std::optional<Task> {
    const auto r =
        conn.query(fmt::format("SELECT {} FROM tasks WHERE id = $1 AND user_id = $2", kTaskColumns), {task_id, user_id});
    if (r.rows() == 0) return std::nullopt;
    return read_task(r, 0);
  });
}

TaskPage PostgresStore::list_tasks(const std::string& user_id, const std::optional<std::string>& status, int limit,
                                   const std::optional<std::string>& cursor) {
  const auto after = cursor ? std::optional(impl::decode_cursor(*cursor)) : std::nullopt;
  limit = impl::clamp_page_limit(limit);
  return db_->read([&](Connection& conn) {
    // Built per shape so the cursor condition is a range on the (user_id, created_at, id)
    // index: a deep page costs what the first does.
    std::vector<Param> params{user_id, param(limit + 1)};  // one extra row: is there a next page?
    std::string sql = fmt::format("SELECT {} FROM tasks WHERE user_id = $1", kTaskColumns);
    if (status) {
      params.push_back(*status);
      sql += fmt::format(" AND status = ${}", params.size());
    }
    if (after) {
      params.push_back(after->created_at);
      params.push_back(after->id);
      sql += fmt::format(" AND (created_at, id) < (${}, ${})", params.size() - 1, params.size());
    }
    sql += " ORDER BY created_at DESC, id DESC LIMIT $2";
    const auto r = conn.query(sql, params);
    TaskPage page;
    for (int i = 0; i < r.rows() && i < limit; ++i) page.items.push_back(read_task(r, i));
    if (r.rows() > limit) page.next_cursor = impl::encode_cursor(page.items.back());
    return page;
  });
}

}  // namespace taskstream::storage
