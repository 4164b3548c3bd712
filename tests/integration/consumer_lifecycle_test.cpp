// ConsumerRunner lifecycle against a real broker: commit on revoke when a second member
// joins, a handler slower than max.poll.interval.ms keeps its membership, and stop is
// bounded while a batch is stuck in retries (the batch is not committed, so it comes back).

#include <gtest/gtest.h>

#include <any>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "events/events.hpp"
#include "kafka/consumer_runner.hpp"
#include "kafka/embedded_cluster.hpp"
#include "kafka/producer.hpp"
#include "storage/store.hpp"
#include "test_env.hpp"

using namespace taskstream;
using namespace std::chrono_literals;

namespace {

void produce_numbered(const config::Settings& s, const std::string& topic, int count, int users) {
  kafka::Producer producer(s);
  std::vector<std::future<kafka::DeliveryResult>> f;
  for (int i = 0; i < count; ++i)
    f.push_back(producer.send({topic, "user-" + std::to_string(i % users), std::to_string(i), {}, std::nullopt}));
  for (auto& x : f) ASSERT_TRUE(x.get().ok());
}

struct Tally {
  std::mutex mutex;
  std::multiset<std::string> seen;
  void add(std::span<const kafka::Message> batch) {
    std::lock_guard lock(mutex);
    for (const auto& m : batch) seen.insert(std::string(m.payload()));
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return seen.size();
  }
};

/// Member A starts alone; once `first` messages were handled, member B joins the group. Both
/// run until all `count` were handled. A must have seen B join, and every message was
/// handled exactly once. `b_processed`: what B handled.
void second_member_joins_and_each_is_handled_once(const config::Settings& s, const kafka::ConsumerOptions& o,
                                                 const kafka::BatchHandler& handler, Tally& tally, int count, std::size_t first,
                                                 std::uint64_t& b_processed) {
  kafka::ConsumerRunner a(s, o, handler);
  a.start();
  ASSERT_TRUE(itest::wait_until([&] { return tally.size() >= first; }));
  kafka::ConsumerRunner b(s, o, handler);
  b.start();
  ASSERT_TRUE(itest::wait_until([&] { return tally.size() >= static_cast<std::size_t>(count); }, 120s));
  std::this_thread::sleep_for(2s);
  EXPECT_GE(a.stats().rebalances, 2u) << "member A never saw the second member join";
  b_processed = b.stats().processed;
  a.stop();
  b.stop();

  std::set<std::string> distinct(tally.seen.begin(), tally.seen.end());
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(count));
  EXPECT_EQ(tally.seen.size(), static_cast<std::size_t>(count)) << (tally.seen.size() - distinct.size()) << " handled twice";
}

}  // namespace

TEST(ConsumerLifecycle, SecondMemberJoiningGetsCommittedOffsetsAndNothingIsHandledTwice) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("rebalance");
  itest::create_topic_with_dlq(s, topic, 6);
  constexpr int kCount = 600;
  produce_numbered(s, topic, kCount, 30);

  Tally tally;
  auto slow = [&](std::span<const kafka::Message> batch, kafka::BatchContext&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10) * batch.size());
    tally.add(batch);
  };
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("rebalance-group");
  o.topics = {topic};
  o.max_batch = 25;
  std::uint64_t b_processed = 0;
  second_member_joins_and_each_is_handled_once(s, o, slow, tally, kCount, 100, b_processed);
  EXPECT_GT(b_processed, 0u) << "member B got no work";
}

// Pipelining (ConsumerOptions::prepare, which the audit consumer uses): the next batch is
// gathered and prepared while the handler works. A prepared result reaches the handler with
// exactly the batch it was made from, and a rebalance in between (a second member joining
// takes partitions, whose prepared messages are dropped) loses nothing and repeats nothing.
TEST(ConsumerLifecycle, PreparedBatchesReachTheirOwnHandlerCallAndARebalanceLosesNothing) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("prepared");
  itest::create_topic_with_dlq(s, topic, 6);
  constexpr int kCount = 3000;
  produce_numbered(s, topic, kCount, 30);

  using Positions = std::vector<std::pair<std::int32_t, std::int64_t>>;
  auto positions = [](std::span<const kafka::Message> batch) {
    Positions p;
    for (const auto& m : batch) p.emplace_back(m.partition(), m.offset());
    return p;
  };
  Tally tally;
  std::atomic<int> with_prepared{0}, mismatched{0};
  auto handler = [&](std::span<const kafka::Message> batch, kafka::BatchContext& ctx) {
    if (const auto* p = ctx.prepared<Positions>()) {
      ++with_prepared;
      if (*p != positions(batch)) ++mismatched;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1) * batch.size());
    tally.add(batch);
  };
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("prepared-group");
  o.topics = {topic};
  o.max_batch = 100;
  o.prepare = [&](std::span<const kafka::Message> batch) -> std::any { return positions(batch); };
  std::uint64_t b_processed = 0;
  second_member_joins_and_each_is_handled_once(s, o, handler, tally, kCount, 500, b_processed);
  EXPECT_GT(with_prepared.load(), 0) << "no batch was prepared ahead";
  EXPECT_EQ(mismatched.load(), 0) << "a prepared result reached another batch's handler call";
}

