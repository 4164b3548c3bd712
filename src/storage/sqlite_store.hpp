#pragma once
// The SQLite backend of Store (DATABASE_URL=sqlite:///path): one file, WAL mode, for a
// single host. Semantics are those of store.hpp; the differences are in how it gets there:
//
// Lifecycle: the constructor opens the first connection (throws StorageError if the file
// cannot be opened); more are opened on demand, up to 16, and closed with the store.
// migrate() must run before the other methods on a new file.
// Thread-safety: safe from any number of threads. Each call leases a connection of its
// own, so reads run in parallel (WAL); writes take one in-process lock and then
// `BEGIN IMMEDIATE`, so this process's writers queue up in order instead of polling
// SQLite's busy handler, and other processes are waited for up to the busy timeout.
// ":memory:" gives a private database on a single connection, so there every call is
// serialized.
// Blocking: every method blocks on file I/O, and on other writers (up to 10 s, then a
// retriable StorageError).

#include <cstdint>
#include <memory>
#include <string>

#include "storage/store.hpp"

namespace taskstream::storage {

class SqliteStore final : public Store {
 public:
  /// `path` as in DatabaseUrl::path: a file (created if missing; its directory must
  /// exist) or ":memory:".
  explicit SqliteStore(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void migrate() override;
  bool ping() override;
  /// Applies the pending migrations up to `version` only (for tests and tooling).
  void migrate_to(std::int64_t version);
  /// The highest migration applied; 0 on a new file.
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

}  // namespace taskstream::storage
