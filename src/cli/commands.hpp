#pragma once
// The `taskstream` subcommands that talk to Kafka. Each returns the process exit code and
// reports errors on stderr in one line; they never throw.

#include <atomic>
#include <optional>
#include <string>

#include "config/settings.hpp"

namespace taskstream::cli {

int topics_ensure(const config::Settings& s);
int topics_list(const config::Settings& s);
int topics_describe(const config::Settings& s, const std::optional<std::string>& topic);

struct TailArgs {
  std::string topic;
  bool from_beginning = false;
  std::optional<std::size_t> max_messages;
  std::optional<int> idle_timeout_ms;
};
int tail(const config::Settings& s, const TailArgs& args, const std::atomic<bool>& stop);

/// One JSON line per dead letter of TOPIC.dlq: offset, reason, class, source, attempts, key, detail.
int dlq_list(const config::Settings& s, const std::string& topic, const std::atomic<bool>& stop);
int dlq_redrive(const config::Settings& s, const std::string& topic, const std::string& filter, bool dry_run);

}  // namespace taskstream::cli
