// Deadline reminders through two serve instances sharing one PostgreSQL database: a task
// due within REMINDER_LEAD_SECONDS gets one deadline_reminder, an overdue one gets one
// task_overdue (and no "due soon"), a done task gets none; each exactly once although both
// instances run the scheduler.

#include <gtest/gtest.h>

#include "events/events.hpp"
#include "serve_process.hpp"
#include "kafka/tail.hpp"
#include "storage/postgres/postgres_store.hpp"

using namespace taskstream;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string in_minutes(int minutes) {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + std::chrono::minutes(minutes));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

TEST(Reminders, EachReminderGoesOutOnceAcrossTwoInstances) {
  const char* base = std::getenv("TASKSTREAM_TEST_DATABASE_URL");
  ASSERT_TRUE(base && *base) << "TASKSTREAM_TEST_DATABASE_URL is not set (run scripts/test)";
  const std::string schema = "rem_" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000);
  storage::postgres_execute(base, "CREATE SCHEMA " + schema);
  const std::string url = std::string(base) + (std::string(base).find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;

  itest::ServeProcess a(std::map<std::string, std::string>{{"DATABASE_URL", url}, {"REMINDER_LEAD_SECONDS", "3600"}, {"EMAIL_NOTIFICATIONS_ENABLED", "false"}});
  auto env = a.env();
  env.erase("HTTP_PORT");
  itest::ServeProcess b(env);  // same database, topics and groups; its own port

  auto [user, token] = a.new_user("reminded");
  auto soon = a.call("POST", "/tasks", json{{"title", "due soon"}, {"due_at", in_minutes(30)}}.dump(), token).json();
  auto late = a.call("POST", "/tasks", json{{"title", "overdue"}, {"due_at", in_minutes(-5)}}.dump(), token).json();
  auto later = a.call("POST", "/tasks", json{{"title", "next week"}, {"due_at", in_minutes(7 * 24 * 60)}}.dump(), token).json();
  auto done = a.call("POST", "/tasks", json{{"title", "done already"}, {"due_at", in_minutes(10)}, {"status", "done"}}.dump(), token).json();

  json items;
  ASSERT_TRUE(itest::wait_until([&] {
    items = b.call("GET", "/notifications", {}, token).json()["items"];
    return items.size() >= 2;
  }, 60s)) << a.log();
  // Quiescence, read from both instances rather than slept through: two more completed
  // scheduler passes on each, the shared outbox empty, and no consumer lag on either; only
  // then is "exactly once" judged.
  const double a_passes = a.metric("reminder_scheduler_passes_total"), b_passes = b.metric("reminder_scheduler_passes_total");
  ASSERT_GE(a_passes, 0) << "no reminder_scheduler_passes_total in /metrics";
  ASSERT_TRUE(itest::wait_until(
      [&] {
        return a.metric("reminder_scheduler_passes_total") >= a_passes + 2 && b.metric("reminder_scheduler_passes_total") >= b_passes + 2 &&
               a.metric("outbox_events_waiting") == 0 && a.metric("consumer_lag") <= 0 && b.metric("consumer_lag") <= 0;
      },
      60s))
      << "the instances did not settle";
  items = a.call("GET", "/notifications", {}, token).json()["items"];
  std::map<std::string, std::vector<std::string>> by_task;
  for (auto& n : items) by_task[n["task_id"]].push_back(n["type"]);
  EXPECT_EQ(by_task[soon["id"]], std::vector<std::string>{"deadline_reminder"});
  EXPECT_EQ(by_task[late["id"]], std::vector<std::string>{"task_overdue"});
  EXPECT_EQ(by_task.count(later["id"]), 0u);
  EXPECT_EQ(by_task.count(done["id"]), 0u);
  EXPECT_EQ(items.size(), 2u) << items.dump();

  // Moving due_at re-arms: a new reminder for the new due time.
  ASSERT_EQ(a.call("PATCH", "/tasks/" + soon["id"].get<std::string>(), json{{"due_at", in_minutes(45)}}.dump(), token).status, 200);
  ASSERT_TRUE(itest::wait_until([&] { return a.call("GET", "/notifications", {}, token).json()["items"].size() == 3; }, 30s));
  EXPECT_EQ(a.stop(), 0);
  EXPECT_EQ(b.stop(), 0);
  storage::postgres_execute(base, "DROP SCHEMA IF EXISTS " + schema + " CASCADE");
}

TEST(TwoInstances, OnlyOneRelayPublishesSoEveryEventGoesOutOnceInOrder) {
  const char* base = std::getenv("TASKSTREAM_TEST_DATABASE_URL");
  ASSERT_TRUE(base && *base) << "TASKSTREAM_TEST_DATABASE_URL is not set (run scripts/test)";
  const std::string schema = "two_" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000);
  storage::postgres_execute(base, "CREATE SCHEMA " + schema);
  const std::string url = std::string(base) + (std::string(base).find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
  itest::ServeProcess a(std::map<std::string, std::string>{{"DATABASE_URL", url}}, {"serve", "--consumers", "none"});
  auto env = a.env();
  env.erase("HTTP_PORT");
  itest::ServeProcess b(env, {"serve", "--consumers", "none"});

  auto [user, token] = a.new_user("two");
  constexpr int kChanges = 60;
  for (int i = 0; i < kChanges; ++i) {
    auto& via = i % 2 ? a : b;
    ASSERT_EQ(via.call("POST", "/tasks", json{{"title", "t" + std::to_string(i)}}.dump(), token).status, 201);
  }
  std::vector<std::int64_t> seqs;
  std::atomic<bool> stop{false};
  kafka::tail(itest::kafka_settings(), a.topic("task-updates"),
              {.from_beginning = true, .max_messages = std::nullopt, .idle_timeout = std::chrono::seconds(8)},
              [&](const kafka::Message& m) {
                auto j = json::parse(m.payload());
                if (j["user_id"] == user) seqs.push_back(j["seq"]);
                return true;
              },
              stop);
  std::vector<std::int64_t> expected(kChanges);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(seqs, expected) << "duplicated or out of order with two relays";
  EXPECT_EQ(a.stop(), 0);
  EXPECT_EQ(b.stop(), 0);
  storage::postgres_execute(base, "DROP SCHEMA IF EXISTS " + schema + " CASCADE");
}
