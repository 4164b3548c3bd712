// Keyed round trip, group restart and KAFKA_ENABLED=false against a real broker, and the
// same round trip against the embedded (mock) cluster.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "kafka/consumer_runner.hpp"
#include "kafka/producer.hpp"
#include "kafka/tail.hpp"
#include "publish.hpp"
#include "test_env.hpp"

using namespace taskstream;
using namespace std::chrono_literals;

namespace {

struct Seen {
  std::string key, payload, event_id, event_type, schema_version;
  std::int32_t partition;
  std::int64_t offset;
};

/// Collects what a runner handles, thread-safe.
struct Collector {
  std::mutex mutex;
  std::vector<Seen> seen;
  kafka::BatchHandler handler() {
    return [this](std::span<const kafka::Message> batch, kafka::BatchContext&) {
      std::lock_guard lock(mutex);
      for (const auto& m : batch)
        seen.push_back({std::string(m.key()), std::string(m.payload()), std::string(m.header("event_id").value_or("")),
                        std::string(m.header("event_type").value_or("")), std::string(m.header("schema_version").value_or("")),
                        m.partition(), m.offset()});
    };
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return seen.size();
  }
};

/// Produces `per_user` task events for each of `users` and returns them in send order.
std::vector<events::TaskEvent> produce_events(kafka::Producer& producer, const std::string& topic, int users, int per_user) {
  std::vector<events::TaskEvent> sent;
  std::vector<std::future<kafka::DeliveryResult>> futures;
  for (int i = 0; i < per_user; ++i) {
    for (int u = 0; u < users; ++u) {
      events::TaskEvent e;
      e.event_id = events::new_event_id();
      e.type = "task_updated";
      e.action = "updated";
      e.timestamp = events::now_rfc3339();
      e.user_id = "user-" + std::to_string(u);
      e.task_id = events::new_event_id();
      e.seq = i + 1;
      e.task_data = {{"title", "t" + std::to_string(i)}};
      futures.push_back(producer.send({topic, e.user_id, events::serialize(e), kafka::event_headers(e.event_id, e.type), std::nullopt}));
      sent.push_back(std::move(e));
    }
  }
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());
  return sent;
}

void keyed_round_trip(const config::Settings& s) {
  const auto topic = itest::unique_name("roundtrip");
  itest::create_topic_with_dlq(s, topic, 6);
  kafka::Producer producer(s);
  constexpr int kUsers = 8, kPerUser = 40;
  auto sent = produce_events(producer, topic, kUsers, kPerUser);

  Collector got;
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("rt-group");
  o.topics = {topic};
  kafka::ConsumerRunner runner(s, o, got.handler());
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return got.size() >= sent.size(); }));
  runner.stop();

  ASSERT_EQ(got.seen.size(), sent.size());
  std::map<std::string, std::set<std::int32_t>> partitions_of_user;
  std::map<std::string, std::vector<std::int64_t>> seq_of_user;
  std::map<std::string, std::string> type_of_id;
  for (const auto& e : sent) type_of_id[e.event_id] = e.type;
  for (const auto& m : got.seen) {
    partitions_of_user[m.key].insert(m.partition);
    auto e = events::parse_task_event(m.payload, {topic, m.partition, m.offset});
    EXPECT_EQ(e.user_id, m.key);
    seq_of_user[m.key].push_back(*e.seq);
    EXPECT_EQ(m.event_id, e.event_id);
    EXPECT_EQ(m.event_type, type_of_id.at(e.event_id));
    EXPECT_EQ(m.schema_version, "1");
  }
  ASSERT_EQ(partitions_of_user.size(), static_cast<std::size_t>(kUsers));
  for (const auto& [user, parts] : partitions_of_user) EXPECT_EQ(parts.size(), 1u) << user << " spread over partitions";
  for (const auto& [user, seqs] : seq_of_user) {
    ASSERT_EQ(seqs.size(), static_cast<std::size_t>(kPerUser)) << user;
    for (int i = 0; i < kPerUser; ++i) EXPECT_EQ(seqs[i], i + 1) << user << " out of order";
  }
}

}  // namespace

TEST(KafkaRealBroker, KeyedRoundTripKeepsPerUserPartitionOrderAndHeaders) { keyed_round_trip(itest::kafka_settings()); }

TEST(KafkaEmbedded, KeyedRoundTripKeepsPerUserPartitionOrderAndHeaders) {
  keyed_round_trip(config::Settings::load({{"KAFKA_BOOTSTRAP_SERVERS", "embedded"}, {"LOG_LEVEL", "warn"}}));
}

