#pragma once
// An outbox on a fresh SQLite file with its own topics, for tests of the relay: write
// tasks (each puts two events in the outbox), then check what reached the topics.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <set>
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

/// What the order checker found on one topic. A user's events are read in partition order
/// and each event_id counts at its first occurrence (consumers apply an event_id once, so a
/// copy sent again after a possibly-persisted failure changes nothing they do).
struct OrderReport {
  std::size_t messages = 0;
  std::size_t redelivered = 0;   ///< a copy of an event_id already seen (absorbed)
  std::size_t out_of_order = 0;  ///< a first occurrence whose seq is not the previous + 1
  std::size_t missing = 0;       ///< seqs 1..per_user never seen
  std::size_t foreign_key = 0;   ///< message key is not the event's user_id
  std::size_t split_users = 0;   ///< users whose events are on more than one partition
  std::string first_problem;
  bool ok() const { return out_of_order == 0 && missing == 0 && foreign_key == 0 && split_users == 0; }
};

/// Reads every message of `topic` (until 3 s pass with nothing new) and checks that each
/// user's events, keyed by the user, sit on one partition with seq 1..per_user in order
/// and no gap.
inline OrderReport check_per_user_order(const config::Settings& s, const std::string& topic, const std::vector<std::string>& users,
                                        std::int64_t per_user) {
  struct Seen {
    std::int64_t next = 1;
    std::set<std::string> event_ids;
    std::set<std::int32_t> partitions;
  };
  std::map<std::string, Seen> by_user;
  OrderReport r;
  auto problem = [&](std::string what) {
    if (r.first_problem.empty()) r.first_problem = topic + ": " + std::move(what);
  };
  std::atomic<bool> stop{false};
  kafka::tail(s, topic, {.from_beginning = true, .max_messages = std::nullopt, .idle_timeout = std::chrono::seconds(3)},
              [&](const kafka::Message& m) {
                ++r.messages;
                auto j = nlohmann::json::parse(m.payload());
                const std::string user = j["user_id"], event_id = j["event_id"];
                const std::int64_t seq = j["seq"];
                if (m.key() != user) ++r.foreign_key, problem("key " + std::string(m.key()) + " carries an event of " + user);
                auto& seen = by_user[user];
                seen.partitions.insert(m.partition());
                if (!seen.event_ids.insert(event_id).second) {
                  ++r.redelivered;
                  return true;
                }
                if (seq != seen.next) {
                  ++r.out_of_order;
                  problem("user " + user + ": seq " + std::to_string(seq) + " where " + std::to_string(seen.next) + " was due (offset " +
                          std::to_string(m.offset()) + ")");
                }
                seen.next = std::max(seen.next, seq + 1);
                return true;
              },
              stop);
  for (const auto& user : users) {
    auto it = by_user.find(user);
    const auto got = it == by_user.end() ? 0 : static_cast<std::int64_t>(it->second.event_ids.size());
    if (got < per_user) r.missing += static_cast<std::size_t>(per_user - got), problem("user " + user + ": " + std::to_string(got) + " events");
    if (it != by_user.end() && it->second.partitions.size() > 1) ++r.split_users, problem("user " + user + " on several partitions");
  }
  return r;
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

  /// Each user's events on both topics, first occurrences, are seq 1..per_user in order
  /// (copies of an event_id allowed, see check_per_user_order). Returns the copies seen.
  std::size_t expect_per_user_order(int per_user) {
    std::size_t copies = 0;
    for (const auto& topic : {prefix + "-events", prefix + "-updates"}) {
      auto r = check_per_user_order(s, topic, users, per_user);
      EXPECT_TRUE(r.ok()) << r.first_problem << " (" << r.out_of_order << " out of order, " << r.missing << " missing, "
                          << r.foreign_key << " foreign keys, " << r.split_users << " users split)";
      copies += r.redelivered;
    }
    return copies;
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
