// Router and message helpers: matching, parameters, 404/405, authentication and the
// conversion of handler exceptions into problem responses. No sockets: dispatch() runs on
// a private io_context.

#include "http/message.hpp"
#include "http/router.hpp"
#include "api/api.hpp"
#include "storage/store.hpp"

#include <gtest/gtest.h>

#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

namespace asio = boost::asio;
using namespace taskstream::http;
using nlohmann::json;

namespace {

Response dispatch(const Router& router, Request& req, std::string* label = nullptr) {
  asio::io_context io;
  Response out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out = co_await router.dispatch(req, label); },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  return out;
}

Request make(std::string method, std::string path) {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.request_id = "test-request";
  return r;
}

/// A handler answering {"route": name, "params": ..., "user": ...}.
Handler echo(std::string name) {
  return [name](Request& req) -> asio::awaitable<Response> {
    json params = json::object();
    for (const auto& [k, v] : req.params) params[k] = v;
    co_return Response::json(200, json{{"route", name}, {"params", params}, {"user", req.user_id}});
  };
}

Route open_route(std::string method, std::string pattern) { return Route{std::move(method), std::move(pattern), false, ""}; }

json body(const Response& r) { return json::parse(r.body); }

}  // namespace

TEST(HttpRouter, MatchesLiteralAndParameterSegments) {
  Router router;
  router.add(open_route("GET", "/tasks"), echo("list"));
  router.add(open_route("GET", "/tasks/{id}"), echo("get"));
  router.add(open_route("POST", "/tasks/{id}/complete"), echo("complete"));
  router.add(open_route("GET", "/"), echo("root"));

  auto req = make("GET", "/tasks/abc");
  std::string label;
  auto res = dispatch(router, req, &label);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(body(res)["route"], "get");
  EXPECT_EQ(body(res)["params"]["id"], "abc");
  EXPECT_EQ(label, "/tasks/{id}");

  req = make("POST", "/tasks/42/complete");
  res = dispatch(router, req, &label);
  EXPECT_EQ(body(res)["route"], "complete");
  EXPECT_EQ(body(res)["params"]["id"], "42");
  EXPECT_EQ(label, "/tasks/{id}/complete");

  req = make("GET", "/tasks");
  EXPECT_EQ(body(dispatch(router, req))["route"], "list");
  req = make("GET", "/");
  EXPECT_EQ(body(dispatch(router, req))["route"], "root");
}

TEST(HttpRouter, LiteralSegmentBeatsParameterWhateverTheOrder) {
  Router router;
  router.add(open_route("GET", "/tasks/{id}"), echo("get"));
  router.add(open_route("GET", "/tasks/search"), echo("search"));
  auto req = make("GET", "/tasks/search");
  EXPECT_EQ(body(dispatch(router, req))["route"], "search");
  req = make("GET", "/tasks/other");
  EXPECT_EQ(body(dispatch(router, req))["route"], "get");
}

TEST(HttpRouter, PercentDecodesSegmentsOfTheRawPath) {
  Router router;
  router.add(open_route("GET", "/tasks/{id}"), echo("get"));
  auto req = make("GET", "");
  parse_target("/tasks/a%2Fb%20c", req);
  EXPECT_EQ(req.path, "/tasks/a/b c");
  auto res = dispatch(router, req);
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(body(res)["params"]["id"], "a/b c");  // %2F stayed inside its segment
}

TEST(HttpRouter, UnknownPathIs404Problem) {
  Router router;
  router.add(open_route("GET", "/tasks/{id}"), echo("get"));
  for (const char* path : {"/nope", "/tasks", "/tasks/", "/tasks/a/b"}) {
    auto req = make("GET", path);
    std::string label;
    auto res = dispatch(router, req, &label);
    EXPECT_EQ(res.status, 404) << path;
    EXPECT_EQ(res.content_type, "application/problem+json");
    EXPECT_EQ(body(res)["status"], 404);
    EXPECT_EQ(body(res)["title"], "Not Found");
    EXPECT_TRUE(body(res)["detail"].is_string());
    EXPECT_EQ(label, "unmatched");
  }
}

