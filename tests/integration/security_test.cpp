// The OWASP API Top 10 items that apply to us, through a real `taskstream serve`:
// object-level authorisation (tasks, history, notifications, sockets), property-level
// (server-owned fields refused, responses and events carry only their fields, no password
// hash anywhere), hostile tokens over HTTP and /ws, the login rate limits (429 with
// Retry-After, per address and per account), page-size and head limits, and secret hygiene
// of logs, /metrics and the topics.

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/socket.h>

#include <cstdio>
#include <set>

#include "auth/jwt.hpp"
#include "events/events.hpp"
#include "kafka/producer.hpp"
#include "kafka/tail.hpp"
#include "publish.hpp"
#include "serve_process.hpp"
#include "ws_client.hpp"
#include "../unit/hand_made_jwt.hpp"

using namespace taskstream;
using nlohmann::json;
using namespace std::chrono_literals;

using itest::bearer;
using itest::upgrade_status;
using itest::wait_ready;

namespace {

const std::set<std::string> kTaskFields{"id",         "user_id",    "title",        "description", "status", "priority",
                                        "due_at",     "created_at", "updated_at",   "completed_at", "version"};

std::set<std::string> keys(const json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) out.insert(k);
  return out;
}

bool subset(const std::set<std::string>& a, const std::set<std::string>& b) {
  return std::includes(b.begin(), b.end(), a.begin(), a.end());
}

// ---- hand-made tokens (libsodium HMACs, independent of libjwt and of the code under test)

using testjwt::b64url;
using testjwt::craft;
using testjwt::now_s;
using testjwt::Sig;

bool is_problem(const itest::HttpResult& r, int status) {
  if (r.status != status || r.headers.count("content-type") == 0 || r.headers.at("content-type") != "application/problem+json") return false;
  auto j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.value("status", 0) == status && j.contains("title") && j["detail"].is_string();
}

/// One request from local address `source` (e.g. 127.0.0.2: all of 127/8 is loopback).
itest::HttpResult request_from(const std::string& source, std::uint16_t port, const std::string& method, const std::string& target,
                               const std::string& body, std::map<std::string, std::string> headers = {}) {
  namespace beast = boost::beast;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.open(boost::asio::ip::tcp::v4());
  socket.bind({boost::asio::ip::make_address(source), 0});
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  beast::http::request<beast::http::string_body> req{beast::http::string_to_verb(method), target, 11};
  req.set(beast::http::field::host, "127.0.0.1");
  req.set(beast::http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  beast::http::write(socket, req);
  beast::flat_buffer buf;
  beast::http::response<beast::http::string_body> res;
  beast::http::read(socket, buf, res);
  itest::HttpResult out{static_cast<int>(res.result_int()), res.body(), {}};
  for (const auto& f : res) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    out.headers[name] = std::string(f.value());
  }
  return out;
}

/// Every message on `topic` (raw payloads and header values), read from the beginning until
/// nothing new comes for a few seconds.
std::vector<std::string> topic_texts(const std::string& topic) {
  std::vector<std::string> out;
  std::atomic<bool> stop{false};
  kafka::tail(itest::kafka_settings(), topic, {.from_beginning = true, .max_messages = std::nullopt, .idle_timeout = 5s},
              [&](const kafka::Message& m) {
                std::string text(m.payload());
                text += "\n" + std::string(m.key());
                for (auto [k, v] : m.headers()) text += "\n" + std::string(k) + "=" + std::string(v);
                out.push_back(std::move(text));
                return true;
              },
              stop);
  return out;
}

json new_notification_request(const std::string& user, const std::string& title) {
  return {{"event_id", events::new_event_id()}, {"user_id", user}, {"type", "deadline_reminder"}, {"title", title},
          {"message", "for " + user + " only"}, {"channels", {"in_app"}}};
}

}  // namespace

// ---------------------------------------------------------------- tokens

