#pragma once
// What the monitor keeps between samples: one point of the console's charts and the latest
// sample in full. Internal to src/ops (ops/monitor.cpp samples, ops/views.cpp reads).
// Thread-safety: written and read on the monitor's thread only.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "http/metrics.hpp"
#include "kafka/admin.hpp"
#include "ops/monitor.hpp"
#include "outbox/relay.hpp"

namespace taskstream::ops {

struct Monitor::Point {
  std::int64_t t_ms = 0;
  std::map<std::string, std::int64_t> group_lag;        // group -> total lag
  std::map<std::string, std::int64_t> group_committed;  // group -> sum of committed offsets (progress)
  std::map<std::string, std::map<std::string, std::int64_t>> partition_lag;  // group -> "topic/p" -> lag
  std::map<std::string, std::int64_t> topic_end;        // topic -> sum of end offsets
  std::optional<std::int64_t> outbox_waiting;
  std::uint64_t relay_published = 0;
  std::map<std::pair<std::string, std::string>, http::Metrics::RouteTotals> http;
  std::uint64_t live_frames = 0;
};

struct Monitor::Latest {
  std::int64_t t_ms = 0;
  std::string sampled_at;
  std::string kafka_error;  // empty: the cluster answered
  int brokers = 0;
  std::vector<kafka::GroupStatus> groups;
  std::vector<kafka::TopicInfo> topics;
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> ends;
  std::optional<storage::OutboxStats> outbox;
  std::string outbox_error;
  std::optional<outbox::RelayStats> relay;
};

}  // namespace taskstream::ops