TEST(HttpRouter, WrongMethodIs405WithAllow) {
  Router router;
  router.add(open_route("GET", "/tasks/{id}"), echo("get"));
  router.add(open_route("PATCH", "/tasks/{id}"), echo("patch"));
  router.add(open_route("DELETE", "/tasks/{id}"), echo("delete"));
  auto req = make("POST", "/tasks/1");
  auto res = dispatch(router, req);
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.content_type, "application/problem+json");
  ASSERT_EQ(res.headers.size(), 1u);
  EXPECT_EQ(res.headers[0].first, "Allow");
  EXPECT_EQ(res.headers[0].second, "DELETE, GET, PATCH");
}

TEST(HttpRouter, AuthenticatedRouteGetsUserIdOr401) {
  Router router;
  router.add(Route{"GET", "/users/me", true, "the caller"}, echo("me"));
  router.set_authenticator([](const Request& req) -> std::string {
    auto h = req.header("Authorization");
    if (!h || *h != "Bearer good") throw HttpError(401, "missing bearer token");
    return "user-7";
  });

  auto req = make("GET", "/users/me");
  req.headers.emplace_back("authorization", "Bearer good");
  auto res = dispatch(router, req);
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(body(res)["user"], "user-7");

  req = make("GET", "/users/me");
  res = dispatch(router, req);
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(body(res)["detail"], "missing bearer token");
  ASSERT_EQ(res.headers.size(), 1u);
  EXPECT_EQ(res.headers[0].first, "WWW-Authenticate");
}

TEST(HttpRouter, RouteWithARoleIs403WithoutItAnd401BeforeThat) {
  Router router;
  router.add(Route{"GET", "/admin/x", true, "operators", "operator"}, echo("admin"));
  router.set_authenticator([](const Request& req) -> Principal {
    auto h = req.header("Authorization");
    if (!h) throw HttpError(401, "not authenticated");
    if (*h == "Bearer op") return {"ops-1", {"operator"}};
    if (*h == "Bearer other") return {"user-2", {"auditor"}};
    return {"user-1"};
  });
  auto with = [](std::string auth) {
    auto req = make("GET", "/admin/x");
    if (!auth.empty()) req.headers.emplace_back("authorization", std::move(auth));
    return req;
  };
  auto req = with("");
  EXPECT_EQ(dispatch(router, req).status, 401);
  req = with("Bearer user");
  auto res = dispatch(router, req);
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(body(res)["detail"], "forbidden: this route is for accounts with the operator role");
  req = with("Bearer other");
  EXPECT_EQ(dispatch(router, req).status, 403);
  req = with("Bearer op");
  res = dispatch(router, req);
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(body(res)["user"], "ops-1");
}

TEST(HttpRouter, ProtectedRouteWithoutAuthenticatorIs500) {
  Router router;
  bool ran = false;
  router.add(Route{"GET", "/secret", true, ""}, [&ran](Request&) -> asio::awaitable<Response> {
    ran = true;
    co_return Response::no_content();
  });
  auto req = make("GET", "/secret");
  auto res = dispatch(router, req);
  EXPECT_EQ(res.status, 500);
  EXPECT_FALSE(ran);
}

TEST(HttpRouter, HandlerHttpErrorBecomesProblem) {
  Router router;
  router.add(open_route("POST", "/auth/register"), [](Request&) -> asio::awaitable<Response> {
    throw HttpError(409, "email already registered");
    co_return Response::no_content();
  });
  auto req = make("POST", "/auth/register");
  auto res = dispatch(router, req);
  EXPECT_EQ(res.status, 409);
  EXPECT_EQ(res.content_type, "application/problem+json");
  EXPECT_EQ(body(res), (json{{"status", 409}, {"title", "Conflict"}, {"detail", "email already registered"}}));
}

TEST(HttpRouter, OtherExceptionBecomesGeneric500) {
  Router router;
  router.add(open_route("GET", "/boom"), [](Request&) -> asio::awaitable<Response> {
    throw std::runtime_error("SELECT secret FROM users failed");
    co_return Response::no_content();
  });
  auto req = make("GET", "/boom");
  std::string label;
  auto res = dispatch(router, req, &label);
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(body(res)["detail"], "internal server error");
  EXPECT_EQ(res.body.find("SELECT"), std::string::npos);
  EXPECT_EQ(label, "/boom");
}