TEST(Security, HostileTokensAre401OverHttpAndOnTheWebSocket) {
  itest::ServeProcess serve;
  auto [user, token] = serve.new_user("sec-tok");
  const std::string secret = serve.env().at("JWT_SECRET");
  const json hs256{{"alg", "HS256"}, {"typ", "JWT"}};
  const json claims{{"sub", user}, {"exp", now_s() + 3600}};

  // The helpers make tokens the server accepts: the refusals below are meaningful.
  const auto good = craft(hs256, claims, secret);
  ASSERT_EQ(serve.call("GET", "/users/me", {}, good).status, 200);
  ASSERT_EQ(serve.call("GET", "/users/me", {}, craft(hs256, {{"sub", user}, {"exp", now_s() + 3600}, {"nbf", now_s() - 10}}, secret)).status, 200);

  std::string bad_sig = token;
  auto& c = bad_sig[bad_sig.rfind('.') + 3];
  c = c == 'A' ? 'B' : 'A';
  const std::map<std::string, std::string> hostile{
      {"alg none", craft({{"alg", "none"}, {"typ", "JWT"}}, claims, secret, Sig::none)},
      {"alg None signed", craft({{"alg", "None"}}, claims, secret)},
      {"HS512 same secret", craft({{"alg", "HS512"}, {"typ", "JWT"}}, claims, secret, Sig::hs512)},
      {"RS256 header, HS256 signature", craft({{"alg", "RS256"}, {"typ", "JWT"}}, claims, secret)},
      {"no alg", craft({{"typ", "JWT"}}, claims, secret)},
      {"bad signature", bad_sig},
      {"another secret", craft(hs256, claims, std::string(48, 'k'))},
      {"expired", craft(hs256, {{"sub", user}, {"exp", now_s() - 5}}, secret)},
      {"missing exp", craft(hs256, {{"sub", user}}, secret)},
      {"string exp", craft(hs256, {{"sub", user}, {"exp", std::to_string(now_s() + 3600)}}, secret)},
      {"future nbf", craft(hs256, {{"sub", user}, {"exp", now_s() + 7200}, {"nbf", now_s() + 3600}}, secret)},
      {"non-integer nbf", craft(hs256, {{"sub", user}, {"exp", now_s() + 7200}, {"nbf", "soon"}}, secret)},
      {"missing sub", craft(hs256, {{"exp", now_s() + 3600}}, secret)},
      {"signature stripped", token.substr(0, token.rfind('.') + 1)},
      {"two parts", token.substr(0, token.rfind('.'))},
      {"garbage", "garbage"},
      {"long", std::string(3000, 'a') + "." + std::string(3000, 'b') + "." + std::string(100, 'c')},
  };
  for (const auto& [what, t] : hostile) {
    for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/users/me"}, {"GET", "/tasks"}, {"POST", "/tasks"}, {"GET", "/notifications"}}) {
      auto r = serve.call(method, path, method == "POST" ? json{{"title", "forged"}}.dump() : "", t);
      EXPECT_TRUE(is_problem(r, 401)) << what << ": " << method << " " << path << " -> " << r.status << " " << r.body;
    }
    EXPECT_EQ(upgrade_status(serve, bearer(t)), 401) << what << " (Authorization header)";
    EXPECT_EQ(upgrade_status(serve, {{"Sec-WebSocket-Protocol", "bearer, " + t}}), 401) << what << " (subprotocol)";
  }
  // Other schemes and shapes of the header.
  for (const std::string& h : std::vector<std::string>{"Basic dXNlcjpwYXNz", "Bearer", token, "Bearer " + token + " extra", "Token " + token}) {
    EXPECT_EQ(serve.call("GET", "/users/me", {}, {}, {{"Authorization", h}}).status, 401) << h;
  }
  // Nothing forged was created: the user still has no task.
  EXPECT_EQ(serve.call("GET", "/tasks", {}, token).json()["items"].size(), 0u);
  EXPECT_EQ(serve.stop(), 0) << serve.log();
}

// ---------------------------------------------------------------- object level

