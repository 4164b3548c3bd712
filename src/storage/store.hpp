#pragma once
// Storage: users, tasks, the transactional outbox, the audit trail and notifications, behind one interface with a SQLite
// and a PostgreSQL backend (docs/api.md, docs/guarantees.md).
//
// Every method is one transaction. A task change, the next per-user `seq` and the outbox
// rows of its events commit together or not at all.
// Blocking: every method blocks on the database; call from a DB worker thread, never
// from a thread that serves requests.
// Thread-safety: a Store is safe to call from several threads at once (a backend keeps a
// connection per thread or a pool).
// Errors: StorageError (with is_retriable() for busy/locked/connection loss).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/settings.hpp"

namespace taskstream::storage {

/// What an operator (and a client) should make of a storage failure
/// (docs/reliability.md, "Database faults").
enum class StorageCondition {
  error,        ///< a failed statement: a bug or bad data, not the database's state
  unavailable,  ///< the server is down or unreachable, the connection died, or every connection stayed busy
  disk_full,    ///< no space left for the database (SQLITE_FULL, SQLSTATE 53100)
  read_only,    ///< the database cannot be written (a read-only file or file system, SQLSTATE 25006)
};

class StorageError : public std::runtime_error {
 public:
  StorageError(const std::string& what, bool retriable, StorageCondition condition = StorageCondition::error)
      : std::runtime_error(what), retriable_(retriable), condition_(condition) {}
  bool is_retriable() const noexcept { return retriable_; }
  StorageCondition condition() const noexcept { return condition_; }
  /// The database cannot take work now (down, full, read-only): no request or message is
  /// at fault, and the same work succeeds once it is back. Requests get 503/507; consumers
  /// hold their batch (never dead-letter it) until it is back.
  bool is_outage() const noexcept { return condition_ != StorageCondition::error; }

 private:
  bool retriable_;
  StorageCondition condition_;
};

struct User {
  std::string id;  ///< UUID
  std::string email;
  std::string password_hash;  ///< Argon2id, libsodium's string format
  std::string created_at;     ///< RFC 3339 UTC
};

struct Task {
  std::string id;  ///< UUID
  std::string user_id;
  std::string title;
  std::optional<std::string> description;
  std::string status = "todo";      ///< todo | in_progress | done
  std::string priority = "medium";  ///< low | medium | high
  std::optional<std::string> due_at;
  std::string created_at;
  std::string updated_at;
  std::optional<std::string> completed_at;
  std::int64_t version = 1;  ///< grows by one per change; If-Match compares it
  bool operator==(const Task&) const = default;
};

/// One message to publish, as the outbox stores it.
struct OutboxRecord {
  std::int64_t id = 0;  ///< assigned by the store; publication order within a user
  std::string topic;
  std::string key;  ///< user id
  std::string payload;  ///< the event JSON
  std::string event_id;
  std::string event_type;
  std::string traceparent;  ///< empty when none
  std::string user_id;
  std::int64_t seq = 0;
  std::string created_at;
};

/// Builds the outbox records of one change once the store knows its `seq` (and, for an
/// update, the task before and after). Called inside the transaction; must not block.
/// `before` is null for a create, `after` is null for a delete.
using EventFactory = std::function<std::vector<OutboxRecord>(const Task* before, const Task* after, std::int64_t seq)>;

enum class ChangeStatus { ok, not_found, version_conflict };

struct ChangeResult {
  ChangeStatus status = ChangeStatus::ok;
  std::optional<Task> task;  ///< the task after the change (or as it is, on version_conflict)
  std::int64_t seq = 0;      ///< the seq given to the change's events
};

/// A list_tasks cursor: the created_at and id of the last task of a page, "~" between
/// them (a keyset position, readable, and exactly describable in the OpenAPI).
inline constexpr std::string_view kCursorPattern =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z~"
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

struct TaskPage {
  std::vector<Task> items;
  std::optional<std::string> next_cursor;  ///< pass back as `cursor`; of the form kCursorPattern
};

/// One row of a task's audit trail, written by the audit consumer.
struct AuditEntry {
  std::string event_id, user_id, task_id, type, action;
  std::optional<std::int64_t> seq;
  std::string occurred_at;   ///< the event's timestamp
  std::string task_data;     ///< the task snapshot, JSON text
  std::string source_topic;
  std::int32_t source_partition = -1;
  std::int64_t source_offset = -1;
  std::string recorded_at;   ///< filled by the store when empty
  bool operator==(const AuditEntry&) const = default;
};

/// The delivery state of one channel of a notification.
struct ChannelStatus {
  std::string channel;  ///< in_app | email | sms
  std::string status;   ///< pending | sent | failed | skipped
  std::string detail;   ///< why (failed/skipped), or empty
  std::string updated_at;
  bool operator==(const ChannelStatus&) const = default;
};

struct Notification {
  std::string id;        ///< UUID, filled by the caller
  std::string user_id;
  std::optional<std::string> task_id;
  std::string type, title, message;
  std::optional<std::string> email;
  std::string event_id;  ///< the notification.request event it came from (unique)
  std::vector<ChannelStatus> channels;  ///< in the order they were created
  bool read = false;     ///< exactly when read_at is set
  std::string created_at;
  std::optional<std::string> read_at;
  /// Where the notification.request came from (empty/-1 when unknown): an email that runs
  /// out of attempts is dead-lettered naming it.
  std::string source_topic;
  std::int32_t source_partition = -1;
  std::int64_t source_offset = -1;
  bool operator==(const Notification&) const = default;
};

/// The notification's status of `channel`, or null when it has no such channel.
inline const ChannelStatus* find_channel(const Notification& n, std::string_view channel) {
  for (const auto& c : n.channels)
    if (c.channel == channel) return &c;
  return nullptr;
}

/// A pending email leased by claim_due_emails.
struct EmailClaim {
  std::string notification_id;
  int attempts = 0;                          ///< counting this one
  std::optional<std::string> first_failure;  ///< RFC 3339, set by the first retry_email_later
};

/// What an operator did (docs/operations.md, "Console"): kept for the console's action log.
struct OperatorAction {
  std::int64_t id = 0;  ///< assigned by record_operator_action
  std::string at;       ///< RFC 3339 UTC
  std::string actor;    ///< the operator's email, or "cli (<os user>)"
  std::string action;   ///< dlq.redrive | dlq.dry_run | email.retry
  std::string target;   ///< the topic, or the notification id
  std::string filter;   ///< the redrive filter (empty: all)
  std::int64_t seen = 0, matched = 0, sent = 0;
  std::string outcome;  ///< ok | error
  std::string detail;
};

/// An email channel in the queue, as the console shows it.
struct QueuedEmail {
  std::string notification_id, user_id, email, title, status, detail, updated_at;
  int attempts = 0;
  std::int64_t next_attempt_ms = 0;
  std::optional<std::string> first_failure;
};

struct EmailQueue {
  std::int64_t pending = 0, failed = 0;
  std::vector<QueuedEmail> items;  ///< pending (soonest first), then failed (latest first)
};

struct OutboxStats {
  std::int64_t waiting = 0;                    ///< rows not yet published
  std::optional<std::string> oldest_waiting;   ///< created_at of the oldest waiting row
};

class Store {
 public:
  virtual ~Store() = default;

