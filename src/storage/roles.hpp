#pragma once
// Storage by role (docs/architecture.md, "Storage"): each component receives the one role it
// uses, so a test can give it a small fake. Both backends (storage/sqlite/, storage/postgres/)
// implement every role; storage::Store (store.hpp) is all of them over one database.
//
// Every method is one transaction (SQLite commits concurrent writers of a process as a group,
// each still all-or-nothing: storage/sqlite/database.hpp).
// Blocking: every method blocks on the database; call from a DB worker thread, never from a
// thread that serves requests.
// Thread-safety: safe to call from several threads at once (a backend keeps a pool of
// connections).
// Errors: StorageError (storage/types.hpp), with is_retriable() for busy/locked/connection loss
// and is_outage() for a database that is down, full or read-only.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "storage/types.hpp"

namespace taskstream::storage {

/// Accounts: the API's sign-up, sign-in and token checks; the email dispatcher's lookup of an address.
class UserStore {
 public:
  virtual ~UserStore() = default;

  /// nullopt when the email (compared case-insensitively) is taken.
  virtual std::optional<User> create_user(const std::string& email, const std::string& password_hash) = 0;
  virtual std::optional<User> find_user_by_email(const std::string& email) = 0;
  virtual std::optional<User> find_user(const std::string& id) = 0;
  /// The account registered first (ids are time-ordered UUIDv7), if any: `serve --dev`
  /// without ADMIN_EMAILS makes it an operator.
  virtual std::optional<User> first_user() = 0;
};

/// Tasks, always scoped to their owner (another user's task is not_found). A change, the next per-user
/// `seq` and the outbox rows of its events commit together or not at all. Used by the API.
class TaskStore {
 public:
  virtual ~TaskStore() = default;

  /// Inserts `task` (id, timestamps, version=1 filled by the caller) and its events.
  virtual ChangeResult create_task(const Task& task, const EventFactory& events) = 0;
  /// Loads the task, lets `mutate` change it (return false: nothing to change, no event,
  /// no version bump), bumps version and updated_at=`now`, stores it and its events.
  /// With `expected_version` set and different from the stored one: version_conflict.
  virtual ChangeResult update_task(const std::string& user_id, const std::string& task_id,
                                   const std::function<bool(Task&)>& mutate, std::optional<std::int64_t> expected_version,
                                   const std::string& now, const EventFactory& events) = 0;
  virtual ChangeResult delete_task(const std::string& user_id, const std::string& task_id, const EventFactory& events) = 0;
  virtual std::optional<Task> get_task(const std::string& user_id, const std::string& task_id) = 0;
  /// Newest first (created_at desc, id desc); `limit` 1..100; `status` filters when set.
  /// Throws StorageError (not retriable) on a malformed cursor.
  virtual TaskPage list_tasks(const std::string& user_id, const std::optional<std::string>& status, int limit,
                              const std::optional<std::string>& cursor) = 0;
};

/// The transactional outbox as the relay drains it (docs/guarantees.md, "The outbox"), and its
/// figures for the console and /metrics.
class OutboxStore {
 public:
  virtual ~OutboxStore() = default;

  /// Whether this process may run the outbox relay now. Several `serve` instances share one
  /// PostgreSQL database; only the holder of the lease publishes, so per-user order holds and
  /// no row is sent twice by two relays. PostgreSQL: a session advisory lock on a connection of
  /// its own, taken again after that connection is lost. SQLite: one host, always true.
  /// Cheap when held (one round trip). Blocking.
  virtual bool hold_relay_lease() { return true; }
  /// The oldest unpublished rows, by id, at most `limit`.
  virtual std::vector<OutboxRecord> fetch_unpublished(int limit) = 0;
  /// The oldest unpublished rows, by id, whose id is not in `skip`, at most `limit`: the
  /// relay's next batch, past the rows it already holds (in flight or being marked). One
  /// consistent look at the outbox, so a row left out is either in `skip` or committed after
  /// every row returned. This default reads `limit + skip.size()` rows and drops the skipped
  /// ones; the backends step over them without decoding them.
  virtual std::vector<OutboxRecord> fetch_unpublished_skipping(int limit, const std::unordered_set<std::int64_t>& skip) {
    auto rows = fetch_unpublished(limit + static_cast<int>(skip.size()));
    if (!skip.empty()) std::erase_if(rows, [&](const OutboxRecord& r) { return skip.count(r.id) > 0; });
    if (rows.size() > static_cast<std::size_t>(limit)) rows.resize(static_cast<std::size_t>(limit));
    return rows;
  }
  /// Marks rows published (idempotent).
  virtual void mark_published(const std::vector<std::int64_t>& ids) = 0;
  virtual OutboxStats outbox_stats() = 0;
  /// Deletes published outbox rows whose published_at is before `published_before` (RFC 3339
  /// UTC, API shape); unpublished rows always stay. Returns how many went. After this a
  /// resume from before them cannot be served (the WebSocket says recovered:false).
  virtual std::size_t prune_outbox(const std::string& published_before) = 0;
};

/// What a reconnecting WebSocket client missed (docs/websocket.md, "Resume"): the outbox read by
/// user and seq.
class ReplayStore {
 public:
  virtual ~ReplayStore() = default;