TEST(Security, AnotherUserGets404ForTasksHistoryAndNotifications) {
  itest::ServeProcess serve;
  auto [alice, alice_token] = serve.new_user("sec-alice");
  auto [bob, bob_token] = serve.new_user("sec-bob");
  auto created = serve.call("POST", "/tasks", json{{"title", "alice's secret plan"}}.dump(), alice_token);
  ASSERT_EQ(created.status, 201);
  const std::string id = created.json()["id"];
  ASSERT_EQ(serve.call("PATCH", "/tasks/" + id, json{{"priority", "high"}}.dump(), alice_token).status, 200);
  json history;
  ASSERT_TRUE(itest::wait_until([&] {
    auto r = serve.call("GET", "/tasks/" + id + "/history", {}, alice_token);
    history = r.status == 200 ? r.json() : json();
    return history.is_object() && history["items"].size() == 2;
  }, 60s)) << history.dump() << serve.log();

  const std::string path = "/tasks/" + id;
  for (auto [method, target, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"GET", path, ""},
           {"PATCH", path, json{{"title", "bob's now"}}.dump()},
           {"POST", path + "/complete", ""},
           {"GET", path + "/history", ""},
           {"DELETE", path, ""}}) {
    auto r = serve.call(method, target, body, bob_token);
    EXPECT_TRUE(is_problem(r, 404)) << method << " " << target << " -> " << r.status << " " << r.body;
    EXPECT_EQ(r.body.find("alice"), std::string::npos) << r.body;
  }
  // A stale or a current If-Match tells Bob nothing either (404, not 412 or 200).
  for (const char* v : {"1", "2", "\"1\"", "\"2\"", "W/\"2\"", "*", ""}) {
    EXPECT_EQ(serve.call("PATCH", path, json{{"title", "x"}}.dump(), bob_token, {{"If-Match", v}}).status, 404) << v;
  }
  auto listed = serve.call("GET", "/tasks?limit=100", {}, bob_token).json();
  EXPECT_EQ(listed["items"].size(), 0u);
  // Alice's task is untouched and her trail still there.
  auto t = serve.call("GET", path, {}, alice_token).json();
  EXPECT_EQ(t["title"], "alice's secret plan");
  EXPECT_EQ(t["version"], 2);
  EXPECT_EQ(t["status"], "todo");
  EXPECT_EQ(serve.call("GET", path + "/history", {}, alice_token).json()["items"].size(), 2u);

  // Notifications: Alice gets one; Bob neither sees nor reads it.
  kafka::Producer producer(itest::kafka_settings());
  ASSERT_TRUE(itest::publish_event(producer, serve.topic("notification.request"), new_notification_request(alice, "for alice"), alice));
  json items;
  ASSERT_TRUE(itest::wait_until([&] {
    items = serve.call("GET", "/notifications", {}, alice_token).json()["items"];
    return items.size() == 1;
  }, 60s)) << serve.log();
  const std::string nid = items[0]["id"];
  EXPECT_EQ(serve.call("GET", "/notifications", {}, bob_token).json()["items"].size(), 0u);
  EXPECT_EQ(serve.call("GET", "/notifications?unread=true", {}, bob_token).json()["items"].size(), 0u);
  EXPECT_TRUE(is_problem(serve.call("POST", "/notifications/" + nid + "/read", {}, bob_token), 404));
  auto alice_items = serve.call("GET", "/notifications?unread=true", {}, alice_token).json()["items"];
  ASSERT_EQ(alice_items.size(), 1u) << "Bob's attempt did not mark it read";
  EXPECT_EQ(alice_items[0]["read"], false);
  EXPECT_EQ(serve.call("POST", "/notifications/" + nid + "/read", {}, alice_token).status, 200);
  EXPECT_EQ(serve.stop(), 0) << serve.log();
}

TEST(Security, AUsersSocketNeverCarriesAnotherUsersUpdates) {
  itest::ServeProcess serve;
  wait_ready(serve);
  auto [alice, alice_token] = serve.new_user("sec-wsa");
  auto [bob, bob_token] = serve.new_user("sec-wsb");
  itest::WsClient alice_ws(serve.port(), bearer(alice_token));
  itest::WsClient bob_ws(serve.port(), bearer(bob_token));
  ASSERT_EQ(alice_ws.status(), 101);
  ASSERT_EQ(bob_ws.status(), 101);
  // Bob asks for everything from the start: only his own (nothing yet) may come back.
  bob_ws.send({{"type", "resume"}, {"last_seq", 0}});

  auto t = serve.call("POST", "/tasks", json{{"title", "alice live"}}.dump(), alice_token).json();
  const std::string id = t["id"];
  ASSERT_EQ(serve.call("PATCH", "/tasks/" + id, json{{"status", "in_progress"}}.dump(), alice_token).status, 200);
  ASSERT_EQ(serve.call("POST", "/tasks/" + id + "/complete", {}, alice_token).status, 200);
  kafka::Producer producer(itest::kafka_settings());
  ASSERT_TRUE(itest::publish_event(producer, serve.topic("notification.request"), new_notification_request(alice, "alice ping"), alice));

  // Alice's socket gets hers (the positive control: pushes are flowing). Whether every one of
  // them arrives is websocket_test.cpp's business; here it is only what Bob gets.
  std::vector<json> alice_frames;
  while (alice_frames.size() < 4) {
    auto f = alice_ws.next(20s);
    if (!f) break;
    alice_frames.push_back(*f);
  }
  ASSERT_FALSE(alice_frames.empty()) << serve.log();
  for (const auto& f : alice_frames) EXPECT_EQ(f.dump().find(bob), std::string::npos) << f.dump();
  // Then Bob makes a change of his own: once his socket has it, anything of Alice's that
  // was going to reach it would have too (one consumer, per-instance fan-out).
  auto bt = serve.call("POST", "/tasks", json{{"title", "bob live"}}.dump(), bob_token).json();
  std::vector<json> bob_frames;
  bool got_own = false;
  while (!got_own) {
    auto f = bob_ws.next(20s);
    if (!f) break;
    bob_frames.push_back(*f);
    got_own = (*f).value("task_id", "") == bt["id"];
  }
  ASSERT_TRUE(got_own) << serve.log();
  while (auto f = bob_ws.next(2s)) bob_frames.push_back(*f);
  for (const auto& f : bob_frames) {
    const auto text = f.dump();
    EXPECT_EQ(text.find(alice), std::string::npos) << text;
    EXPECT_EQ(text.find(id), std::string::npos) << text;
    EXPECT_EQ(text.find("alice"), std::string::npos) << text;
  }
  ASSERT_FALSE(bob_frames.empty());
  EXPECT_EQ(bob_frames.front()["type"], "resumed") << bob_frames.front().dump();
  EXPECT_EQ(bob_frames.front()["seq"], 0) << "Bob's own seq, not Alice's";

  // A resume from 0 on a fresh socket replays only the caller's own updates.
  itest::WsClient bob_again(serve.port(), bearer(bob_token));
  ASSERT_EQ(bob_again.status(), 101);
  bob_again.send({{"type", "resume"}, {"last_seq", 0}});
  std::vector<json> replay;
  while (auto f = bob_again.next(3s)) {
    replay.push_back(*f);
    if ((*f)["type"] == "resumed") break;
  }
  ASSERT_EQ(replay.size(), 2u);
  EXPECT_EQ(replay[0]["task_id"], bt["id"]);
  EXPECT_EQ(replay[1]["seq"], 1);
  EXPECT_EQ(serve.stop(), 0) << serve.log();
}