namespace {
std::string header_of(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}
Handler throwing(std::exception_ptr e) {
  return [e](Request&) -> asio::awaitable<Response> {
    std::rethrow_exception(e);
    co_return Response::no_content();
  };
}
}  // namespace

// A database outage is the client's to retry, not a server bug: 503 (down, read-only) or
// 507 (disk full), problem+json, Retry-After, and no SQL or path in the detail.
TEST(HttpRouter, DatabaseOutagesAre503Or507WithRetryAfterAndOtherErrorsStay500) {
  using taskstream::storage::StorageCondition;
  using taskstream::storage::StorageError;
  Router router;
  router.set_error_translator(taskstream::api::storage_outage_response);
  struct Case {
    const char* path;
    std::exception_ptr error;
    int status;
  } cases[] = {
      {"/down", std::make_exception_ptr(StorageError("postgres: cannot connect: /var/run/secret", true, StorageCondition::unavailable)), 503},
      {"/full", std::make_exception_ptr(StorageError("sqlite: database or disk is full (code 13)", false, StorageCondition::disk_full)), 507},
      {"/ro", std::make_exception_ptr(StorageError("sqlite: attempt to write a readonly database (code 8)", false, StorageCondition::read_only)), 503},
      {"/bug", std::make_exception_ptr(StorageError("sqlite: no such column: x in: SELECT x", false)), 500},
      {"/other", std::make_exception_ptr(std::runtime_error("boom")), 500},
  };
  for (const auto& c : cases) router.add(open_route("POST", c.path), throwing(c.error));
  for (const auto& c : cases) {
    auto req = make("POST", c.path);
    auto res = dispatch(router, req);
    EXPECT_EQ(res.status, c.status) << c.path;
    EXPECT_EQ(res.content_type, "application/problem+json") << c.path;
    const auto detail = body(res)["detail"].get<std::string>();
    EXPECT_EQ(detail.find("sqlite"), std::string::npos) << detail;
    EXPECT_EQ(detail.find("/var/run"), std::string::npos) << detail;
    if (c.status == 500) {
      EXPECT_EQ(header_of(res, "Retry-After"), "") << c.path;
    } else {
      EXPECT_EQ(header_of(res, "Retry-After"), "5") << c.path;
      EXPECT_NE(detail.find(c.status == 507 ? "disk is full" : std::string(c.path) == "/ro" ? "read-only" : "unavailable"), std::string::npos)
          << detail;
    }
  }
}

TEST(HttpRouter, AddRejectsBadPatterns) {
  Router router;
  EXPECT_THROW(router.add(open_route("GET", "tasks"), echo("x")), std::invalid_argument);
  EXPECT_THROW(router.add(open_route("GET", "/tasks/{}"), echo("x")), std::invalid_argument);
  router.add(open_route("GET", "/tasks"), echo("x"));
  EXPECT_THROW(router.add(open_route("GET", "/tasks"), echo("y")), std::invalid_argument);
  EXPECT_EQ(router.routes().size(), 1u);
}

TEST(HttpMessage, HeaderLookupIsCaseInsensitive) {
  Request req;
  req.headers = {{"content-type", "application/json"}, {"x-dup", "first"}, {"x-dup", "second"}};
  EXPECT_EQ(req.header("Content-Type"), "application/json");
  EXPECT_EQ(req.header("X-DUP"), "first");
  EXPECT_FALSE(req.header("authorization").has_value());
}

TEST(HttpMessage, ParseTargetDecodesPathAndQuery) {
  Request req;
  parse_target("/tasks/a%20b?status=in_progress&q=a+b%26c&flag&limit=1&limit=5&bad=%zz", req);
  EXPECT_EQ(req.raw_path, "/tasks/a%20b");
  EXPECT_EQ(req.path, "/tasks/a b");
  EXPECT_EQ(req.query_param("status"), "in_progress");
  EXPECT_EQ(req.query_param("q"), "a b&c");
  EXPECT_EQ(req.query_param("flag"), "");
  EXPECT_EQ(req.query_param("limit"), "5");  // last wins
  EXPECT_EQ(req.query_param("bad"), "%zz");  // malformed escapes are kept
  EXPECT_FALSE(req.query_param("cursor").has_value());
  EXPECT_EQ(percent_decode("a+b"), "a+b");  // '+' is a space only in queries
}

