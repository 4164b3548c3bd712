// The route table and the dispatch half of fuzz_http (see fuzz_http.cpp).
//
// A representative route table: every method + pattern and auth flag that
// src/api/routes.cpp and src/api/web.cpp register, with handlers that check their input
// with the helpers the real handlers use (api/body.hpp, events::is_uuid,
// events::to_utc_millis) but touch no store, Kafka or thread pool. The authenticator accepts
// one fixed bearer token, "Bearer fuzz-token", which the seeds use.

#include "fuzz_http_routes.hpp"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp misses it

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "api/body.hpp"
#include "events/events.hpp"
#include "http/router.hpp"

namespace asio = boost::asio;
using taskstream::http::Handler;
using taskstream::http::HttpError;
using taskstream::http::Request;
using taskstream::http::Response;
using taskstream::http::Route;
using taskstream::http::Router;
namespace api = taskstream::api;
namespace events = taskstream::events;

namespace {

/// What the request handlers echo: the route, the path parameters and the caller.
Response echo(const Request& req, std::string_view route, int status = 200) {
  if (status == 204) return Response::no_content();
  nlohmann::json params = nlohmann::json::object();
  for (const auto& [k, v] : req.params) params[k] = v;
  return Response::json(status, {{"route", route}, {"params", params}, {"user", req.user_id}});
}

void credentials(const Request& req) {
  auto body = api::parse_object(req.body);
  api::check_fields(body, {"email", "password"});
  auto email = api::string_field(body, "email");
  auto password = api::string_field(body, "password");
  if (!email) throw HttpError(422, "email: field required");
  if (!password) throw HttpError(422, "password: field required");
  if (api::utf8_length(*password) < 8) throw HttpError(422, "password: must be at least 8 characters");
}

void task_fields(const Request& req, bool create) {
  auto body = api::parse_object(req.body);
  api::check_fields(body, {"title", "description", "status", "priority", "due_at"},
                    {"id", "user_id", "created_at", "updated_at", "completed_at", "version"});
  if (body.contains("title")) {
    if (api::is_null(body, "title")) throw HttpError(422, "title: must not be null");
    auto n = api::utf8_length(*api::string_field(body, "title"));
    if (n < 1 || n > 200) throw HttpError(422, "title: must be 1 to 200 characters");
  } else if (create) {
    throw HttpError(422, "title: field required");
  }
  if (body.contains("description")) (void)api::string_field(body, "description");
  if (body.contains("status")) (void)api::string_field(body, "status");
  if (body.contains("priority")) (void)api::string_field(body, "priority");
  if (body.contains("due_at")) {
    if (auto due = api::string_field(body, "due_at"); due && !events::to_utc_millis(*due))
      throw HttpError(422, "due_at: must be an RFC 3339 date-time");
  }
}

void if_match(const Request& req) {
  auto h = req.header("if-match");
  if (!h) return;
  std::string_view v = *h;
  if (v.substr(0, 2) == "W/") v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size()) throw HttpError(400, "If-Match: must be the task's version");
}

void list_query(const Request& req) {
  if (auto l = req.query_param("limit")) {
    int limit = 0;
    auto [p, ec] = std::from_chars(l->data(), l->data() + l->size(), limit);
    if (ec != std::errc() || p != l->data() + l->size() || limit < 1 || limit > 100)
      throw HttpError(422, "limit: must be a whole number from 1 to 100");
  }
}

void uuid_param(const Request& req, const char* name) {
  if (!events::is_uuid(req.params.at(name))) throw HttpError(404, "not found");
}

Handler handler(std::string route, void (*check)(const Request&), int status = 200) {
  return [route, check, status](Request& req) -> asio::awaitable<Response> {
    if (check) check(req);
    co_return echo(req, route, status);
  };
}

const Router& router() {
  static const Router r = [] {
    Router router;
    router.set_authenticator([](const Request& req) -> std::string {
      auto h = req.header("authorization");
      if (!h) throw HttpError(401, "not authenticated: send Authorization: Bearer <token>");
      if (*h != "Bearer fuzz-token") throw HttpError(401, "invalid token");
      return "00000000-0000-4000-8000-000000000001";
    });
    auto add = [&](const char* method, const char* pattern, bool auth, void (*check)(const Request&), int status = 200) {
      router.add(Route{method, pattern, auth, ""}, handler(std::string(method) + " " + pattern, check, status));
    };
    add("POST", "/auth/register", false, credentials, 201);
    add("POST", "/auth/token", false, credentials);
    add("GET", "/users/me", true, nullptr);
    add("POST", "/tasks", true, [](const Request& req) { task_fields(req, true); }, 201);
    add("GET", "/tasks", true, list_query);
    add("GET", "/tasks/{id}", true, [](const Request& req) { uuid_param(req, "id"); });
    add("PATCH", "/tasks/{id}", true, [](const Request& req) {
      task_fields(req, false);
      if_match(req);
      uuid_param(req, "id");
    });
    add("POST", "/tasks/{id}/complete", true, [](const Request& req) { uuid_param(req, "id"); });
    add("DELETE", "/tasks/{id}", true, [](const Request& req) { uuid_param(req, "id"); }, 204);
    add("GET", "/tasks/{id}/history", true, [](const Request& req) { uuid_param(req, "id"); });
    add("GET", "/notifications", true, list_query);
    add("POST", "/notifications/{id}/read", true, [](const Request& req) { uuid_param(req, "id"); });
    add("GET", "/healthz", false, nullptr);
    add("GET", "/readyz", false, nullptr);
    add("GET", "/metrics", false, nullptr);
    add("GET", "/openapi.json", false, nullptr);
    add("GET", "/", false, nullptr);
    add("GET", "/static/{file}", false, nullptr);
    add("GET", "/ws", false, nullptr, 426);
    return router;
  }();
  return r;
}

}  // namespace

Response fuzz_dispatch(Request& req, std::string& label) {
  asio::io_context io;
  Response res;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { res = co_await router().dispatch(req, &label); },
      [](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            std::fprintf(stderr, "escaped: %s\n", x.what());
          } catch (...) {
          }
          std::fprintf(stderr, "fuzz_http: an exception escaped Router::dispatch\n");
          std::abort();
        }
      });
  io.run();
  return res;
}
