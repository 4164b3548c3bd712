// The HTTP API of docs/api.md through a real `taskstream serve` (SQLite, real broker):
// accounts and tokens, task routes, ownership, validation, and the events each change
// puts on Kafka through the outbox.

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "api/api.hpp"
#include "events/events.hpp"
#include "events/schema_validator.hpp"
#include "kafka/tail.hpp"
#include "serve_process.hpp"
#include "storage/postgres/postgres_store.hpp"

using namespace taskstream;
using nlohmann::json;

namespace {

/// One serve process per backend for the whole suite.
class Api : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() {
    for (auto& [backend, serve] : serves_) {
      EXPECT_EQ(serve->stop(), 0) << backend << "\n" << serve->log();
      delete serve;
      if (backend == "postgres") storage::postgres_execute(base_url(), "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    }
    serves_.clear();
  }
  static std::string base_url() {
    const char* url = std::getenv("TASKSTREAM_TEST_DATABASE_URL");
    if (!url || !*url) throw std::runtime_error("TASKSTREAM_TEST_DATABASE_URL is not set: the PostgreSQL API tests need it (run scripts/test)");
    return url;
  }
  const itest::ServeProcess& s() {
    auto& serve = serves_[GetParam()];
    if (!serve) {
      std::map<std::string, std::string> env;
      if (GetParam() == "postgres") {
        // A schema of its own, chosen through search_path in the URL.
        schema_ = "api_" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000);
        storage::postgres_execute(base_url(), "CREATE SCHEMA " + schema_);
        env["DATABASE_URL"] = base_url() + (base_url().find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema_;
      }
      serve = new itest::ServeProcess(env);
    }
    return *serve;
  }
  static inline std::map<std::string, itest::ServeProcess*> serves_;
  static inline std::string schema_;
};

std::string alg_none_token(const std::string& sub) {
  auto b64 = [](const std::string& in) {
    static const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    int val = 0, bits = -6;
    for (unsigned char c : in) {
      val = (val << 8) + c;
      bits += 8;
      while (bits >= 0) {
        out.push_back(chars[(val >> bits) & 0x3F]);
        bits -= 6;
      }
    }
    if (bits > -6) out.push_back(chars[((val << 8) >> (bits + 8)) & 0x3F]);
    return out;
  };
  return b64(R"({"alg":"none","typ":"JWT"})") + "." + b64(json{{"sub", sub}, {"exp", 4102444800}}.dump()) + ".";
}

}  // namespace

TEST_P(Api, RegisterTokenAndMe) {
  auto email = itest::unique_name("Alice") + "@Example.com";
  json creds{{"email", email}, {"password", "s3cret-pass"}};
  auto reg = s().call("POST", "/auth/register", creds.dump());
  ASSERT_EQ(reg.status, 201) << reg.body;
  EXPECT_TRUE(events::is_uuid(reg.json()["id"].get<std::string>()));
  EXPECT_EQ(s().call("POST", "/auth/register", creds.dump()).status, 409);
  auto tok = s().call("POST", "/auth/token", creds.dump());
  ASSERT_EQ(tok.status, 200) << tok.body;
  EXPECT_EQ(tok.json()["token_type"], "bearer");
  EXPECT_GT(tok.json()["expires_in"].get<int>(), 0);
  auto me = s().call("GET", "/users/me", {}, tok.json()["access_token"]);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.json()["id"], reg.json()["id"]);

  json wrong{{"email", email}, {"password", "not-the-password"}};
  auto bad = s().call("POST", "/auth/token", wrong.dump());
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.headers["content-type"], "application/problem+json");
  EXPECT_TRUE(bad.json().contains("detail"));
  EXPECT_EQ(s().call("POST", "/auth/token", json{{"email", "nobody@example.com"}, {"password", "whatever1"}}.dump()).status, 401);
}