// RFC 9112 §3.2.2: the absolute form routes on its path (it was a 404 for every route).
TEST(HttpMessage, ParseTargetAcceptsTheAbsoluteForm) {
  Request req;
  parse_target("http://localhost:8000/tasks/a%20b?status=todo", req);
  EXPECT_EQ(req.raw_path, "/tasks/a%20b");
  EXPECT_EQ(req.path, "/tasks/a b");
  EXPECT_EQ(req.query_param("status"), "todo");
  parse_target("HTTPS://example.com", req);
  EXPECT_EQ(req.path, "/");
  parse_target("http://example.com?limit=5", req);
  EXPECT_EQ(req.path, "/");
  EXPECT_EQ(req.query_param("limit"), "5");
  parse_target("httpx://example.com/a", req);  // not a scheme we serve: left as it is (no route matches)
  EXPECT_EQ(req.path, "httpx://example.com/a");
}

TEST(HttpMessage, ResponseFactories) {
  auto p = Response::problem(422, "unknown field 'x'");
  EXPECT_EQ(p.content_type, "application/problem+json");
  EXPECT_EQ(json::parse(p.body), (json{{"status", 422}, {"title", "Unprocessable Content"}, {"detail", "unknown field 'x'"}}));
  EXPECT_EQ(json::parse(Response::problem(400, "d", "Custom").body)["title"], "Custom");

  auto j = Response::json(201, json{{"s", std::string("bad \xff utf8")}});
  EXPECT_EQ(j.status, 201);
  EXPECT_EQ(j.content_type, "application/json");
  EXPECT_NE(j.body.find("\xEF\xBF\xBD"), std::string::npos);  // U+FFFD: replaced, not thrown

  auto n = Response::no_content();
  EXPECT_EQ(n.status, 204);
  EXPECT_TRUE(n.body.empty());
  EXPECT_EQ(reason_phrase(404), "Not Found");
}

// ---- CORS (docs/api.md, "CORS")

namespace {

std::optional<std::string> cors_header(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return std::nullopt;
}

Router cors_router(std::vector<std::string> origins) {
  Router router;
  router.add(open_route("GET", "/tasks/{id}"), echo("get"));
  router.add(open_route("PATCH", "/tasks/{id}"), echo("patch"));
  router.add(open_route("DELETE", "/tasks/{id}"), echo("delete"));
  router.set_cors(CorsPolicy(std::move(origins)));
  return router;
}

Request preflight(std::string path, std::string origin, std::string method, std::string headers = {}) {
  auto r = make("OPTIONS", std::move(path));
  r.headers.emplace_back("origin", std::move(origin));
  r.headers.emplace_back("access-control-request-method", std::move(method));
  if (!headers.empty()) r.headers.emplace_back("access-control-request-headers", std::move(headers));
  return r;
}

}  // namespace

TEST(HttpCors, PreflightFromAListedOriginNamesTheMethodsAndHeadersWithoutCredentials) {
  const auto router = cors_router({"https://app.example.com"});
  auto req = preflight("/tasks/t1", "https://app.example.com", "PATCH", "Content-Type, If-Match, authorization");
  std::string label;
  const auto res = dispatch(router, req, &label);
  EXPECT_EQ(res.status, 204);
  EXPECT_EQ(label, "preflight");
  EXPECT_EQ(cors_header(res, "Access-Control-Allow-Origin"), "https://app.example.com");
  EXPECT_EQ(cors_header(res, "Access-Control-Allow-Methods"), "DELETE, GET, PATCH");
  const auto allowed = cors_header(res, "Access-Control-Allow-Headers").value_or("");
  for (auto h : {"authorization", "content-type", "if-match", "x-request-id"}) EXPECT_NE(allowed.find(h), std::string::npos) << h;
  EXPECT_EQ(cors_header(res, "Access-Control-Max-Age"), "600");
  EXPECT_NE(cors_header(res, "Vary").value_or("").find("Origin"), std::string::npos);
  EXPECT_FALSE(cors_header(res, "Access-Control-Allow-Credentials")) << "credentials stay off";
}

