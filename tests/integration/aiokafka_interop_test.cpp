// Wire compatibility with the seed's own client: aiokafka produces in the seed's exact
// shape and our consumer parses it; we produce and an aiokafka consumer reads it.

#include <gtest/gtest.h>

#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <sstream>

#include "events/events.hpp"
#include "kafka/consumer_runner.hpp"
#include "kafka/producer.hpp"
#include "publish.hpp"
#include "workers/event_batch.hpp"
#include "test_env.hpp"

using namespace taskstream;

namespace {

std::string python() { return itest::required_env("TASKSTREAM_PYTHON", "a python with aiokafka"); }

/// Runs the aiokafka peer and returns its stdout; fails the test on a non-zero exit.
std::string run_peer(const std::string& args) {
  std::string cmd = python() + " " + TASKSTREAM_SOURCE_DIR "/tests/interop/aiokafka_peer.py " + args;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  char buf[4096];
  while (auto n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  int rc = pclose(f);
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  return out;
}

/// The first address of the bootstrap list (aiokafka takes a comma list too, but keep it simple).
std::string bootstrap() { return std::getenv("KAFKA_BOOTSTRAP_SERVERS"); }

}  // namespace

TEST(AiokafkaInterop, SeedShapedMessagesFromAiokafkaAreConsumedAndParsed) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("seed-in");
  itest::create_topic_with_dlq(s, topic, 3);
  run_peer("produce-seed " + bootstrap() + " " + topic + " 20 seed-user-1");

  std::mutex mutex;
  std::vector<events::TaskEvent> parsed;
  std::set<std::int32_t> partitions;
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("seed-in-group");
  o.topics = {topic};
  kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext& ctx) {
    workers::for_each_event(batch, ctx, events::parse_task_event, [&](const kafka::Message& m, events::TaskEvent e) {
      std::lock_guard lock(mutex);
      parsed.push_back(std::move(e));
      partitions.insert(m.partition());
    });
  });
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return runner.stats().processed + runner.stats().dead_lettered >= 20; }));
  runner.stop();
  EXPECT_EQ(runner.stats().dead_lettered, 0u);
  ASSERT_EQ(parsed.size(), 20u);
  std::set<std::string> ids;
  for (const auto& e : parsed) {
    EXPECT_EQ(e.user_id, "seed-user-1");
    EXPECT_EQ(e.action, "created");
    EXPECT_FALSE(e.seq.has_value());
    EXPECT_TRUE(events::is_uuid(e.event_id));  // derived from topic/partition/offset
    ids.insert(e.event_id);
  }
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_EQ(partitions.size(), 1u) << "aiokafka's keyed messages of one user must share a partition";
}

TEST(AiokafkaInterop, OurMessagesAreReadByAnAiokafkaConsumer) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("ours-out");
  itest::create_topic_with_dlq(s, topic, 3);
  kafka::Producer producer(s);
  std::vector<events::TaskUpdateEvent> sent;
  for (int i = 0; i < 10; ++i) {
    events::TaskUpdateEvent e;
    e.event_id = events::new_event_id();
    e.type = "task_updated";
    e.timestamp = events::now_rfc3339();
    e.user_id = "user-" + std::to_string(i % 2);
    e.task_id = events::new_event_id();
    e.seq = i / 2 + 1;
    e.changes = {{"status", "done"}};
    ASSERT_TRUE(itest::publish_event(producer, topic, events::to_json(e), e.user_id, std::chrono::seconds(10), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    sent.push_back(e);
  }
  auto out = run_peer("consume " + bootstrap() + " " + topic + " 10");
  std::map<std::string, std::set<int>> partitions_of_user;
  std::map<std::string, nlohmann::json> by_id;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    by_id[j["value"]["event_id"]] = j;
    partitions_of_user[j["key"]].insert(j["partition"].get<int>());
  }
  ASSERT_EQ(by_id.size(), 10u) << out;
  for (const auto& e : sent) {
    const auto& j = by_id.at(e.event_id);
    EXPECT_EQ(j["key"], e.user_id);
    EXPECT_EQ(j["value"], events::to_json(e));
    EXPECT_EQ(j["headers"]["event_id"], e.event_id);
    EXPECT_EQ(j["headers"]["event_type"], "task_updated");
    EXPECT_EQ(j["headers"]["schema_version"], "1");
    EXPECT_EQ(j["headers"]["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  }
  for (const auto& [user, parts] : partitions_of_user) EXPECT_EQ(parts.size(), 1u) << user;
}
