// Operators (docs/operations.md, "Operators"): ADMIN_EMAILS accounts get tokens with the
// signed `operator` role; every /admin route answers 401 without a valid token, 403 to any
// other account, 200 to an operator; a role written into a token without the signature is
// refused; `serve --dev` without ADMIN_EMAILS makes the first account an operator and logs it.

#include <gtest/gtest.h>
#include <sodium.h>

#include <set>

#include "events/events.hpp"
#include "kafka/producer.hpp"
#include "kafka/tail.hpp"
#include "serve_process.hpp"
#include "ws_client.hpp"

using namespace std::chrono_literals;

using namespace taskstream;
using nlohmann::json;

namespace {

std::string b64url_decode(const std::string& part) {
  std::string out(part.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), part.data(), part.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return {};
  out.resize(len);
  return out;
}

std::string b64url(const std::string& bin) {
  std::string out(sodium_base64_ENCODED_LEN(bin.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()), bin.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.find('\0'));
  return out;
}

json payload_of(const std::string& token) {
  const auto a = token.find('.'), b = token.rfind('.');
  return json::parse(b64url_decode(token.substr(a + 1, b - a - 1)));
}

/// Registers `email` and returns its token.
std::string account(const itest::ServeProcess& serve, const std::string& email) {
  json creds{{"email", email}, {"password", "correct horse battery"}};
  EXPECT_EQ(serve.call("POST", "/auth/register", creds.dump()).status, 201);
  auto t = serve.call("POST", "/auth/token", creds.dump());
  EXPECT_EQ(t.status, 200) << t.body;
  return t.json()["access_token"];
}

const std::vector<std::string> kAdminRoutes = {"/admin/outbox", "/admin/overview", "/admin/groups", "/admin/topics",
                                               "/admin/http",   "/admin/actions",  "/admin/email"};

/// The group `id` in GET /admin/groups, or null.
json group_of(const itest::ServeProcess& serve, const std::string& token, const std::string& id) {
  auto r = serve.call("GET", "/admin/groups", {}, token);
  if (r.status != 200) return nullptr;
  const auto body = r.json();  // kept: a range-for over r.json()["groups"] would read a destroyed temporary
  for (const auto& g : body["groups"])
    if (g["group_id"] == id) return g;
  return nullptr;
}

struct CliRun {
  int exit_code;
  std::string out;
};

/// The taskstream binary with `env` (the serve's) as the CLI would be run on its machine.
CliRun cli(const std::map<std::string, std::string>& env, const std::string& args) {
  std::string cmd;
  for (const auto& [k, v] : env) cmd += k + "='" + v + "' ";
  cmd += TASKSTREAM_BINARY " " + args + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (auto n = fread(buf.data(), 1, buf.size(), f)) out.append(buf.data(), n);
  const int status = pclose(f);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST(Operators, AdminRoutesAre401WithoutATokenAnd403ForOthersAndAForgedRoleIsRefused) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"ADMIN_EMAILS", "Ops@Example.com"}, {"KAFKA_ENABLED", "false"}});
  const auto ops = account(serve, "ops@example.com");
  const auto user = account(serve, "someone@example.com");
  EXPECT_EQ(payload_of(ops)["roles"], json::array({"operator"}));
  EXPECT_FALSE(payload_of(user).contains("roles"));

  // The user's own token with the operator role written in, the signature kept.
  auto claims = payload_of(user);
  claims["roles"] = {"operator"};
  const auto a = user.find('.'), b = user.rfind('.');
  const auto forged = user.substr(0, a + 1) + b64url(claims.dump()) + user.substr(b);

  for (const auto& route : kAdminRoutes) {
    auto none = serve.call("GET", route);
    EXPECT_EQ(none.status, 401) << route;
    EXPECT_EQ(none.headers["www-authenticate"], "Bearer") << route;
    auto other = serve.call("GET", route, {}, user);
    EXPECT_EQ(other.status, 403) << route;
    EXPECT_EQ(other.headers["content-type"], "application/problem+json");
    EXPECT_NE(other.body.find("operator role"), std::string::npos) << other.body;
    auto fake = serve.call("GET", route, {}, forged);
    EXPECT_EQ(fake.status, 401) << route;
    EXPECT_NE(fake.body.find("bad signature"), std::string::npos) << fake.body;
    EXPECT_EQ(serve.call("GET", route, {}, ops).status, 200) << route;
  }

  // The routes that act: refused the same way before anything is looked at.
  for (const std::string route : {"/admin/dlq/task-events/redrive", "/admin/email/some-id/retry"}) {
    EXPECT_EQ(serve.call("POST", route, "{}").status, 401) << route;
    EXPECT_EQ(serve.call("POST", route, "{}", user).status, 403) << route;
    EXPECT_EQ(serve.call("POST", route, "{}", forged).status, 401) << route;
  }
  auto retry = serve.call("POST", "/admin/email/no-such-notification/retry", {}, ops);
  EXPECT_EQ(retry.status, 404);
  EXPECT_NE(retry.body.find("no-such-notification"), std::string::npos) << retry.body;
  EXPECT_EQ(serve.call("GET", "/admin/email?limit=0", {}, ops).status, 422);
  EXPECT_EQ(serve.call("GET", "/admin/actions?limit=x", {}, ops).status, 422);
  auto queue = serve.call("GET", "/admin/email", {}, ops).json();
  EXPECT_EQ(queue["pending"], 0);
  EXPECT_TRUE(queue["items"].is_array());

  auto outbox = serve.call("GET", "/admin/outbox", {}, ops).json();
  EXPECT_TRUE(outbox["waiting"].is_number_integer());
  EXPECT_TRUE(outbox["oldest_age_seconds"].is_number());
  EXPECT_TRUE(outbox.contains("relay"));

  // The OpenAPI says so too.
  auto doc = serve.call("GET", "/openapi.json").json();
  for (const auto& route : kAdminRoutes) {
    const auto& responses = doc["paths"][route]["get"]["responses"];
    EXPECT_TRUE(responses.contains("401") && responses.contains("403")) << route;
  }
  EXPECT_EQ(serve.stop(), 0);
}