TEST(ConsumerLifecycle, HandlerSlowerThanMaxPollIntervalKeepsItsMembership) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("slow");
  itest::create_topic_with_dlq(s, topic, 2);
  produce_numbered(s, topic, 20, 4);

  Tally tally;
  std::atomic<int> calls{0};
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("slow-group");
  o.topics = {topic};
  // librdkafka's floor for max.poll.interval.ms is session.timeout.ms (10 s here).
  o.extra = {{"max.poll.interval.ms", "10000"}};
  kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext&) {
    if (calls++ == 0) std::this_thread::sleep_for(13s);  // longer than max.poll.interval.ms
    tally.add(batch);
  });
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return tally.size() >= 20; }, 60s));
  std::this_thread::sleep_for(1s);
  // One assignment at start; a member evicted for not polling would have been revoked and
  // re-assigned, and would re-handle the first batch.
  EXPECT_EQ(runner.stats().rebalances, 1u);
  EXPECT_EQ(tally.size(), 20u);
  runner.stop();
}

TEST(ConsumerLifecycle, StopIsBoundedWhileRetryingAndTheUnfinishedBatchComesBack) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("stuck");
  itest::create_topic_with_dlq(s, topic, 1);
  produce_numbered(s, topic, 3, 1);

  std::atomic<int> attempts{0};
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("stuck-group");
  o.topics = {topic};
  o.max_attempts = 100;
  o.backoff_initial = 5s;  // the runner sits in backoff when asked to stop
  o.stop_deadline = 5s;
  {
    kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message>, kafka::BatchContext&) {
      attempts++;
      throw std::runtime_error("database unavailable");
    });
    runner.start();
    ASSERT_TRUE(itest::wait_until([&] { return attempts.load() >= 1; }));
    const auto t0 = std::chrono::steady_clock::now();
    runner.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, o.stop_deadline) << "stop overran its deadline";
    EXPECT_EQ(runner.stats().dead_lettered, 0u) << "stopping must not dead-letter a batch that was only retrying";
  }
  // Nothing of the abandoned batch was committed: the next member gets all of it.
  Tally tally;
  kafka::ConsumerRunner next(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext&) { tally.add(batch); });
  next.start();
  ASSERT_TRUE(itest::wait_until([&] { return tally.size() >= 3; }));
  next.stop();
  EXPECT_EQ(tally.seen, (std::multiset<std::string>{"0", "1", "2"}));
}

// An outage (the handler's database down: ConsumerOptions::is_outage) far longer than
// max_attempts would allow: the batch is held and tried again until the database is back,
// never dead-lettered, and nothing after it is taken meanwhile; each message then once.
TEST(ConsumerLifecycle, AnOutageHoldsTheBatchUntilTheDatabaseIsBackAndDeadLettersNothing) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("outage");
  itest::create_topic_with_dlq(s, topic, 1);
  produce_numbered(s, topic, 20, 1);

  std::atomic<bool> database_up{false};
  std::atomic<int> attempts_while_down{0};
  Tally tally;
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("outage-group");
  o.topics = {topic};
  o.max_attempts = 2;  // an ordinary error would reach the DLQ after two attempts
  o.backoff_initial = 10ms;
  o.is_outage = [](const std::exception& e) {
    const auto* se = dynamic_cast<const storage::StorageError*>(&e);
    return se && se->is_outage();
  };
  kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext&) {
    if (!database_up) {
      attempts_while_down++;
      throw storage::StorageError("postgres: cannot connect: connection refused", true, storage::StorageCondition::unavailable);
    }
    tally.add(batch);
  });
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return attempts_while_down.load() >= 6; }, 30s)) << "the outage was not tried again";
  EXPECT_EQ(tally.size(), 0u);
  EXPECT_EQ(runner.stats().dead_lettered, 0u);
  EXPECT_EQ(runner.stats().retries, 0u) << "outage attempts must not use up the retries of a poison message";
  database_up = true;
  ASSERT_TRUE(itest::wait_until([&] { return tally.size() >= 20; }, 30s));
  runner.stop();
  const auto st = runner.stats();
  EXPECT_GE(st.outage_retries, 6u);
  EXPECT_EQ(st.dead_lettered, 0u);
  std::set<std::string> distinct(tally.seen.begin(), tally.seen.end());
  EXPECT_EQ(distinct.size(), 20u);
  EXPECT_EQ(tally.seen.size(), 20u);
}