TEST_P(Api, RegistrationValidation) {
  EXPECT_EQ(s().call("POST", "/auth/register", json{{"email", "x@example.com"}, {"password", "short"}}.dump()).status, 422);
  EXPECT_EQ(s().call("POST", "/auth/register", json{{"email", "not-an-email"}, {"password", "long enough"}}.dump()).status, 422);
  EXPECT_EQ(s().call("POST", "/auth/register", json{{"email", "x@example.com"}}.dump()).status, 422);
  EXPECT_EQ(s().call("POST", "/auth/register", json{{"email", "x@example.com"}, {"password", "long enough"}, {"admin", true}}.dump()).status, 422);
  EXPECT_EQ(s().call("POST", "/auth/register", "{bad json").status, 400);
}

TEST_P(Api, EveryProtectedRouteRefusesMissingBadAndForgedTokens) {
  auto [user, token] = s().new_user();
  const std::string some_id = events::new_event_id();
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{{"GET", "/users/me"},
                                                                              {"POST", "/tasks"},
                                                                              {"GET", "/tasks"},
                                                                              {"GET", "/tasks/" + some_id},
                                                                              {"PATCH", "/tasks/" + some_id},
                                                                              {"POST", "/tasks/" + some_id + "/complete"},
                                                                              {"DELETE", "/tasks/" + some_id}}) {
    EXPECT_EQ(s().call(method, path).status, 401) << method << " " << path;
    EXPECT_EQ(s().call(method, path, {}, "garbage").status, 401) << method << " " << path;
    EXPECT_EQ(s().call(method, path, {}, token + "x").status, 401) << method << " " << path;
    EXPECT_EQ(s().call(method, path, {}, alg_none_token(user)).status, 401) << method << " " << path;
  }
}

TEST_P(Api, TaskLifecycleWithIfMatch) {
  auto [user, token] = s().new_user();
  auto created = s().call("POST", "/tasks", json{{"title", "Write the spec"}, {"priority", "high"}, {"due_at", "2031-12-01T17:00:00Z"}}.dump(), token);
  ASSERT_EQ(created.status, 201) << created.body;
  auto t = created.json();
  EXPECT_EQ(t["user_id"], user);
  EXPECT_EQ(t["status"], "todo");
  EXPECT_EQ(t["priority"], "high");
  EXPECT_EQ(t["version"], 1);
  EXPECT_TRUE(t["description"].is_null());
  EXPECT_TRUE(t["completed_at"].is_null());
  const std::string id = t["id"];

  EXPECT_EQ(s().call("GET", "/tasks/" + id, {}, token).json(), t);
  auto patched = s().call("PATCH", "/tasks/" + id, json{{"description", "with care"}, {"status", "in_progress"}}.dump(), token, {{"If-Match", "\"1\""}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.json()["version"], 2);
  EXPECT_EQ(patched.json()["description"], "with care");
  EXPECT_EQ(patched.headers["etag"], "\"2\"");
  auto stale = s().call("PATCH", "/tasks/" + id, json{{"title", "late"}}.dump(), token, {{"If-Match", "\"1\""}});
  EXPECT_EQ(stale.status, 412) << stale.body;
  EXPECT_EQ(s().call("GET", "/tasks/" + id, {}, token).json()["title"], "Write the spec");
  // RFC 9110 If-Match: strong comparison over a list; a weak tag or an empty list never
  // matches (412); "*" matches any version; what is not that syntax is 400.
  for (const std::string v : {"W/\"2\"", "", "\"1\", W/\"2\"", "\"x2\""}) {
    EXPECT_EQ(s().call("PATCH", "/tasks/" + id, json{{"title", "late"}}.dump(), token, {{"If-Match", v}}).status, 412) << v;
  }
  for (const std::string v : {"\"2", "\"2\",", "W/2", "2 3", "-2"}) {
    EXPECT_EQ(s().call("PATCH", "/tasks/" + id, json{{"title", "late"}}.dump(), token, {{"If-Match", v}}).status, 400) << v;
  }
  auto listed = s().call("PATCH", "/tasks/" + id, json{{"priority", "low"}}.dump(), token, {{"If-Match", "\"7\", \"2\""}});
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.headers["etag"], "\"3\"");
  auto any = s().call("PATCH", "/tasks/" + id, json{{"priority", "high"}}.dump(), token, {{"If-Match", "*"}});
  ASSERT_EQ(any.status, 200) << any.body;
  EXPECT_EQ(any.json()["version"], 4);
  // The contract's bare form: 4 reads as "4".
  EXPECT_EQ(s().call("PATCH", "/tasks/" + id, json{{"priority", "low"}}.dump(), token, {{"If-Match", "3"}}).status, 412);
  EXPECT_EQ(s().call("PATCH", "/tasks/" + id, json{{"priority", "low"}}.dump(), token, {{"If-Match", "4"}}).status, 200);
  EXPECT_EQ(s().call("GET", "/tasks/" + id, {}, token).json()["title"], "Write the spec");

  auto done = s().call("POST", "/tasks/" + id + "/complete", {}, token);
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(done.json()["status"], "done");
  EXPECT_TRUE(events::is_rfc3339(done.json()["completed_at"].get<std::string>()));
  auto reopened = s().call("PATCH", "/tasks/" + id, json{{"status", "todo"}}.dump(), token);
  EXPECT_TRUE(reopened.json()["completed_at"].is_null());

  EXPECT_EQ(s().call("DELETE", "/tasks/" + id, {}, token).status, 204);
  EXPECT_EQ(s().call("GET", "/tasks/" + id, {}, token).status, 404);
  EXPECT_EQ(s().call("DELETE", "/tasks/" + id, {}, token).status, 404);
}

