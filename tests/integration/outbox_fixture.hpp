#pragma once
// An outbox on a fresh SQLite file with its own topics, for tests of the relay: write
// tasks (each puts two events in the outbox), then check what reached the topics.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "kafka/tail.hpp"
#include "outbox/task_events.hpp"
#include "storage/store.hpp"
#include "test_env.hpp"

namespace taskstream::itest {

inline storage::Task new_task(const std::string& user, int n) {
  storage::Task t;
  t.id = events::new_event_id();
  t.user_id = user;
  t.title = "task " + std::to_string(n);
  t.created_at = t.updated_at = events::now_rfc3339();
  return t;
}

/// (user, seq) of every message on `topic`, in partition order.
inline std::map<std::string, std::vector<std::int64_t>> seqs_by_user(const config::Settings& s, const std::string& topic,
                                                                     std::size_t expected) {
  std::map<std::string, std::vector<std::int64_t>> out;
  std::atomic<bool> stop{false};
  kafka::tail(s, topic, {.from_beginning = true, .max_messages = expected + 1, .idle_timeout = std::chrono::seconds(3)},
              [&](const kafka::Message& m) {
                auto j = nlohmann::json::parse(m.payload());
                out[j["user_id"]].push_back(j["seq"]);
                return true;
              },
              stop);
  return out;
}

struct OutboxFixture {
  std::string prefix;
  config::Settings s;
  std::unique_ptr<storage::Store> store;
  std::vector<std::string> users;

  /// `kafka` names the cluster (KAFKA_BOOTSTRAP_SERVERS and the like); the topics and the
  /// database are this fixture's own.
  OutboxFixture(config::EnvMap kafka, const std::string& name, int user_count) : prefix(unique_name(name)) {
    kafka["KAFKA_TOPIC_TASK_EVENTS"] = prefix + "-events";
    kafka["KAFKA_TOPIC_TASK_UPDATES"] = prefix + "-updates";
    kafka["DATABASE_URL"] = "sqlite:///" + (std::filesystem::temp_directory_path() / (prefix + ".db")).string();
    s = config::Settings::load(kafka);
    kafka::Admin(s).ensure_topics(kafka::service_topics(s));
    store = storage::open_store(s.database);
    store->migrate();
    for (int u = 0; u < user_count; ++u) users.push_back(store->create_user(unique_name("u") + "@example.com", "x")->id);
  }
  ~OutboxFixture() {
    store.reset();
    std::error_code ec;
    for (const char* suffix : {".db", ".db-wal", ".db-shm"}) std::filesystem::remove(std::filesystem::temp_directory_path() / (prefix + suffix), ec);
  }

  /// Tasks from..to-1 for every user, each with its two events in the outbox.
  void write(int from, int to) {
    auto factory = outbox::task_event_factory(s, "task_created");
    for (int i = from; i < to; ++i)
      for (const auto& user : users) store->create_task(new_task(user, i), factory);
  }

  /// Each user's seq on both topics is exactly 1..per_user: nothing lost, duplicated or reordered.
  void expect_each_event_once_in_order(int per_user) {
    for (const auto& topic : {prefix + "-events", prefix + "-updates"}) {
      auto seqs = seqs_by_user(s, topic, users.size() * static_cast<std::size_t>(per_user));
      ASSERT_EQ(seqs.size(), users.size()) << topic;
      std::vector<std::int64_t> expected(per_user);
      std::iota(expected.begin(), expected.end(), 1);
      for (const auto& [user, list] : seqs) EXPECT_EQ(list, expected) << topic << " " << user << ": lost, duplicated or out of order";
    }
  }
};

}  // namespace taskstream::itest