// ---------------------------------------------------------------- property level

TEST(Security, ServerOwnedAndUnknownFieldsAreRefusedOnEveryBody) {
  itest::ServeProcess serve;
  auto [user, token] = serve.new_user("sec-props");
  auto t = serve.call("POST", "/tasks", json{{"title", "mine"}}.dump(), token).json();
  const std::string path = "/tasks/" + t["id"].get<std::string>();
  const json other_values{{"id", events::new_event_id()}, {"user_id", events::new_event_id()}, {"created_at", "2020-01-01T00:00:00Z"},
                          {"updated_at", "2020-01-01T00:00:00Z"}, {"completed_at", "2020-01-01T00:00:00Z"}, {"version", 99}};
  for (const auto& [field, value] : other_values.items()) {
    for (const auto& method : {"POST", "PATCH"}) {
      json body{{field, value}};
      if (std::string(method) == "POST") body["title"] = "x";
      auto r = serve.call(method, std::string(method) == "POST" ? "/tasks" : path, body.dump(), token);
      EXPECT_TRUE(is_problem(r, 422)) << method << " " << field << " -> " << r.status;
      EXPECT_NE(r.json()["detail"].get<std::string>().find(field), std::string::npos) << r.body;
    }
  }
  // Also with If-Match and alongside valid fields: all-or-nothing.
  EXPECT_EQ(serve.call("PATCH", path, json{{"title", "renamed"}, {"version", 7}}.dump(), token, {{"If-Match", "1"}}).status, 422);
  EXPECT_EQ(serve.call("PATCH", path, json{{"title", "renamed"}, {"owner", "someone"}}.dump(), token).status, 422);
  auto after = serve.call("GET", path, {}, token).json();
  EXPECT_EQ(after, t) << "nothing changed";
  EXPECT_EQ(serve.call("GET", "/tasks", {}, token).json()["items"].size(), 1u) << "no task was created by a refused POST";

  // Accounts: no role, id or hash can be smuggled in.
  const auto email = itest::unique_name("props") + "@example.com";
  const json smuggled{{"id", events::new_event_id()}, {"password_hash", "$argon2id$v=19$x"}, {"role", "admin"},
                      {"is_admin", true}, {"created_at", "2020-01-01T00:00:00Z"}};
  for (const auto& [field, value] : smuggled.items()) {
    json body{{"email", email}, {"password", "long enough password"}, {field, value}};
    EXPECT_TRUE(is_problem(serve.call("POST", "/auth/register", body.dump()), 422)) << field;
    EXPECT_TRUE(is_problem(serve.call("POST", "/auth/token", body.dump()), 422)) << field;
  }
  EXPECT_EQ(serve.call("POST", "/auth/token", json{{"email", email}, {"password", "long enough password"}}.dump()).status, 401)
      << "the refused registrations created no account";
  EXPECT_EQ(serve.stop(), 0) << serve.log();
}