TEST(KafkaRealBroker, RestartedGroupResumesAfterLastCommitWithoutLoss) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("restart");
  itest::create_topic_with_dlq(s, topic, 3);
  kafka::Producer producer(s);
  auto first = produce_events(producer, topic, 5, 40);  // 200

  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("restart-group");
  o.topics = {topic};
  o.max_batch = 20;
  Collector a;
  {
    kafka::ConsumerRunner runner(s, o, a.handler());
    runner.start();
    ASSERT_TRUE(itest::wait_until([&] { return a.size() >= 60; }));
    runner.stop();  // commits what it handled and leaves the group
  }
  auto second = produce_events(producer, topic, 5, 40);  // 200 more while the group is away

  Collector b;
  kafka::ConsumerRunner runner(s, o, b.handler());
  runner.start();
  const std::size_t total = first.size() + second.size();
  ASSERT_TRUE(itest::wait_until([&] { return a.size() + b.size() >= total; }));
  // Quiescence read from the broker, not a fixed sleep: the group committed every offset
  // (lag 0 on each partition), so nothing handled can come again.
  kafka::Admin admin(s);
  EXPECT_TRUE(itest::wait_until([&] {
    const auto lag = admin.consumer_lag(o.group_id, topic);
    return lag.size() == 3 && std::all_of(lag.begin(), lag.end(), [](const auto& p) { return p.second == 0; });
  })) << "the group never committed up to the end of the topic";
  runner.stop();

  std::multiset<std::string> ids;
  for (const auto& m : a.seen) ids.insert(m.event_id);
  for (const auto& m : b.seen) ids.insert(m.event_id);
  EXPECT_EQ(ids.size(), total) << "duplicates: the restarted member re-read handled messages";
  for (const auto& e : first) EXPECT_EQ(ids.count(e.event_id), 1u);
  for (const auto& e : second) EXPECT_EQ(ids.count(e.event_id), 1u);
  // The second member started where the first stopped: its lowest offset per partition is
  // right after the first member's highest.
  std::map<std::int32_t, std::int64_t> last_a, first_b;
  for (const auto& m : a.seen) last_a[m.partition] = std::max(last_a[m.partition], m.offset);
  for (const auto& m : b.seen) first_b[m.partition] = first_b.count(m.partition) ? std::min(first_b[m.partition], m.offset) : m.offset;
  for (const auto& [p, off] : last_a) {
    if (first_b.count(p)) {
      EXPECT_EQ(first_b[p], off + 1) << "partition " << p;
    }
  }
}

TEST(KafkaRealBroker, DisabledPublishesNothingAndSaysSo) {
  auto enabled = itest::kafka_settings();
  const auto topic = itest::unique_name("disabled");
  itest::create_topic_with_dlq(enabled, topic, 1);

  auto disabled = itest::kafka_settings({{"KAFKA_ENABLED", "false"}});
  kafka::Producer producer(disabled);
  EXPECT_FALSE(producer.enabled());
  auto r = itest::publish_event(producer, topic, {{"event_id", events::new_event_id()}, {"type", "task_created"}}, "user-1");
  EXPECT_EQ(r.status, itest::PublishStatus::disabled);
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_NE(r.detail.find("not published"), std::string::npos);
  auto d = producer.send({topic, "k", "{}", {}, std::nullopt}).get();
  EXPECT_EQ(d.error.code(), kafka::errc::disabled);

  // A consumer runner does not start either.
  kafka::ConsumerOptions o;
  o.group_id = "g";
  o.topics = {topic};
  kafka::ConsumerRunner runner(disabled, o, [](auto, auto&) {});
  runner.start();
  EXPECT_FALSE(runner.running());

  // And the topic stayed empty: a marker published afterwards is the first message in it.
  kafka::Producer real(enabled);
  ASSERT_TRUE(itest::publish_event(real, topic, {{"event_id", "marker"}, {"type", "marker"}}, "user-1"));
  std::vector<std::string> payloads;
  std::atomic<bool> stop{false};
  kafka::tail(enabled, topic, {.from_beginning = true, .max_messages = 1, .idle_timeout = 10s},
              [&](const kafka::Message& m) {
                payloads.emplace_back(m.payload());
                return true;
              },
              stop);
  ASSERT_EQ(payloads.size(), 1u);
  EXPECT_NE(payloads[0].find("marker"), std::string::npos);
}

TEST(KafkaRealBroker, PublishEventWaitsForTheAcknowledgement) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("publish");
  itest::create_topic_with_dlq(s, topic, 2);
  kafka::Producer producer(s);
  auto r = itest::publish_event(producer, topic, {{"event_id", events::new_event_id()}, {"type", "task_created"}}, "user-9");
  EXPECT_EQ(r.status, itest::PublishStatus::published) << r.detail;
  auto missing = itest::publish_event(producer, "no-such-topic-" + itest::unique_name("x"), {{"type", "t"}}, "u", 3s);
  EXPECT_EQ(missing.status, itest::PublishStatus::failed);
}
