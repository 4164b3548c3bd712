// The broker stopped while users write: every write still succeeds at once, the events
// wait in the outbox, and when the broker is back they are published, each exactly once
// and in per-user order. Prints the figures.

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "kafka/tail.hpp"
#include "../integration/serve_process.hpp"

using namespace taskstream;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

int kafka_script(const std::string& args) {
  std::string cmd = TASKSTREAM_SOURCE_DIR "/scripts/kafka " + args + " >/dev/null 2>&1";
  return std::system(cmd.c_str());
}

/// Waits until the broker answers again (the script already waits; this guards against a
/// race with the controller electing leaders).
void restart_broker() {
  ASSERT_EQ(kafka_script("start"), 0);
  ASSERT_TRUE(itest::wait_until([] { return kafka_script("status") == 0; }, 60s));
}

double outbox_waiting(const itest::ServeProcess& s) {
  auto body = s.call("GET", "/metrics").body;
  auto pos = body.find("\noutbox_events_waiting ");
  if (pos == std::string::npos) return -1;
  return std::stod(body.substr(pos + 23));
}

}  // namespace

TEST(KafkaOutage, WritesSucceedWhileTheBrokerIsDownAndTheirEventsDrainAfter) {
  itest::ServeProcess serve;
  auto [user, token] = serve.new_user();
  ASSERT_EQ(serve.call("POST", "/tasks", json{{"title", "before the outage"}}.dump(), token).status, 201);
  ASSERT_TRUE(itest::wait_until([&] { return outbox_waiting(serve) == 0; }, 30s));

  ASSERT_EQ(kafka_script("stop"), 0);
  constexpr int kWrites = 50;
  int ok = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kWrites; ++i) ok += serve.call("POST", "/tasks", json{{"title", "during " + std::to_string(i)}}.dump(), token).status == 201;
  auto write_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(ok, kWrites);
  EXPECT_EQ(outbox_waiting(serve), 2 * kWrites);

  restart_broker();
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(itest::wait_until([&] { return outbox_waiting(serve) == 0; }, 180s)) << serve.log();
  auto drain_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t1).count();

  std::vector<std::int64_t> seqs;
  std::atomic<bool> stop{false};
  kafka::tail(itest::kafka_settings(), serve.topic("task-updates"), {.from_beginning = true, .max_messages = std::nullopt, .idle_timeout = 5s},
              [&](const kafka::Message& m) {
                auto j = json::parse(m.payload());
                if (j["user_id"] == user) seqs.push_back(j["seq"]);
                return true;
              },
              stop);
  std::vector<std::int64_t> expected(kWrites + 1);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(seqs, expected) << "lost, duplicated or out of order";
  std::printf("kafka outage: %d writes acknowledged in %lld ms with the broker down; events %zu (expected %d); drained %lld ms after the broker was back\n",
              ok, static_cast<long long>(write_ms), seqs.size(), kWrites + 1, static_cast<long long>(drain_ms));
  EXPECT_EQ(serve.stop(), 0);
}

TEST(KafkaOutage, SigtermWithTheBrokerDownExitsInTimeAndTheNextStartPublishes) {
  std::map<std::string, std::string> env;
  itest::ServeProcess serve;
  auto [user, token] = serve.new_user();
  ASSERT_EQ(kafka_script("stop"), 0);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(serve.call("POST", "/tasks", json{{"title", std::to_string(i)}}.dump(), token).status, 201);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(serve.stop(60s), 0) << serve.log();
  auto stop_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(stop_ms, 20000) << "stop overran the 15 s deadline";

  restart_broker();
  serve.start();  // same database: the outbox rows are still there
  ASSERT_TRUE(itest::wait_until([&] { return outbox_waiting(serve) == 0; }, 120s)) << serve.log();
  std::size_t events = 0;
  std::atomic<bool> stop{false};
  kafka::tail(itest::kafka_settings(), serve.topic("task-updates"), {.from_beginning = true, .max_messages = std::nullopt, .idle_timeout = 5s},
              [&](const kafka::Message& m) {
                events += json::parse(m.payload())["user_id"] == user;
                return true;
              },
              stop);
  EXPECT_EQ(events, 10u);
  std::printf("sigterm with broker down: exit 0 in %lld ms; %zu of 10 events published after restart\n", static_cast<long long>(stop_ms), events);
}
