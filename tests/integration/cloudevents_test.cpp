// The CloudEvents Kafka protocol binding, binary content mode (docs/events.md,
// "CloudEvents"), proved with a real peer: the CloudEvents Python SDK reads the events a real
// serve publishes and gets each one's id, type, source, subject and data; an event built and
// sent by that SDK is recorded by our audit consumer; a ce_id that disagrees with the
// payload's event_id is dead-lettered as id_mismatch; malformed ce_* headers are ignored.
// And tolerant readers (docs/schemas.md): a made-up version 2 of each event, with a field
// and an enum value version 1 does not know, is applied by every consumer.

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <sstream>

#include "events/cloudevents.hpp"
#include "events/events.hpp"
#include "kafka/producer.hpp"
#include "kafka/tail.hpp"
#include "serve_process.hpp"
#include "test_env.hpp"
#include "ws_client.hpp"

using namespace taskstream;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

/// Runs the CloudEvents SDK peer and returns its stdout; fails the test on a non-zero exit.
std::string run_peer(const std::string& args) {
  const std::string cmd = itest::required_env("TASKSTREAM_PYTHON", "a python with aiokafka and cloudevents") + " " +
                          TASKSTREAM_SOURCE_DIR "/tests/interop/cloudevents_peer.py " + args + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  char buf[4096];
  while (auto n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  EXPECT_EQ(pclose(f), 0) << cmd << "\n" << out;
  return out;
}

std::vector<json> read_with_sdk(const std::string& topic, std::size_t count) {
  std::vector<json> out;
  std::istringstream in(run_peer("read " + std::string(std::getenv("KAFKA_BOOTSTRAP_SERVERS")) + " " + topic + " " + std::to_string(count)));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') {
      ADD_FAILURE() << "peer: " << line;
      continue;
    }
    out.push_back(json::parse(line));
  }
  return out;
}

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Received {
  std::string payload;
  std::map<std::string, std::string> headers;
};

/// The first `count` messages of `topic`, waiting for them up to 60 s.
std::vector<Received> read_topic(const std::string& topic, std::size_t count) {
  std::vector<Received> out;
  std::atomic<bool> stop{false};
  kafka::tail(itest::kafka_settings(), topic, {.from_beginning = true, .max_messages = count, .idle_timeout = 60s},
              [&](const kafka::Message& m) {
                Received r{std::string(m.payload()), {}};
                for (const auto& [k, v] : m.headers()) r.headers[std::string(k)] = std::string(v);
                out.push_back(std::move(r));
                return true;
              },
              stop);
  return out;
}

kafka::Headers cloudevent_headers(const std::string& id, const std::string& type, const std::string& dataschema) {
  return {{"ce_specversion", "1.0"}, {"ce_id", id}, {"ce_source", "/peer/tests"}, {"ce_type", type},
          {"content-type", "application/json"}, {"ce_dataschema", dataschema}, {"schema_version", "2"}};
}

/// Sum of a counter family over all its series in a /metrics body.
double metric_sum(const std::string& body, const std::string& family) {
  double sum = 0;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(family + "{", 0) == 0 || line.rfind(family + " ", 0) == 0) sum += std::stod(line.substr(line.rfind(' ') + 1));
  return sum;
}

}  // namespace

TEST(CloudEvents, OurEventsAreReadByTheCloudEventsSdkWithEveryAttribute) {
  itest::ServeProcess serve;
  auto [user, token] = serve.new_user("ce-read");
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto created = serve.call("POST", "/tasks", json{{"title", "read by the SDK"}}.dump(), token, {{"traceparent", tp}});
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string task = created.json()["id"];
  ASSERT_EQ(serve.call("PATCH", "/tasks/" + task, json{{"priority", "high"}}.dump(), token).status, 200);
  ASSERT_EQ(serve.call("POST", "/tasks/" + task + "/complete", {}, token).status, 200);
  ASSERT_EQ(serve.call("DELETE", "/tasks/" + task, {}, token).status, 204);

  const std::vector<std::string> actions{"created", "updated", "completed", "deleted"};
  for (const auto& [topic, schema] : {std::pair<std::string, std::string>{"task-events", "task-event"}, {"task-updates", "task-update"}}) {
    SCOPED_TRACE(topic);
    const auto got = read_with_sdk(serve.topic(topic), 4);
    ASSERT_EQ(got.size(), 4u);
    for (std::size_t i = 0; i < got.size(); ++i) {
      const auto& e = got[i];
      SCOPED_TRACE(e.dump());
      EXPECT_EQ(e["specversion"], "1.0");
      EXPECT_EQ(e["id"], e["data"]["event_id"]) << "ce_id is the event_id";
      EXPECT_EQ(e["type"], "com.taskstream.task." + actions[i]);
      EXPECT_EQ(e["data"]["type"], "task_" + actions[i]) << "the value is the JSON we always published";
      EXPECT_EQ(e["source"], "/taskstream/tasks");
      EXPECT_EQ(e["subject"], task);
      EXPECT_EQ(e["dataschema"], "https://taskstream.example/schemas/" + schema + "/v1.schema.json");
      EXPECT_EQ(e["datacontenttype"], "application/json");
      EXPECT_EQ(e["partitionkey"], user);
      EXPECT_EQ(e["data"]["user_id"], user);
      EXPECT_EQ(e["data"]["seq"], static_cast<int>(i) + 1);
      EXPECT_TRUE(e["time"].is_string() && !e["time"].get<std::string>().empty());
      if (i == 0) EXPECT_EQ(e["traceparent"], tp) << "ce_traceparent of the traced request";
      else EXPECT_TRUE(e["traceparent"].is_null()) << "no trace, no ce_traceparent";
    }
  }

  // Our own headers stay beside them, as aliases.
  const auto raw = read_topic(serve.topic("task-events"), 1);
  ASSERT_EQ(raw.size(), 1u);
  const auto& h = raw[0].headers;
  EXPECT_EQ(h.at("event_id"), h.at("ce_id"));
  EXPECT_EQ(h.at("event_type"), "task_created");
  EXPECT_EQ(h.at("schema_version"), "1");
  EXPECT_EQ(h.at("traceparent"), h.at("ce_traceparent"));
  EXPECT_EQ(h.at("ce_partitionkey"), user);
  EXPECT_EQ(serve.stop(), 0);
}

