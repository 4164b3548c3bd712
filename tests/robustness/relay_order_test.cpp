// Per-user order on the topics when part of a batch fails (docs/reliability.md, "Per-user
// order"). The relay's producer never times a message out and is gapless; a fatal client is
// replaced and the failed rows go out again before any later row of their user. The checker
// (itest::check_per_user_order) reads every partition of both topics: each user's events,
// first occurrence of each event_id, are seq 1..N in order, on one partition, keyed by user.
//
// On the embedded cluster (librdkafka's mock) the faults are exact: errors and delays on the
// produce requests of one broker, i.e. on the partitions it leads, while the others accept.
// Its producers run one request in flight per connection: the mock checks producer sequence
// numbers only for transactional producers, so with several in flight it would append a
// request after refusing the one before it, which a real broker never does
// (OUT_OF_ORDER_SEQUENCE). The real-broker case runs with the relay's own settings.

#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "../integration/outbox_fixture.hpp"
#include "fault_harness.hpp"
#include "kafka/embedded_cluster.hpp"
#include "kafka/producer.hpp"
#include "outbox/relay.hpp"

using namespace taskstream;
using namespace taskstream::rtest;

namespace {

constexpr int kProduceApi = 0;
// Kafka protocol error codes.
constexpr int kNotLeader = 6, kRequestTimedOut = 7, kNotEnoughReplicas = 19, kInvalidRecord = 87;

config::EnvMap embedded_env() {
  kafka::embedded::bootstrap(3);  // the first use decides: three brokers, leaders spread
  return {{"KAFKA_BOOTSTRAP_SERVERS", "embedded"}, {"LOG_LEVEL", "warn"}, {"KAFKA_TOPIC_PARTITIONS", "6"}};
}

/// The relay's producer as `serve` builds it, with the mock's one request in flight and
/// small requests, so that a failed request sits between accepted ones of its partition.
kafka::ProducerOptions mock_relay_producer(bool gapless = true) {
  auto o = outbox::relay_producer_options();
  o.gapless = gapless;
  o.extra = {{"max.in.flight.requests.per.connection", "1"}, {"batch.num.messages", "5"}, {"retry.backoff.ms", "20"},
             {"socket.timeout.ms", "1000"}};
  return o;
}

void print_relay(const char* scenario, const outbox::RelayStats& st, std::size_t copies) {
  std::printf("%s: published %llu; failed or held back and retried %llu (held back %llu); producer clients replaced %llu (after a fatal "
              "error %llu); order violations seen by the relay %llu; copies of an event on the topics (absorbed) %zu\n",
              scenario, static_cast<unsigned long long>(st.published), static_cast<unsigned long long>(st.failed),
              static_cast<unsigned long long>(st.held_back), static_cast<unsigned long long>(st.producer_restarts),
              static_cast<unsigned long long>(st.fatal_errors), static_cast<unsigned long long>(st.order_violations), copies);
  std::fflush(stdout);
}

}  // namespace

// A request refused for good in the middle of a backlog (INVALID_RECORD on broker 2): the
// gapless client stops instead of sending the later messages of that partition; the relay
// replaces it and every user's events still land in order.
TEST(RelayOrder, APermanentErrorMidBatchMakesTheClientFatalAndTheRelaySendsAgainInOrder) {
  itest::OutboxFixture o(embedded_env(), "gapless", 12);
  constexpr int kPerUser = 40;
  o.write(0, kPerUser);
  kafka::embedded::push_broker_request_faults(2, kProduceApi, {{kInvalidRecord, {}}});
  kafka::Producer producer(o.s, mock_relay_producer());
  outbox::Relay relay(*o.store, producer, {.batch_size = 5000, .idle_poll = 50ms, .retry_backoff = 200ms});
  relay.start();
  ASSERT_TRUE(itest::wait_until([&] { return o.store->outbox_stats().waiting == 0; }, 60s)) << o.store->outbox_stats().waiting << " still waiting";
  relay.stop();
  const auto st = relay.stats();
  // The fault happened: the refused request made the client fatal and it was replaced.
  EXPECT_GE(st.fatal_errors, 1u);
  EXPECT_GE(st.producer_restarts, 1u);
  EXPECT_GT(st.failed, 0u);
  EXPECT_EQ(st.order_violations, 0u);
  const auto copies = o.expect_per_user_order(kPerUser);
  print_relay("permanent produce error mid-batch, gapless", st, copies);
}

