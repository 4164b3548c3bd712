// 10,000 good events and 1,000 poison messages of every kind (bad JSON, wrong schema,
// unknown type, empty value, invalid UTF-8, oversized) interleaved on task-events and on
// notification.request: every good one processed once, every bad one in the DLQ with its
// reason, the consumers still running, lag back to 0. Prints the figures.

#include <gtest/gtest.h>

#include <filesystem>
#include <array>
#include <map>
#include <set>

#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "kafka/consumer_runner.hpp"
#include "kafka/producer.hpp"
#include "kafka/tail.hpp"
#include "notify/email.hpp"
#include "storage/store.hpp"
#include "workers/audit_consumer.hpp"
#include "workers/notification_consumer.hpp"
#include "../integration/test_env.hpp"

using namespace taskstream;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr int kGood = 10000, kPoisonEach = 1000;
const std::vector<std::string> kPoisonKinds{"bad_json", "schema", "unknown_type", "empty", "utf8", "oversized", "key_mismatch"};

/// The poison message of `kind`, and the dlq.reason it must get.
std::pair<std::string, std::string> poison(const std::string& kind, const std::string& topic_kind) {
  if (kind == "bad_json") return {"{\"type\": ", "bad_json"};
  if (kind == "schema") return {R"({"type":"task_created","user_id":42})", "schema"};
  if (kind == "unknown_type")
    return {topic_kind == "task" ? R"({"type":"task_teleported","user_id":"u","task_id":"0b7e7a43-3c4c-4e1e-9d8f-4c8f8ad2b2a1","timestamp":"2026-11-27T12:00:00Z","task_data":{}})"
                                 : R"({"user_id":"u","type":"","title":"t","message":"m"})",
            topic_kind == "task" ? "unknown_type" : "schema"};
  if (kind == "empty") return {"", "bad_json"};
  if (kind == "utf8") return {"{\"type\":\"task_created\",\"user_id\":\"\xff\xfe\"}", "bad_json"};
  if (kind == "key_mismatch") {  // a valid event of another user than the key (each user's own)
    if (topic_kind == "task")
      return {events::serialize(events::TaskEvent{events::new_event_id(), "task_updated", "updated", events::now_rfc3339(), "someone-else",
                                                  events::new_event_id(), 1, json{{"forged", true}}}),
              "key_mismatch"};
    events::NotificationRequest r;
    r.event_id = events::new_event_id();
    r.user_id = "someone-else";
    r.type = "deadline_reminder";
    r.title = "forged";
    r.message = "m";
    return {events::serialize(r), "key_mismatch"};
  }
  return {"{\"pad\":\"" + std::string(70 * 1024, 'x') + "\"}", "oversized"};
}

struct Flood {
  std::string topic;
  std::map<std::string, int> expected_reasons;
  /// The good task events: {user, task_id, event_id} (each its own task).
  std::vector<std::array<std::string, 3>> good_tasks;
};

Flood flood(const config::Settings& s, kafka::Producer& producer, const std::string& topic, const std::string& topic_kind,
            const std::vector<std::string>& users) {
  Flood f{topic, {}};
  std::vector<std::future<kafka::DeliveryResult>> pending;
  int poison_sent = 0;
  for (int i = 0; i < kGood; ++i) {
    const auto& user = users[i % users.size()];
    std::string payload;
    if (topic_kind == "task") {
      events::TaskEvent e{events::new_event_id(), "task_updated", "updated", events::now_rfc3339(), user, events::new_event_id(), i + 1,
                          json{{"n", i}}};
      payload = events::serialize(e);
      f.good_tasks.push_back({user, e.task_id, e.event_id});
    } else {
      events::NotificationRequest r;
      r.event_id = events::new_event_id();
      r.user_id = user;
      r.type = "deadline_reminder";
      r.title = "t" + std::to_string(i);
      r.message = "m";
      payload = events::serialize(r);
    }
    pending.push_back(producer.send({topic, user, std::move(payload), {}, std::nullopt}));
    // Interleave: after every 10 good ones, one poison message of the next kind.
    if (i % 10 == 9 && poison_sent < kPoisonEach * static_cast<int>(kPoisonKinds.size())) {
      const auto& kind = kPoisonKinds[poison_sent % kPoisonKinds.size()];
      auto [payload_bad, reason] = poison(kind, topic_kind);
      f.expected_reasons[reason]++;
      pending.push_back(producer.send({topic, user, std::move(payload_bad), {}, std::nullopt}));
      ++poison_sent;
    }
  }
  while (poison_sent < kPoisonEach * static_cast<int>(kPoisonKinds.size())) {
    const auto& kind = kPoisonKinds[poison_sent % kPoisonKinds.size()];
    auto [payload_bad, reason] = poison(kind, topic_kind);
    f.expected_reasons[reason]++;
    pending.push_back(producer.send({topic, users[0], std::move(payload_bad), {}, std::nullopt}));
    ++poison_sent;
  }
  for (auto& p : pending) EXPECT_TRUE(p.get().ok());
  (void)s;
  return f;
}

std::map<std::string, int> dlq_reasons(const config::Settings& s, const std::string& topic, std::size_t expected) {
  std::map<std::string, int> out;
  std::atomic<bool> stop{false};
  kafka::tail(s, topic + ".dlq", {.from_beginning = true, .max_messages = expected + 1, .idle_timeout = 5s},
              [&](const kafka::Message& m) {
                out[std::string(m.header("dlq.reason").value_or("?"))]++;
                return true;
              },
              stop);
  return out;
}

}  // namespace

