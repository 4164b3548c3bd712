// The audit consumer against the real broker: one row per event_id (duplicates absorbed),
// seed-shaped events recorded, poison dead-lettered; and GET /tasks/{id}/history through
// a real serve process.

#include <gtest/gtest.h>

#include <filesystem>
#include <sys/wait.h>

#include "events/events.hpp"
#include "kafka/producer.hpp"
#include "serve_process.hpp"
#include "storage/store.hpp"
#include "workers/audit_consumer.hpp"

using namespace taskstream;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string task_event(const std::string& event_id, const std::string& user, const std::string& task, std::int64_t seq, const std::string& type) {
  events::TaskEvent e;
  e.event_id = event_id;
  e.type = type;
  e.action = std::string(events::action_for(type));
  e.timestamp = events::now_rfc3339();
  e.user_id = user;
  e.task_id = task;
  e.seq = seq;
  e.task_data = {{"id", task}, {"title", "audited"}};
  return events::serialize(e);
}

}  // namespace

TEST(AuditConsumer, OneRowPerEventIdSeedShapedRecordedPoisonDeadLettered) {
  auto s = itest::kafka_settings({{"DATABASE_URL", "sqlite:///" + (std::filesystem::temp_directory_path() / (itest::unique_name("audit") + ".db")).string()}});
  const auto topic = itest::unique_name("audit-events");
  itest::create_topic_with_dlq(s, topic, 3);
  auto store = storage::open_store(s.database);
  store->migrate();

  const std::string user = "audit-user", task = events::new_event_id();
  const std::string id1 = events::new_event_id(), id2 = events::new_event_id();
  kafka::Producer producer(s);
  auto send = [&](const std::string& payload) { ASSERT_TRUE(producer.send({topic, user, payload, {}, std::nullopt}).get().ok()); };
  send(task_event(id1, user, task, 1, "task_created"));
  send(task_event(id1, user, task, 1, "task_created"));  // the same event again: a redelivery
  send("{\"truncated");
  send(task_event(id2, user, task, 2, "task_completed"));
  // The seed's own shape: no event_id, no seq, no action.
  send(json{{"type", "task_updated"}, {"task_id", task}, {"task_data", {{"title", "from the seed"}}}, {"user_id", user},
            {"timestamp", "2026-11-27T12:00:00.000000+00:00"}}.dump());

  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("audit-group");
  o.topics = {topic};
  workers::apply_audit_batching(o);
  kafka::ConsumerRunner runner(s, o, workers::audit_handler(*store, o.group_id));
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return runner.stats().processed + runner.stats().dead_lettered >= 5; }));
  runner.stop();

  auto history = store->task_history(user, task);
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(runner.stats().dead_lettered, 1u);
  std::multiset<std::string> ids;
  for (const auto& h : history) ids.insert(h.event_id);
  EXPECT_EQ(ids.count(id1), 1u);
  EXPECT_EQ(ids.count(id2), 1u);
  auto seed = std::find_if(history.begin(), history.end(), [](auto& h) { return !h.seq; });
  ASSERT_NE(seed, history.end());
  EXPECT_EQ(seed->action, "updated");
  EXPECT_TRUE(events::is_uuid(seed->event_id));
  EXPECT_EQ(json::parse(seed->task_data)["title"], "from the seed");
}

TEST(AuditConsumer, HistoryRouteShowsTheTrailOldestFirstToTheOwnerOnly) {
  itest::ServeProcess serve;
  auto [user, token] = serve.new_user("hist");
  auto [other, other_token] = serve.new_user("other");
  auto t = serve.call("POST", "/tasks", json{{"title", "traced"}}.dump(), token).json();
  const std::string path = "/tasks/" + t["id"].get<std::string>();
  ASSERT_EQ(serve.call("PATCH", path, json{{"priority", "high"}}.dump(), token).status, 200);
  ASSERT_EQ(serve.call("POST", path + "/complete", {}, token).status, 200);
  ASSERT_EQ(serve.call("DELETE", path, {}, token).status, 204);

  // The task is gone, its trail is kept: 410 Gone, a problem+json carrying the trail.
  json items;
  ASSERT_TRUE(itest::wait_until([&] {
    auto r = serve.call("GET", path + "/history", {}, token);
    if (r.status != 410) return false;
    EXPECT_EQ(r.headers["content-type"], "application/problem+json");
    items = r.json()["items"];
    return items.size() >= 4;
  }, 60s)) << serve.log();
  ASSERT_EQ(items.size(), 4u);
  std::vector<std::string> types;
  for (auto& i : items) types.push_back(i["type"]);
  EXPECT_EQ(types, (std::vector<std::string>{"task_created", "task_updated", "task_completed", "task_deleted"}));
  EXPECT_EQ(items[0]["seq"], 1);
  EXPECT_EQ(items[3]["seq"], 4);
  EXPECT_EQ(items[1]["task"]["priority"], "high");
  EXPECT_EQ(serve.call("GET", path + "/history", {}, other_token).status, 404);
  EXPECT_EQ(serve.call("GET", "/tasks/" + events::new_event_id() + "/history", {}, token).status, 404);
  EXPECT_EQ(serve.stop(), 0);
}

TEST(Worker, RunsTheAuditConsumerWithHealthOnItsOwnPortAndStopsCleanly) {
  // serve writes events (and runs no consumer); a worker process records them.
  itest::ServeProcess serve({}, {"serve", "--consumers", "none"});
  auto [user, token] = serve.new_user("worker");
  auto t = serve.call("POST", "/tasks", json{{"title", "for the worker"}}.dump(), token).json();
  ASSERT_EQ(serve.call("POST", "/tasks/" + t["id"].get<std::string>() + "/complete", {}, token).status, 200);

  const auto worker_port = itest::free_port();
  auto env = serve.env();
  env["KAFKA_CONSUMER_GROUP_AUDIT"] = serve.prefix() + "-worker-audit";
  env["HTTP_PORT"] = std::to_string(worker_port);
  itest::ServeProcess worker(env, {"worker", "--consumers", "audit", "--port", std::to_string(worker_port)});
  EXPECT_EQ(itest::http_request(worker_port, "GET", "/readyz").status, 200);
  EXPECT_EQ(itest::http_request(worker_port, "GET", "/tasks").status, 404) << "a worker serves no user routes";
  // The worker's group is new, so it reads from the earliest offset and records both events.
  auto db = env["DATABASE_URL"];
  auto store = storage::open_store(config::Settings::load({{"DATABASE_URL", db}}).database);
  ASSERT_TRUE(itest::wait_until([&] { return store->task_history(user, t["id"]).size() >= 2; }, 60s));
  EXPECT_EQ(worker.stop(), 0) << worker.log();
}
