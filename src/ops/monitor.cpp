#include "ops/monitor.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "events/events.hpp"
#include "ops/figures.hpp"
#include "ops/monitor_state.hpp"
#include "kafka/dead_letter.hpp"
#include "kafka/error.hpp"

namespace taskstream::ops {
using nlohmann::json;
using namespace figures;

std::optional<double> histogram_quantile(double q, const std::array<std::uint64_t, http::Metrics::kBucketCount>& buckets,
                                         std::uint64_t count, const std::array<double, http::Metrics::kBucketCount>& bounds) {
  if (count == 0) return std::nullopt;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(count);
  double lower = 0;
  std::uint64_t below = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (static_cast<double>(buckets[i]) >= rank && buckets[i] > below) {
      const double in_bucket = static_cast<double>(buckets[i] - below);
      return lower + (bounds[i] - lower) * ((rank - static_cast<double>(below)) / in_bucket);
    }
    lower = bounds[i];
    below = buckets[i];
  }
  return bounds.back();  // in the +Inf bucket: all we know is "more than the last bound"
}

bool is_taskstream_group(const config::Settings& s, std::string_view id) {
  if (id == s.kafka_consumer_group_audit || id == s.kafka_consumer_group_notification || id.starts_with(s.kafka_consumer_group_websocket + "-"))
    return true;
  // The redrive positions of this deployment's dead-letter topics (`taskstream-redrive.<topic>.dlq[.<filter>]`).
  for (const auto& t : kafka::service_topic_names(s)) {
    const std::string prefix = "taskstream-redrive." + t + ".dlq";
    if (id == prefix || id.starts_with(prefix + ".")) return true;
  }
  return false;
}


Monitor::Monitor(const config::Settings& settings, storage::OutboxStore& store, const outbox::Relay* relay, const http::Metrics* metrics,
                 std::string instance_id, MonitorOptions options)
    : settings_(settings), store_(store), relay_(relay), metrics_(metrics), instance_id_(std::move(instance_id)), options_(options),
      latest_(std::make_unique<Latest>()), views_(build_views()) {}

Monitor::~Monitor() { stop(); }

void Monitor::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(run_mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void Monitor::stop() {
  {
    std::lock_guard lock(run_mutex_);
    stopping_ = true;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Monitor::run() {
  for (;;) {
    try {
      sample();
    } catch (const std::exception& e) {
      spdlog::warn("console monitor: {}", e.what());
    }
    std::unique_lock lock(run_mutex_);
    if (run_cv_.wait_for(lock, options_.interval, [this] { return stopping_; })) return;
  }
}

void Monitor::sample() {
  std::lock_guard sampling(sample_mutex_);
  auto next = std::make_unique<Latest>();
  Point point;
  next->t_ms = point.t_ms = now_ms();
  next->sampled_at = events::now_rfc3339();
  if (settings_.kafka_enabled) {
    try {
      if (!admin_) admin_ = std::make_unique<kafka::Admin>(settings_);
      const auto timeout = std::max<std::chrono::milliseconds>(options_.interval, std::chrono::seconds(3));
      next->topics = admin_->list_topics(timeout);
      next->brokers = admin_->broker_count(timeout);
      next->ends = admin_->end_offsets(next->topics, timeout);
      // The audit and notification groups consume one topic each: show its partitions even
      // before the group committed there (its worker may have stopped before its first).
      auto known = [&](std::string_view id) {
        std::vector<kafka::TopicInfo> out;
        const std::string* topic = id == settings_.kafka_consumer_group_audit          ? &settings_.kafka_topic_task_events
                                   : id == settings_.kafka_consumer_group_notification ? &settings_.kafka_topic_notification_request
                                                                                         : nullptr;
        if (topic)
          for (const auto& t : next->topics)
            if (t.name == *topic) out.push_back(t);
        return out;
      };
      next->groups = admin_->consumer_groups([this](std::string_view id) { return is_taskstream_group(settings_, id); }, known, timeout);
    } catch (const std::exception& e) {
      next->kafka_error = e.what();
    }
  } else {
    next->kafka_error = "Kafka is disabled (KAFKA_ENABLED=false)";
  }
  for (const auto& g : next->groups) {
    std::int64_t lag = 0, committed = 0;
    auto& parts = point.partition_lag[g.group_id];
    for (const auto& p : g.partitions) {
      lag += p.lag;
      committed += std::max<std::int64_t>(0, p.committed);
      parts[p.topic + "/" + std::to_string(p.partition)] = p.lag;
    }
    point.group_lag[g.group_id] = lag;
    point.group_committed[g.group_id] = committed;
  }
  // A topic's sum only when every partition's end is known: a partition whose leader is
  // down answers no offset, and a partial sum would show as a burst when it comes back.
  std::set<std::string> unknown_end;
  for (const auto& [tp, end] : next->ends) {
    if (end < 0) unknown_end.insert(tp.first);
    else point.topic_end[tp.first] += end;
  }
  for (const auto& t : next->topics) {
    std::size_t known = 0;
    for (const auto& part : t.partitions) known += next->ends.count({t.name, part.id});
    if (known != t.partitions.size()) unknown_end.insert(t.name);
  }
  for (const auto& t : unknown_end) point.topic_end.erase(t);
  try {
    next->outbox = store_.outbox_stats();
    point.outbox_waiting = next->outbox->waiting;
  } catch (const std::exception& e) {
    next->outbox_error = e.what();
  }
  if (relay_) {
    next->relay = relay_->stats();
    point.relay_published = next->relay->published;
  }
  if (metrics_) point.http = metrics_->route_totals();
  if (live_frames_) point.live_frames = live_frames_();

  latest_ = std::move(next);
  history_.push_back(std::move(point));
  while (!history_.empty() && history_.front().t_ms < history_.back().t_ms - std::chrono::milliseconds(options_.window).count())
    history_.pop_front();
  auto views = build_views();
  {
    std::lock_guard lock(mutex_);
    views_ = views;
  }
  if (listener_) listener_(*views);
}


}  // namespace taskstream::ops