TEST(CloudEvents, AnSdkBuiltEventIsRecordedAndAMismatchedIdIsDeadLettered) {
  itest::ServeProcess serve;
  auto [user, token] = serve.new_user("ce-write");
  auto created = serve.call("POST", "/tasks", json{{"title", "audited from outside"}}.dump(), token);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string task = created.json()["id"];
  const std::string path = "/tasks/" + task + "/history";
  ASSERT_TRUE(itest::wait_until([&] { return serve.call("GET", path, {}, token).json()["items"].size() == 1; })) << serve.log();

  // 1. Built and sent by the SDK: a seed-shaped payload (no event_id); ce_id names the event.
  const std::string sdk_id = events::new_event_id();
  const json seed_shaped{{"type", "task_updated"}, {"task_id", task}, {"user_id", user}, {"timestamp", events::now_rfc3339()},
                         {"task_data", {{"id", task}, {"title", "edited by a CloudEvents peer"}}}};
  run_peer("produce " + std::string(std::getenv("KAFKA_BOOTSTRAP_SERVERS")) + " " + serve.topic("task-events") + " " + user + " " + task +
           " " + sdk_id + " " + quoted(seed_shaped.dump()));

  // 2. Hand-made: ce_id and event_id disagree (id_mismatch); 3. malformed ce_* headers are
  // ignored and the event is recorded by its payload's event_id.
  kafka::Producer producer(itest::kafka_settings());
  const std::string payload_id = events::new_event_id(), other_id = events::new_event_id(), malformed_id = events::new_event_id();
  auto event = seed_shaped;
  event["event_id"] = payload_id;
  event["task_data"]["title"] = "mismatched";
  auto headers = cloudevent_headers(other_id, "com.taskstream.task.updated", "");
  ASSERT_TRUE(producer.send({serve.topic("task-events"), user, event.dump(), headers, std::nullopt}).get().ok());
  event["event_id"] = malformed_id;
  event["task_data"]["title"] = "malformed headers";
  headers = {{"ce_specversion", "1.0"}, {"ce_id", ""}, {"ce_source", std::string("/bad\x01source")}, {"ce_time", "yesterday"}};
  ASSERT_TRUE(producer.send({serve.topic("task-events"), user, event.dump(), headers, std::nullopt}).get().ok());
  event["event_id"] = events::new_event_id();
  event["task_data"]["title"] = "specversion 0.3";
  headers = {{"ce_specversion", "0.3"}, {"ce_id", other_id}};
  ASSERT_TRUE(producer.send({serve.topic("task-events"), user, event.dump(), headers, std::nullopt}).get().ok());

  json items;
  ASSERT_TRUE(itest::wait_until([&] {
    items = serve.call("GET", path, {}, token).json()["items"];
    return items.size() >= 4;
  })) << serve.log();
  std::map<std::string, std::string> title_of;  // event_id -> title
  for (const auto& i : items) title_of[i["event_id"]] = i["task"]["title"];
  EXPECT_EQ(title_of[sdk_id], "edited by a CloudEvents peer") << "the SDK's event, recorded under its ce_id: " << items.dump();
  EXPECT_EQ(title_of[malformed_id], "malformed headers") << items.dump();
  EXPECT_FALSE(title_of.contains(payload_id)) << "the mismatched one is not recorded";
  EXPECT_FALSE(title_of.contains(other_id));

  const auto dead = read_topic(serve.topic("task-events") + ".dlq", 1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].headers.at("dlq.reason"), "id_mismatch");
  EXPECT_NE(dead[0].headers.at("dlq.detail").find(other_id), std::string::npos) << dead[0].headers.at("dlq.detail");
  EXPECT_EQ(json::parse(dead[0].payload)["event_id"], payload_id) << "dead-lettered as it came";
  EXPECT_EQ(dead[0].headers.at("ce_id"), other_id) << "with its original headers";
  EXPECT_EQ(serve.stop(), 0);
}

