#pragma once
// The HTTP API of docs/api.md: handlers over the store, the token codec and the relay.
// Handlers run on the server's threads and send every blocking call (database, password
// hashing, Kafka checks) to `blocking_pool`.

#include <functional>

#include <utility>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "auth/jwt.hpp"
#include "config/settings.hpp"
#include "http/router.hpp"
#include "storage/store.hpp"

namespace taskstream::outbox {
class Relay;
}

namespace taskstream::ops {
class Monitor;
}

namespace taskstream::http {
class Metrics;
}

namespace taskstream::api {

struct ApiContext {
  const config::Settings& settings;
  storage::Store& store;
  boost::asio::thread_pool& blocking_pool;
  const auth::JwtCodec& jwt;
  outbox::Relay* relay = nullptr;            ///< its figures for /admin/outbox
  std::function<bool()> kafka_ready;          ///< blocking; null when Kafka is disabled
  http::Metrics* metrics = nullptr;                 ///< for /metrics
  /// The WebSocket hub has its partitions; null where no hub runs (the worker).
  std::function<bool()> websocket_ready = {};
  /// `serve --dev` with ADMIN_EMAILS empty: the first account registered is an operator.
  bool first_account_is_operator = false;
  /// The console's figures (groups, topics, outbox, HTTP); null where none is sampled.
  ops::Monitor* monitor = nullptr;
  /// Runs the /admin routes' blocking Kafka work (reading a DLQ, redrive); never the DB's pool.
  /// Null: blocking_pool does it.
  boost::asio::thread_pool* kafka_pool = nullptr;
  /// Called after each committed change (wakes the relay); null: nothing to wake. A function,
  /// not the relay, so the task routes depend on no Kafka code.
  std::function<void()> wake_relay = {};
};

/// The role every /admin route requires; tokens of ADMIN_EMAILS accounts carry it.
using auth::kOperatorRole;

/// The roles a token for `user` carries (docs/operations.md, "Operators").
std::vector<std::string> roles_of(ApiContext& ctx, const storage::User& user);

/// A database outage (down, full, read-only) as the answer a client can act on: 503 or 507
/// problem+json with Retry-After (docs/reliability.md, "Database faults"); nullopt for any
/// other exception (a 500).
std::optional<http::Response> storage_outage_response(const std::exception& e);

/// Every route `serve` answers: register_user_routes, register_admin_routes and
/// register_web_routes (src/api/api.cpp).
void register_routes(http::Router& router, ApiContext& ctx);
/// The routes of docs/api.md for users (accounts, tokens, tasks, notifications) and the
/// operations routes, with the authenticator, the error translator and CORS. Needs no Kafka
/// code (the fuzzer, fuzz/fuzz_api.cpp, builds it alone).
void register_user_routes(http::Router& router, ApiContext& ctx);
/// The operators' JSON API under /admin (every route needs the operator role).
void register_admin_routes(http::Router& router, ApiContext& ctx);
/// Only /healthz, /readyz, /metrics and /openapi.json (what `worker` serves).
void register_operations_routes(http::Router& router, ApiContext& ctx);
/// GET / (the web page from web/, or TASKSTREAM_WEB_DIR), GET /static/{file}, and GET /ws
/// for requests that are not upgrades (426; the upgrade itself goes to ws::Hub).
void register_web_routes(http::Router& router);

/// A notification as the API returns it (also pushed to WebSocket clients).
nlohmann::json notification_to_json(const storage::Notification& n);

/// The OpenAPI 3 document of the routes `router` serves.
nlohmann::json openapi_document(const http::Router& router);
/// "METHOD pattern" of every operation openapi_document describes (for the route test).
std::vector<std::string> described_operations();

}  // namespace taskstream::api
