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
  /// librdkafka's message.timeout.ms: how long a message may wait for delivery; 0 = no
  /// limit (librdkafka retries in order until delivered, purged or the client is fatal).
  /// The outbox relay uses 0: an idempotent producer whose message times out bumps its
  /// epoch and sends the later messages of that partition, so a retry of the timed-out one
  /// would land after them (docs/reliability.md, "Per-user order").
  std::chrono::milliseconds delivery_timeout{120'000};
  /// enable.gapless.guarantee: an error that would leave a gap in a partition's sequence
  /// makes the client fatal (every message it holds fails) instead of skipping the failed
  /// batch and sending the next ones. The owner then replaces the client (Producer::restart).
  bool gapless = false;
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
