// Poison messages go to <topic>.dlq with their reason while the good ones around them are
// handled, against a real broker.

#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "events/events.hpp"
#include "kafka/consumer_runner.hpp"
#include "kafka/producer.hpp"
#include "workers/event_batch.hpp"
#include "kafka/tail.hpp"
#include "test_env.hpp"

using namespace taskstream;
using namespace std::chrono_literals;

namespace {

std::string good_event(const std::string& user, int n) { return events::serialize(itest::sample_task_event(user, n)); }

struct DeadLetter {
  std::string payload;
  std::map<std::string, std::string> headers;
};

std::vector<DeadLetter> read_dlq(const config::Settings& s, const std::string& topic, std::size_t expected) {
  std::vector<DeadLetter> out;
  std::atomic<bool> stop{false};
  kafka::tail(s, topic + ".dlq", {.from_beginning = true, .max_messages = expected, .idle_timeout = 20s},
              [&](const kafka::Message& m) {
                DeadLetter d{std::string(m.payload()), {}};
                for (const auto& [k, v] : m.headers()) d.headers[std::string(k)] = std::string(v);
                out.push_back(std::move(d));
                return true;
              },
              stop);
  return out;
}

}  // namespace

TEST(KafkaRealBroker, PoisonMessagesGoToTheDlqWithTheirReason) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("poison");
  itest::create_topic_with_dlq(s, topic, 1);  // one partition: the good ones sit around the bad ones

  kafka::Producer producer(s);
  const std::string user = "user-dlq";
  std::vector<std::string> payloads = {
      good_event(user, 1),
      "{not json",
      good_event(user, 2),
      R"({"type":"task_created","user_id":"user-dlq","task_id":"not-a-uuid","timestamp":"2026-11-27T12:00:00Z","task_data":{}})",
      good_event(user, 3),
      R"({"type":"task_exploded","user_id":"user-dlq","task_id":"0b7e7a43-3c4c-4e1e-9d8f-4c8f8ad2b2a1","timestamp":"2026-11-27T12:00:00Z","task_data":{}})",
      good_event(user, 4),
      good_event(user, 5),  // sent with another user's key: key_mismatch
  };
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    const std::string key = i + 1 == payloads.size() ? "someone-else" : user;
    ASSERT_TRUE(producer.send({topic, key, payloads[i], {}, std::nullopt}).get().ok());
  }

  std::mutex mutex;
  std::vector<std::int64_t> handled_seqs;
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("poison-group");
  o.topics = {topic};
  kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext& ctx) {
    workers::for_each_event(batch, ctx, events::parse_task_event, [&](const kafka::Message&, events::TaskEvent e) {
      std::lock_guard lock(mutex);
      handled_seqs.push_back(*e.seq);
    });
  });
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return runner.stats().processed + runner.stats().dead_lettered >= payloads.size(); }));
  runner.stop();

  EXPECT_EQ(handled_seqs, (std::vector<std::int64_t>{1, 2, 3, 4}));
  auto dead = read_dlq(s, topic, 4);
  ASSERT_EQ(dead.size(), 4u);
  EXPECT_EQ(dead[0].payload, "{not json");
  EXPECT_EQ(dead[0].headers["dlq.reason"], "bad_json");
  EXPECT_EQ(dead[1].headers["dlq.reason"], "schema");
  EXPECT_NE(dead[1].headers["dlq.detail"].find("task_id"), std::string::npos) << dead[1].headers["dlq.detail"];
  EXPECT_EQ(dead[2].headers["dlq.reason"], "unknown_type");
  EXPECT_EQ(dead[3].headers["dlq.reason"], "key_mismatch");
  EXPECT_EQ(dead[3].headers["dlq.error_class"], "permanent");
  EXPECT_EQ(dead[3].payload, payloads.back()) << "dead-lettered as it came";
  EXPECT_NE(dead[3].headers["dlq.detail"].find("someone-else"), std::string::npos) << dead[3].headers["dlq.detail"];
  for (const auto& d : dead) {
    EXPECT_EQ(d.headers.at("dlq.source_topic"), topic);
    EXPECT_EQ(d.headers.at("dlq.source_partition"), "0");
    EXPECT_FALSE(d.headers.at("dlq.first_failure").empty());
  }
  EXPECT_EQ(dead[0].headers["dlq.source_offset"], "1");
  EXPECT_EQ(dead[1].headers["dlq.source_offset"], "3");
  EXPECT_EQ(dead[2].headers["dlq.source_offset"], "5");
  EXPECT_EQ(dead[3].headers["dlq.source_offset"], "7");
}

TEST(KafkaRealBroker, HandlerThatKeepsFailingIsRetriedThenDeadLettered) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("retry");
  itest::create_topic_with_dlq(s, topic, 1);
  kafka::Producer producer(s);
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(producer.send({topic, "u", good_event("u", i), {}, std::nullopt}).get().ok());

  std::mutex mutex;
  std::map<std::int64_t, int> attempts;
  std::vector<std::int64_t> committed;
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("retry-group");
  o.topics = {topic};
  o.max_attempts = 3;
  o.backoff_initial = 10ms;
  kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext&) {
    std::vector<std::int64_t> seqs;
    for (const auto& m : batch) {
      auto e = events::parse_task_event(m.payload(), {m.topic(), m.partition(), m.offset()});
      std::lock_guard lock(mutex);
      attempts[*e.seq]++;
      // seq 3 fails every time, seq 4 fails once then succeeds: a transient error.
      if (*e.seq == 3 || (*e.seq == 4 && attempts[4] == 1)) throw std::runtime_error("downstream unavailable for seq " + std::to_string(*e.seq));
      seqs.push_back(*e.seq);
    }
    std::lock_guard lock(mutex);
    committed.insert(committed.end(), seqs.begin(), seqs.end());
  });
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return runner.stats().dead_lettered >= 1 && runner.stats().processed >= 4; }));
  runner.stop();

  std::sort(committed.begin(), committed.end());
  committed.erase(std::unique(committed.begin(), committed.end()), committed.end());
  EXPECT_EQ(committed, (std::vector<std::int64_t>{1, 2, 4, 5}));
  EXPECT_GT(runner.stats().retries, 0u);
  auto dead = read_dlq(s, topic, 1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].headers["dlq.reason"], "handler_error");
  EXPECT_EQ(dead[0].headers["dlq.error_class"], "retries_exhausted");
  EXPECT_EQ(dead[0].headers["dlq.attempts"], "3");
  EXPECT_NE(dead[0].headers["dlq.detail"].find("seq 3"), std::string::npos);
  EXPECT_EQ(dead[0].headers["dlq.source_offset"], "2");
}
