#pragma once
// The figures behind the operations console (docs/operations.md, "Console"): consumer
// groups and their lag, topics, outbox and relay, HTTP per route, sampled every few seconds
// on one thread of its own and kept for the last 15 minutes in memory (per instance: each
// instance keeps and shows its own history).
//
// Requests never reach Kafka: the /admin routes read the last sample, so an open console
// (or ten) costs the brokers one round of admin requests per interval, whatever it asks.
//
// Thread-safe. The sampling thread blocks on the cluster and the database; nothing else does.

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/metrics.hpp"
#include "config/settings.hpp"
#include "kafka/admin.hpp"
#include "outbox/relay.hpp"
#include "storage/store.hpp"

namespace taskstream::ops {

struct MonitorOptions {
  std::chrono::milliseconds interval{5000};
  std::chrono::seconds window{15 * 60};
  /// Oldest outbox row older than this, or a group lagging without progress this long: red.
  std::chrono::seconds stuck_after{60};
};

/// The q-quantile (0..1) of requests counted in cumulative `buckets` with upper `bounds`
/// (seconds), interpolated linearly inside the bucket as Prometheus' histogram_quantile
/// does; past the last bound it answers the last bound. nullopt when `count` is 0.
std::optional<double> histogram_quantile(double q, const std::array<std::uint64_t, api::Metrics::kBucketCount>& buckets,
                                         std::uint64_t count, const std::array<double, api::Metrics::kBucketCount>& bounds);

/// Whether a consumer group of this name is one taskstream runs (audit, notification,
/// each instance's websocket group, the dead-letter redrives).
bool is_taskstream_group(const config::Settings& settings, std::string_view group_id);

class Monitor final {
 public:
  /// `relay` and `metrics` may be null (then their views are empty).
  Monitor(const config::Settings& settings, storage::Store& store, const outbox::Relay* relay, const api::Metrics* metrics,
          std::string instance_id, MonitorOptions options = {});
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  void start();
  void stop();
  /// Takes a sample now on the calling thread (blocking); the thread calls it each interval.
  void sample();

  // The views, from the last sample (each carries `sampled_at`, `instance`, `interval_seconds`).
  nlohmann::json overview() const;
  nlohmann::json groups() const;
  nlohmann::json topics() const;
  nlohmann::json outbox() const;
  nlohmann::json http() const;

 private:
  struct Point;
  struct Latest;
  nlohmann::json envelope() const;  // under mutex_
  void run();

  const config::Settings& settings_;
  storage::Store& store_;
  const outbox::Relay* relay_;
  const api::Metrics* metrics_;
  std::string instance_id_;
  MonitorOptions options_;
  std::unique_ptr<kafka::Admin> admin_;  // sampling thread only

  mutable std::mutex mutex_;
  std::deque<Point> history_;
  std::unique_ptr<Latest> latest_;

  std::mutex run_mutex_;
  std::condition_variable run_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace taskstream::ops