TEST_P(Api, AnotherUsersTaskIsNotFoundOnEveryRoute) {
  auto [alice, alice_token] = s().new_user("alice");
  auto [bob, bob_token] = s().new_user("bob");
  auto t = s().call("POST", "/tasks", json{{"title", "alice's"}}.dump(), alice_token).json();
  const std::string path = "/tasks/" + t["id"].get<std::string>();
  EXPECT_EQ(s().call("GET", path, {}, bob_token).status, 404);
  EXPECT_EQ(s().call("PATCH", path, json{{"title", "mine now"}}.dump(), bob_token).status, 404);
  EXPECT_EQ(s().call("POST", path + "/complete", {}, bob_token).status, 404);
  EXPECT_EQ(s().call("DELETE", path, {}, bob_token).status, 404);
  EXPECT_EQ(s().call("GET", "/tasks", {}, bob_token).json()["items"].size(), 0u);
  EXPECT_EQ(s().call("GET", "/tasks?status=todo", {}, bob_token).json()["items"].size(), 0u);
  EXPECT_EQ(s().call("GET", path, {}, alice_token).json()["title"], "alice's");
  EXPECT_EQ(s().call("GET", "/tasks/not-a-uuid", {}, alice_token).status, 404);
}

TEST_P(Api, TaskBodyValidation) {
  auto [user, token] = s().new_user();
  auto post = [&](const std::string& body) { return s().call("POST", "/tasks", body, token); };
  EXPECT_EQ(post("{not json").status, 400);
  EXPECT_EQ(post("[1,2]").status, 422);
  EXPECT_EQ(post(json{{"description", "no title"}}.dump()).status, 422);
  EXPECT_EQ(post(json{{"title", ""}}.dump()).status, 422);
  EXPECT_EQ(post(json{{"title", std::string(201, 'x')}}.dump()).status, 422);
  EXPECT_EQ(post(json{{"title", std::string(200, 'x')}}.dump()).status, 201);
  EXPECT_EQ(post(json{{"title", "ok"}, {"description", std::string(10001, 'd')}}.dump()).status, 422);
  EXPECT_EQ(post(json{{"title", 42}}.dump()).status, 422);
  EXPECT_EQ(post(json{{"title", "ok"}, {"status", "finished"}}.dump()).status, 422);
  EXPECT_EQ(post(json{{"title", "ok"}, {"priority", "urgent"}}.dump()).status, 422);
  EXPECT_EQ(post(json{{"title", "ok"}, {"due_at", "tomorrow"}}.dump()).status, 422);
  auto unknown = post(json{{"title", "ok"}, {"colour", "red"}}.dump());
  EXPECT_EQ(unknown.status, 422);
  EXPECT_NE(unknown.json()["detail"].get<std::string>().find("colour"), std::string::npos);
  for (const char* owned : {"id", "user_id", "created_at", "updated_at", "completed_at", "version"}) {
    auto r = post(json{{"title", "ok"}, {owned, "x"}}.dump());
    EXPECT_EQ(r.status, 422) << owned;
    EXPECT_NE(r.json()["detail"].get<std::string>().find(owned), std::string::npos);
  }
  std::string deep(100, '[');
  EXPECT_EQ(post(deep + std::string(100, ']')).status, 400);
  EXPECT_EQ(post(std::string("{\"title\":\"\xff\xfe\"}")).status, 400);
  EXPECT_EQ(post(json{{"title", std::string(2 << 20, 'x')}}.dump()).status, 413);
  EXPECT_EQ(s().call("GET", "/tasks?limit=0", {}, token).status, 422);
  EXPECT_EQ(s().call("GET", "/tasks?status=nope", {}, token).status, 422);
  EXPECT_EQ(s().call("GET", "/tasks?cursor=garbage!", {}, token).status, 422);
  // Present but empty is not "absent": status is an enum, a cursor has a form, unread is a boolean.
  EXPECT_EQ(s().call("GET", "/tasks?status=", {}, token).status, 422);
  EXPECT_EQ(s().call("GET", "/tasks?cursor=", {}, token).status, 422);
  EXPECT_EQ(s().call("GET", "/notifications?unread=", {}, token).status, 422);
  // Any string of the cursor's form is a position in the list, even where no task is.
  EXPECT_EQ(s().call("GET", "/tasks?cursor=2999-01-01T00:00:00.000Z~00000000-0000-0000-0000-000000000000", {}, token).status, 200);
  EXPECT_EQ(s().call("PATCH", "/tasks/" + events::new_event_id(), json{{"title", "x"}}.dump(), token, {{"If-Match", "abc"}}).status, 400);
}

