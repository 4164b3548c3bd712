#pragma once
// How settings become librdkafka properties. Pure functions over Settings (no librdkafka
// types), so the mapping is unit-tested property by property.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "config/settings.hpp"

namespace taskstream::kafka {

using Properties = std::vector<std::pair<std::string, std::string>>;

/// Producer knobs beyond the settings; defaults suit the outbox relay.
struct ProducerOptions {
  std::string client_id = "taskstream";
  /// librdkafka's message.timeout.ms: how long a message may wait for delivery. The outbox
  /// keeps undelivered rows, so this bounds one attempt, not the life of an event.
  std::chrono::milliseconds delivery_timeout{120'000};
  /// Block the producing thread when the local queue is full instead of failing at once.
  bool block_when_full = true;
  Properties extra;  ///< applied last; for tests and tuning
};

/// Consumer knobs used by ConsumerRunner and `tail`.
struct ConsumerProperties {
  std::string group_id;
  std::string client_id = "taskstream";
  Properties extra;
};

/// bootstrap, security protocol, SASL and SSL: shared by every client.
/// `bootstrap` overrides KAFKA_BOOTSTRAP_SERVERS (used to point at the embedded cluster).
Properties common_properties(const config::Settings& s, const std::string& bootstrap);
/// common + idempotence, acks=all, linger, batch size, compression, timeouts.
Properties producer_properties(const config::Settings& s, const std::string& bootstrap, const ProducerOptions& o);
/// common + group id, earliest reset, manual offset store, periodic commit of stored offsets.
Properties consumer_properties(const config::Settings& s, const std::string& bootstrap, const ConsumerProperties& o);

/// The address list clients connect to: KAFKA_BOOTSTRAP_SERVERS, or the in-process mock
/// cluster's when it is `embedded` (started on first use). Blocks briefly on first use.
std::string resolve_bootstrap(const config::Settings& s);

/// The value of `key` in `props` (last wins), or empty.
std::string find_property(const Properties& props, std::string_view key);

}  // namespace taskstream::kafka
