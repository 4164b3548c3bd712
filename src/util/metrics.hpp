#pragma once
// Where a component registers the Prometheus metrics it owns (docs/operations.md, "Metrics").
// http::Metrics, which serves /metrics, implements it; a component gets a reference in its
// register_metrics() and keeps no pointer to it. Lives here, below every layer, so that the
// relay, the hub, the scheduler and the consumers can register without depending on the API.
//
// Thread-safety: registering happens at wiring time, on one thread; the functions given are
// called from the thread that renders /metrics, so they must be safe to call from any thread
// (read atomics or take the component's own lock). Non-blocking, apart from what they do.

#include <functional>
#include <string>
#include <string_view>

namespace taskstream::util {

class MetricsRegistry {
 public:
  virtual ~MetricsRegistry() = default;
  /// One sample without labels, read at each scrape; `type` is "gauge" or "counter".
  virtual void add_gauge(std::string name, std::string help, std::string type, std::function<double()> read) = 0;
  /// Families with labels: `write` appends their exposition text (# HELP, # TYPE, samples).
  virtual void add_collector(std::function<void(std::string& out)> write) = 0;
};

/// A label value escaped for the Prometheus text format (backslash, quote, newline).
std::string escape_label(std::string_view value);

}  // namespace taskstream::util