  /// Rows of `topic` for `user_id` with seq > `after_seq`, published or not, by seq (resume).
  virtual std::vector<OutboxRecord> events_after(const std::string& user_id, const std::string& topic, std::int64_t after_seq,
                                                 int limit) = 0;
  /// The user's last assigned seq (0 when the user has made no change).
  virtual std::int64_t user_last_seq(const std::string& user_id) = 0;
};

/// The audit trail: written by the audit consumer, read by the API's history route. Idempotent per
/// consumer group: an event_id is applied once, recorded in processed_events in the same
/// transaction as the effect.
class AuditStore {
 public:
  virtual ~AuditStore() = default;

  /// Whether `consumer_group` processed `event_id`.
  virtual bool processed(const std::string& consumer_group, const std::string& event_id) = 0;
  /// ONE transaction for the whole batch: for each entry whose event_id `consumer_group` has not
  /// processed yet (processed_events), insert the audit row and the processed_events row; entries
  /// already processed (also duplicates inside the same batch) are skipped. Returns how many were new.
  /// An event whose audit row another group already wrote counts as new for this group but
  /// keeps the existing row (one audit row per event). Throws StorageError (not retriable)
  /// when an entry has an empty event_id, before changing anything.
  virtual std::size_t record_audit(const std::string& consumer_group, const std::vector<AuditEntry>& entries) = 0;
  /// The audit trail of `task_id` of `user_id`, oldest first: by seq when both have one, else by
  /// occurred_at, then recorded order. Another user's task gives an empty list.
  /// Precisely: the entries with a seq, in seq order, are merged with those without one
  /// (in occurred_at order) by occurred_at, compared as instants (offsets and fractions of
  /// any length are understood); ties go by recorded order, and unparsable timestamps sort
  /// after parsable ones.
  virtual std::vector<AuditEntry> task_history(const std::string& user_id, const std::string& task_id) = 0;
};

/// Notifications and the delivery state of their channels: created by the notification consumer,
/// listed and marked read by the API, updated by the email dispatcher.
class NotificationStore {
 public:
  virtual ~NotificationStore() = default;

  /// ONE transaction: when `consumer_group` has not processed n.event_id, insert the notification
  /// (with its channel rows) and the processed_events row and return {n as stored, true}; otherwise
  /// return {the stored notification with that event_id, false} and change nothing.
  /// "As stored": an empty created_at becomes now, an empty channel updated_at becomes
  /// created_at, a repeated channel keeps its first entry, and read/read_at agree (read
  /// with no read_at gets created_at). When another group already created the
  /// notification of n.event_id, this group's processed row is written and the stored one
  /// is returned with false. When the group processed the event but no notification has
  /// that event_id, the result is {n as stored would be, false}. An empty n.event_id
  /// throws StorageError (not retriable).
  virtual std::pair<Notification, bool> create_notification(const std::string& consumer_group, const Notification& n) = 0;
  /// Sets one channel's status (and detail, updated_at). Unknown notification/channel: no-op.
  virtual void set_channel_status(const std::string& notification_id, const std::string& channel, const std::string& status,
                                  const std::string& detail, const std::string& now) = 0;
  virtual std::optional<Notification> get_notification(const std::string& notification_id) = 0;
  /// The user's notifications, newest first (created_at desc, id desc), at most `limit`
  /// (clamped to 1..200), unread ones only when asked.
  virtual std::vector<Notification> list_notifications(const std::string& user_id, bool unread_only, int limit) = 0;
  /// Marks one of the user's notifications read (idempotent: the first read_at stays);
  /// nullopt when not found or another user's.
  virtual std::optional<Notification> mark_notification_read(const std::string& user_id, const std::string& notification_id,
                                                              const std::string& now) = 0;
  /// How many of the user's notifications are unread (read_at unset), all of them: not
  /// limited like list_notifications. 0 for an unknown user.
  virtual std::int64_t count_unread_notifications(const std::string& user_id) = 0;
  /// ONE statement: marks every unread notification of the user read with read_at = `now`
  /// (those already read keep their read_at; other users' are never touched) and returns
  /// how many it changed, 0 when none were unread.
  virtual std::size_t mark_all_notifications_read(const std::string& user_id, const std::string& now) = 0;
};

/// The email queue (migration 4): every `email` channel in status `pending` is due at its
/// next_attempt_ms (0 when created, so at once). The email dispatcher claims and reschedules;
/// operators look and retry (the console, `taskstream dlq redrive`).
class EmailQueueStore {
 public:
  virtual ~EmailQueueStore() = default;

