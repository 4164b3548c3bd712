#pragma once
// Prometheus metrics of the serving process (docs/operations.md, "Metrics"): requests and latency by
// route and status, outbox figures. Thread-safe; observe() is cheap (one mutex, no I/O).

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>
#include <utility>

#include "util/metrics.hpp"

namespace taskstream::http {

class Metrics final : public util::MetricsRegistry {
 public:
  void observe_request(const std::string& method, const std::string& route, int status, std::chrono::nanoseconds elapsed);
  /// Gauges read when /metrics is scraped (outbox waiting, relay counters...).
  void add_gauge(std::string name, std::string help, std::string type, std::function<double()> read) override;
  /// Families with labels (per consumer group and partition...): `write` appends their
  /// exposition text (# HELP, # TYPE and samples) when /metrics is scraped.
  void add_collector(std::function<void(std::string& out)> write) override;
  /// The Prometheus text exposition.
  std::string render() const;

  static constexpr std::size_t kBucketCount = 12;
  /// Upper bounds (seconds) of the latency buckets; `RouteTotals::buckets[i]` counts the
  /// requests that took at most `bucket_bounds()[i]` (cumulative, as Prometheus does).
  static const std::array<double, kBucketCount>& bucket_bounds() noexcept { return kBuckets; }
  struct RouteTotals {
    std::uint64_t count = 0, client_errors = 0, server_errors = 0;  ///< all, 4xx, 5xx
    std::array<std::uint64_t, kBucketCount> buckets{};
    double sum = 0;
  };
  /// Counters since start per (method, route), all statuses together (the console's HTTP view).
  std::map<std::pair<std::string, std::string>, RouteTotals> route_totals() const;

 private:
  static constexpr std::array<double, kBucketCount> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  struct Gauge {
    std::string name, help, type;
    std::function<double()> read;
  };
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> requests_;
  std::map<std::tuple<std::string, std::string, int>, Histogram> latency_;
  std::vector<Gauge> gauges_;
  std::vector<std::function<void(std::string&)>> collectors_;
};

using util::escape_label;

}  // namespace taskstream::http
