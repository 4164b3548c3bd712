#include "storage/sqlite/sqlite_store.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/sqlite/rows.hpp"

namespace taskstream::storage {

using namespace sqlite;

ChangeResult SqliteStore::create_task(const Task& task, const EventFactory& events) {
  static const std::string insert_sql =
      fmt::format("INSERT INTO tasks ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)", kTaskColumns);
  // The events' JSON is built here, outside the group commit (impl::prebuild_events).
  const auto pre = impl::prebuild_events(events, nullptr, &task);
  return db_->write([&](Connection& conn) {
    Statement insert(conn, insert_sql);
    write_task(insert, task);
    insert.run();
    const auto seq = next_seq(conn, task.user_id);
    insert_outbox(conn, pre.ok ? impl::stamp_seq(pre, seq) : events(nullptr, &task, seq), task.user_id, seq);
    return ChangeResult{ChangeStatus::ok, task, seq};
  });
}

ChangeResult SqliteStore::update_task(const std::string& user_id, const std::string& task_id,
                                      const std::function<bool(Task&)>& mutate,
                                      std::optional<std::int64_t> expected_version, const std::string& now,
                                      const EventFactory& events) {
  return db_->write([&](Connection& conn) {
    const auto before = load_task(conn, user_id, task_id);
    Task after;
    if (auto early = impl::plan_update(before, mutate, expected_version, now, after)) return *early;
    Statement update(conn,
                     "UPDATE tasks SET title = ?3, description = ?4, status = ?5, priority = ?6, due_at = ?7, "
                     "updated_at = ?9, completed_at = ?10, version = ?11 WHERE id = ?1 AND user_id = ?2");
    // ?8 (created_at) is bound but unused so both statements share write_task's numbering.
    write_task(update, after);
    update.run();
    const auto seq = next_seq(conn, user_id);
    insert_outbox(conn, events(&*before, &after, seq), user_id, seq);
    return ChangeResult{ChangeStatus::ok, std::move(after), seq};
  });
}

ChangeResult SqliteStore::delete_task(const std::string& user_id, const std::string& task_id,
                                      const EventFactory& events) {
  return db_->write([&](Connection& conn) {
    const auto before = load_task(conn, user_id, task_id);
    if (!before) return ChangeResult{ChangeStatus::not_found, std::nullopt, 0};
    Statement del(conn, "DELETE FROM tasks WHERE id = ?1 AND user_id = ?2");
    del.bind(1, task_id).bind(2, user_id).run();
    const auto seq = next_seq(conn, user_id);
    insert_outbox(conn, events(&*before, nullptr, seq), user_id, seq);
    return ChangeResult{ChangeStatus::ok, before, seq};
  });
}

std::optional<Task> SqliteStore::get_task(const std::string& user_id, const std::string& task_id) {
  return db_->read([&](Connection& conn) { return load_task(conn, user_id, task_id); });
}

TaskPage SqliteStore::list_tasks(const std::string& user_id, const std::optional<std::string>& status, int limit,
                                 const std::optional<std::string>& cursor) {
  const auto after = cursor ? std::optional(impl::decode_cursor(*cursor)) : std::nullopt;
  limit = impl::clamp_page_limit(limit);
  return db_->read([&](Connection& conn) {
    // Built per shape rather than with "? IS NULL OR ..." so that the cursor condition is
    // a range on the (user_id, created_at, id) index: a deep page costs what the first does.
    std::string sql = fmt::format("SELECT {} FROM tasks WHERE user_id = ?1", kTaskColumns);
    if (status) sql += " AND status = ?2";
    if (after) sql += " AND (created_at, id) < (?3, ?4)";
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?5";
    Statement s(conn, sql);
    s.bind(1, user_id);
    if (status) s.bind(2, *status);
    if (after) s.bind(3, after->created_at).bind(4, after->id);
    s.bind(5, limit + 1);  // one extra row tells whether another page exists
    TaskPage page;
    while (s.step()) page.items.push_back(read_task(s));
    if (page.items.size() > static_cast<std::size_t>(limit)) {
      page.items.pop_back();
      page.next_cursor = impl::encode_cursor(page.items.back());
    }
    return page;
  });
}

}  // namespace taskstream::storage