  /// ONE transaction: leases up to `limit` (clamped to 1..1000) pending email channels due at
  /// `now_ms` (Unix ms), oldest due first: each gets attempts + 1 and is due again only at
  /// now_ms + lease_ms, so concurrent callers (other instances) never claim the same one
  /// while the lease runs. An email whose sender died mid-send is claimed again when its
  /// lease ends. Finish one with set_channel_status (sent/failed) or retry_email_later.
  virtual std::vector<EmailClaim> claim_due_emails(std::int64_t now_ms, std::int64_t lease_ms, int limit) = 0;
  /// A failed attempt: the email stays pending, due at `next_attempt_ms`, with `detail` as
  /// the channel's detail; first_failure is set to `now` if it was unset.
  virtual void retry_email_later(const std::string& notification_id, std::int64_t next_attempt_ms,
                                 const std::string& detail, const std::string& now) = 0;
  /// An operator sent a dead-lettered request back (`taskstream dlq redrive`): the `email`
  /// channel of the notification made for `event_id`, when it is `failed`, becomes `pending`
  /// again with its attempts at 0 and due at once, `detail` saying why. Returns true when
  /// it did; an email that was sent, skipped or is still pending is left alone, so a
  /// redrive never sends an email a second time.
  virtual bool rearm_failed_email(const std::string& event_id, const std::string& detail, const std::string& now) = 0;
  /// The console's view of the queue: counts, and up to `limit` (1..500) pending and failed emails.
  virtual EmailQueue email_queue(int limit) = 0;
  /// An operator's "retry now": a failed email goes back to pending with its attempts
  /// reset, a pending one becomes due now. false when there is no such email channel or
  /// it was sent or skipped (never sent twice).
  virtual bool retry_email_now(const std::string& notification_id, const std::string& detail, const std::string& now) = 0;
};

/// Deadline reminders (migration 3: reminders_sent, one row per task, due_at and kind), for the
/// reminder scheduler.
class ReminderStore {
 public:
  virtual ~ReminderStore() = default;

  /// Not-done tasks (of every user) whose due_at is at or before `until` (RFC 3339 UTC in the
  /// API's `YYYY-MM-DDTHH:MM:SS.mmmZ` shape, so text order is time order), oldest due first
  /// (then by id), at most `limit` (clamped to 1..10000), skipping those that already have a
  /// reminder of `kind` for their current due_at. Moving due_at makes a task due again.
  virtual std::vector<Task> tasks_due_without_reminder(const std::string& kind, const std::string& until,
                                                       int limit) = 0;
  /// ONE transaction: records that `kind` ("deadline_reminder" | "task_overdue") went out for
  /// (task.id, task.due_at) and, only when that row is new, inserts `records` into the outbox
  /// (user_id/key default to task.user_id, created_at to now, event_id to a fresh UUID; seq
  /// stays 0: a reminder is not a task change and takes no user seq, so events_after, which
  /// asks for seq > after_seq >= 0, never returns it). Returns true when the row was new, so
  /// instances racing on one reminder send it once. Throws StorageError (not retriable) when
  /// task.due_at is unset. Rows are not removed with their task (like audit_log).
  virtual bool record_reminder(const Task& task, const std::string& kind, const std::vector<OutboxRecord>& records) = 0;
};

/// What operators did (migration 5), for the console's action log.
class OperatorLog {
 public:
  virtual ~OperatorLog() = default;

  /// Stores `a` (its id is ignored) and returns the id it got.
  virtual std::int64_t record_operator_action(const OperatorAction& a) = 0;
  /// Newest first, up to `limit` (1..500).
  virtual std::vector<OperatorAction> list_operator_actions(int limit) = 0;
};

}  // namespace taskstream::storage