// The console's live feed, /admin/live: refused at the handshake like every /admin route
// (401 without a valid token, 403 for a non-operator or a foreign Origin), and an operator's
// socket gets the last sample at once, then each new one as the instance takes it.
TEST(Operators, TheLiveFeedRefusesOthersAndPushesEachSampleToAnOperator) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"ADMIN_EMAILS", "ops@example.com"}, {"KAFKA_ENABLED", "false"}});
  const auto ops = account(serve, "ops@example.com");
  const auto user = account(serve, "someone@example.com");
  auto claims = payload_of(user);
  claims["roles"] = {"operator"};
  const auto a = user.find('.'), b = user.rfind('.');
  const auto forged = user.substr(0, a + 1) + b64url(claims.dump()) + user.substr(b);
  const std::string live = "/admin/live";

  auto upgrade = [&](std::map<std::string, std::string> headers) { return itest::upgrade_status(serve, std::move(headers), live); };
  EXPECT_EQ(upgrade({}), 401);
  EXPECT_EQ(upgrade(itest::bearer(user)), 403);
  EXPECT_EQ(upgrade({{"Sec-WebSocket-Protocol", "bearer, " + user}}), 403);
  EXPECT_EQ(upgrade(itest::bearer(forged)), 401);
  EXPECT_EQ(upgrade({{"Sec-WebSocket-Protocol", "bearer, not-a-token"}}), 401);
  EXPECT_EQ(upgrade({{"Authorization", "Basic b3BzOnB3"}}), 401);
  EXPECT_EQ(upgrade({{"Origin", "https://evil.example"}, {"Sec-WebSocket-Protocol", "bearer, " + ops}}), 403);
  EXPECT_EQ(upgrade(itest::bearer(ops)), 101);
  // A plain GET: the same 401/403, and 426 for an operator (it is a WebSocket).
  EXPECT_EQ(serve.call("GET", live).status, 401);
  EXPECT_EQ(serve.call("GET", live, {}, user).status, 403);
  auto plain = serve.call("GET", live, {}, ops);
  EXPECT_EQ(plain.status, 426);
  EXPECT_EQ(plain.headers["upgrade"], "websocket");

  // As the console opens it: the token as subprotocols, which the answer names.
  itest::WsClient feed(serve.port(), {}, {"bearer", ops}, live);
  ASSERT_EQ(feed.status(), 101);
  EXPECT_EQ(feed.subprotocol(), "bearer");
  std::set<std::string> sampled;
  while (sampled.size() < 2) {  // the last sample at once, then the next (every 5 s)
    auto frame = feed.next(15s);
    ASSERT_TRUE(frame) << "no sample pushed; " << sampled.size() << " so far\n" << serve.log();
    ASSERT_EQ((*frame)["type"], "sample") << frame->dump();
    const auto& o = (*frame)["overview"];
    for (const char* box : {"rest", "outbox", "relay", "topics", "groups", "effects"}) EXPECT_TRUE(o.contains(box)) << box << " " << o.dump();
    EXPECT_EQ(o["kafka_error"], "Kafka is disabled (KAFKA_ENABLED=false)");
    ASSERT_TRUE(o["sampled_at"].is_string()) << o.dump();
    sampled.insert(o["sampled_at"].get<std::string>());
  }
  // GET /admin/overview serves the same samples (this one, or one taken since).
  EXPECT_GE(serve.call("GET", "/admin/overview", {}, ops).json()["sampled_at"].get<std::string>(), *sampled.rbegin());

  // At stop the feed says goodbye (1001), and the server exits cleanly.
  EXPECT_EQ(serve.stop(), 0);
  while (feed.next(5s)) {
  }
  EXPECT_TRUE(feed.closed());
  EXPECT_EQ(feed.close_code(), 1001) << feed.error();
}