TEST(TolerantReaders, AMadeUpVersion2OfEachEventIsAppliedByEveryConsumer) {
  itest::ServeProcess serve;
  itest::wait_ready(serve);
  auto [user, token] = serve.new_user("tolerant");
  auto created = serve.call("POST", "/tasks", json{{"title", "v1 task"}}.dump(), token);
  ASSERT_EQ(created.status, 201) << created.body;
  auto task = created.json();
  const std::string task_id = task["id"];
  itest::WsClient ws(serve.port(), itest::bearer(token), {}, "/ws?last_seq=1");  // seq 2 is the next it expects
  ASSERT_EQ(ws.status(), 101);

  // Version 2, made up: an extra field everywhere, and a value version 1's enum lacks in a
  // non-critical field (task priority "urgent", channel "push").
  const auto base = events::kSchemaBaseUri;
  kafka::Producer producer(itest::kafka_settings());
  auto v2_task = task;
  v2_task["priority"] = "urgent";
  v2_task["version"] = 2;
  v2_task["estimate_minutes"] = 45;
  const json audit{{"event_id", events::new_event_id()}, {"type", "task_updated"}, {"action", "updated"}, {"timestamp", events::now_rfc3339()},
                   {"user_id", user}, {"task_id", task_id}, {"seq", 2}, {"task_data", v2_task}, {"origin", {{"device", "watch"}}}};
  const json update{{"event_id", events::new_event_id()}, {"type", "task_updated"}, {"timestamp", events::now_rfc3339()},
                    {"user_id", user}, {"task_id", task_id}, {"seq", 2},
                    {"changes", {{"priority", "urgent"}, {"estimate_minutes", 45}, {"version", 2}}}, {"origin", {{"device", "watch"}}}};
  const json request{{"event_id", events::new_event_id()}, {"user_id", user}, {"task_id", task_id}, {"type", "focus_reminder"},
                     {"title", "Focus time"}, {"message", "v2 says hello"}, {"channels", {"in_app", "push"}}, {"urgency", "high"}};
  for (const auto& [topic, kind, ev] : {std::tuple{std::string("task-events"), std::string("task-event"), audit},
                                        {std::string("task-updates"), std::string("task-update"), update},
                                        {std::string("notification.request"), std::string("notification-request"), request}}) {
    const auto type = kind == "notification-request" ? "com.taskstream.notification.requested" : "com.taskstream.task.updated";
    auto headers = cloudevent_headers(ev["event_id"], type, std::string(base) + kind + "/v2.schema.json");
    ASSERT_TRUE(producer.send({serve.topic(topic), user, ev.dump(), headers, std::nullopt}).get().ok());
  }

  // The audit consumer recorded it (with the unknown enum value kept in the snapshot) ...
  json items;
  ASSERT_TRUE(itest::wait_until([&] {
    items = serve.call("GET", "/tasks/" + task_id + "/history", {}, token).json()["items"];
    return items.size() >= 2;
  })) << serve.log();
  EXPECT_EQ(items[1]["event_id"], audit["event_id"]);
  EXPECT_EQ(items[1]["task"]["priority"], "urgent");
  // ... the notification consumer stored the request, on the channel it knows ...
  json notes;
  ASSERT_TRUE(itest::wait_until([&] {
    notes = serve.call("GET", "/notifications", {}, token).json();
    for (const auto& n : notes["items"])
      if (n["title"] == "Focus time") return true;
    return false;
  })) << serve.log();
  // ... and the WebSocket hub pushed both the update and the in-app notification.
  bool update_seen = false, notification_seen = false;
  for (int i = 0; i < 10 && !(update_seen && notification_seen); ++i) {
    auto f = ws.next(10s);
    if (!f) break;
    if ((*f)["type"] == "notification" && (*f)["notification"]["title"] == "Focus time") notification_seen = true;
    if (f->contains("seq") && (*f)["seq"] == 2) {
      update_seen = true;
      EXPECT_EQ((*f)["changes"]["priority"], "urgent") << f->dump();
    }
  }
  EXPECT_TRUE(update_seen) << serve.log();
  EXPECT_TRUE(notification_seen) << serve.log();
  EXPECT_EQ(metric_sum(serve.call("GET", "/metrics").body, "consumer_messages_dead_lettered_total"), 0) << "none dead-lettered";
  EXPECT_EQ(serve.stop(), 0);
}