  /// Applies pending migrations (idempotent). Called at start by serve/worker/migrate.
  virtual void migrate() = 0;
  /// True when the database answers (readiness).
  virtual bool ping() = 0;

  // ---- users
  /// nullopt when the email (compared case-insensitively) is taken.
  virtual std::optional<User> create_user(const std::string& email, const std::string& password_hash) = 0;
  virtual std::optional<User> find_user_by_email(const std::string& email) = 0;
  virtual std::optional<User> find_user(const std::string& id) = 0;
  /// The account registered first (ids are time-ordered UUIDv7), if any: `serve --dev`
  /// without ADMIN_EMAILS makes it an operator.
  virtual std::optional<User> first_user() = 0;

  // ---- tasks (always scoped to the owner: another user's task is not_found)
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

  // ---- outbox
  /// Whether this process may run the outbox relay now. Several `serve` instances share one
  /// PostgreSQL database; only the holder of the lease publishes, so per-user order holds and
  /// no row is sent twice by two relays. PostgreSQL: a session advisory lock on a connection of
  /// its own, taken again after that connection is lost. SQLite: one host, always true.
  /// Cheap when held (one round trip). Blocking.
  virtual bool hold_relay_lease() { return true; }
  /// The oldest unpublished rows, by id, at most `limit`.
  virtual std::vector<OutboxRecord> fetch_unpublished(int limit) = 0;
  /// Marks rows published (idempotent).
  virtual void mark_published(const std::vector<std::int64_t>& ids) = 0;
  virtual OutboxStats outbox_stats() = 0;
  /// Rows of `topic` for `user_id` with seq > `after_seq`, published or not, by seq (resume).
  virtual std::vector<OutboxRecord> events_after(const std::string& user_id, const std::string& topic, std::int64_t after_seq,
                                                 int limit) = 0;

  /// The user's last assigned seq (0 when the user has made no change).
  virtual std::int64_t user_last_seq(const std::string& user_id) = 0;
  /// Deletes published outbox rows whose published_at is before `published_before` (RFC 3339
  /// UTC, API shape); unpublished rows always stay. Returns how many went. After this a
  /// resume from before them cannot be served (the WebSocket says recovered:false).
  virtual std::size_t prune_outbox(const std::string& published_before) = 0;

  // ---- consumers (idempotent: each consumer group applies an event_id once, recorded in
  // processed_events in the same transaction as the effect)
  /// Whether `consumer_group` processed `event_id`.
  virtual bool processed(const std::string& consumer_group, const std::string& event_id) = 0;

  // ---- audit trail
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

  // ---- notifications
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

  // The email queue (migration 4): every `email` channel in status `pending` is due at its
  // next_attempt_ms (0 when created, so at once).
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

  // ---- operators' actions (migration 5)
  /// Stores `a` (its id is ignored) and returns the id it got.
  virtual std::int64_t record_operator_action(const OperatorAction& a) = 0;
  /// Newest first, up to `limit` (1..500).
  virtual std::vector<OperatorAction> list_operator_actions(int limit) = 0;
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

  // ---- deadline reminders (migration 3: reminders_sent, one row per task, due_at and kind)
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

/// The backend DATABASE_URL names. Throws StorageError when it cannot connect.
std::unique_ptr<Store> open_store(const config::DatabaseUrl& url);

}  // namespace taskstream::storage