TEST(Operators, ServeDevWithoutAdminEmailsMakesTheFirstAccountAnOperatorAndSaysSo) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"KAFKA_ENABLED", "false"}}, {"serve", "--dev"});
  const auto first = account(serve, "first@example.com");
  const auto second = account(serve, "second@example.com");
  EXPECT_EQ(payload_of(first)["roles"], json::array({"operator"}));
  EXPECT_FALSE(payload_of(second).contains("roles"));
  EXPECT_EQ(serve.call("GET", "/admin/outbox", {}, first).status, 200);
  EXPECT_EQ(serve.call("GET", "/admin/outbox", {}, second).status, 403);
  const auto log = serve.log();
  EXPECT_NE(log.find("the first account registered is an operator"), std::string::npos) << log;
  EXPECT_NE(log.find("first@example.com is an operator, as the first account"), std::string::npos) << log;
  EXPECT_EQ(serve.stop(), 0);
}

TEST(Operators, ServeDevWithAdminEmailsMakesOnlyThoseOperators) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"KAFKA_ENABLED", "false"}, {"ADMIN_EMAILS", "boss@example.com"}},
                            {"serve", "--dev"});
  const auto first = account(serve, "first@example.com");
  const auto boss = account(serve, "boss@example.com");
  EXPECT_EQ(serve.call("GET", "/admin/outbox", {}, first).status, 403);
  EXPECT_EQ(serve.call("GET", "/admin/outbox", {}, boss).status, 200);
  EXPECT_EQ(serve.log().find("is an operator, as the first account"), std::string::npos);
  EXPECT_EQ(serve.stop(), 0);
}

