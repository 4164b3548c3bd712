#include "storage/postgres/postgres_store.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/postgres/rows.hpp"

namespace taskstream::storage {

using namespace postgres;

std::pair<Notification, bool> PostgresStore::create_notification(const std::string& consumer_group,
                                                                 const Notification& n) {
  impl::require_event_id(n);
  const auto stored = impl::normalized(n, events::now_rfc3339());
  return db_->write([&](Connection& conn) -> std::pair<Notification, bool> {
    // A concurrent call for the same event and group waits in mark_processed until the
    // first commits, then finds the row and reads the notification it stored.
    if (!mark_processed(conn, consumer_group, stored.event_id)) {
      auto existing = load_notification(conn, "event_id", stored.event_id);
      return {existing ? std::move(*existing) : stored, false};
    }
    const auto inserted = conn.query(
        "INSERT INTO notifications (id, user_id, task_id, type, title, message, email, event_id, read_at, created_at, "
        "source_topic, source_partition, source_offset) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (event_id) DO NOTHING RETURNING 1",
        {stored.id, stored.user_id, stored.task_id, stored.type, stored.title, stored.message, stored.email,
         stored.event_id, stored.read_at, stored.created_at, stored.source_topic,
         param(static_cast<std::int64_t>(stored.source_partition)), param(stored.source_offset)});
    if (inserted.rows() == 0) {  // another consumer group created it
      return {*load_notification(conn, "event_id", stored.event_id), false};
    }
    if (!stored.channels.empty()) {
      ArrayLiteral channel, status, detail, updated_at;
      for (const auto& c : stored.channels) {
        channel.add(c.channel);
        status.add(c.status);
        detail.add(c.detail);
        updated_at.add(c.updated_at);
      }
      conn.query(
          "INSERT INTO notification_channels (notification_id, channel, position, status, detail, updated_at) "
          "SELECT $1, t.channel, t.ord - 1, t.status, t.detail, t.updated_at "
          "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY "
          "AS t(channel, status, detail, updated_at, ord)",
          {stored.id, std::move(channel).finish(), std::move(status).finish(), std::move(detail).finish(),
           std::move(updated_at).finish()});
    }
    return {stored, true};
  });
}

void PostgresStore::set_channel_status(const std::string& notification_id, const std::string& channel,
                                       const std::string& status, const std::string& detail, const std::string& now) {
  db_->write([&](Connection& conn) {
    conn.query(
        "UPDATE notification_channels SET status = $3, detail = $4, updated_at = $5 "
        "WHERE notification_id = $1 AND channel = $2",
        {notification_id, channel, status, detail, now});
  });
}

std::optional<Notification> PostgresStore::get_notification(const std::string& notification_id) {
  return db_->read([&](Connection& conn) { return load_notification(conn, "id", notification_id); });
}

std::vector<EmailClaim> PostgresStore::claim_due_emails(std::int64_t now_ms, std::int64_t lease_ms, int limit) {
  limit = std::clamp(limit, 1, 1000);
  return db_->write([&](Connection& conn) {
    // SKIP LOCKED: instances claiming at once take disjoint rows instead of queueing.
    const auto r = conn.query(
        "UPDATE notification_channels c SET attempts = c.attempts + 1, next_attempt_ms = $2 "
        "FROM (SELECT notification_id FROM notification_channels WHERE channel = 'email' AND status = 'pending' "
        "AND next_attempt_ms <= $1 ORDER BY next_attempt_ms LIMIT $3 FOR UPDATE SKIP LOCKED) due "
        "WHERE c.notification_id = due.notification_id AND c.channel = 'email' "
        "RETURNING c.notification_id, c.attempts, c.first_failure",
        {param(now_ms), param(now_ms + lease_ms), param(static_cast<std::int64_t>(limit))});
    std::vector<EmailClaim> out;
    for (int i = 0; i < r.rows(); ++i)
      out.push_back({r.text(i, 0), static_cast<int>(r.int64(i, 1)), r.optional_text(i, 2)});
    return out;
  });
}

void PostgresStore::retry_email_later(const std::string& notification_id, std::int64_t next_attempt_ms,
                                      const std::string& detail, const std::string& now) {
  db_->write([&](Connection& conn) {
    conn.query(
        "UPDATE notification_channels SET next_attempt_ms = $2, detail = $3, updated_at = $4, "
        "first_failure = coalesce(first_failure, $4) "
        "WHERE notification_id = $1 AND channel = 'email' AND status = 'pending'",
        {notification_id, param(next_attempt_ms), detail, now});
  });
}

bool PostgresStore::rearm_failed_email(const std::string& event_id, const std::string& detail, const std::string& now) {
  return db_->write([&](Connection& conn) {
    const auto r = conn.query(
        "UPDATE notification_channels SET status = 'pending', attempts = 0, next_attempt_ms = 0, "
        "first_failure = NULL, detail = $2, updated_at = $3 "
        "WHERE channel = 'email' AND status = 'failed' "
        "AND notification_id = (SELECT id FROM notifications WHERE event_id = $1) RETURNING 1",
        {event_id, detail, now});
    return r.rows() > 0;
  });
}

namespace {
constexpr std::string_view kQueuedEmailSelect =
    "SELECT n.id, n.user_id, coalesce(n.email, ''), n.title, c.status, c.detail, c.updated_at, c.attempts, c.next_attempt_ms, "
    "c.first_failure FROM notification_channels c JOIN notifications n ON n.id = c.notification_id WHERE c.channel = 'email' ";
}  // namespace

EmailQueue PostgresStore::email_queue(int limit) {
  limit = std::clamp(limit, 1, 500);
  return db_->read([&](Connection& conn) {
    EmailQueue q;
    auto counts = conn.query(
        "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'failed') FROM notification_channels "
        "WHERE channel = 'email' AND status IN ('pending', 'failed')");
    q.pending = counts.int64(0, 0);
    q.failed = counts.int64(0, 1);
    for (const char* tail : {"AND c.status = 'pending' ORDER BY c.next_attempt_ms, n.id LIMIT $1",
                             "AND c.status = 'failed' ORDER BY c.updated_at DESC, n.id LIMIT $1"}) {
      auto r = conn.query(std::string(kQueuedEmailSelect) + tail, {param(limit)});
      for (int i = 0; i < r.rows(); ++i)
        q.items.push_back({r.text(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3), r.text(i, 4), r.text(i, 5), r.text(i, 6),
                           static_cast<int>(r.int64(i, 7)), r.int64(i, 8), r.optional_text(i, 9)});
    }
    return q;
  });
}

bool PostgresStore::retry_email_now(const std::string& notification_id, const std::string& detail, const std::string& now) {
  return db_->write([&](Connection& conn) {
    const auto r = conn.query(
        "UPDATE notification_channels SET attempts = CASE WHEN status = 'failed' THEN 0 ELSE attempts END, "
        "first_failure = CASE WHEN status = 'failed' THEN NULL ELSE first_failure END, "
        "status = 'pending', next_attempt_ms = 0, detail = $2, updated_at = $3 "
        "WHERE channel = 'email' AND notification_id = $1 AND status IN ('pending', 'failed') RETURNING 1",
        {notification_id, detail, now});
    return r.rows() > 0;
  });
}

std::vector<Notification> PostgresStore::list_notifications(const std::string& user_id, bool unread_only, int limit) {
  limit = impl::clamp_notification_limit(limit);
  return db_->read([&](Connection& conn) {
    return query_notifications(conn,
                               fmt::format("WHERE user_id = $1{} ORDER BY created_at DESC, id DESC LIMIT $2",
                                           unread_only ? " AND read_at IS NULL" : ""),
                               {user_id, param(limit)});
  });
}

std::optional<Notification> PostgresStore::mark_notification_read(const std::string& user_id,
                                                                  const std::string& notification_id,
                                                                  const std::string& now) {
  return db_->write([&](Connection& conn) -> std::optional<Notification> {
    const auto r = conn.query(
        "UPDATE notifications SET read_at = coalesce(read_at, $3) WHERE id = $1 AND user_id = $2 RETURNING 1",
        {notification_id, user_id, now});
    if (r.rows() == 0) return std::nullopt;
    return load_notification(conn, "id", notification_id);
  });
}

std::int64_t PostgresStore::count_unread_notifications(const std::string& user_id) {
  return db_->read([&](Connection& conn) {
    // Matches the partial index notifications_user_unread (user_id, ... WHERE read_at IS NULL).
    return conn.query("SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", {user_id})
        .int64(0, 0);
  });
}

std::size_t PostgresStore::mark_all_notifications_read(const std::string& user_id, const std::string& now) {
  return db_->write([&](Connection& conn) {
    const auto r = conn.query(
        "WITH marked AS (UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL RETURNING 1) "
        "SELECT count(*) FROM marked",
        {user_id, now});
    return static_cast<std::size_t>(r.int64(0, 0));
  });
}

}  // namespace taskstream::storage
