#pragma once
// Reading a topic without joining a group: `taskstream tail`, `dlq list`, tests.
//
// Blocking: tail() runs on the calling thread until `stop` is set, `max_messages` arrive,
// or `idle_timeout` passes without a message. Commits nothing.

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "config/settings.hpp"
#include "kafka/message.hpp"

namespace taskstream::kafka {

struct TailOptions {
  bool from_beginning = false;                              ///< else only what arrives from now on
  std::optional<std::size_t> max_messages;                  ///< stop after this many
  std::optional<std::chrono::milliseconds> idle_timeout;    ///< stop after this long with nothing new
};

/// Calls `on_message` for each message of every partition of `topic`; returning false stops.
/// Throws KafkaException when the topic does not exist or the cluster cannot be reached.
void tail(const config::Settings& settings, const std::string& topic, const TailOptions& options,
          const std::function<bool(const Message&)>& on_message, const std::atomic<bool>& stop);

/// One JSON object line for a message: topic, partition, offset, timestamp, key, headers,
/// and value (parsed when it is JSON, else a string).
std::string message_to_json_line(const Message& m);

}  // namespace taskstream::kafka
