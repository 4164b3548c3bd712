#pragma once
// Shared set-up for integration tests: the real broker's address comes from the
// environment (scripts/test sets it); a missing one fails the test, never skips it.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <thread>

#include "config/settings.hpp"
#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "storage/postgres_store.hpp"

namespace taskstream::itest {

/// The environment naming the broker under test, with `overrides` on top.
inline config::EnvMap kafka_env(config::EnvMap overrides = {}) {
  config::EnvMap env;
  const char* bootstrap = std::getenv("KAFKA_BOOTSTRAP_SERVERS");
  if (!bootstrap || !*bootstrap) {
    ADD_FAILURE() << "KAFKA_BOOTSTRAP_SERVERS is not set: integration tests need a real broker (run scripts/test)";
    throw std::runtime_error("KAFKA_BOOTSTRAP_SERVERS missing");
  }
  env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap;
  env["LOG_LEVEL"] = "warn";
  for (auto& [k, v] : overrides) env[k] = v;
  return env;
}

/// Settings for the broker under test, with `overrides` on top.
inline config::Settings kafka_settings(config::EnvMap overrides = {}) { return config::Settings::load(kafka_env(std::move(overrides))); }

/// A topic name no other test or run uses.
inline std::string unique_name(const std::string& prefix) {
  static std::mt19937_64 rng{std::random_device{}()};
  return prefix + "-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 100000000) + "-" +
         std::to_string(rng() % 100000);
}

/// Creates `topic` and its .dlq twin.
inline void create_topic_with_dlq(const config::Settings& s, const std::string& topic, int partitions) {
  kafka::Admin admin(s);
  admin.ensure_topics({{topic, partitions, 1, {}}, {topic + ".dlq", partitions, 1, {}}});
}

/// Polls `pred` until it holds or `timeout` passes; returns its last value.
inline bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

/// A valid task_created event of `user` with this `seq` (fresh event and task ids).
inline events::TaskEvent sample_task_event(const std::string& user, std::int64_t seq) {
  events::TaskEvent e;
  e.event_id = events::new_event_id();
  e.type = "task_created";
  e.action = "created";
  e.timestamp = events::now_rfc3339();
  e.user_id = user;
  e.task_id = events::new_event_id();
  e.seq = seq;
  e.task_data = {{"id", e.task_id}, {"title", "task " + std::to_string(seq)}};
  return e;
}

/// A DATABASE_URL for a fresh schema (named `prefix` + a number) in the test PostgreSQL
/// (TASKSTREAM_TEST_DATABASE_URL, set by scripts/test; missing, it throws: tests fail, not skip).
inline std::string fresh_postgres_schema_url(const std::string& prefix) {
  const char* base = std::getenv("TASKSTREAM_TEST_DATABASE_URL");
  if (!base || !*base) throw std::runtime_error("TASKSTREAM_TEST_DATABASE_URL is not set (run scripts/test)");
  const std::string schema = prefix + std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000);
  storage::postgres_execute(base, "CREATE SCHEMA " + schema);
  return std::string(base) + (std::string(base).find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
}

}  // namespace taskstream::itest
