#pragma once
// The PostgreSQL backend of Store (DATABASE_URL=postgresql://... or postgres://...),
// for several service instances sharing one database. Semantics are those of store.hpp.
//
// Lifecycle: the constructor opens the first connection (throws a retriable StorageError
// when the server cannot be reached); more are opened on demand up to `max_connections`
// and closed with the store. migrate() must run before the other methods on a new database.
// Thread-safety: safe from any number of threads; each call leases a pooled connection.
// Concurrent changes of one user serialize on that user's `user_seq` row, so its seqs
// have no gaps; different users do not wait for each other.
// Blocking: every method blocks on the network, and waits up to 30 s for a free connection.
// Errors: a lost connection is a retriable StorageError and the connection is replaced.
// A call whose connection turns out dead before it changed anything (an idle pooled
// connection after a server restart) is retried once on a fresh one; a write that loses
// its connection after BEGIN is not, since it may or may not have committed.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "storage/store.hpp"

namespace taskstream::storage {

class PostgresStore final : public Store {
 public:
  /// `url` is handed to libpq as given (URI or key=value form; `options=-csearch_path=...`
  /// selects a schema).
  explicit PostgresStore(const std::string& url, std::size_t max_connections = 8);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  void migrate() override;
  bool ping() override;
  /// Applies the pending migrations up to `version` only (for tests and tooling).
  void migrate_to(std::int64_t version);
  /// The highest migration applied; 0 on a new database.
  std::int64_t schema_version();

  std::optional<User> create_user(const std::string& email, const std::string& password_hash) override;
  std::optional<User> find_user_by_email(const std::string& email) override;
  std::optional<User> find_user(const std::string& id) override;
  std::optional<User> first_user() override;

  ChangeResult create_task(const Task& task, const EventFactory& events) override;
  ChangeResult update_task(const std::string& user_id, const std::string& task_id,
                           const std::function<bool(Task&)>& mutate, std::optional<std::int64_t> expected_version,
                           const std::string& now, const EventFactory& events) override;
  ChangeResult delete_task(const std::string& user_id, const std::string& task_id, const EventFactory& events) override;
  std::optional<Task> get_task(const std::string& user_id, const std::string& task_id) override;
  TaskPage list_tasks(const std::string& user_id, const std::optional<std::string>& status, int limit,
                      const std::optional<std::string>& cursor) override;

  bool hold_relay_lease() override;
  std::vector<OutboxRecord> fetch_unpublished(int limit) override;
  void mark_published(const std::vector<std::int64_t>& ids) override;
  OutboxStats outbox_stats() override;
  std::vector<OutboxRecord> events_after(const std::string& user_id, const std::string& topic, std::int64_t after_seq,
                                         int limit) override;
  std::int64_t user_last_seq(const std::string& user_id) override;
  std::size_t prune_outbox(const std::string& published_before) override;

  bool processed(const std::string& consumer_group, const std::string& event_id) override;
  std::size_t record_audit(const std::string& consumer_group, const std::vector<AuditEntry>& entries) override;
  std::vector<AuditEntry> task_history(const std::string& user_id, const std::string& task_id) override;

  std::pair<Notification, bool> create_notification(const std::string& consumer_group, const Notification& n) override;
  void set_channel_status(const std::string& notification_id, const std::string& channel, const std::string& status,
                          const std::string& detail, const std::string& now) override;
  std::optional<Notification> get_notification(const std::string& notification_id) override;
  std::vector<EmailClaim> claim_due_emails(std::int64_t now_ms, std::int64_t lease_ms, int limit) override;
  bool rearm_failed_email(const std::string& event_id, const std::string& detail, const std::string& now) override;
  EmailQueue email_queue(int limit) override;
  bool retry_email_now(const std::string& notification_id, const std::string& detail, const std::string& now) override;
  std::int64_t record_operator_action(const OperatorAction& a) override;
  std::vector<OperatorAction> list_operator_actions(int limit) override;
  void retry_email_later(const std::string& notification_id, std::int64_t next_attempt_ms, const std::string& detail,
                         const std::string& now) override;
  std::vector<Notification> list_notifications(const std::string& user_id, bool unread_only, int limit) override;
  std::optional<Notification> mark_notification_read(const std::string& user_id, const std::string& notification_id,
                                                      const std::string& now) override;
  std::int64_t count_unread_notifications(const std::string& user_id) override;
  std::size_t mark_all_notifications_read(const std::string& user_id, const std::string& now) override;

  std::vector<Task> tasks_due_without_reminder(const std::string& kind, const std::string& until, int limit) override;
  bool record_reminder(const Task& task, const std::string& kind, const std::vector<OutboxRecord>& records) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Runs `sql` (one or more statements, no parameters) on a connection of its own to `url`,
/// then closes it. For tests and tooling (creating or dropping a schema, ending sessions);
/// the service does not need it. Blocking; throws StorageError.
void postgres_execute(const std::string& url, const std::string& sql);

}  // namespace taskstream::storage