TEST(Security, ResponsesAndEventsCarryOnlyTheirFieldsAndNoPasswordHash) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"SMTP_HOST", "127.0.0.1"}, {"SMTP_PORT", "1"}});
  wait_ready(serve);
  const auto email = itest::unique_name("fields") + "@example.com";
  const std::string password = "pw-" + itest::unique_name("Zq");
  json creds{{"email", email}, {"password", password}};
  std::vector<std::string> bodies;
  auto keep = [&](const itest::HttpResult& r) {
    bodies.push_back(r.body);
    for (const auto& [k, v] : r.headers) bodies.push_back(k + ": " + v);
    return r;
  };

  auto reg = keep(serve.call("POST", "/auth/register", creds.dump()));
  ASSERT_EQ(reg.status, 201);
  EXPECT_EQ(keys(reg.json()), (std::set<std::string>{"id", "email"}));
  keep(serve.call("POST", "/auth/register", creds.dump()));  // 409
  auto tok = keep(serve.call("POST", "/auth/token", creds.dump()));
  ASSERT_EQ(tok.status, 200);
  EXPECT_EQ(keys(tok.json()), (std::set<std::string>{"access_token", "token_type", "expires_in"}));
  keep(serve.call("POST", "/auth/token", json{{"email", email}, {"password", "wrong password"}}.dump()));
  const std::string token = tok.json()["access_token"];
  const std::string user = reg.json()["id"];
  auto me = keep(serve.call("GET", "/users/me", {}, token));
  EXPECT_EQ(keys(me.json()), (std::set<std::string>{"id", "email", "created_at"}));

  auto created = keep(serve.call("POST", "/tasks", json{{"title", "fields"}, {"due_at", "2030-01-01T00:00:00Z"}}.dump(), token));
  ASSERT_EQ(created.status, 201);
  EXPECT_EQ(keys(created.json()), kTaskFields);
  const std::string id = created.json()["id"];
  EXPECT_EQ(keys(keep(serve.call("PATCH", "/tasks/" + id, json{{"description", "d"}}.dump(), token)).json()), kTaskFields);
  EXPECT_EQ(keys(keep(serve.call("POST", "/tasks/" + id + "/complete", {}, token)).json()), kTaskFields);
  EXPECT_EQ(keys(keep(serve.call("GET", "/tasks/" + id, {}, token)).json()), kTaskFields);
  auto list = keep(serve.call("GET", "/tasks", {}, token)).json();
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(keys(list["items"][0]), kTaskFields);
  EXPECT_EQ(keys(list), (std::set<std::string>{"items", "next_cursor"}));
  json history;
  ASSERT_TRUE(itest::wait_until([&] {
    history = serve.call("GET", "/tasks/" + id + "/history", {}, token).json();
    return history["items"].size() == 3;
  }, 60s)) << history.dump();
  keep(serve.call("GET", "/tasks/" + id + "/history", {}, token));
  for (const auto& e : history["items"]) {
    EXPECT_EQ(keys(e), (std::set<std::string>{"event_id", "type", "action", "seq", "timestamp", "task", "recorded_at"})) << e.dump();
    EXPECT_TRUE(subset(keys(e["task"]), kTaskFields)) << e.dump();
  }
  ASSERT_EQ(keep(serve.call("DELETE", "/tasks/" + id, {}, token)).status, 204);
  kafka::Producer producer(itest::kafka_settings());
  ASSERT_TRUE(itest::publish_event(producer, serve.topic("notification.request"), new_notification_request(user, "fields"), user));
  json notes;
  ASSERT_TRUE(itest::wait_until([&] { return (notes = serve.call("GET", "/notifications", {}, token).json()["items"]).size() == 1; }, 60s));
  EXPECT_EQ(keys(keep(serve.call("GET", "/notifications", {}, token)).json()), (std::set<std::string>{"items", "unread_count"}));
  EXPECT_EQ(keys(notes[0]), (std::set<std::string>{"id", "user_id", "task_id", "type", "title", "message", "email", "event_id",
                                                   "channels", "read", "read_at", "created_at"}));
  EXPECT_EQ(keys(keep(serve.call("POST", "/notifications/read-all", {}, token)).json()), (std::set<std::string>{"marked"}));
  keep(serve.call("GET", "/openapi.json"));

  for (const auto& b : bodies) {
    EXPECT_EQ(b.find("$argon2"), std::string::npos) << b;
    EXPECT_EQ(b.find(password), std::string::npos) << b;
    EXPECT_EQ(b.find("password_hash"), std::string::npos) << b;
  }

  // The events of this user's changes: only task fields in task_data and changes.
  std::size_t seen = 0;
  for (const auto& name : {"task-events", "task-updates", "notification.request"}) {
    for (const auto& text : topic_texts(serve.topic(name))) {
      ++seen;
      EXPECT_EQ(text.find("$argon2"), std::string::npos) << text;
      EXPECT_EQ(text.find("password"), std::string::npos) << text;
      EXPECT_EQ(text.find(password), std::string::npos) << text;
      auto v = json::parse(text.substr(0, text.find('\n')), nullptr, false);
      ASSERT_TRUE(v.is_object()) << text;
      if (v.contains("task_data")) {
        EXPECT_TRUE(subset(keys(v["task_data"]), kTaskFields)) << text;
      }
      if (v.contains("changes")) {
        auto allowed = kTaskFields;
        allowed.insert("deleted");
        EXPECT_TRUE(subset(keys(v["changes"]), allowed)) << text;
      }
    }
  }
  EXPECT_GE(seen, 9u) << "4 task events, 4 updates and the notification request";
  EXPECT_EQ(serve.stop(), 0) << serve.log();
}

