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
#include "kafka/admin.hpp"

namespace taskstream::itest {

/// Settings for the broker under test, with `overrides` on top.
inline config::Settings kafka_settings(config::EnvMap overrides = {}) {
  config::EnvMap env;
  const char* bootstrap = std::getenv("KAFKA_BOOTSTRAP_SERVERS");
  if (!bootstrap || !*bootstrap) {
    ADD_FAILURE() << "KAFKA_BOOTSTRAP_SERVERS is not set: integration tests need a real broker (run scripts/test)";
    throw std::runtime_error("KAFKA_BOOTSTRAP_SERVERS missing");
  }
  env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap;
  env["LOG_LEVEL"] = "warn";
  for (auto& [k, v] : overrides) env[k] = v;
  return config::Settings::load(env);
}

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

}  // namespace taskstream::itest