// Several batches in flight (small batches, four at a time) when a partition's request is
// refused for good: broker 2 holds its answer (INVALID_RECORD) for 500 ms while the relay keeps
// fetching and producing batches to the other brokers and queueing broker 2's rows behind
// the refused request. The gapless client fails every later message of those partitions,
// whichever batch they came in; the relay fetches nothing more until every report is in,
// then starts again from the first failed row. Then broker 3 goes silent past the stall
// timeout with a new backlog in flight: the purge fails rows of several batches at once.
TEST(RelayOrder, SeveralBatchesInFlightWhenRowsFailKeepEveryUsersOrder) {
  itest::OutboxFixture o(embedded_env(), "window", 12);
  constexpr int kPerUser = 60, kBatch = 20;
  o.write(0, kPerUser / 2);
  kafka::embedded::push_broker_request_faults(2, kProduceApi, {{kNotEnoughReplicas, {}}, {kInvalidRecord, 500ms}});
  kafka::Producer producer(o.s, mock_relay_producer());
  outbox::Relay relay(*o.store, producer,
                      {.batch_size = kBatch, .max_batches_in_flight = 4, .idle_poll = 50ms, .retry_backoff = 200ms, .stall_timeout = 2s});
  relay.start();
  ASSERT_TRUE(itest::wait_until([&] { return o.store->outbox_stats().waiting == 0; }, 60s)) << o.store->outbox_stats().waiting << " still waiting";
  const auto first = relay.stats();
  // The fault happened, and hit rows of more than one batch in flight.
  EXPECT_GE(first.fatal_errors, 1u);
  EXPECT_GT(first.failed, 0u);
  EXPECT_GT(first.in_flight_at_failure, static_cast<std::uint64_t>(kBatch)) << "the failure did not find several batches in flight";
  EXPECT_EQ(first.order_violations, 0u);
  print_relay("permanent error with several batches in flight", first, 0);
  std::printf("rows in flight at the failure: %llu (batch %d)\n", static_cast<unsigned long long>(first.in_flight_at_failure), kBatch);

  // Broker 3 silent for longer than the stall timeout while a new backlog goes out.
  kafka::embedded::set_broker_rtt(3, 5s);
  o.write(kPerUser / 2, kPerUser);
  relay.wake();
  const bool replaced = itest::wait_until([&] { return relay.stats().producer_restarts > first.producer_restarts; }, 20s);
  kafka::embedded::set_broker_rtt(3, 0ms);
  ASSERT_TRUE(replaced) << "the stall did not replace the client";
  ASSERT_TRUE(itest::wait_until([&] { return o.store->outbox_stats().waiting == 0; }, 60s)) << o.store->outbox_stats().waiting << " still waiting";
  relay.stop();
  const auto st = relay.stats();
  EXPECT_GT(st.failed, first.failed);
  EXPECT_EQ(st.order_violations, 0u);
  const auto copies = o.expect_per_user_order(kPerUser);
  print_relay("then a stall past the timeout with several batches in flight", st, copies);
}

// The control: the same fault with the gapless guarantee off. librdkafka then bumps its
// epoch and sends the later messages of the partition, and the retried rows land after
// them. The relay sees it (order_violations) and so does the checker: both would catch a
// regression of the design.
TEST(RelayOrder, WithoutTheGaplessGuaranteeTheSameErrorReordersAUsersEvents) {
  itest::OutboxFixture o(embedded_env(), "gapful", 12);
  constexpr int kPerUser = 40;
  o.write(0, kPerUser);
  kafka::embedded::push_broker_request_faults(2, kProduceApi, {{kInvalidRecord, {}}});
  kafka::Producer producer(o.s, mock_relay_producer(/*gapless=*/false));
  outbox::Relay relay(*o.store, producer, {.batch_size = 5000, .idle_poll = 50ms, .retry_backoff = 200ms});
  relay.start();
  ASSERT_TRUE(itest::wait_until([&] { return o.store->outbox_stats().waiting == 0; }, 60s));
  relay.stop();
  const auto st = relay.stats();
  EXPECT_EQ(st.fatal_errors, 0u);
  EXPECT_GT(st.order_violations, 0u);
  std::size_t out_of_order = 0;
  for (const auto& topic : {o.prefix + "-events", o.prefix + "-updates"})
    out_of_order += itest::check_per_user_order(o.s, topic, o.users, kPerUser).out_of_order;
  EXPECT_GT(out_of_order, 0u) << "the checker did not see the reordering the relay reported";
  print_relay("the same error without the gapless guarantee (control)", st, 0);
  std::printf("control: %zu events out of per-user order on the topics\n", out_of_order);
}