TEST(Operators, TheAuditGroupsLagClimbsWhileItsWorkerIsStoppedAndFallsToZeroAfter) {
  // serve runs no audit consumer; a worker process does, in the group the console watches.
  // 21 logins from one address (the operator and 20 users): over the default burst of 20 per
  // minute when the worker joins its group quickly (TSan CI met a 429).
  itest::ServeProcess serve(std::map<std::string, std::string>{{"ADMIN_EMAILS", "ops@example.com"}, {"AUTH_RATE_LIMIT_PER_ADDRESS", "1000"}},
                            {"serve", "--consumers", "notification"});
  const auto ops = account(serve, "ops@example.com");
  const auto group = serve.env().at("KAFKA_CONSUMER_GROUP_AUDIT");
  const auto topic = serve.topic("task-events");
  auto env = serve.env();
  const auto worker_port = itest::free_port();
  env["HTTP_PORT"] = std::to_string(worker_port);
  auto worker = std::make_unique<itest::ServeProcess>(env, std::vector<std::string>{"worker", "--consumers", "audit", "--port", std::to_string(worker_port)});

  // The group shows up with its member and nothing to do.
  json g;
  ASSERT_TRUE(itest::wait_until([&] {
    g = group_of(serve, ops, group);
    return g.is_object() && g["members"].size() == 1 && g["state"] == "Stable";
  }, 60s)) << serve.call("GET", "/admin/groups", {}, ops).body << "\n" << worker->log();
  EXPECT_EQ(g["lag"], 0);
  EXPECT_FALSE(g["members"][0]["assignment"].empty()) << g.dump();
  ASSERT_EQ(worker->stop(), 0) << worker->log();

  // 1,000 changes by 20 users (keys spread over the 3 partitions) while nobody consumes.
  std::vector<std::string> tokens;
  for (int u = 0; u < 20; ++u) tokens.push_back(serve.new_user("lag").second);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(serve.call("POST", "/tasks", json{{"title", "lag " + std::to_string(i)}}.dump(), tokens[static_cast<std::size_t>(i) % tokens.size()]).status, 201);

  ASSERT_TRUE(itest::wait_until([&] {
    g = group_of(serve, ops, group);
    return g.is_object() && g["lag"].get<std::int64_t>() >= 1000;
  }, 60s)) << g.dump();
  EXPECT_EQ(g["lag"], 1000) << "one task_created per POST on " << topic;
  EXPECT_TRUE(g["members"].empty());
  EXPECT_EQ(g["health"], "stuck") << "lagging with nobody consuming";
  std::set<std::int32_t> lagging;
  std::int64_t sum = 0;
  for (const auto& p : g["partitions"]) {
    if (p["topic"] != topic) continue;
    EXPECT_EQ(p["lag"].get<std::int64_t>(), p["end"].get<std::int64_t>() - (p["committed"].is_null() ? 0 : p["committed"].get<std::int64_t>())) << p.dump();
    if (p["lag"].get<std::int64_t>() > 0) lagging.insert(p["partition"].get<std::int32_t>());
    sum += p["lag"].get<std::int64_t>();
  }
  EXPECT_EQ(sum, 1000);
  EXPECT_GE(lagging.size(), 2u) << "20 users' keys land on more than one of 3 partitions";

  // The worker comes back: the lag falls to 0, and the 15-minute history shows the climb.
  worker = std::make_unique<itest::ServeProcess>(env, std::vector<std::string>{"worker", "--consumers", "audit", "--port", std::to_string(worker_port)});
  ASSERT_TRUE(itest::wait_until([&] {
    g = group_of(serve, ops, group);
    return g.is_object() && g["lag"] == 0 && g["members"].size() == 1;
  }, 90s)) << g.dump();
  std::int64_t peak = 0;
  for (const auto& v : g["history"]["lag"])
    if (v.is_number()) peak = std::max(peak, v.get<std::int64_t>());
  EXPECT_EQ(peak, 1000);
  EXPECT_EQ(g["history"]["t"].size(), g["history"]["lag"].size());
  EXPECT_EQ(g["history"]["lag"].back(), 0);
  EXPECT_EQ(g["health"], "ok");

  // The other views answer from the same samples.
  auto topics = serve.call("GET", "/admin/topics", {}, ops).json();
  bool found = false;
  for (const auto& t : topics["topics"])
    if (t["name"] == topic) {
      found = true;
      EXPECT_EQ(t["partitions"].size(), 3u);
      EXPECT_EQ(t["messages"], 1000);
      EXPECT_EQ(t["under_replicated"], 0);
      EXPECT_GE(t["partitions"][0]["leader"].get<int>(), 0);
    }
  EXPECT_TRUE(found) << topics.dump();
  auto overview = serve.call("GET", "/admin/overview", {}, ops).json();
  EXPECT_EQ(overview["outbox"]["waiting"], 0) << overview.dump();
  EXPECT_TRUE(overview["kafka_error"].is_null()) << overview.dump();
  auto http = serve.call("GET", "/admin/http", {}, ops).json();
  bool posts = false;
  for (const auto& r : http["routes"])
    if (r["method"] == "POST" && r["route"] == "/tasks") {
      posts = true;
      EXPECT_GE(r["requests"].get<int>(), 1) << r.dump();
      EXPECT_TRUE(r["p99_ms"].is_number()) << r.dump();
    }
  EXPECT_TRUE(posts) << http.dump();
  EXPECT_EQ(worker->stop(), 0) << worker->log();
  EXPECT_EQ(serve.stop(), 0);
}

