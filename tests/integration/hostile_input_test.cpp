// Bad input on every route of docs/api.md, through a real `taskstream serve`: malformed
// JSON, wrong types, huge strings, deep nesting, invalid UTF-8, bodies over the limit, bad
// query parameters and path ids, unknown routes and wrong methods, malformed HTTP, and a
// slow-loris client. Each gets a clear 4xx with a problem+json body (where there is an HTTP
// answer at all), and the server keeps serving everyone else throughout.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "events/events.hpp"
#include "serve_process.hpp"

using namespace taskstream;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

/// One serve process for the suite. The login rate limit is off: these tests send far more
/// bodies to /auth/token than a person would (security_test.cpp covers the limit).
class HostileInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    serve_ = new itest::ServeProcess(std::map<std::string, std::string>{{"AUTH_RATE_LIMIT_PER_ADDRESS", "0"}, {"AUTH_RATE_LIMIT_PER_ACCOUNT", "0"}});
    auto [user, token] = serve_->new_user("hostile");
    token_ = token;
    task_id_ = serve_->call("POST", "/tasks", json{{"title", "target"}}.dump(), token_).json()["id"];
  }
  static void TearDownTestSuite() {
    // Nothing anyone sent made the server answer 500 or die.
    auto metrics = serve_->call("GET", "/metrics").body;
    EXPECT_EQ(metrics.find("status=\"500\""), std::string::npos) << metrics;
    EXPECT_EQ(serve_->stop(), 0) << serve_->log();
    delete serve_;
    serve_ = nullptr;
  }
  void TearDown() override {
    EXPECT_EQ(s().call("GET", "/healthz").status, 200) << "the server stays up";
    auto t = s().call("GET", "/tasks/" + task_id_, {}, token_);
    EXPECT_EQ(t.status, 200);
  }
  static const itest::ServeProcess& s() { return *serve_; }

  /// A problem+json answer with this status, naming it in the body.
  static void expect_problem(const itest::HttpResult& r, int status, const std::string& what) {
    EXPECT_EQ(r.status, status) << what << ": " << r.body.substr(0, 300);
    auto ct = r.headers.count("content-type") ? r.headers.at("content-type") : "";
    EXPECT_EQ(ct, "application/problem+json") << what;
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << what << ": " << r.body.substr(0, 300);
    EXPECT_EQ(j.value("status", 0), status) << what;
    EXPECT_TRUE(j.contains("title")) << what;
    EXPECT_TRUE(j.contains("detail") && j["detail"].is_string() && !j["detail"].get<std::string>().empty()) << what;
  }

  struct BodyRoute {
    std::string method, path;
    bool auth;
  };
  static std::vector<BodyRoute> body_routes() {
    return {{"POST", "/auth/register", false}, {"POST", "/auth/token", false}, {"POST", "/tasks", true}, {"PATCH", "/tasks/" + task_id_, true}};
  }
  static itest::HttpResult send(const BodyRoute& r, const std::string& body, std::map<std::string, std::string> headers = {}) {
    return s().call(r.method, r.path, body, r.auth ? token_ : std::string(), std::move(headers));
  }

  static inline itest::ServeProcess* serve_ = nullptr;
  static inline std::string token_;
  static inline std::string task_id_;
};

