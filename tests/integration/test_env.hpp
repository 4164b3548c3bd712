#pragma once
// Shared set-up for integration tests: the real broker's address comes from the
// environment (scripts/test sets it); a missing one fails the test, never skips it.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "config/settings.hpp"
#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "storage/postgres/postgres_store.hpp"

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

/// The value of environment variable `name`, which scripts/test sets; throws (the test
/// fails, it does not skip) when it is missing. `what` says what it names.
inline std::string required_env(const char* name, const std::string& what) {
  const char* v = std::getenv(name);
  if (!v || !*v) throw std::runtime_error(std::string(name) + " is not set: it names " + what + " (run scripts/test)");
  return v;
}

/// A program run as a child: `argv` (argv[0] the program's path), stdout and stderr into
/// `log` (inherited when empty). SIGTERMed and reaped on destruction.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> argv, const std::string& log = {}) {
    pid_ = fork();
    if (pid_ == 0) {
      if (!log.empty()) {
        const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~ChildProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

 private:
  pid_t pid_ = -1;
};

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