// ---------------------------------------------------------------- rate limits

TEST(Security, LoginIsRateLimitedPerAddressAndPerAccountWith429AndRetryAfter) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"AUTH_RATE_LIMIT_PER_ADDRESS", "10"}, {"AUTH_RATE_LIMIT_PER_ACCOUNT", "3"}});
  const auto alice = itest::unique_name("rl-alice") + "@example.com";
  const auto bob = itest::unique_name("rl-bob") + "@example.com";
  const std::string pw = "correct horse battery";
  auto creds = [&](const std::string& email, const std::string& password) { return json{{"email", email}, {"password", password}}.dump(); };
  ASSERT_EQ(serve.call("POST", "/auth/register", creds(alice, pw)).status, 201);
  ASSERT_EQ(serve.call("POST", "/auth/register", creds(bob, pw)).status, 201);
  int attempts = 0;  // from 127.0.0.1
  auto login = [&](const std::string& email, const std::string& password, std::map<std::string, std::string> headers = {}) {
    ++attempts;
    return serve.call("POST", "/auth/token", creds(email, password), {}, std::move(headers));
  };
  auto check_429 = [](const itest::HttpResult& r, const std::string& what) {
    EXPECT_TRUE(is_problem(r, 429)) << what << ": " << r.status << " " << r.body;
    ASSERT_TRUE(r.headers.count("retry-after")) << what;
    const int s = std::stoi(r.headers.at("retry-after"));
    EXPECT_GE(s, 1) << what;
    EXPECT_LE(s, 60) << what;
  };

  // Per account, failures only: the first three are judged, the next is refused unjudged.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(login(alice, "wrong password " + std::to_string(i)).status, 401) << i;
  auto locked = login(alice, "wrong password again");
  check_429(locked, "fourth failure");
  EXPECT_NE(locked.json()["detail"].get<std::string>().find("account"), std::string::npos) << locked.body;
  check_429(login(alice, pw), "the right password while the account is limited");
  check_429(login(alice.substr(0, 1) == "r" ? "R" + alice.substr(1) : alice, pw), "the same account in other letter case");

  // Successes do not count per account: Bob logs in more often than 3 times, until the
  // per-address budget (every attempt counts, Alice's included) runs out.
  int bob_ok = 0;
  itest::HttpResult last;
  while (attempts < 15) {
    last = login(bob, pw);
    if (last.status != 200) break;
    ++bob_ok;
  }
  check_429(last, "per address");
  EXPECT_NE(last.json()["detail"].get<std::string>().find("address"), std::string::npos) << last.body;
  EXPECT_GE(bob_ok, 4) << "more successes than the per-account limit";
  EXPECT_GE(attempts, 11) << "10 a minute per address: nothing refused before the 11th attempt";
  // A forged X-Forwarded-For / X-Real-IP does not make a new client.
  check_429(login(bob, pw, {{"X-Forwarded-For", "203.0.113.9"}, {"X-Real-IP", "203.0.113.9"}}), "with X-Forwarded-For");
  // Other routes and the token Bob already has still work.
  EXPECT_EQ(serve.call("GET", "/healthz").status, 200);
  EXPECT_EQ(serve.call("POST", "/auth/register", creds(itest::unique_name("rl-carol") + "@example.com", pw)).status, 201);

  // Another client address has its own budget; Alice's account stays limited from there too.
  auto from_other = request_from("127.0.0.2", serve.port(), "POST", "/auth/token", creds(bob, pw));
  EXPECT_EQ(from_other.status, 200) << from_other.body;
  check_429(request_from("127.0.0.2", serve.port(), "POST", "/auth/token", creds(alice, pw)), "Alice from another address");
  const auto log = serve.log();
  EXPECT_NE(log.find("over the limit"), std::string::npos) << log;
  EXPECT_EQ(log.find(pw), std::string::npos);
  auto metrics = serve.call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("status=\"429\""), std::string::npos) << metrics;
  EXPECT_EQ(serve.stop(), 0) << serve.log();
}