TEST_P(Api, ListPagesThroughEveryTaskOnceWithStatusFilter) {
  auto [user, token] = s().new_user();
  std::set<std::string> all, done;
  for (int i = 0; i < 23; ++i) {
    auto t = s().call("POST", "/tasks", json{{"title", "t" + std::to_string(i)}, {"status", i % 3 == 0 ? "done" : "todo"}}.dump(), token).json();
    all.insert(t["id"]);
    if (i % 3 == 0) done.insert(t["id"]);
  }
  auto collect = [&](const std::string& query) {
    std::vector<std::string> ids;
    std::string cursor;
    for (int pages = 0; pages < 20; ++pages) {
      auto r = s().call("GET", "/tasks?limit=5" + query + (cursor.empty() ? "" : "&cursor=" + cursor), {}, token);
      EXPECT_EQ(r.status, 200) << r.body;
      auto j = r.json();
      for (auto& t : j["items"]) ids.push_back(t["id"]);
      if (j["next_cursor"].is_null()) break;
      cursor = j["next_cursor"];
    }
    return ids;
  };
  auto ids = collect("");
  EXPECT_EQ(ids.size(), all.size());
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), all);
  auto done_ids = collect("&status=done");
  EXPECT_EQ(std::set<std::string>(done_ids.begin(), done_ids.end()), done);
}

