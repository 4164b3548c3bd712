// The operators' API (docs/operations.md, "Operators"): JSON under /admin for the console and
// for scripts. Every route needs a token with the operator role (ADMIN_EMAILS, or the first
// account under `serve --dev`): 401 without a valid token, 403 for any other account, checked
// by the router on each request.

#include <chrono>

#include "api/api.hpp"
#include "events/events.hpp"
#include "http/blocking.hpp"
#include "outbox/relay.hpp"

namespace taskstream::api {
namespace {

using boost::asio::awaitable;
using http::Request;
using http::Response;

double age_seconds(const std::optional<std::string>& since) {
  if (!since) return 0;
  auto ms = events::to_unix_millis(*since);
  if (!ms) return 0;
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return std::max(0.0, static_cast<double>(now - *ms) / 1000.0);
}

}  // namespace

void register_admin_routes(http::Router& router, ApiContext& ctx) {
  router.add({"GET", "/admin/outbox", true, "Outbox and relay: rows waiting, oldest age, published and failed (operators)", kOperatorRole},
             [&ctx](Request&) -> awaitable<Response> {
               auto st = co_await http::offload(ctx.blocking_pool, [&] { return ctx.store.outbox_stats(); });
               nlohmann::json relay = nullptr;
               if (ctx.relay) {
                 const auto r = ctx.relay->stats();
                 relay = {{"published", r.published}, {"failed", r.failed}, {"batches", r.batches}, {"producer_restarts", r.producer_restarts}};
               }
               co_return Response::json(200, {{"waiting", st.waiting},
                                              {"oldest_waiting", st.oldest_waiting ? nlohmann::json(*st.oldest_waiting) : nlohmann::json(nullptr)},
                                              {"oldest_age_seconds", age_seconds(st.oldest_waiting)},
                                              {"relay", std::move(relay)}});
             });
}

}  // namespace taskstream::api
