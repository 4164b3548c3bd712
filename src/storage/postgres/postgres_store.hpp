#pragma once
// The PostgreSQL backend of Store (DATABASE_URL=postgresql://... or postgres://...),
// for several service instances sharing one database. Semantics are those of
// storage/roles.hpp. The driver is database.hpp; the queries, one file per role, sit beside
// it; the migrations are migrations/*.sql.
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

namespace taskstream::storage::postgres {
class Database;
}

namespace taskstream::storage {

class PostgresStore final : public Store {
 public:
  /// `url` is handed to libpq as given (URI or key=value form; `options=-csearch_path=...`
  /// selects a schema).
  explicit PostgresStore(const std::string& url, std::size_t max_connections = 8);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  /// Applies the pending migrations up to `version` only (for tests and tooling).
  void migrate_to(std::int64_t version);
  /// The highest migration applied; 0 on a new database.
  std::int64_t schema_version();

#include "storage/impl/store_methods.inc"

 private:
  std::unique_ptr<postgres::Database> db_;
};

/// Runs `sql` (one or more statements, no parameters) on a connection of its own to `url`,
/// then closes it. For tests and tooling (creating or dropping a schema, ending sessions);
/// the service does not need it. Blocking; throws StorageError.
void postgres_execute(const std::string& url, const std::string& sql);

}  // namespace taskstream::storage
