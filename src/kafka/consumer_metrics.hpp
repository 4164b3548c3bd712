#pragma once
// The consumer families of /metrics (docs/operations.md, "Metrics"): per consumer group and
// partition, messages processed, dead-lettered and retried, and lag.
// Thread-safety: as util::MetricsRegistry; `runners` is called at each scrape.

#include <functional>
#include <vector>

#include "kafka/consumer_runner.hpp"
#include "util/metrics.hpp"

namespace taskstream::kafka {

/// Registers the families over the runners `runners` returns at each scrape (null entries,
/// a runner not made yet, are skipped).
void register_consumer_metrics(util::MetricsRegistry& registry, std::function<std::vector<const ConsumerRunner*>()> runners);

}  // namespace taskstream::kafka
