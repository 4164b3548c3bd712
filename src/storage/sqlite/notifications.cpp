#include "storage/sqlite/sqlite_store.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/sqlite/rows.hpp"

namespace taskstream::storage {

using namespace sqlite;

std::pair<Notification, bool> SqliteStore::create_notification(const std::string& consumer_group,
                                                               const Notification& n) {
  impl::require_event_id(n);
  const auto stored = impl::normalized(n, events::now_rfc3339());
  return db_->write([&](Connection& conn) -> std::pair<Notification, bool> {
    Statement mark(conn, kMarkProcessed);
    mark.bind(1, consumer_group).bind(3, events::now_rfc3339());
    if (!mark_processed(conn, mark, stored.event_id)) {
      auto existing = load_notification(conn, "event_id", stored.event_id);
      return {existing ? std::move(*existing) : stored, false};
    }
    Statement insert(conn,
                     "INSERT INTO notifications (id, user_id, task_id, type, title, message, email, event_id, read_at, "
                     "created_at, source_topic, source_partition, source_offset) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (event_id) DO NOTHING");
    insert.bind(1, stored.id).bind(2, stored.user_id).bind(3, stored.task_id).bind(4, stored.type);
    insert.bind(5, stored.title).bind(6, stored.message).bind(7, stored.email).bind(8, stored.event_id);
    insert.bind(9, stored.read_at).bind(10, stored.created_at).bind(11, stored.source_topic);
    insert.bind(12, static_cast<std::int64_t>(stored.source_partition)).bind(13, stored.source_offset).run();
    if (conn.changes() == 0) {  // another consumer group created it
      return {*load_notification(conn, "event_id", stored.event_id), false};
    }
    Statement channel(conn,
                      "INSERT INTO notification_channels (notification_id, channel, position, status, detail, "
                      "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    channel.bind(1, stored.id);
    for (std::size_t i = 0; i < stored.channels.size(); ++i) {
      const auto& c = stored.channels[i];
      channel.bind(2, c.channel).bind(3, static_cast<std::int64_t>(i)).bind(4, c.status).bind(5, c.detail);
      channel.bind(6, c.updated_at).run();
      channel.reset();
    }
    return {stored, true};
  });
}

void SqliteStore::set_channel_status(const std::string& notification_id, const std::string& channel,
                                     const std::string& status, const std::string& detail, const std::string& now) {
  db_->write([&](Connection& conn) {
    Statement s(conn,
                "UPDATE notification_channels SET status = ?3, detail = ?4, updated_at = ?5 "
                "WHERE notification_id = ?1 AND channel = ?2");
    s.bind(1, notification_id).bind(2, channel).bind(3, status).bind(4, detail).bind(5, now).run();
  });
}

std::optional<Notification> SqliteStore::get_notification(const std::string& notification_id) {
  return db_->read([&](Connection& conn) { return load_notification(conn, "id", notification_id); });
}

std::vector<EmailClaim> SqliteStore::claim_due_emails(std::int64_t now_ms, std::int64_t lease_ms, int limit) {
  limit = std::clamp(limit, 1, 1000);
  return db_->write([&](Connection& conn) {
    Statement s(conn,
                "UPDATE notification_channels SET attempts = attempts + 1, next_attempt_ms = ?2 "
                "WHERE rowid IN (SELECT rowid FROM notification_channels WHERE channel = 'email' AND status = 'pending' "
                "AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms LIMIT ?3) "
                "RETURNING notification_id, attempts, first_failure");
    s.bind(1, now_ms).bind(2, now_ms + lease_ms).bind(3, limit);
    std::vector<EmailClaim> out;
    while (s.step()) out.push_back({s.text(0), static_cast<int>(s.int64(1)), s.optional_text(2)});
    return out;
  });
}

void SqliteStore::retry_email_later(const std::string& notification_id, std::int64_t next_attempt_ms,
                                    const std::string& detail, const std::string& now) {
  db_->write([&](Connection& conn) {
    Statement s(conn,
                "UPDATE notification_channels SET next_attempt_ms = ?2, detail = ?3, updated_at = ?4, "
                "first_failure = coalesce(first_failure, ?4) "
                "WHERE notification_id = ?1 AND channel = 'email' AND status = 'pending'");
    s.bind(1, notification_id).bind(2, next_attempt_ms).bind(3, detail).bind(4, now).run();
  });
}

bool SqliteStore::rearm_failed_email(const std::string& event_id, const std::string& detail, const std::string& now) {
  return db_->write([&](Connection& conn) {
    Statement s(conn,
                "UPDATE notification_channels SET status = 'pending', attempts = 0, next_attempt_ms = 0, "
                "first_failure = NULL, detail = ?2, updated_at = ?3 "
                "WHERE channel = 'email' AND status = 'failed' "
                "AND notification_id = (SELECT id FROM notifications WHERE event_id = ?1)");
    s.bind(1, event_id).bind(2, detail).bind(3, now).run();
    return conn.changes() > 0;
  });
}

namespace {
constexpr std::string_view kQueuedEmailSelect =
    "SELECT n.id, n.user_id, coalesce(n.email, ''), n.title, c.status, c.detail, c.updated_at, c.attempts, c.next_attempt_ms, "
    "c.first_failure FROM notification_channels c JOIN notifications n ON n.id = c.notification_id WHERE c.channel = 'email' ";
}  // namespace

EmailQueue SqliteStore::email_queue(int limit) {
  limit = std::clamp(limit, 1, 500);
  return db_->read([&](Connection& conn) {
    EmailQueue q;
    Statement counts(conn,
                     "SELECT coalesce(sum(status = 'pending'), 0), coalesce(sum(status = 'failed'), 0) FROM notification_channels "
                     "WHERE channel = 'email' AND status IN ('pending', 'failed')");
    if (counts.step()) q.pending = counts.int64(0), q.failed = counts.int64(1);
    for (const char* tail : {"AND c.status = 'pending' ORDER BY c.next_attempt_ms, n.id LIMIT ?1",
                             "AND c.status = 'failed' ORDER BY c.updated_at DESC, n.id LIMIT ?1"}) {
      Statement s(conn, std::string(kQueuedEmailSelect) + tail);
      s.bind(1, limit);
      while (s.step())
        q.items.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6), static_cast<int>(s.int64(7)),
                           s.int64(8), s.optional_text(9)});
    }
    return q;
  });
}

