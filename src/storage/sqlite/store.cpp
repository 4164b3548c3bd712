#include "storage/sqlite/sqlite_store.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/sqlite/rows.hpp"

namespace taskstream::storage {

using namespace sqlite;

namespace {
// The migrations, storage/sqlite/migrations/*.sql in name order (embedded at build time).
// Migration n is kMigrations[n-1]; append only, never edit one that has shipped.
constexpr std::string_view kMigrations[] = {
#include "storage/sqlite_migrations.inc"
};
}  // namespace

SqliteStore::SqliteStore(const std::string& path) : db_(std::make_unique<Database>(path)) {
  // Open one connection now so a bad path fails at start, not on the first request.
  db_->read([](Connection&) {});
}

SqliteStore::~SqliteStore() = default;

void SqliteStore::migrate() { migrate_to(static_cast<std::int64_t>(std::size(kMigrations))); }

std::int64_t SqliteStore::schema_version() {
  return db_->read([](Connection& conn) -> std::int64_t {
    Statement exists(conn, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
    if (!exists.step()) return 0;
    Statement s(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    s.step();
    return s.int64(0);
  });
}

void SqliteStore::migrate_to(std::int64_t target) {
  target = std::min(target, static_cast<std::int64_t>(std::size(kMigrations)));
  db_->write([target](Connection& conn) {
    // Under BEGIN IMMEDIATE: a second process migrating at the same time waits here and
    // then finds the work done.
    conn.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
    Statement current(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    current.step();
    const auto applied = current.int64(0);
    // Finished before the migrations run: a statement still reading would make a DROP
    // (migration 6) fail with SQLITE_LOCKED.
    current.reset();
    const auto known = static_cast<std::int64_t>(std::size(kMigrations));
    if (applied > known) {
      spdlog::warn("sqlite: schema is at version {}, newer than this build knows ({})", applied, known);
    }
    for (auto version = applied + 1; version <= target; ++version) {
      conn.exec(std::string(kMigrations[version - 1]));
      Statement record(conn, "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)");
      record.bind(1, version).bind(2, events::now_rfc3339()).run();
      spdlog::info("sqlite: applied migration {}", version);
    }
  });
}

bool SqliteStore::ping() {
  try {
    return db_->read([](Connection& conn) {
      Statement s(conn, "SELECT 1");
      return s.step() && s.int64(0) == 1;
    });
  } catch (const StorageError&) {
    return false;
  }
}

std::optional<User> SqliteStore::create_user(const std::string& email, const std::string& password_hash) {
  return db_->write([&](Connection& conn) -> std::optional<User> {
    User user{events::new_event_id(), email, password_hash, events::now_rfc3339()};
    Statement s(conn,
                "INSERT INTO users (id, email, email_key, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5) "
                "ON CONFLICT (email_key) DO NOTHING");
    s.bind(1, user.id).bind(2, user.email).bind(3, impl::email_key(email)).bind(4, user.password_hash);
    s.bind(5, user.created_at).run();
    if (conn.changes() == 0) return std::nullopt;
    return user;
  });
}

std::optional<User> SqliteStore::find_user_by_email(const std::string& email) {
  return db_->read([&](Connection& conn) -> std::optional<User> {
    Statement s(conn, "SELECT id, email, password_hash, created_at FROM users WHERE email_key = ?1");
    s.bind(1, impl::email_key(email));
    if (!s.step()) return std::nullopt;
    return read_user(s);
  });
}

std::optional<User> SqliteStore::find_user(const std::string& id) {
  return db_->read([&](Connection& conn) -> std::optional<User> {
    Statement s(conn, "SELECT id, email, password_hash, created_at FROM users WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_user(s);
  });
}

std::optional<User> SqliteStore::first_user() {
  return db_->read([&](Connection& conn) -> std::optional<User> {
    Statement s(conn, "SELECT id, email, password_hash, created_at FROM users ORDER BY created_at, id LIMIT 1");
    if (!s.step()) return std::nullopt;
    return read_user(s);
  });
}

}  // namespace taskstream::storage
