// The outbox relay: changes committed while Kafka is unreachable wait in the outbox and are
// published, in per-user order and exactly once each, when it comes back.

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "kafka/embedded_cluster.hpp"
#include "kafka/producer.hpp"
#include "outbox/relay.hpp"
#include "outbox_fixture.hpp"
#include "test_env.hpp"

using namespace taskstream;
using namespace std::chrono_literals;

using itest::OutboxFixture;
const config::EnvMap kEmbedded{{"KAFKA_BOOTSTRAP_SERVERS", "embedded"}, {"LOG_LEVEL", "warn"}};

namespace {

/// Counts, while it lives, the lines of the default logger that contain `needle`.
/// Construct it before the clients it watches.
class LogLineCount {
 public:
  explicit LogLineCount(std::string needle) : sink_(std::make_shared<Sink>(std::move(needle))) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~LogLineCount() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  LogLineCount(const LogLineCount&) = delete;
  LogLineCount& operator=(const LogLineCount&) = delete;
  std::uint64_t value() const { return sink_->count.load(); }

 private:
  struct Sink final : spdlog::sinks::base_sink<std::mutex> {
    explicit Sink(std::string n) : needle(std::move(n)) {}
    const std::string needle;
    std::atomic<std::uint64_t> count{0};

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      if (std::string_view(msg.payload.data(), msg.payload.size()).find(needle) != std::string_view::npos) ++count;
    }
    void flush_() override {}
  };
  std::shared_ptr<Sink> sink_;
};

}  // namespace

TEST(OutboxRelay, EmbeddedBrokerDownThenUpDrainsTheBacklogInOrderOnce) {
  OutboxFixture o(kEmbedded, "relay", 4);
  kafka::Producer producer(o.s, outbox::relay_producer_options());
  outbox::Relay relay(*o.store, producer, {.batch_size = 50, .idle_poll = 50ms, .retry_backoff = 200ms});
  relay.start();

  // Kafka down: writes still commit; their events wait.
  kafka::embedded::set_broker_down(1, true);
  constexpr int kPerUser = 30;
  o.write(0, kPerUser);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(o.store->outbox_stats().waiting, 2 * 4 * kPerUser);

  kafka::embedded::set_broker_down(1, false);
  ASSERT_TRUE(itest::wait_until([&] { return o.store->outbox_stats().waiting == 0; }, 120s)) << o.store->outbox_stats().waiting << " still waiting";
  relay.stop();
  o.expect_each_event_once_in_order(kPerUser);
}

// A producer that delivers nothing for stall_timeout while rows wait has its client
// replaced (the guard against librdkafka issue #5430, where a client wedged after a KRaft
// fencing never produces again); the backlog still goes out once each, in order.
TEST(OutboxRelay, StalledProducerIsReplacedAndTheBacklogStillDrainsOnceInOrder) {
  OutboxFixture o(kEmbedded, "stall", 3);
  LogLineCount restarts("producer: replacing the Kafka client");  // Producer::restart logs it for each client it replaces
  kafka::Producer producer(o.s, outbox::relay_producer_options());
  outbox::Relay relay(*o.store, producer, {.batch_size = 40, .idle_poll = 50ms, .retry_backoff = 200ms, .stall_timeout = 2s});
  relay.start();
  constexpr int kPerUser = 40;
  o.write(0, kPerUser / 2);
  ASSERT_TRUE(itest::wait_until([&] { return o.store->outbox_stats().waiting == 0; }, 30s));
  kafka::embedded::set_broker_down(1, true);
  o.write(kPerUser / 2, kPerUser);
  ASSERT_TRUE(itest::wait_until([&] { return relay.stats().producer_restarts >= 2; }, 30s)) << "no restart after a stall";
  EXPECT_GT(o.store->outbox_stats().waiting, 0);
  kafka::embedded::set_broker_down(1, false);
  ASSERT_TRUE(itest::wait_until([&] { return o.store->outbox_stats().waiting == 0; }, 60s)) << o.store->outbox_stats().waiting << " still waiting";
  relay.stop();
  EXPECT_EQ(restarts.value(), relay.stats().producer_restarts);
  o.expect_each_event_once_in_order(kPerUser);
}

// Rare broker answers, made deterministic by the embedded cluster (librdkafka's mock).
// NOT_ENOUGH_REPLICAS (too few in-sync replicas for acks=all) on the first produce
// requests: the idempotent producer retries them; each event lands once, in order.
// One request in flight per connection: the mock checks producer sequence numbers only for
// transactional producers, so with two in flight it can append request 2 after refusing
// request 1 (a real broker answers OUT_OF_ORDER_SEQUENCE), and librdkafka then rightly takes
// request 1 as persisted (rdkafka_request.c, implicit ack) — a loss only the mock can make.
TEST(OutboxRelay, EmbeddedNotEnoughReplicasIsRetriedAndEachEventLandsOnceInOrder) {
  OutboxFixture o(kEmbedded, "nerep", 3);
  constexpr int kProduceApi = 0, kNotEnoughReplicas = 19;
  kafka::embedded::push_request_errors(kProduceApi, kNotEnoughReplicas, 6);
  auto po = outbox::relay_producer_options();
  po.extra = {{"max.in.flight.requests.per.connection", "1"}};
  kafka::Producer producer(o.s, po);
  outbox::Relay relay(*o.store, producer, {.batch_size = 20, .idle_poll = 50ms, .retry_backoff = 200ms});
  relay.start();
  constexpr int kPerUser = 30;
  o.write(0, kPerUser);
  ASSERT_TRUE(itest::wait_until([&] { return o.store->outbox_stats().waiting == 0; }, 60s)) << o.store->outbox_stats().waiting << " still waiting";
  relay.stop();
  o.expect_each_event_once_in_order(kPerUser);
}

// Possibly-persisted produces (a request timed out after the broker may have written it)
// are tested against the real broker (Faults.PossiblyPersistedProducesAreNotDuplicated):
// the mock checks producer sequence numbers for transactional producers only, so it would
// keep the copies a real broker drops.

TEST(OutboxRelay, DrainPublishesWhatWaitsBeforeStop) {
  OutboxFixture o(itest::kafka_env(), "drain", 1);
  o.write(0, 100);
  kafka::Producer producer(o.s, outbox::relay_producer_options());
  outbox::Relay relay(*o.store, producer);  // never started: drain alone must publish
  EXPECT_TRUE(relay.drain(30s));
  EXPECT_EQ(o.store->outbox_stats().waiting, 0);
  o.expect_each_event_once_in_order(100);
}
