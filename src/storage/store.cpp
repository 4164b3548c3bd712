#include "storage/store.hpp"

#include "storage/postgres/postgres_store.hpp"
#include "storage/sqlite/sqlite_store.hpp"

namespace taskstream::storage {

std::unique_ptr<Store> open_store(const config::DatabaseUrl& url) {
  switch (url.kind) {
    case config::DatabaseKind::sqlite:
      return std::make_unique<SqliteStore>(url.path);
    case config::DatabaseKind::postgresql:
      // libpq understands both postgresql:// and postgres:// URIs itself.
      return std::make_unique<PostgresStore>(url.url);
  }
  throw StorageError("unknown database kind", false);
}

}  // namespace taskstream::storage
