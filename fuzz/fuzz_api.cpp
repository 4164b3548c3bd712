// Fuzz target: the HTTP API as `serve` runs it, minus the socket.
//
// The input is the bytes a client sends. They go through Beast's request parser with the
// limits src/http/server.cpp uses, the server's own conversions (src/http/wire.hpp:
// fill_request, to_beast), and the real router built by api::register_routes and
// api::register_web_routes over a real SQLite store (a file in a temporary directory that
// lives for the whole run, so requests build on each other's data). The answer is
// serialized by Beast as the server writes it and parsed back.
//
// Placeholders in the request head (not the body: its Content-Length stays right) stand for
// what a fuzzer cannot guess: `fuzz-token` a valid token of user A, `fuzz-expired` an expired
// one of A, `fuzz-task` a task of A, `fuzz-other` a task of user B.
//
// FUZZ_API_TRACE=1 prints each request line and its status (to see what an input reaches).
//
// Bugs: a sanitizer report, an exception escaping dispatch, any 5xx (the database is healthy,
// so none is the server's to give), a status outside 100..599, a JSON content type with a
// body that is not JSON, a 401 without WWW-Authenticate, a 2xx answer carrying user B's task
// to user A, or a response Beast cannot serialize and parse back.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <unistd.h>

#include <utility>  // Boost 1.74's awaitable.hpp misses it
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "api/api.hpp"
#include "auth/jwt.hpp"
#include "config/settings.hpp"
#include "http/router.hpp"
#include "http/wire.hpp"
#include "storage/sqlite/sqlite_store.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using namespace taskstream;

namespace {

constexpr std::size_t kBodyLimit = 1 << 20;  // ServerOptions::body_limit's default

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_api: %s\n", what.c_str());
  std::abort();
}

/// Everything the API needs, built once per process.
struct World {
  std::filesystem::path dir;
  config::Settings settings;
  std::unique_ptr<storage::SqliteStore> store;
  asio::thread_pool pool{2};
  std::unique_ptr<auth::JwtCodec> jwt;
  std::unique_ptr<api::ApiContext> ctx;
  http::Router router;
  std::string token_a, expired_a, task_a, task_b;
  std::string user_a;

  http::Response dispatch(http::Request& req) {
    asio::io_context io;
    http::Response out;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { out = co_await router.dispatch(req); },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run();
    return out;
  }

  /// A user and a task of theirs, through the API itself; returns {token, task id}.
  std::pair<std::string, std::string> seed_user(const std::string& email) {
    auto call = [&](std::string method, std::string target, std::string body, std::string token) {
      http::Request req;
      req.method = std::move(method);
      http::parse_target(target, req);
      req.body = std::move(body);
      req.request_id = "seed";
      req.remote = "192.0.2.1";
      req.headers.emplace_back("content-type", "application/json");
      if (!token.empty()) req.headers.emplace_back("authorization", "Bearer " + token);
      return dispatch(req);
    };
    const nlohmann::json creds{{"email", email}, {"password", "correct horse battery"}};
    if (call("POST", "/auth/register", creds.dump(), "").status != 201) fail("seed: register " + email);
    const auto t = call("POST", "/auth/token", creds.dump(), "");
    if (t.status != 200) fail("seed: token " + email);
    const std::string token = nlohmann::json::parse(t.body).at("access_token");
    const auto task = call("POST", "/tasks", R"({"title":"seeded","description":"a task to find"})", token);
    if (task.status != 201) fail("seed: task " + task.body);
    return {token, nlohmann::json::parse(task.body).at("id")};
  }