TEST_P(Api, EachChangePutsItsEventsOnBothTopicsInSeqOrder) {
  auto [user, token] = s().new_user();
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto t = s().call("POST", "/tasks", json{{"title", "evented"}}.dump(), token, {{"traceparent", traceparent}}).json();
  const std::string id = t["id"];
  ASSERT_EQ(s().call("PATCH", "/tasks/" + id, json{{"priority", "low"}}.dump(), token).status, 200);
  ASSERT_EQ(s().call("PATCH", "/tasks/" + id, "{}", token).status, 200);  // no change: no event
  ASSERT_EQ(s().call("POST", "/tasks/" + id + "/complete", {}, token).status, 200);
  ASSERT_EQ(s().call("DELETE", "/tasks/" + id, {}, token).status, 204);

  auto settings = itest::kafka_settings();
  auto read = [&](const std::string& topic) {
    std::vector<std::pair<json, std::map<std::string, std::string>>> out;
    std::atomic<bool> stop{false};
    kafka::tail(settings, topic, {.from_beginning = true, .max_messages = std::nullopt, .idle_timeout = std::chrono::seconds(5)},
                [&](const kafka::Message& m) {
                  auto v = json::parse(m.payload());
                  if (v["user_id"] != user) return true;
                  std::map<std::string, std::string> h;
                  for (auto [k, val] : m.headers()) h[std::string(k)] = std::string(val);
                  EXPECT_EQ(m.key(), user);
                  out.emplace_back(std::move(v), std::move(h));
                  return out.size() < 4;
                },
                stop);
    return out;
  };
  auto audit = read(s().topic("task-events"));
  auto updates = read(s().topic("task-updates"));
  ASSERT_EQ(audit.size(), 4u);
  ASSERT_EQ(updates.size(), 4u);
  const std::vector<std::string> types{"task_created", "task_updated", "task_completed", "task_deleted"};
  auto task_schema = events::SchemaValidator::for_topic_kind("task-event");
  auto update_schema = events::SchemaValidator::for_topic_kind("task-update");
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(audit[i].first["type"], types[i]);
    EXPECT_EQ(audit[i].first["seq"], i + 1);
    EXPECT_EQ(updates[i].first["type"], types[i]);
    EXPECT_EQ(updates[i].first["seq"], i + 1);
    EXPECT_EQ(audit[i].second["event_id"], audit[i].first["event_id"]);
    EXPECT_EQ(audit[i].second["event_type"], types[i]);
    EXPECT_EQ(audit[i].second["schema_version"], "1");
    EXPECT_EQ(task_schema.validate(audit[i].first), std::vector<std::string>{}) << audit[i].first.dump();
    EXPECT_EQ(update_schema.validate(updates[i].first), std::vector<std::string>{}) << updates[i].first.dump();
  }
  EXPECT_EQ(audit[0].second["traceparent"], traceparent);
  EXPECT_EQ(updates[0].first["changes"]["title"], "evented");
  EXPECT_EQ(updates[1].first["changes"]["priority"], "low");
  EXPECT_EQ(updates[2].first["changes"]["status"], "done");
  EXPECT_TRUE(updates[2].first["changes"].contains("completed_at"));
  EXPECT_EQ(updates[3].first["changes"], (json{{"deleted", true}}));
  EXPECT_EQ(audit[3].first["task_data"]["id"], id);
}

TEST_P(Api, HealthReadinessMetricsAndOpenApi) {
  EXPECT_EQ(s().call("GET", "/healthz").status, 200);
  itest::HttpResult ready;
  // Ready once the WebSocket hub's consumer has joined its group (a moment after start).
  EXPECT_TRUE(itest::wait_until([&] { return (ready = s().call("GET", "/readyz")).status == 200; }, std::chrono::seconds(30))) << ready.body;
  EXPECT_EQ(ready.json()["checks"]["database"], "ok");
  EXPECT_EQ(ready.json()["checks"]["kafka"], "ok");
  EXPECT_EQ(ready.json()["checks"]["websocket"], "ok");
  auto metrics = s().call("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("outbox_events_waiting"), std::string::npos);
  auto doc = s().call("GET", "/openapi.json").json();
  EXPECT_EQ(doc["openapi"], "3.0.3");
  EXPECT_TRUE(doc["paths"].contains("/tasks/{id}"));
  EXPECT_EQ(s().call("GET", "/nope").status, 404);
  auto wrong_method = s().call("PUT", "/tasks");
  EXPECT_EQ(wrong_method.status, 405);
}

INSTANTIATE_TEST_SUITE_P(Backends, Api, ::testing::Values("sqlite", "postgres"), [](const auto& info) { return info.param; });

TEST(ApiKafkaDisabled, TheApiWorksAndNothingIsPublished) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"KAFKA_ENABLED", "false"}, {"KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1"}});
  auto [user, token] = serve.new_user();
  auto created = serve.call("POST", "/tasks", json{{"title", "offline"}}.dump(), token);
  ASSERT_EQ(created.status, 201) << created.body;
  auto ready = serve.call("GET", "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(ready.json()["checks"]["kafka"], "disabled");
  auto metrics = serve.call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("\noutbox_events_published_total 0\n"), std::string::npos) << metrics;
  EXPECT_EQ(serve.stop(), 0) << serve.log();
}