bool SqliteStore::retry_email_now(const std::string& notification_id, const std::string& detail, const std::string& now) {
  return db_->write([&](Connection& conn) {
    Statement s(conn,
                "UPDATE notification_channels SET attempts = CASE WHEN status = 'failed' THEN 0 ELSE attempts END, "
                "first_failure = CASE WHEN status = 'failed' THEN NULL ELSE first_failure END, "
                "status = 'pending', next_attempt_ms = 0, detail = ?2, updated_at = ?3 "
                "WHERE channel = 'email' AND notification_id = ?1 AND status IN ('pending', 'failed')");
    s.bind(1, notification_id).bind(2, detail).bind(3, now).run();
    return conn.changes() > 0;
  });
}

std::vector<Notification> SqliteStore::list_notifications(const std::string& user_id, bool unread_only, int limit) {
  limit = impl::clamp_notification_limit(limit);
  return db_->read([&](Connection& conn) {
    return query_notifications(conn,
                               fmt::format("WHERE user_id = ?1{} ORDER BY created_at DESC, id DESC LIMIT ?2",
                                           unread_only ? " AND read_at IS NULL" : ""),
                               [&](Statement& s) { s.bind(1, user_id).bind(2, limit); });
  });
}

std::optional<Notification> SqliteStore::mark_notification_read(const std::string& user_id,
                                                                const std::string& notification_id,
                                                                const std::string& now) {
  return db_->write([&](Connection& conn) -> std::optional<Notification> {
    Statement s(conn, "UPDATE notifications SET read_at = coalesce(read_at, ?3) WHERE id = ?1 AND user_id = ?2");
    s.bind(1, notification_id).bind(2, user_id).bind(3, now).run();
    if (conn.changes() == 0) return std::nullopt;
    return load_notification(conn, "id", notification_id);
  });
}

std::int64_t SqliteStore::count_unread_notifications(const std::string& user_id) {
  return db_->read([&](Connection& conn) -> std::int64_t {
    // "read_at IS NULL" as written lets SQLite count over the partial index notifications_user_unread.
    Statement s(conn, "SELECT count(*) FROM notifications WHERE user_id = ?1 AND read_at IS NULL");
    s.bind(1, user_id);
    return s.step() ? s.int64(0) : 0;
  });
}

std::size_t SqliteStore::mark_all_notifications_read(const std::string& user_id, const std::string& now) {
  return db_->write([&](Connection& conn) {
    Statement s(conn, "UPDATE notifications SET read_at = ?2 WHERE user_id = ?1 AND read_at IS NULL");
    s.bind(1, user_id).bind(2, now).run();
    return static_cast<std::size_t>(conn.changes());
  });
}

}  // namespace taskstream::storage
