#pragma once
// storage::Store: every role of storage/roles.hpp over one database, with a SQLite and a
// PostgreSQL backend (docs/architecture.md, "Storage"; docs/guarantees.md). `serve`, `worker`
// and the CLI open one and hand each component the role it uses.

#include <memory>

#include "config/settings.hpp"
#include "storage/roles.hpp"

namespace taskstream::storage {

class Store : public UserStore,
              public TaskStore,
              public OutboxStore,
              public ReplayStore,
              public AuditStore,
              public NotificationStore,
              public EmailQueueStore,
              public ReminderStore,
              public OperatorLog {
 public:
  ~Store() override = default;

  /// Applies pending migrations (idempotent). Called at start by serve/worker/migrate.
  virtual void migrate() = 0;
  /// True when the database answers (readiness).
  virtual bool ping() = 0;
};

/// The backend DATABASE_URL names. Throws StorageError when it cannot connect.
std::unique_ptr<Store> open_store(const config::DatabaseUrl& url);

}  // namespace taskstream::storage