TEST(Security, RateLimitsCanBeTurnedOff) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"AUTH_RATE_LIMIT_PER_ADDRESS", "0"}, {"AUTH_RATE_LIMIT_PER_ACCOUNT", "0"}});
  const auto email = itest::unique_name("rl-off") + "@example.com";
  ASSERT_EQ(serve.call("POST", "/auth/register", json{{"email", email}, {"password", "long enough"}}.dump()).status, 201);
  for (int i = 0; i < 30; ++i)
    ASSERT_EQ(serve.call("POST", "/auth/token", json{{"email", email}, {"password", "wrong one"}}.dump()).status, 401) << i;
  EXPECT_EQ(serve.call("POST", "/auth/token", json{{"email", email}, {"password", "long enough"}}.dump()).status, 200);
  EXPECT_EQ(serve.stop(), 0);
}

// ---------------------------------------------------------------- limits

TEST(Security, PageSizeBodyAndHeadAreCapped) {
  itest::ServeProcess serve;
  auto [user, token] = serve.new_user("sec-limits");
  EXPECT_EQ(serve.call("GET", "/tasks?limit=100", {}, token).status, 200);
  for (const char* l : {"101", "1000000", "99999999999999999999999", "-1", "0"})
    EXPECT_TRUE(is_problem(serve.call("GET", std::string("/tasks?limit=") + l, {}, token), 422)) << l;
  EXPECT_EQ(serve.call("GET", "/notifications?limit=200", {}, token).status, 200);
  EXPECT_TRUE(is_problem(serve.call("GET", "/notifications?limit=201", {}, token), 422));

  // Body: over 1 MiB is 413 on every route that takes one, before any other check.
  const std::string big(1024 * 1024 + 1, ' ');
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/auth/register"}, {"POST", "/auth/token"}, {"POST", "/tasks"}, {"PATCH", "/tasks/" + events::new_event_id()}}) {
    EXPECT_TRUE(is_problem(serve.call(method, path, big, token), 413)) << method << " " << path;
  }
  // Head: a header far over the limit is 431, as is a very long target.
  // (32 KiB: far over the server's 8 KiB, and under what the test's own HTTP client can hold.)
  auto huge_header = serve.call("GET", "/tasks", {}, token, {{"X-Padding", std::string(32 * 1024, 'p')}});
  EXPECT_TRUE(is_problem(huge_header, 431)) << huge_header.status;
  EXPECT_EQ(serve.call("GET", "/tasks?cursor=" + std::string(32 * 1024, 'c'), {}, token).status, 431);
  std::map<std::string, std::string> many;
  for (int i = 0; i < 500; ++i) many["X-H" + std::to_string(i)] = std::string(40, 'v');
  EXPECT_EQ(serve.call("GET", "/tasks", {}, token, many).status, 431);
  EXPECT_EQ(serve.call("GET", "/tasks", {}, token).status, 200) << "still serving";
  EXPECT_EQ(serve.stop(), 0) << serve.log();
}

// ---------------------------------------------------------------- secret hygiene