// A member out of the group longer than rejoin_after replaces its librdkafka client (the
// guard against a client wedged after a KRaft fencing, which never rejoins by itself);
// the new member gets the committed offsets, so nothing is missed. The embedded cluster's
// broker going down is what throws the member out here.
TEST(ConsumerLifecycle, EmbeddedMemberOutOfTheGroupTooLongReplacesItsClientAndMissesNothing) {
  auto s = config::Settings::load({{"KAFKA_BOOTSTRAP_SERVERS", "embedded"}, {"LOG_LEVEL", "warn"}});
  const auto topic = itest::unique_name("rejoin");
  itest::create_topic_with_dlq(s, topic, 2);
  produce_numbered(s, topic, 50, 5);

  Tally tally;
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("rejoin-group");
  o.topics = {topic};
  o.rejoin_after = 2s;
  o.extra = {{"session.timeout.ms", "3000"}, {"heartbeat.interval.ms", "500"}};
  kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext&) { tally.add(batch); });
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return tally.size() >= 50; }));
  std::this_thread::sleep_for(2s);  // the periodic commit

  kafka::embedded::set_broker_down(1, true);
  ASSERT_TRUE(itest::wait_until([&] { return runner.stats().client_restarts >= 1; }, 30s)) << "the member never replaced its client";
  kafka::embedded::set_broker_down(1, false);
  produce_numbered(s, topic, 50, 5);  // "0".."49" again: each value now twice in all
  ASSERT_TRUE(itest::wait_until([&] { return tally.size() >= 100 && runner.assigned_partitions() == 2; }, 60s)) << tally.size();
  runner.stop();
  std::map<std::string, std::size_t> count;
  for (const auto& v : tally.seen) count[v]++;
  EXPECT_EQ(count.size(), 50u);
  for (const auto& [v, n] : count) EXPECT_EQ(n, 2u) << v << ": lost or handled again after the new client joined";
}

// stop() with the group coordinator gone (embedded cluster, its only broker down): the close
// cannot commit or leave the group, and rd_kafka_consumer_close would wait for it without a
// limit. stop() gives up on the close within the stop deadline; what was handled but not
// committed is read again by the next member once the broker is back (nothing is lost).
TEST(ConsumerLifecycle, EmbeddedStopWithTheCoordinatorGoneEndsWithinTheStopDeadline) {
  auto s = config::Settings::load({{"KAFKA_BOOTSTRAP_SERVERS", "embedded"}, {"LOG_LEVEL", "warn"}});
  const auto topic = itest::unique_name("close");
  itest::create_topic_with_dlq(s, topic, 2);
  produce_numbered(s, topic, 20, 5);
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("close-group");
  o.topics = {topic};
  o.stop_deadline = 15s;
  Tally first;
  kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext&) { first.add(batch); });
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return first.size() >= 20; }));
  std::this_thread::sleep_for(2s);   // the periodic commit of those 20
  produce_numbered(s, topic, 10, 5);  // "0".."9" again, handled below but never committed
  ASSERT_TRUE(itest::wait_until([&] { return first.size() >= 30; }));

  kafka::embedded::set_broker_down(1, true);
  const auto t0 = std::chrono::steady_clock::now();
  runner.stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, o.stop_deadline) << "stop() is bounded by the stop deadline";
  kafka::embedded::set_broker_down(1, false);

  Tally next;
  kafka::ConsumerRunner again(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext&) { next.add(batch); });
  again.start();
  ASSERT_TRUE(itest::wait_until([&] { return again.assigned_partitions() == 2; }, 60s));
  std::this_thread::sleep_for(2s);
  again.stop();
  // Everything after the last commit comes again: at most the 10 uncommitted, never the 20.
  EXPECT_LE(next.seen.size(), 10u);
  std::set<std::string> all(first.seen.begin(), first.seen.end());
  all.insert(next.seen.begin(), next.seen.end());
  EXPECT_EQ(all.size(), 20u) << "nothing lost";
}

// REBALANCE_IN_PROGRESS on the first offset commits (embedded cluster): the stored offsets
// are committed again on the next round, so a member that takes over later starts after
// them; nothing is lost and nothing is handled twice.
TEST(ConsumerLifecycle, EmbeddedCommitRefusedWhileRebalancingIsRetriedAndTheNextMemberStartsAfterIt) {
  auto s = config::Settings::load({{"KAFKA_BOOTSTRAP_SERVERS", "embedded"}, {"LOG_LEVEL", "warn"}});
  const auto topic = itest::unique_name("commit");
  itest::create_topic_with_dlq(s, topic, 2);
  constexpr int kOffsetCommitApi = 8, kRebalanceInProgress = 27;
  kafka::embedded::push_request_errors(kOffsetCommitApi, kRebalanceInProgress, 3);
  produce_numbered(s, topic, 100, 10);

  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("commit-group");
  o.topics = {topic};
  Tally first;
  {
    kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext&) { first.add(batch); });
    runner.start();
    ASSERT_TRUE(itest::wait_until([&] { return first.size() >= 100; }));
    std::this_thread::sleep_for(5s);  // periodic commits (1 s) outlast the refused ones
  }
  EXPECT_EQ(std::set<std::string>(first.seen.begin(), first.seen.end()).size(), 100u);
  produce_numbered(s, topic, 10, 10);  // "0".."9" again
  Tally next;
  kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext&) { next.add(batch); });
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return next.size() >= 10; }));
  std::this_thread::sleep_for(1s);
  runner.stop();
  EXPECT_EQ(next.seen.size(), 10u) << "the next member read again what was handled and committed before";
}