// Changes keep coming while broker 2's produce requests are refused (retriable errors, a
// permanent one), delayed past the client's request timeout (possibly persisted), a
// partition's leader moves, and broker 3 stalls long enough for the relay to replace its
// client (the requests in flight are purged, some already written).
TEST(RelayOrder, FaultsOnSomePartitionsDuringLoadKeepEveryUsersOrder) {
  itest::OutboxFixture o(embedded_env(), "mixed", 24);
  constexpr int kPerUser = 60;
  kafka::Producer producer(o.s, mock_relay_producer());
  outbox::Relay relay(*o.store, producer, {.batch_size = 200, .idle_poll = 50ms, .retry_backoff = 100ms, .stall_timeout = 3s});
  relay.start();
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; i < kPerUser; ++i) {
      o.write(i, i + 1);  // one task per user: two events each
      written = i + 1;
      relay.wake();
      std::this_thread::sleep_for(20ms);
    }
  });
  auto after = [&](int n) { itest::wait_until([&] { return written.load() >= n; }, 60s); };
  after(5);
  kafka::embedded::push_broker_request_faults(2, kProduceApi,
                                              {{kNotEnoughReplicas, {}}, {kNotLeader, {}}, {kRequestTimedOut, {}}, {kNotEnoughReplicas, {}}});
  after(12);
  kafka::embedded::push_broker_request_faults(2, kProduceApi, {{kInvalidRecord, {}}});
  after(20);
  kafka::embedded::push_broker_request_faults(2, kProduceApi, {{0, 2500ms}, {0, 2500ms}});  // client times out at 1 s
  after(28);
  kafka::embedded::set_partition_leader(o.prefix + "-events", 0, 3);
  kafka::embedded::set_partition_leader(o.prefix + "-updates", 1, 1);
  after(36);
  kafka::embedded::set_broker_rtt(3, 6s);  // nothing from broker 3 for longer than stall_timeout
  itest::wait_until([&] { return relay.stats().producer_restarts >= 2; }, 20s);
  kafka::embedded::set_broker_rtt(3, 0ms);
  writer.join();
  ASSERT_TRUE(itest::wait_until([&] { return o.store->outbox_stats().waiting == 0; }, 120s)) << o.store->outbox_stats().waiting << " still waiting";
  relay.stop();
  const auto st = relay.stats();
  EXPECT_GT(st.failed, 0u);
  EXPECT_GE(st.fatal_errors, 1u) << "the permanent error did not make the client fatal";
  EXPECT_GE(st.producer_restarts, st.fatal_errors + 1) << "broker 3's stall did not replace the client";
  EXPECT_EQ(st.order_violations, 0u);
  const auto copies = o.expect_per_user_order(kPerUser);
  print_relay("retriable, permanent and delayed produce errors, a leader move and a stall, during load", st, copies);
}

// The real broker frozen (SIGSTOP) past the relay's stall timeout while it has requests in
// flight: the relay replaces its client (purging those requests, which the broker may still
// write when it wakes) and sends the rows again with a new producer id. Copies of an event
// are allowed on the topic; its first occurrence keeps every user's order.
TEST(RelayOrder, RealBrokerFrozenPastTheStallTimeoutKeepsEveryUsersOrder) {
  itest::OutboxFixture o(itest::kafka_env(), "frozen", 6);
  auto po = outbox::relay_producer_options();
  po.extra = {{"socket.timeout.ms", "1000"}};
  kafka::Producer producer(o.s, po);
  outbox::Relay relay(*o.store, producer, {.batch_size = 100, .idle_poll = 50ms, .retry_backoff = 200ms, .stall_timeout = 3s});
  relay.start();
  constexpr int kPerUser = 80;
  o.write(0, kPerUser / 4);
  ASSERT_TRUE(itest::wait_until([&] { return o.store->outbox_stats().waiting == 0; }, 60s));
  const pid_t broker = broker_pid(1);
  ASSERT_GT(broker, 0);
  std::thread writer([&] {
    for (int i = kPerUser / 4; i < kPerUser; ++i) {
      o.write(i, i + 1);
      relay.wake();
      std::this_thread::sleep_for(50ms);
    }
  });
  std::this_thread::sleep_for(300ms);
  const auto restarts_before = relay.stats().producer_restarts;
  ASSERT_EQ(kill(broker, SIGSTOP), 0);
  // Under the broker's session timeout (9 s), so the controller does not fence it.
  const bool replaced = itest::wait_until([&] { return relay.stats().producer_restarts > restarts_before; }, 7s);
  ASSERT_EQ(kill(broker, SIGCONT), 0);
  writer.join();
  ASSERT_TRUE(replaced) << "the relay did not replace its client during the freeze";
  ASSERT_TRUE(itest::wait_until([&] { return o.store->outbox_stats().waiting == 0; }, 120s)) << o.store->outbox_stats().waiting << " still waiting";
  relay.stop();
  const auto st = relay.stats();
  EXPECT_GT(st.failed, 0u);
  EXPECT_EQ(st.order_violations, 0u);
  const auto copies = o.expect_per_user_order(kPerUser);
  print_relay("real broker frozen past the stall timeout", st, copies);
}