TEST(Security, SecretsStayOutOfLogsMetricsAndTopics) {
  const std::string jwt_secret = "jwt-" + itest::unique_name("S3cretKeyMaterial") + "-0123456789abcdef";
  const std::string smtp_password = "smtp-" + itest::unique_name("Pw");
  const std::string sasl_password = "sasl-" + itest::unique_name("Pw");
  const std::string db_password = "db-" + itest::unique_name("Pw");
  std::map<std::string, std::string> env{{"LOG_LEVEL", "debug"},
                                         {"JWT_SECRET", jwt_secret},
                                         {"SMTP_HOST", "127.0.0.1"},
                                         {"SMTP_PORT", "1"},
                                         {"SMTP_USERNAME", "mailer"},
                                         {"SMTP_PASSWORD", smtp_password},
                                         // PLAINTEXT carries no SASL: the password is loaded and never used.
                                         {"KAFKA_SASL_USERNAME", "nobody"},
                                         {"KAFKA_SASL_PASSWORD", sasl_password}};
  itest::ServeProcess serve(env);
  wait_ready(serve);
  const auto email = itest::unique_name("hygiene") + "@example.com";
  const std::string password = "pw-" + itest::unique_name("Hyg");
  const std::string wrong = "wrong-" + itest::unique_name("Hyg");
  json creds{{"email", email}, {"password", password}};
  ASSERT_EQ(serve.call("POST", "/auth/register", creds.dump()).status, 201);
  auto tok = serve.call("POST", "/auth/token", creds.dump());
  ASSERT_EQ(tok.status, 200);
  const std::string token = tok.json()["access_token"];
  EXPECT_EQ(serve.call("POST", "/auth/token", json{{"email", email}, {"password", wrong}}.dump()).status, 401);
  EXPECT_EQ(serve.call("POST", "/auth/register", json{{"email", email}, {"password", password}}.dump()).status, 409);
  EXPECT_EQ(serve.call("POST", "/auth/register", json{{"email", "x"}, {"password", wrong}}.dump()).status, 422);
  {
    itest::WsClient ws(serve.port(), bearer(token));
    ASSERT_EQ(ws.status(), 101);
    itest::WsClient browser(serve.port(), {}, {"bearer", token});
    ASSERT_EQ(browser.status(), 101);
    auto t = serve.call("POST", "/tasks", json{{"title", "hygiene"}}.dump(), token).json();
    const std::string id = t["id"];
    EXPECT_EQ(serve.call("PATCH", "/tasks/" + id, json{{"priority", "low"}}.dump(), token).status, 200);
    EXPECT_EQ(serve.call("POST", "/tasks/" + id + "/complete", {}, token).status, 200);
    EXPECT_EQ(serve.call("DELETE", "/tasks/" + id, {}, token).status, 204);
    EXPECT_TRUE(ws.next(20s).has_value()) << "the socket got the update";
  }
  // A token sent where it does not belong (a query string, a bad header) is not echoed.
  serve.call("GET", "/tasks?access_token=" + token, {}, {});
  serve.call("GET", "/users/me", {}, {}, {{"Authorization", "Bearer " + token + "x"}});
  upgrade_status(serve, bearer(token + "x"));
  const std::string metrics = serve.call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("http_requests_total"), std::string::npos);
  const std::string signature = token.substr(token.rfind('.') + 1);
  const std::map<std::string, std::string> secrets{{"JWT_SECRET", jwt_secret}, {"bearer token", token},   {"token signature", signature},
                                                   {"password", password},     {"wrong password", wrong}, {"SMTP_PASSWORD", smtp_password},
                                                   {"KAFKA_SASL_PASSWORD", sasl_password}};
  auto check = [&](const std::string& where, const std::string& text) {
    for (const auto& [name, value] : secrets) EXPECT_EQ(text.find(value), std::string::npos) << name << " appears in " << where;
    EXPECT_EQ(text.find("$argon2"), std::string::npos) << "a password hash appears in " << where;
  };
  check("/metrics", metrics);
  for (const auto& name : {"task-events", "task-updates", "notification.request"}) {
    const auto texts = topic_texts(serve.topic(name));
    std::string all;
    for (const auto& t : texts) all += t + "\n";
    check(name, all);
    check(std::string(name) + ".dlq", [&] {
      std::string dlq;
      for (const auto& t : topic_texts(serve.topic(name) + ".dlq")) dlq += t + "\n";
      return dlq;
    }());
  }
  EXPECT_EQ(serve.stop(), 0);
  const std::string log = serve.log();
  EXPECT_NE(log.find("POST /auth/token 401"), std::string::npos) << "debug request lines are on, so the check means something:\n" << log;
  check("the log", log);

  // `taskstream config` prints the settings with the secrets masked.
  std::string cmd;
  for (const auto& [k, v] : std::map<std::string, std::string>{{"JWT_SECRET", jwt_secret},
                                                              {"SMTP_PASSWORD", smtp_password},
                                                              {"KAFKA_SASL_PASSWORD", sasl_password},
                                                              {"DATABASE_URL", "postgresql://u:" + db_password + "@127.0.0.1:5432/x"}})
    cmd += k + "='" + v + "' ";
  cmd += std::string(TASKSTREAM_BINARY) + " config 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    pclose(p);
  }
  EXPECT_NE(out.find("SMTP_PASSWORD=******"), std::string::npos) << out;
  EXPECT_NE(out.find("KAFKA_SASL_PASSWORD=******"), std::string::npos) << out;
  check("taskstream config", out);
  EXPECT_EQ(out.find(db_password), std::string::npos) << out;
}