TEST(HttpCors, PreflightRefusalsAreProblemsNamingWhatWasRefused) {
  const auto router = cors_router({"https://app.example.com"});
  auto other = preflight("/tasks/t1", "https://evil.example.com", "DELETE");
  auto res = dispatch(router, other);
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(res.content_type, "application/problem+json");
  EXPECT_NE(body(res)["detail"].get<std::string>().find("https://evil.example.com"), std::string::npos);
  EXPECT_FALSE(cors_header(res, "Access-Control-Allow-Origin"));

  auto method = preflight("/tasks/t1", "https://app.example.com", "PUT");
  res = dispatch(router, method);
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(cors_header(res, "Allow"), "DELETE, GET, PATCH");

  auto path = preflight("/nowhere", "https://app.example.com", "GET");
  EXPECT_EQ(dispatch(router, path).status, 404);

  auto header = preflight("/tasks/t1", "https://app.example.com", "GET", "X-Secret");
  res = dispatch(router, header);
  EXPECT_EQ(res.status, 403);
  EXPECT_NE(body(res)["detail"].get<std::string>().find("x-secret"), std::string::npos);

  auto null_origin = preflight("/tasks/t1", "null", "GET");
  EXPECT_EQ(dispatch(router, null_origin).status, 403);
}

TEST(HttpCors, AnswersCarryAllowOriginForListedOriginsAndVaryAlways) {
  const auto router = cors_router({"https://app.example.com"});
  auto listed = make("GET", "/tasks/t1");
  listed.headers.emplace_back("origin", "https://app.example.com");
  auto res = dispatch(router, listed);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(cors_header(res, "Access-Control-Allow-Origin"), "https://app.example.com");
  EXPECT_NE(cors_header(res, "Access-Control-Expose-Headers").value_or("").find("ETag"), std::string::npos);
  EXPECT_EQ(cors_header(res, "Vary"), "Origin");
  EXPECT_FALSE(cors_header(res, "Access-Control-Allow-Credentials"));

  auto unlisted = make("GET", "/tasks/t1");
  unlisted.headers.emplace_back("origin", "https://evil.example.com");
  res = dispatch(router, unlisted);
  EXPECT_EQ(res.status, 200) << "the server answers; the browser withholds it from the page";
  EXPECT_FALSE(cors_header(res, "Access-Control-Allow-Origin"));
  EXPECT_EQ(cors_header(res, "Vary"), "Origin");

  // Errors too: a page must be able to read the problem it caused.
  auto missing = make("GET", "/nowhere");
  missing.headers.emplace_back("origin", "https://app.example.com");
  res = dispatch(router, missing);
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(cors_header(res, "Access-Control-Allow-Origin"), "https://app.example.com");
}

TEST(HttpCors, StarAllowsAnyOriginWithTheWildcard) {
  const auto router = cors_router({"*"});
  auto req = preflight("/tasks/t1", "https://anywhere.example", "DELETE");
  auto res = dispatch(router, req);
  EXPECT_EQ(res.status, 204);
  EXPECT_EQ(cors_header(res, "Access-Control-Allow-Origin"), "*");
  auto get = make("GET", "/tasks/t1");
  get.headers.emplace_back("origin", "https://anywhere.example");
  EXPECT_EQ(cors_header(dispatch(router, get), "Access-Control-Allow-Origin"), "*");
}

TEST(HttpCors, OffWithoutOriginsAndPlainOptionsStaysMethodNotAllowed) {
  const auto router = cors_router({});
  auto get = make("GET", "/tasks/t1");
  get.headers.emplace_back("origin", "https://app.example.com");
  const auto res = dispatch(router, get);
  EXPECT_TRUE(res.headers.empty()) << "no CORS header at all when CORS_ORIGINS is empty";
  auto pre = preflight("/tasks/t1", "https://app.example.com", "GET");
  EXPECT_EQ(dispatch(router, pre).status, 403);
  auto options = make("OPTIONS", "/tasks/t1");  // not a preflight: no Access-Control-Request-Method
  EXPECT_EQ(dispatch(router, options).status, 405);
}
