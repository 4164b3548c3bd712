#pragma once
// The PostgreSQL driver under PostgresStore (storage/postgres/postgres_store.hpp): libpq
// connections and results, text-format parameters, transactions, and the Database that
// pools connections and retries what is safe to retry. Internal to src/storage/postgres;
// the queries per role are in the files beside it.
//
// Thread-safety: a Connection (and its Results) is used by one thread at a time (a lease
// of the pool); Database::read/write are safe from any thread.
// Blocking: everything here blocks on the server (connect_timeout 10 s).

#include <libpq-fe.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "storage/impl/connection_pool.hpp"
#include "storage/types.hpp"

namespace taskstream::storage::postgres {

constexpr auto kPoolWait = std::chrono::seconds(30);

/// SQLSTATEs worth retrying: the server or the network failed, or the transaction lost a
/// race that a second attempt would win.
bool retriable_state(std::string_view state);
/// What a SQLSTATE means for operators and clients (types.hpp, StorageCondition).
StorageCondition condition_of(std::string_view state);
/// libpq's message on one line (it ends them with newlines and indents details).
std::string one_line(std::string message);

/// A StorageError that knows whether the connection died (the pool must drop it then).
class PgError final : public StorageError {
 public:
  PgError(const std::string& what, bool retriable, bool connection_lost, StorageCondition condition = StorageCondition::error)
      : StorageError(what, retriable, connection_lost ? StorageCondition::unavailable : condition), connection_lost_(connection_lost) {}
  bool connection_lost() const noexcept { return connection_lost_; }

 private:
  bool connection_lost_;
};




/// Owns a PGresult.
class Result final {
 public:
  explicit Result(PGresult* res) : res_(res) {}
  ~Result() { PQclear(res_); }
  Result(Result&& other) noexcept : res_(std::exchange(other.res_, nullptr)) {}
  Result& operator=(Result&&) = delete;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  int rows() const { return PQntuples(res_); }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(res_, row, col), static_cast<std::size_t>(PQgetlength(res_, row, col)));
  }
  std::optional<std::string> optional_text(int row, int col) const {
    if (PQgetisnull(res_, row, col)) return std::nullopt;
    return text(row, col);
  }
  bool is_null(int row, int col) const { return PQgetisnull(res_, row, col) != 0; }
  std::optional<std::int64_t> optional_int64(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return int64(row, col);
  }
  std::int64_t int64(int row, int col) const {
    std::int64_t v = 0;
    const char* p = PQgetvalue(res_, row, col);
    const auto [end, ec] = std::from_chars(p, p + PQgetlength(res_, row, col), v);
    if (ec != std::errc()) throw StorageError(fmt::format("postgres: column {} is not an integer", col), false);
    return v;
  }

 private:
  PGresult* res_;
};

/// A text-format query parameter; nullopt is SQL NULL.
using Param = std::optional<std::string>;

inline Param param(std::int64_t v) { return std::to_string(v); }

/// A one-dimensional array literal in PostgreSQL's text format: every element quoted
/// (backslash and double quote escaped) or NULL, so any text survives as given.
class ArrayLiteral final {
 public:
  void add(std::string_view text) {
    open_element();
    out_ += '"';
    for (const char c : text) {
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_ += '"';
  }
  void add(std::int64_t value) {
    open_element();
    out_ += std::to_string(value);
  }
  void add(const std::optional<std::int64_t>& value) {
    if (value) return add(*value);
    open_element();
    out_ += "NULL";
  }
  std::string finish() && { return std::move(out_) + "}"; }

 private:
  void open_element() { out_ += out_.size() == 1 ? "" : ","; }
  std::string out_ = "{";
};

/// One libpq connection; closed on destruction.
class Connection final {
 public:
  /// Connects (connect_timeout 10 s); throws a retriable StorageError when it cannot.
  explicit Connection(const std::string& url);
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool lost() const { return PQstatus(conn_) != CONNECTION_OK; }
  /// False while a transaction is open or failed: such a connection must not be reused.
  bool idle() const { return PQtransactionStatus(conn_) == PQTRANS_IDLE; }