TEST(PoisonFlood, GoodEventsProcessedOncePoisonDeadLetteredLagBackToZero) {
  const auto prefix = itest::unique_name("flood");
  auto db = std::filesystem::temp_directory_path() / (prefix + ".db");
  auto s = itest::kafka_settings({{"DATABASE_URL", "sqlite:///" + db.string()}, {"LOG_LEVEL", "error"}});
  const std::string events_topic = prefix + "-task-events", requests_topic = prefix + "-notification.request";
  itest::create_topic_with_dlq(s, events_topic, 6);
  itest::create_topic_with_dlq(s, requests_topic, 6);
  auto store = storage::open_store(s.database);
  store->migrate();
  std::vector<std::string> users;
  for (int u = 0; u < 100; ++u) users.push_back(store->create_user(prefix + "-" + std::to_string(u) + "@example.com", "x")->id);

  kafka::Producer producer(s);
  auto t0 = std::chrono::steady_clock::now();
  auto audit_flood = flood(s, producer, events_topic, "task", users);
  auto notify_flood = flood(s, producer, requests_topic, "notification", users);

  kafka::ConsumerOptions ao;
  ao.group_id = prefix + "-audit";
  ao.topics = {events_topic};
  workers::apply_audit_batching(ao);  // as serve runs it: poison is dead-lettered from the prepared batch
  kafka::ConsumerRunner audit(s, ao, workers::audit_handler(*store, ao.group_id));
  kafka::ConsumerOptions no;
  no.group_id = prefix + "-notification";
  no.topics = {requests_topic};
  no.max_batch = 500;
  kafka::ConsumerRunner notifications(s, no, workers::notification_handler(s, *store, *store, nullptr, no.group_id)  /* in_app only */);
  audit.start();
  notifications.start();

  const std::size_t poison_total = kPoisonEach * kPoisonKinds.size();
  auto done = [&](kafka::ConsumerRunner& r) { return r.stats().processed + r.stats().dead_lettered >= kGood + poison_total; };
  ASSERT_TRUE(itest::wait_until([&] { return done(audit) && done(notifications); }, 300s))
      << "audit " << audit.stats().processed << "+" << audit.stats().dead_lettered << ", notifications " << notifications.stats().processed << "+"
      << notifications.stats().dead_lettered;
  auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(audit.running());
  EXPECT_TRUE(notifications.running());

  kafka::Admin admin(s);
  auto lag_zero = [&](const std::string& group, const std::string& topic) {
    auto lag = admin.consumer_lag(group, topic);
    std::int64_t total = 0;
    for (auto& [p, l] : lag) total += l;
    return total == 0;
  };
  EXPECT_TRUE(itest::wait_until([&] { return lag_zero(ao.group_id, events_topic) && lag_zero(no.group_id, requests_topic); }, 30s));
  audit.stop();
  notifications.stop();

  // Every good one once, read from the database (not the handlers' counters): one audit row
  // per good event, with its event_id, and one notification per request.
  std::size_t audit_rows = 0, audit_right = 0;
  for (const auto& [user, task, event_id] : audit_flood.good_tasks) {
    const auto history = store->task_history(user, task);
    audit_rows += history.size();
    audit_right += history.size() == 1 && history[0].event_id == event_id;
  }
  EXPECT_EQ(audit_flood.good_tasks.size(), static_cast<std::size_t>(kGood));
  EXPECT_EQ(audit_rows, static_cast<std::size_t>(kGood)) << "audit rows in the database";
  EXPECT_EQ(audit_right, static_cast<std::size_t>(kGood)) << "good events with exactly their one audit row";
  std::size_t notifications_rows = 0;
  std::set<std::string> titles;
  for (const auto& u : users)
    for (const auto& n : store->list_notifications(u, false, 200)) ++notifications_rows, titles.insert(n.title);
  EXPECT_EQ(titles.size(), static_cast<std::size_t>(kGood)) << "distinct notification requests with a row";
  EXPECT_EQ(audit.stats().processed, static_cast<std::uint64_t>(kGood));
  EXPECT_EQ(notifications.stats().processed, static_cast<std::uint64_t>(kGood));
  EXPECT_EQ(notifications_rows, static_cast<std::size_t>(kGood));
  auto audit_dlq = dlq_reasons(s, events_topic, poison_total);
  auto notify_dlq = dlq_reasons(s, requests_topic, poison_total);
  EXPECT_EQ(audit_dlq, audit_flood.expected_reasons);
  EXPECT_EQ(notify_dlq, notify_flood.expected_reasons);
  std::printf("poison flood: %d good + %zu poison per topic; audit processed %llu, dead-lettered %llu; notifications processed %llu, "
              "dead-lettered %llu, rows %zu; audit rows in the database %zu; %.1f s from first produce to all handled\n",
              kGood, poison_total, static_cast<unsigned long long>(audit.stats().processed),
              static_cast<unsigned long long>(audit.stats().dead_lettered), static_cast<unsigned long long>(notifications.stats().processed),
              static_cast<unsigned long long>(notifications.stats().dead_lettered), notifications_rows, audit_rows, took);
}