TEST(Operators, DeadLettersOfThreeReasonsAFilteredDryRunAndARedriveThatSendsThemOnceWithTheCli) {
  // serve consumes nothing; a worker's audit consumer dead-letters the poison, then stops,
  // so nothing is dead-lettered again while the letters are sent back.
  itest::ServeProcess serve(std::map<std::string, std::string>{{"ADMIN_EMAILS", "ops@example.com"}}, {"serve", "--consumers", "none"});
  const auto ops = account(serve, "ops@example.com");
  const auto topic = serve.topic("task-events");
  auto env = serve.env();
  const auto worker_port = itest::free_port();
  env["HTTP_PORT"] = std::to_string(worker_port);
  {
    itest::ServeProcess worker(env, {"worker", "--consumers", "audit", "--port", std::to_string(worker_port)});
    auto s = config::Settings::load(config::EnvMap(serve.env().begin(), serve.env().end()));
    kafka::Producer producer(s);
    const std::string bad_schema = R"({"type":"task_created","user_id":"u","task_id":"not-a-uuid","timestamp":"2026-11-27T12:00:00Z","task_data":{}})";
    const std::string unknown = R"({"type":"task_exploded","user_id":"u","task_id":"0b7e7a43-3c4c-4e1e-9d8f-4c8f8ad2b2a1","timestamp":"2026-11-27T12:00:00Z","task_data":{}})";
    for (int i = 0; i < 2; ++i)
      for (const auto& p : {std::string("{not json"), bad_schema, unknown})
        ASSERT_TRUE(producer.send({topic, "user-" + std::to_string(i), p, {}, std::nullopt}).get().ok());
    json list;
    ASSERT_TRUE(itest::wait_until([&] {
      auto r = serve.call("GET", "/admin/dlq/" + topic, {}, ops);
      if (r.status != 200) return false;
      list = r.json();
      return list["total"] == 6;
    }, 60s)) << list.dump();
    EXPECT_EQ(worker.stop(), 0) << worker.log();
  }
  const auto all = serve.call("GET", "/admin/dlq/" + topic, {}, ops).json();
  ASSERT_EQ(all["letters"].size(), 6u) << all.dump();
  std::map<std::string, int> reasons;
  for (const auto& l : all["letters"]) {
    reasons[l["reason"]]++;
    EXPECT_EQ(l["source_topic"], topic);
    EXPECT_TRUE(l["source_offset"].is_number_integer()) << l.dump();
    EXPECT_TRUE(l["source_partition"].is_number_integer()) << l.dump();
    EXPECT_TRUE(l["first_failure"].is_string()) << l.dump();
    EXPECT_TRUE(l["error_class"].is_string()) << l.dump();
  }
  EXPECT_EQ(reasons, (std::map<std::string, int>{{"bad_json", 2}, {"schema", 2}, {"unknown_type", 2}}));

  // The filter, like the CLI's.
  auto schema = serve.call("GET", "/admin/dlq/" + topic + "?filter=reason%3Dschema", {}, ops).json();
  EXPECT_EQ(schema["total"], 6);
  EXPECT_EQ(schema["matched"], 2);
  ASSERT_EQ(schema["letters"].size(), 2u);
  for (const auto& l : schema["letters"]) {
    EXPECT_EQ(l["reason"], "schema");
    EXPECT_EQ(l["payload_json"]["task_id"], "not-a-uuid") << "JSON payloads come as JSON";
  }
  EXPECT_EQ(serve.call("GET", "/admin/dlq/" + topic + "?filter=key%3Duser-1", {}, ops).json()["matched"], 3);

  // A dry run lists exactly those and sends nothing; the redrive sends them.
  auto dry = serve.call("POST", "/admin/dlq/" + topic + "/redrive", json{{"filter", "reason=schema"}, {"dry_run", true}}.dump(), ops);
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(dry.json()["matched"], 2);
  EXPECT_EQ(dry.json()["sent"], 0);
  ASSERT_EQ(dry.json()["letters"].size(), 2u);
  std::set<std::int64_t> dry_offsets;
  const auto dry_body = dry.json();  // kept: a range-for over dry.json()[...] reads a destroyed temporary
  for (const auto& l : dry_body["letters"]) {
    EXPECT_EQ(l["reason"], "schema");
    dry_offsets.insert(l["dlq_offset"].get<std::int64_t>() * 1000 + l["dlq_partition"].get<std::int64_t>());
  }
  auto real = serve.call("POST", "/admin/dlq/" + topic + "/redrive", json{{"filter", "reason=schema"}}.dump(), ops);
  ASSERT_EQ(real.status, 200) << real.body;
  EXPECT_EQ(real.json()["sent"], 2);
  std::set<std::int64_t> sent_offsets;
  const auto real_body = real.json();
  for (const auto& l : real_body["letters"]) sent_offsets.insert(l["dlq_offset"].get<std::int64_t>() * 1000 + l["dlq_partition"].get<std::int64_t>());
  EXPECT_EQ(sent_offsets, dry_offsets) << "the dry run showed what went";

  // The CLI after it, with the same filter: the same progress memory, nothing more goes.
  auto cli_env = serve.env();
  cli_env["LOG_LEVEL"] = "warn";
  auto again = cli(cli_env, "dlq redrive " + topic + " --filter reason=schema");
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("0 sent back"), std::string::npos) << again.out;
  auto console_again = serve.call("POST", "/admin/dlq/" + topic + "/redrive", json{{"filter", "reason=schema"}}.dump(), ops).json();
  EXPECT_EQ(console_again["sent"], 0) << console_again.dump();

  // Read back from the topic: exactly the two, each once, marked as redriven.
  std::multiset<std::string> redriven;
  std::atomic<bool> stop{false};
  kafka::tail(config::Settings::load(config::EnvMap(serve.env().begin(), serve.env().end())), topic, {.from_beginning = true, .max_messages = std::nullopt, .idle_timeout = 5s},
              [&](const kafka::Message& m) {
                if (auto h = m.header("dlq.redriven_from")) redriven.insert(std::string(*h));
                return true;
              },
              stop);
  EXPECT_EQ(redriven.size(), 2u);
  EXPECT_EQ(std::set<std::string>(redriven.begin(), redriven.end()).size(), 2u) << "no letter sent twice";

  // The action log: who, what, when, how many; the CLI's runs too.
  auto actions = serve.call("GET", "/admin/actions", {}, ops).json()["items"];
  ASSERT_EQ(actions.size(), 4u) << actions.dump();
  EXPECT_EQ(actions[3]["action"], "dlq.dry_run");
  EXPECT_EQ(actions[3]["actor"], "ops@example.com");
  EXPECT_EQ(actions[3]["matched"], 2);
  EXPECT_EQ(actions[2]["action"], "dlq.redrive");
  EXPECT_EQ(actions[2]["sent"], 2);
  EXPECT_EQ(actions[2]["filter"], "reason=schema");
  EXPECT_EQ(actions[2]["target"], topic);
  EXPECT_TRUE(actions[1]["actor"].get<std::string>().starts_with("cli (")) << actions[1].dump();
  EXPECT_EQ(actions[1]["sent"], 0);
  EXPECT_EQ(actions[0]["sent"], 0);

  // Bad input: a clear error and nothing sent.
  auto bad_filter = serve.call("POST", "/admin/dlq/" + topic + "/redrive", json{{"filter", "reason"}}.dump(), ops);
  EXPECT_EQ(bad_filter.status, 422);
  EXPECT_NE(bad_filter.body.find("FIELD=VALUE"), std::string::npos) << bad_filter.body;
  EXPECT_EQ(serve.call("GET", "/admin/dlq/" + topic + "?filter=nonsense", {}, ops).status, 422);
  EXPECT_EQ(serve.call("GET", "/admin/dlq/" + topic + "?limit=0", {}, ops).status, 422);
  EXPECT_EQ(serve.call("POST", "/admin/dlq/" + topic + "/redrive", json{{"dry_run", "yes"}}.dump(), ops).status, 422);
  EXPECT_EQ(serve.call("POST", "/admin/dlq/" + topic + "/redrive", json{{"force", true}}.dump(), ops).status, 422);
  auto missing = serve.call("POST", "/admin/dlq/no-such-topic/redrive", "{}", ops);
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("no-such-topic"), std::string::npos) << missing.body;
  EXPECT_EQ(serve.call("GET", "/admin/dlq/no-such-topic", {}, ops).status, 404);
  EXPECT_EQ(serve.call("GET", "/admin/actions", {}, ops).json()["items"].size(), 4u) << "refused requests are not actions";
  EXPECT_EQ(serve.stop(), 0);
}
