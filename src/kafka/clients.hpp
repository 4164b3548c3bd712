#pragma once
// The librdkafka clients alive in this process, counted where every one is made and
// destroyed (kafka/impl/client.cpp): how /metrics shows `kafka_clients` (docs/operations.md),
// e.g. that a process runs one dead-letter producer, not one per consumer.
// Thread-safety: live_clients() may be called from any thread. Non-blocking.

#include <cstddef>
#include <string>
#include <vector>

#include "util/metrics.hpp"

namespace taskstream::kafka {

struct LiveClients {
  std::string type;       ///< librdkafka's: "producer" (admin clients too) or "consumer"
  std::string client_id;  ///< its client.id
  std::size_t count = 0;
};

/// Every (type, client.id) with at least one client alive, sorted.
std::vector<LiveClients> live_clients();

/// Registers the `kafka_clients` gauge family (by type and client_id) over live_clients().
void register_client_metrics(util::MetricsRegistry& registry);

}  // namespace taskstream::kafka