  /// One statement with $1.. parameters (extended protocol: values never touch the SQL).
  Result query(std::string_view sql, const std::vector<Param>& params = {});

  /// Several statements without parameters (simple protocol), e.g. a migration.
  void script(std::string_view sql);

 private:
  Result check(PGresult* raw, std::string_view sql);

  PGconn* conn_ = nullptr;
};

/// BEGIN on construction; ROLLBACK on destruction unless committed.
class Transaction final {
 public:
  explicit Transaction(Connection& conn) : conn_(conn) { conn_.query("BEGIN"); }
  ~Transaction() {
    if (done_ || conn_.lost() || conn_.idle()) return;
    try {
      conn_.query("ROLLBACK");
    } catch (const StorageError& e) {
      spdlog::warn("postgres: rollback failed: {}", e.what());
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    try {
      conn_.query("COMMIT");
    } catch (const PgError& e) {
      if (!e.connection_lost()) throw;
      throw PgError(std::string(e.what()) + "; the change may or may not have been committed", true, true);
    }
    done_ = true;
  }

 private:
  Connection& conn_;
  bool done_ = false;
};

/// The server: a pool of connections, reads retried once on a fresh connection after a lost
/// one, write transactions, and the connection that holds the relay's advisory lock.
class Database final {
 public:
  Database(const std::string& url, std::size_t max_connections)
      : pool([url] { return std::make_unique<Connection>(url); }, max_connections == 0 ? 1 : max_connections,
             std::chrono::duration_cast<std::chrono::milliseconds>(kPoolWait)),
        url(url) {}

  using Lease = impl::ConnectionPool<Connection>::Lease;

  /// Runs a read-only `fn(conn)`. Reads change nothing, so one that finds its
  /// connection dead is simply run again on a fresh one.
  template <class F>
  auto read(F&& fn) {
    for (int attempt = 0;; ++attempt) {
      auto lease = pool.acquire();
      try {
        return fn(*lease);
      } catch (const PgError& e) {
        retire_if_unusable(lease);
        if (!e.connection_lost() || attempt > 0) throw;
        spdlog::info("postgres: reconnecting after a lost connection");
      }
    }
  }

  /// Runs `fn(conn)` in a transaction and commits when it returns normally; exceptions
  /// roll back and propagate unchanged. Only a dead BEGIN is retried: after it, a lost
  /// connection leaves the outcome unknown to us, which only the caller can resolve.
  template <class F>
  auto write(F&& fn) {
    for (int attempt = 0;; ++attempt) {
      auto lease = pool.acquire();
      std::optional<Transaction> txn;
      try {
        txn.emplace(*lease);
      } catch (const PgError& e) {
        retire_if_unusable(lease);
        if (!e.connection_lost() || attempt > 0) throw;
        spdlog::info("postgres: reconnecting after a lost connection");
        continue;
      }
      try {
        if constexpr (std::is_void_v<decltype(fn(*lease))>) {
          fn(*lease);
          txn->commit();
          return;
        } else {
          auto result = fn(*lease);
          txn->commit();
          return result;
        }
      } catch (...) {
        txn.reset();  // rolls back while the lease is still ours
        retire_if_unusable(lease);
        throw;
      }
    }
  }

  static void retire_if_unusable(Lease& lease) {
    if (lease->lost()) {
      lease.discard_all();
    } else if (!lease->idle()) {
      lease.discard();
    }
  }

  impl::ConnectionPool<Connection> pool;
  std::string url;
  std::mutex lease_mutex;
  std::unique_ptr<Connection> lease_conn;  // holds the relay's advisory lock while it lives
  std::chrono::steady_clock::time_point lease_next_try{};  // a follower asks again only after this
};

}  // namespace taskstream::storage::postgres
