// The operations routes of docs/operations.md (/healthz, /readyz, /metrics, /openapi.json),
// which `worker` serves too, and the roles a token carries.

#include <spdlog/spdlog.h>

#include "api/api.hpp"
#include "http/metrics.hpp"
#include "http/blocking.hpp"

namespace taskstream::api {

using boost::asio::awaitable;
using http::Request;
using http::Response;

std::vector<std::string> roles_of(ApiContext& ctx, const storage::User& user) {
  const auto& admins = ctx.settings.admin_emails;
  if (std::find(admins.begin(), admins.end(), user.email) != admins.end()) return {kOperatorRole};
  if (ctx.first_account_is_operator) {
    // The first account never changes (there is no account deletion): remember it.
    static std::once_flag logged;
    auto first = ctx.store.first_user();
    if (first && first->id == user.id) {
      std::call_once(logged, [&] { spdlog::warn("--dev: {} is an operator, as the first account (set ADMIN_EMAILS to choose operators)", user.email); });
      return {kOperatorRole};
    }
  }
  return {};
}

void register_operations_routes(http::Router& router, ApiContext& ctx) {
  // ---- operations
  router.add({"GET", "/healthz", false, "Liveness"}, [](Request&) -> awaitable<Response> { co_return Response::json(200, {{"status", "ok"}}); });

  router.add({"GET", "/readyz", false, "Readiness: database, and Kafka when enabled"}, [&ctx](Request&) -> awaitable<Response> {
    auto checks = co_await http::offload(ctx.blocking_pool, [&] {
      nlohmann::json c;
      bool db = false;
      try {
        db = ctx.store.ping();
      } catch (...) {
      }
      c["database"] = db ? "ok" : "unavailable";
      if (ctx.kafka_ready) c["kafka"] = ctx.kafka_ready() ? "ok" : "unavailable";
      else c["kafka"] = "disabled";
      if (ctx.websocket_ready) c["websocket"] = ctx.websocket_ready() ? "ok" : "starting";
      return c;
    });
    bool ready = checks["database"] == "ok" && checks["kafka"] != "unavailable" && checks.value("websocket", "ok") == "ok";
    co_return Response::json(ready ? 200 : 503, {{"status", ready ? "ready" : "not ready"}, {"checks", checks}});
  });

  router.add({"GET", "/metrics", false, "Prometheus metrics"}, [&ctx](Request&) -> awaitable<Response> {
    Response r;
    r.content_type = "text/plain; version=0.0.4";
    if (ctx.metrics) r.body = co_await http::offload(ctx.blocking_pool, [&] { return ctx.metrics->render(); });
    co_return r;
  });

  router.add({"GET", "/openapi.json", false, "This document"}, [&router](Request&) -> awaitable<Response> {
    co_return Response::json(200, openapi_document(router));
  });
}

}  // namespace taskstream::api