  World() {
    dir = std::filesystem::temp_directory_path() / ("fuzz-api-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string secret = "fuzz-secret-fuzz-secret-fuzz-secret-0123";
    settings = config::Settings::load({{"KAFKA_ENABLED", "false"},
                                       {"JWT_SECRET", secret},
                                       {"AUTH_RATE_LIMIT_PER_ADDRESS", "0"},
                                       {"AUTH_RATE_LIMIT_PER_ACCOUNT", "0"},
                                       {"CORS_ORIGINS", "https://app.example.com"}});
    store = std::make_unique<storage::SqliteStore>((dir / "fuzz.db").string());
    store->migrate();
    jwt = std::make_unique<auth::JwtCodec>(secret);
    ctx = std::make_unique<api::ApiContext>(api::ApiContext{settings, *store, pool, *jwt, nullptr, {}, nullptr});
    api::register_user_routes(router, *ctx);
    api::register_web_routes(router);
    auto [ta, a] = seed_user("a@fuzz.example");
    auto [tb, b] = seed_user("b@fuzz.example");
    (void)tb;
    token_a = ta;
    task_a = a;
    task_b = b;
    const auto sub = store->find_user_by_email("a@fuzz.example")->id;
    user_a = sub;
    expired_a = jwt->issue(sub, std::chrono::system_clock::now() - std::chrono::hours(2));
    // A long run outlives the hour a token lasts: keep A's token valid for the run.
    token_a = auth::JwtCodec(secret, std::chrono::hours(24 * 365)).issue(sub);
  }
  ~World() {
    pool.join();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

World* world = nullptr;

void replace_all(std::string& s, std::string_view from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
}

bool json_type(std::string_view content_type) {
  return content_type.rfind("application/json", 0) == 0 || content_type.rfind("application/problem+json", 0) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  world = new World();  // lives for the process (libFuzzer never returns from its loop)
  std::atexit([] { delete world; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  const auto head_end = input.find("\r\n\r\n");
  std::string head = input.substr(0, head_end);
  replace_all(head, "fuzz-token", world->token_a);
  replace_all(head, "fuzz-expired", world->expired_a);
  if (head.find("fuzz-task") != std::string::npos && !world->store->get_task(world->user_a, world->task_a)) {
    // An earlier input deleted it: A gets a new one, so the placeholder keeps meaning a task.
    http::Request create;
    create.method = "POST";
    http::parse_target("/tasks", create);
    create.body = R"({"title":"seeded again"})";
    create.request_id = "seed";
    create.headers.emplace_back("authorization", "Bearer " + world->token_a);
    const auto r = world->dispatch(create);
    if (r.status != 201) fail("re-seeding A's task: " + r.body);
    world->task_a = nlohmann::json::parse(r.body).at("id");
  }
  replace_all(head, "fuzz-task", world->task_a);
  replace_all(head, "fuzz-other", world->task_b);
  if (head_end != std::string::npos) input = head + input.substr(head_end);
  else input = head;

  bhttp::request_parser<bhttp::string_body> parser;
  parser.body_limit(kBodyLimit);
  parser.eager(true);
  beast::error_code ec;
  auto buffer = asio::buffer(input.data(), input.size());
  while (buffer.size() > 0 && !parser.is_done()) {
    const auto used = parser.put(buffer, ec);
    if (ec == bhttp::error::need_more) break;
    if (ec) return 0;  // the server answers 400/413/431 and closes
    if (used == 0) break;
    buffer += used;
  }
  if (!parser.is_done()) return 0;  // incomplete: the server would wait for more bytes

  http::Request req;
  req.remote = "192.0.2.1";
  http::fill_request(parser.get(), req);
  req.body = parser.get().body();
  const auto request_id = req.request_id;
  const bool head_request = req.method == "HEAD";

  http::Response res;
  try {
    res = world->dispatch(req);
  } catch (const std::exception& e) {
    fail(std::string("an exception escaped dispatch: ") + e.what());
  }
  if (std::getenv("FUZZ_API_TRACE")) std::fprintf(stderr, "%s %s -> %d\n", req.method.c_str(), req.path.c_str(), res.status);
  if (res.status < 100 || res.status > 599) fail("status outside 100..599: " + std::to_string(res.status));
  if (res.status >= 500) fail(std::to_string(res.status) + " for " + req.method + " " + req.path + ": " + res.body);
  if (json_type(res.content_type) && res.status != 204 && res.status != 304 && !nlohmann::json::accept(res.body))
    fail("a JSON content type with a body that is not JSON: " + res.body.substr(0, 200));
  if (res.status == 401) {
    bool www = false;
    for (const auto& [k, v] : res.headers) www = www || k == "WWW-Authenticate";
    if (!www) fail("401 without WWW-Authenticate");
  }
  if (res.status >= 200 && res.status < 300 && json_type(res.content_type) && res.body.find(world->task_b) != std::string::npos)
    fail("user B's task in a 2xx answer: " + req.method + " " + req.path);

  // As the server writes it, then as a client reads it.
  const int status = res.status;
  auto msg = http::to_beast(std::move(res), parser.get().version(), parser.get().keep_alive(), request_id);
  std::ostringstream wire;
  wire << msg;
  const auto text = wire.str();
  bhttp::response_parser<bhttp::string_body> back;
  back.body_limit(64 << 20);
  if (head_request) back.skip(true);
  back.eager(true);
  auto out = asio::buffer(text.data(), text.size());
  while (out.size() > 0 && !back.is_done()) {
    const auto used = back.put(out, ec);
    if (ec && ec != bhttp::error::need_more) fail("the response does not parse back: " + ec.message());
    if (used == 0) break;
    out += used;
  }
  if (!back.is_done() && !(status < 200 || status == 204 || status == 304)) back.put_eof(ec);
  if (back.get().result_int() != static_cast<unsigned>(status)) fail("the response parsed back with another status");
  return 0;
}
