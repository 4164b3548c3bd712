// The outbox relay: changes committed while Kafka is unreachable wait in the outbox and are
// published, in per-user order and exactly once each, when it comes back.

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "kafka/embedded_cluster.hpp"
#include "kafka/producer.hpp"
#include "kafka/tail.hpp"
#include "outbox/relay.hpp"
#include "outbox/task_events.hpp"
#include "storage/store.hpp"
#include "test_env.hpp"

using namespace taskstream;
using namespace std::chrono_literals;

namespace {

storage::Task new_task(const std::string& user, int n) {
  storage::Task t;
  t.id = events::new_event_id();
  t.user_id = user;
  t.title = "task " + std::to_string(n);
  t.created_at = t.updated_at = events::now_rfc3339();
  return t;
}

std::string temp_db() {
  auto p = std::filesystem::temp_directory_path() / (itest::unique_name("relay") + ".db");
  return "sqlite:///" + p.string();
}

/// (user, seq) of every message on `topic`, in partition order.
std::map<std::string, std::vector<std::int64_t>> seqs_by_user(const config::Settings& s, const std::string& topic, std::size_t expected) {
  std::map<std::string, std::vector<std::int64_t>> out;
  std::atomic<bool> stop{false};
  kafka::tail(s, topic, {.from_beginning = true, .max_messages = expected + 1, .idle_timeout = 3s},
              [&](const kafka::Message& m) {
                auto j = nlohmann::json::parse(m.payload());
                out[j["user_id"]].push_back(j["seq"]);
                return true;
              },
              stop);
  return out;
}

}  // namespace

TEST(OutboxRelay, EmbeddedBrokerDownThenUpDrainsTheBacklogInOrderOnce) {
  const auto prefix = itest::unique_name("relay");
  auto s = config::Settings::load({{"KAFKA_BOOTSTRAP_SERVERS", "embedded"},
                                   {"KAFKA_TOPIC_TASK_EVENTS", prefix + "-events"},
                                   {"KAFKA_TOPIC_TASK_UPDATES", prefix + "-updates"},
                                   {"DATABASE_URL", temp_db()},
                                   {"LOG_LEVEL", "warn"}});
  kafka::Admin(s).ensure_topics(kafka::service_topics(s));
  auto store = storage::open_store(s.database);
  store->migrate();
  kafka::Producer producer(s);
  outbox::Relay relay(*store, producer, {.batch_size = 50, .idle_poll = 50ms, .retry_backoff = 200ms});
  relay.start();

  // Kafka down: writes still commit; their events wait.
  kafka::embedded::set_broker_down(1, true);
  constexpr int kUsers = 4, kPerUser = 30;
  auto factory = outbox::task_event_factory(s, "task_created");
  std::vector<std::string> users;
  for (int u = 0; u < kUsers; ++u) users.push_back(store->create_user(itest::unique_name("u") + "@example.com", "x")->id);
  for (int i = 0; i < kPerUser; ++i)
    for (const auto& user : users) store->create_task(new_task(user, i), factory);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(store->outbox_stats().waiting, 2 * kUsers * kPerUser);

  kafka::embedded::set_broker_down(1, false);
  ASSERT_TRUE(itest::wait_until([&] { return store->outbox_stats().waiting == 0; }, 120s)) << store->outbox_stats().waiting << " still waiting";
  relay.stop();

  for (const auto& topic : {prefix + "-events", prefix + "-updates"}) {
    auto seqs = seqs_by_user(s, topic, kUsers * kPerUser);
    ASSERT_EQ(seqs.size(), static_cast<std::size_t>(kUsers)) << topic;
    for (const auto& [user, list] : seqs) {
      std::vector<std::int64_t> expected(kPerUser);
      std::iota(expected.begin(), expected.end(), 1);
      EXPECT_EQ(list, expected) << topic << " " << user << ": lost, duplicated or out of order";
    }
  }
}

