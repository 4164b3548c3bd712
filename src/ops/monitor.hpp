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
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/metrics.hpp"
#include "config/settings.hpp"
#include "kafka/admin.hpp"
#include "outbox/relay.hpp"
#include "storage/roles.hpp"

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
std::optional<double> histogram_quantile(double q, const std::array<std::uint64_t, http::Metrics::kBucketCount>& buckets,
                                         std::uint64_t count, const std::array<double, http::Metrics::kBucketCount>& bounds);

/// Whether a consumer group of this name is one taskstream runs (audit, notification,
/// each instance's websocket group, the dead-letter redrives).
bool is_taskstream_group(const config::Settings& settings, std::string_view group_id);

class Monitor final {
 public:
  /// `relay` and `metrics` may be null (then their views are empty).
  Monitor(const config::Settings& settings, storage::OutboxStore& store, const outbox::Relay* relay, const http::Metrics* metrics,
          std::string instance_id, MonitorOptions options = {});
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  /// The views of one sample, serialised once when it was taken (each carries
  /// `sampled_at`, `instance`, `interval_seconds`): a request copies a string.
  struct Views {
    std::string overview, groups, topics, outbox, http;
    /// `{"type":"sample","overview":{...}}`, what the live feed pushes.
    std::shared_ptr<const std::string> live_frame;
  };

  /// Frames sent to this instance's WebSocket clients so far (the "live updates" effect).
  /// Set before start().
  void set_live_frames_counter(std::function<std::uint64_t()> counter) { live_frames_ = std::move(counter); }
  /// Called on the sampling thread after each sample with its views (the live feed). Set
  /// before start().
  void on_sample(std::function<void(const Views&)> listener) { listener_ = std::move(listener); }

  void start();
  void stop();
  /// Takes a sample now on the calling thread (blocking); the thread calls it each interval.
  void sample();

  /// The views of the last sample (before the first: empty figures, `sampled_at` null).
  std::shared_ptr<const Views> views() const;

 private:
  struct Point;
  struct Latest;
  // Each builds a view from latest_ and history_ (sample_mutex_ held, or in the constructor).
  nlohmann::json envelope() const;
  nlohmann::json build_groups() const;
  nlohmann::json build_topics() const;
  nlohmann::json build_outbox() const;
  nlohmann::json build_http() const;
  nlohmann::json build_overview(const nlohmann::json& outbox, const nlohmann::json& groups, const nlohmann::json& topics,
                                const nlohmann::json& http) const;
  std::shared_ptr<const Views> build_views() const;
  void run();

  const config::Settings& settings_;
  storage::OutboxStore& store_;
  const outbox::Relay* relay_;
  const http::Metrics* metrics_;
  std::string instance_id_;
  MonitorOptions options_;
  std::function<std::uint64_t()> live_frames_;
  std::function<void(const Views&)> listener_;

  std::mutex sample_mutex_;  // one sample at a time; guards the four below
  std::unique_ptr<kafka::Admin> admin_;
  std::deque<Point> history_;
  std::unique_ptr<Latest> latest_;

  mutable std::mutex mutex_;
  std::shared_ptr<const Views> views_;

  std::mutex run_mutex_;
  std::condition_variable run_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace taskstream::ops
