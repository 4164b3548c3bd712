#include "storage/postgres/postgres_store.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "events/events.hpp"
#include "storage/impl/common.hpp"
#include "storage/postgres/rows.hpp"

namespace taskstream::storage {

using namespace postgres;

namespace {
// The migrations, storage/postgres/migrations/*.sql in name order (embedded at build time).
// Migration n is kMigrations[n-1]; append only, never edit one that has shipped.
constexpr std::string_view kMigrations[] = {
#include "storage/postgres_migrations.inc"
};
// pg_advisory_xact_lock key for migrations: arbitrary, but every taskstream version must
// use the same one, or two versions could migrate at once.
constexpr std::string_view kMigrationLockKey = "8391171410424171";
}  // namespace

PostgresStore::PostgresStore(const std::string& url, std::size_t max_connections)
    : db_(std::make_unique<Database>(url, max_connections)) {
  // Connect now so a bad URL or password fails at start, not on the first request.
  db_->read([](Connection&) {});
}

PostgresStore::~PostgresStore() = default;

void PostgresStore::migrate() { migrate_to(static_cast<std::int64_t>(std::size(kMigrations))); }

std::int64_t PostgresStore::schema_version() {
  return db_->read([](Connection& conn) -> std::int64_t {
    if (conn.query("SELECT to_regclass('schema_migrations')").is_null(0, 0)) return 0;
    return conn.query("SELECT coalesce(max(version), 0) FROM schema_migrations").int64(0, 0);
  });
}

void PostgresStore::migrate_to(std::int64_t target) {
  target = std::min(target, static_cast<std::int64_t>(std::size(kMigrations)));
  db_->write([target](Connection& conn) {
    // Held to the end of this transaction: a second process migrating at the same time
    // waits, then finds the versions recorded and has nothing left to do.
    conn.query(fmt::format("SELECT pg_advisory_xact_lock({})", kMigrationLockKey));
    conn.script("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at text NOT NULL)");
    const auto applied = conn.query("SELECT coalesce(max(version), 0) FROM schema_migrations").int64(0, 0);
    const auto known = static_cast<std::int64_t>(std::size(kMigrations));
    if (applied > known) {
      spdlog::warn("postgres: schema is at version {}, newer than this build knows ({})", applied, known);
    }
    for (auto version = applied + 1; version <= target; ++version) {
      conn.script(kMigrations[version - 1]);
      conn.query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                 {param(version), events::now_rfc3339()});
      spdlog::info("postgres: applied migration {}", version);
    }
  });
}

bool PostgresStore::ping() {
  try {
    return db_->read([](Connection& conn) { return conn.query("SELECT 1").int64(0, 0) == 1; });
  } catch (const StorageError&) {
    return false;
  }
}

std::optional<User> PostgresStore::create_user(const std::string& email, const std::string& password_hash) {
  return db_->write([&](Connection& conn) -> std::optional<User> {
    User user{events::new_event_id(), email, password_hash, events::now_rfc3339()};
    // DO NOTHING: a concurrent registration of the same email waits for the first to
    // commit and then inserts nothing, rather than failing with a unique violation.
    const auto r = conn.query(
        "INSERT INTO users (id, email, email_key, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (email_key) DO NOTHING RETURNING id",
        {user.id, user.email, impl::email_key(email), user.password_hash, user.created_at});
    if (r.rows() == 0) return std::nullopt;
    return user;
  });
}

std::optional<User> PostgresStore::find_user_by_email(const std::string& email) {
  return db_->read([&](Connection& conn) {
    return read_user(
        conn.query("SELECT id, email, password_hash, created_at FROM users WHERE email_key = $1", {impl::email_key(email)}));
  });
}

std::optional<User> PostgresStore::find_user(const std::string& id) {
  return db_->read([&](Connection& conn) {
    return read_user(conn.query("SELECT id, email, password_hash, created_at FROM users WHERE id = $1", {id}));
  });
}

std::optional<User> PostgresStore::first_user() {
  return db_->read([&](Connection& conn) {
    return read_user(conn.query("SELECT id, email, password_hash, created_at FROM users ORDER BY created_at, id LIMIT 1"));
  });
}

void postgres_execute(const std::string& url, const std::string& sql) {
  Connection conn(url);
  conn.script(sql);
}

}  // namespace taskstream::storage