// A producer that delivers nothing for stall_timeout while rows wait has its client
// replaced (the guard against librdkafka issue #5430, where a client wedged after a KRaft
// fencing never produces again); the backlog still goes out once each, in order.
TEST(OutboxRelay, StalledProducerIsReplacedAndTheBacklogStillDrainsOnceInOrder) {
  const auto prefix = itest::unique_name("stall");
  auto s = config::Settings::load({{"KAFKA_BOOTSTRAP_SERVERS", "embedded"},
                                   {"KAFKA_TOPIC_TASK_EVENTS", prefix + "-events"},
                                   {"KAFKA_TOPIC_TASK_UPDATES", prefix + "-updates"},
                                   {"DATABASE_URL", temp_db()},
                                   {"LOG_LEVEL", "warn"}});
  kafka::Admin(s).ensure_topics(kafka::service_topics(s));
  auto store = storage::open_store(s.database);
  store->migrate();
  kafka::Producer producer(s);
  outbox::Relay relay(*store, producer, {.batch_size = 40, .idle_poll = 50ms, .retry_backoff = 200ms, .stall_timeout = 2s});
  relay.start();

  constexpr int kUsers = 3, kPerUser = 40;
  auto factory = outbox::task_event_factory(s, "task_created");
  std::vector<std::string> users;
  for (int u = 0; u < kUsers; ++u) users.push_back(store->create_user(itest::unique_name("u") + "@example.com", "x")->id);
  auto write = [&](int from, int to) {
    for (int i = from; i < to; ++i)
      for (const auto& user : users) store->create_task(new_task(user, i), factory);
  };
  write(0, kPerUser / 2);
  ASSERT_TRUE(itest::wait_until([&] { return store->outbox_stats().waiting == 0; }, 30s));
  kafka::embedded::set_broker_down(1, true);
  write(kPerUser / 2, kPerUser);
  ASSERT_TRUE(itest::wait_until([&] { return relay.stats().producer_restarts >= 2; }, 30s)) << "no restart after a stall";
  EXPECT_GT(store->outbox_stats().waiting, 0);
  kafka::embedded::set_broker_down(1, false);
  ASSERT_TRUE(itest::wait_until([&] { return store->outbox_stats().waiting == 0; }, 60s)) << store->outbox_stats().waiting << " still waiting";
  relay.stop();
  EXPECT_EQ(producer.restarts(), relay.stats().producer_restarts);

  for (const auto& topic : {prefix + "-events", prefix + "-updates"}) {
    auto seqs = seqs_by_user(s, topic, kUsers * kPerUser);
    ASSERT_EQ(seqs.size(), static_cast<std::size_t>(kUsers)) << topic;
    for (const auto& [user, list] : seqs) {
      std::vector<std::int64_t> expected(kPerUser);
      std::iota(expected.begin(), expected.end(), 1);
      EXPECT_EQ(list, expected) << topic << " " << user << ": lost, duplicated or out of order";
    }
  }
}

TEST(OutboxRelay, DrainPublishesWhatWaitsBeforeStop) {
  auto s = itest::kafka_settings({{"DATABASE_URL", temp_db()}});
  const auto prefix = itest::unique_name("drain");
  s.kafka_topic_task_events = prefix + "-events";
  s.kafka_topic_task_updates = prefix + "-updates";
  kafka::Admin(s).ensure_topics(kafka::service_topics(s));
  auto store = storage::open_store(s.database);
  store->migrate();
  auto factory = outbox::task_event_factory(s, "task_created");
  const auto user = store->create_user(itest::unique_name("d") + "@example.com", "x")->id;
  for (int i = 0; i < 100; ++i) store->create_task(new_task(user, i), factory);
  kafka::Producer producer(s);
  outbox::Relay relay(*store, producer);  // never started: drain alone must publish
  EXPECT_TRUE(relay.drain(30s));
  EXPECT_EQ(store->outbox_stats().waiting, 0);
  auto seqs = seqs_by_user(s, prefix + "-updates", 100);
  ASSERT_EQ(seqs[user].size(), 100u);
  EXPECT_EQ(seqs[user].front(), 1);
  EXPECT_EQ(seqs[user].back(), 100);
}
