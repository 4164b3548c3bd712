#pragma once
// The SQLite backend of Store (DATABASE_URL=sqlite:///path): one file, WAL mode, for a
// single host. Semantics are those of storage/roles.hpp. The driver is database.hpp; the
// queries, one file per role, sit beside it; the migrations are migrations/*.sql.
//
// Lifecycle: the constructor opens the first connection (throws StorageError if the file
// cannot be opened); more are opened on demand, up to 16, and closed with the store.
// migrate() must run before the other methods on a new file.
// Thread-safety: safe from any number of threads. Each call leases a connection of its
// own, so reads run in parallel (WAL). Writers of this process queue in order and are
// committed as a group: one `BEGIN IMMEDIATE` transaction, a savepoint per call, so each call
// is still all-or-nothing and returns once durable (database.hpp, Database::write). Other
// processes are waited for up to the busy timeout.
// ":memory:" gives a private database on a single connection, so there every call is
// serialized.
// Blocking: every method blocks on file I/O, and on other writers (up to 10 s, then a
// retriable StorageError).

#include <cstdint>
#include <memory>
#include <string>

#include "storage/store.hpp"

namespace taskstream::storage::sqlite {
class Database;
}

namespace taskstream::storage {

class SqliteStore final : public Store {
 public:
  /// `path` as in DatabaseUrl::path: a file (created if missing; its directory must
  /// exist) or ":memory:".
  explicit SqliteStore(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  /// Applies the pending migrations up to `version` only (for tests and tooling).
  void migrate_to(std::int64_t version);
  /// The highest migration applied; 0 on a new file.
  std::int64_t schema_version();

#include "storage/impl/store_methods.inc"

 private:
  std::unique_ptr<sqlite::Database> db_;
};

}  // namespace taskstream::storage