/// A raw TCP connection to the server, for what a well-behaved client library cannot send.
struct RawConn {
  explicit RawConn(std::uint16_t port) : socket(io) { socket.connect({boost::asio::ip::make_address("127.0.0.1"), port}); }
  /// Sends `bytes` (MSG_NOSIGNAL: a peer that closed must not kill the test with SIGPIPE).
  bool send(std::string_view bytes) {
    return ::send(socket.native_handle(), bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  /// Everything the server sends until it closes (or `timeout` passes).
  std::string read_all(std::chrono::milliseconds timeout = 10s) {
    std::string out;
    auto until = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{socket.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      auto n = ::recv(socket.native_handle(), buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  int status_of(std::string_view response) {
    if (response.substr(0, 9) != "HTTP/1.1 " || response.size() < 12) return 0;
    return std::stoi(std::string(response.substr(9, 3)));
  }
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket;
};

}  // namespace

TEST_F(HostileInput, MalformedJsonNestingUtf8AndNonObjectsOnEveryBodyRoute) {
  const std::string deep_array = std::string(100, '[') + std::string(100, ']');
  const std::string deep_in_field = "{\"title\":" + std::string(40, '[') + std::string(40, ']') + "}";
  const std::string abyss(1000 * 1000, '[');  // just under the body limit, never closed
  const std::vector<std::pair<std::string, int>> bodies{
      {"{not json", 400},
      {"", 400},
      {"   ", 400},
      {"{\"title\":\"x\"", 400},
      {"{\"title\":\"x\"} trailing", 400},
      {"{'title':'single quotes'}", 400},
      {"{\"title\":\"x\",}", 400},
      {"{\"title\":NaN}", 400},
      {deep_array, 400},
      {deep_in_field, 400},
      {abyss, 400},
      {"{\"title\":\"\xff\xfe\"}", 400},
      {"{\"email\":\"\xc3\x28@example.com\",\"password\":\"\xed\xa0\x80xxxxxxxx\"}", 400},
      {"{\"title\":\"\xc0\xaf overlong\"}", 400},
      {std::string("{\"title\":\"nul\0byte\"}", 20), 400},
      {"[1,2]", 422},
      {"null", 422},
      {"\"a string\"", 422},
      {"42", 422},
      {"true", 422},
  };
  for (const auto& route : body_routes()) {
    for (const auto& [body, status] : bodies) {
      auto r = send(route, body);
      expect_problem(r, status, route.method + " " + route.path + " with " + body.substr(0, 40));
    }
    // Over the limit (1 MiB): 413, whatever it contains.
    expect_problem(send(route, "{\"title\":\"" + std::string(2 << 20, 'x') + "\"}"), 413, route.path + " 2 MiB");
    expect_problem(send(route, std::string((1 << 20) + 1, '{')), 413, route.path + " 1 MiB + 1");
  }
}

TEST_F(HostileInput, WrongTypesAndUnknownFieldsAre422NamingTheField) {
  auto check = [&](const BodyRoute& route, const json& body, const std::string& field) {
    auto r = send(route, body.dump());
    expect_problem(r, 422, route.path + " " + body.dump().substr(0, 80));
    if (r.status == 422) {
      EXPECT_NE(r.json()["detail"].get<std::string>().find(field), std::string::npos) << r.body;
    }
  };
  const auto routes = body_routes();
  const auto& reg = routes[0];
  const auto& token = routes[1];
  for (const auto& route : {reg, token}) {
    check(route, {{"email", 123}, {"password", "long enough"}}, "email");
    check(route, {{"email", json::array({"a@example.com"})}, {"password", "long enough"}}, "email");
    check(route, {{"email", "a@example.com"}, {"password", 12345678}}, "password");
    check(route, {{"email", "a@example.com"}, {"password", json::object()}}, "password");
    check(route, {{"email", "a@example.com"}, {"password", true}}, "password");
    check(route, {{"email", "a@example.com"}}, "password");
    check(route, {{"password", "long enough"}}, "email");
    check(route, {{"email", nullptr}, {"password", "long enough"}}, "email");
    check(route, {{"email", "a@example.com"}, {"password", "long enough"}, {"remember_me", true}}, "remember_me");
  }
  // Register only: shapes and sizes.
  check(reg, {{"email", std::string(900 * 1000, 'e') + "@example.com"}, {"password", "long enough"}}, "email");
  check(reg, {{"email", "huge-pw@example.com"}, {"password", std::string(900 * 1000, 'p')}}, "password");
  check(reg, {{"email", "a@b@example.com"}, {"password", "long enough"}}, "email");
  check(reg, {{"email", "spaces in@example.com"}, {"password", "long enough"}}, "email");
  check(reg, {{"email", "@example.com"}, {"password", "long enough"}}, "email");
  check(reg, {{"email", "newline@example.com\r\nBcc: x@example.com"}, {"password", "long enough"}}, "email");
  check(reg, {{"email", "short-pw@example.com"}, {"password", "1234567"}}, "password");
  // Token: a huge email or password is just a failed login (no account can have them).
  auto huge_login = send(token, json{{"email", std::string(900 * 1000, 'e') + "@example.com"}, {"password", std::string(1000, 'p')}}.dump());
  expect_problem(huge_login, 401, "huge email at /auth/token");
  auto huge_pw = send(token, json{{"email", "nobody@example.com"}, {"password", std::string(900 * 1000, 'p')}}.dump());
  expect_problem(huge_pw, 401, "huge password at /auth/token");

  for (const auto& route : {routes[2], routes[3]}) {
    const bool post = route.method == "POST";
    auto with_title = [&](json b) {
      if (post && !b.contains("title")) b["title"] = "ok";
      return b;
    };
    check(route, with_title({{"title", 42}}), "title");
    check(route, with_title({{"title", json::object()}}), "title");
    check(route, with_title({{"title", json::array({"a"})}}), "title");
    check(route, with_title({{"title", nullptr}}), "title");
    check(route, with_title({{"title", ""}}), "title");
    check(route, with_title({{"title", std::string(900 * 1000, 't')}}), "title");
    check(route, with_title({{"title", std::string(201, 't')}}), "title");
    check(route, with_title({{"description", 5}}), "description");
    check(route, with_title({{"description", json::array()}}), "description");
    check(route, with_title({{"description", std::string(900 * 1000, 'd')}}), "description");
    check(route, with_title({{"status", 1}}), "status");
    check(route, with_title({{"status", "DONE"}}), "status");
    check(route, with_title({{"status", nullptr}}), "status");
    check(route, with_title({{"priority", true}}), "priority");
    check(route, with_title({{"priority", "urgent"}}), "priority");
    check(route, with_title({{"due_at", 12}}), "due_at");
    check(route, with_title({{"due_at", "2026-13-45T99:00:00Z"}}), "due_at");
    check(route, with_title({{"due_at", "next tuesday"}}), "due_at");
    check(route, with_title({{"tags", json::array({"x"})}}), "tags");
    check(route, with_title({{"__proto__", json::object()}}), "__proto__");
  }
}

TEST_F(HostileInput, BadIfMatchHeaders) {
  const std::string path = "/tasks/" + task_id_;
  for (const std::string v : {"abc", "\"\"", "W/", "1.5", "-", "99999999999999999999999", "-1", "\"1", "1, 2", "\"1\",", "W/\"1\"", "\"1\" \"1\""}) {
    auto r = s().call("PATCH", path, json{{"title", "x"}}.dump(), token_, {{"If-Match", v}});
    EXPECT_TRUE(r.status == 400 || r.status == 412) << v << ": " << r.status << " " << r.body;
    expect_problem(r, r.status, "If-Match " + v);
  }
  EXPECT_EQ(s().call("GET", path, {}, token_).json()["title"], "target");
}

TEST_F(HostileInput, BadQueryParametersAre422) {
  for (const std::string& q : std::vector<std::string>{"limit=abc", "limit=", "limit=-1", "limit=0", "limit=101", "limit=1e3", "limit=5.5", "limit=%00",
                              "limit=99999999999999999999999", "limit=5&limit=abc", "limit=+5", "limit=%205", "status=DONE",
                              "status=nope", "status=todo,done", "status=%FF", "cursor=garbage!", "cursor=%FF%FE%00",
                              "cursor=" + std::string(2000, 'A'), "cursor=eyJ4IjoxfQ"}) {
    auto r = s().call("GET", "/tasks?" + q, {}, token_);
    expect_problem(r, 422, "GET /tasks?" + q.substr(0, 60));
  }
  for (const std::string& q : std::vector<std::string>{"unread=maybe", "unread=TRUE", "unread=2", "unread=%00", "limit=0", "limit=201", "limit=x",
                              "unread=" + std::string(5000, 't')}) {
    auto r = s().call("GET", "/notifications?" + q, {}, token_);
    expect_problem(r, 422, "GET /notifications?" + q.substr(0, 60));
  }
  // Unknown parameters and odd-but-valid encodings are accepted.
  EXPECT_EQ(s().call("GET", "/tasks?colour=red&&&=&limit=5", {}, token_).status, 200);
  EXPECT_EQ(s().call("GET", "/notifications?unread=1", {}, token_).status, 200);
  // Present but empty is a value, and not a boolean (the OpenAPI says boolean).
  EXPECT_EQ(s().call("GET", "/notifications?unread=", {}, token_).status, 422);
}

TEST_F(HostileInput, BadIdsInPathsAre404) {
  const std::vector<std::string> ids{"not-a-uuid",
                                     "%00",
                                     "..%2F..%2Fetc%2Fpasswd",
                                     "%27%20OR%201%3D1%20--",
                                     "1",
                                     "-1",
                                     std::string(2000, 'a'),
                                     "%FF%FE",
                                     events::new_event_id() + "x",
                                     events::new_event_id(),  // well formed, nobody's
                                     "00000000-0000-0000-0000-000000000000"};
  for (const auto& id : ids) {
    const std::string what = id.substr(0, 40);
    expect_problem(s().call("GET", "/tasks/" + id, {}, token_), 404, "GET " + what);
    expect_problem(s().call("PATCH", "/tasks/" + id, json{{"title", "x"}}.dump(), token_), 404, "PATCH " + what);
    expect_problem(s().call("POST", "/tasks/" + id + "/complete", {}, token_), 404, "complete " + what);
    expect_problem(s().call("DELETE", "/tasks/" + id, {}, token_), 404, "DELETE " + what);
    expect_problem(s().call("GET", "/tasks/" + id + "/history", {}, token_), 404, "history " + what);
    expect_problem(s().call("POST", "/notifications/" + id + "/read", {}, token_), 404, "read " + what);
  }
  // A body on a route that takes none is ignored, not trusted.
  auto complete_with_body = s().call("POST", "/tasks/" + events::new_event_id() + "/complete", json{{"user_id", "x"}}.dump(), token_);
  EXPECT_EQ(complete_with_body.status, 404);
}

TEST_F(HostileInput, UnknownRoutesAre404AndWrongMethods405) {
  for (const std::string& p : std::vector<std::string>{"/nope", "/tasks/a/b/c", "/auth", "/auth/", "/users", "/tasks/" + task_id_ + "/undo", "/../etc/passwd",
                              "/%2e%2e/%2e%2e/etc/passwd", "/notifications/x", "/" + std::string(3000, 'z')}) {
    expect_problem(s().call("GET", p, {}, token_), 404, "GET " + p.substr(0, 40));
  }
  const std::vector<std::pair<std::string, std::string>> wrong{{"PUT", "/tasks/" + task_id_}, {"DELETE", "/tasks"},
                                                               {"PUT", "/tasks"},              {"GET", "/auth/token"},
                                                               {"GET", "/auth/register"},      {"POST", "/users/me"},
                                                               {"DELETE", "/users/me"},        {"PATCH", "/notifications"},
                                                               {"GET", "/notifications/" + task_id_ + "/read"},
                                                               {"POST", "/healthz"},           {"GET", "/tasks/" + task_id_ + "/complete"}};
  for (const auto& [method, path] : wrong) {
    auto r = s().call(method, path, "{}", token_);
    expect_problem(r, 405, method + " " + path);
    EXPECT_FALSE(r.headers["allow"].empty()) << method << " " << path;
  }
}

TEST_F(HostileInput, MalformedHttpGets400AndOversizeHeads431) {
  auto raw = [&](const std::string& bytes) {
    RawConn c(s().port());
    c.send(bytes);
    ::shutdown(c.socket.native_handle(), SHUT_WR);  // so the server's drain after its answer ends at once
    const auto response = c.read_all();
    return std::pair{c.status_of(response), response};
  };
  for (const std::string& bad : {std::string("GARBAGE\r\n\r\n"), std::string("GET\r\n\r\n"), std::string("GET /healthz HTTP/9.9\r\n\r\n"),
                                std::string("GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"),
                                std::string("POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
                                std::string("POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"),
                                std::string("POST /tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"),
                                std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nBad\x01Name: v\r\n\r\n")}) {
    auto [status, response] = raw(bad);
    EXPECT_EQ(status, 400) << bad << "\n" << response;
    EXPECT_NE(response.find("application/problem+json"), std::string::npos) << response;
  }
  // A head over the limit: 431.
  auto [big_status, big] = raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(64 * 1024, 'p') + "\r\n\r\n");
  EXPECT_EQ(big_status, 431) << big.substr(0, 300);
  // An announced oversize body is refused before it is sent.
  auto [announced, ann] = raw("POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n");
  EXPECT_EQ(announced, 413) << ann;
  // A chunked body that grows past the limit: 413 too.
  std::string chunked = "POST /auth/register HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(64 * 1024, 'a');
  for (int i = 0; i < 20; ++i) chunked += "10000\r\n" + chunk + "\r\n";
  chunked += "0\r\n\r\n";
  auto [chunked_status, ch] = raw(chunked);
  EXPECT_EQ(chunked_status, 413) << ch.substr(0, 300);
  // A connection that opens and closes at once, or sends half a request line and goes.
  { RawConn c(s().port()); }
  {
    RawConn c(s().port());
    c.send("GET /tas");
  }
}

TEST_F(HostileInput, SlowLorisClientsAreCutOffWhileOthersAreServed) {
  // The head must arrive within the server's header timeout (10 s, not configurable); these
  // clients send one byte every 500 ms forever and never finish it.
  constexpr int kSlow = 8;
  std::vector<std::unique_ptr<RawConn>> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<RawConn>(s().port()));
    slow.back()->send("POST /auth/token HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  }
  std::atomic<bool> done{false};
  std::vector<bool> cut(kSlow, false);
  std::vector<std::string> answers(kSlow);
  std::thread dripper([&] {
    const auto until = std::chrono::steady_clock::now() + 60s;  // generous bound, not a threshold
    while (std::chrono::steady_clock::now() < until && std::count(cut.begin(), cut.end(), true) < kSlow) {
      for (int i = 0; i < kSlow; ++i) {
        if (cut[i]) continue;
        auto fd = slow[i]->socket.native_handle();
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 0) > 0) {
          char buf[4096];
          auto n = ::recv(fd, buf, sizeof buf, 0);
          if (n > 0) {
            answers[i].append(buf, static_cast<std::size_t>(n));
          } else {
            cut[i] = true;  // EOF or reset: the server hung up
          }
          continue;
        }
        if (!slow[i]->send("a")) cut[i] = true;
      }
      std::this_thread::sleep_for(500ms);
    }
    done = true;
  });
  // Meanwhile everyone else is served as usual.
  int served = 0;
  while (!done) {
    ASSERT_EQ(s().call("GET", "/healthz").status, 200);
    ASSERT_EQ(s().call("GET", "/tasks", {}, token_).status, 200);
    ++served;
    std::this_thread::sleep_for(200ms);
  }
  dripper.join();
  EXPECT_GT(served, 0);
  for (int i = 0; i < kSlow; ++i) {
    EXPECT_TRUE(cut[i]) << "slow client " << i << " is still connected";
    EXPECT_EQ(answers[i].find("200 OK"), std::string::npos) << answers[i];
  }
}
