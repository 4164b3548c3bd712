// The console's pure figures (src/ops/monitor.hpp): latency quantiles from histogram
// buckets, and which consumer groups are taskstream's.

#include <gtest/gtest.h>

#include "ops/monitor.hpp"

using namespace taskstream;

namespace {
using Buckets = std::array<std::uint64_t, http::Metrics::kBucketCount>;
const auto& bounds = http::Metrics::bucket_bounds();

/// Cumulative buckets for `per_bucket` requests in each bucket (the +Inf rest is implied by count).
Buckets cumulative(std::initializer_list<std::uint64_t> per_bucket) {
  Buckets b{};
  std::uint64_t sum = 0;
  std::size_t i = 0;
  for (auto n : per_bucket) b[i++] = (sum += n);
  for (; i < b.size(); ++i) b[i] = sum;
  return b;
}
}  // namespace

TEST(HistogramQuantile, NothingCountedHasNoQuantile) {
  EXPECT_FALSE(ops::histogram_quantile(0.5, Buckets{}, 0, bounds));
}

TEST(HistogramQuantile, InterpolatesInsideTheBucketWhereTheRankFalls) {
  // 100 requests, all in the first bucket (0, 0.5 ms]: the median is half way.
  EXPECT_DOUBLE_EQ(*ops::histogram_quantile(0.5, cumulative({100}), 100, bounds), 0.00025);
  // 50 in (0, 0.5 ms], 50 in (0.5, 1 ms]: p99 sits 98 % into the second bucket.
  EXPECT_NEAR(*ops::histogram_quantile(0.99, cumulative({50, 50}), 100, bounds), 0.0005 + 0.0005 * 0.98, 1e-12);
  // An empty bucket in between is skipped, not answered.
  EXPECT_NEAR(*ops::histogram_quantile(0.75, cumulative({50, 0, 50}), 100, bounds), 0.001 + 0.0015 * 0.5, 1e-12);
}

TEST(HistogramQuantile, PastTheLastBoundAnswersTheLastBound) {
  // 10 requests slower than every bound: only "more than 2.5 s" is known.
  EXPECT_DOUBLE_EQ(*ops::histogram_quantile(0.99, Buckets{}, 10, bounds), bounds.back());
  EXPECT_DOUBLE_EQ(*ops::histogram_quantile(2.0, cumulative({10}), 10, bounds), 0.0005) << "q is clamped to 1";
}

TEST(TaskstreamGroups, AreTheServicesOwnAndTheRedrives) {
  config::Settings s;
  s.kafka_consumer_group_audit = "audit-service";
  s.kafka_consumer_group_notification = "notification-service";
  s.kafka_consumer_group_websocket = "websocket-service";
  s.kafka_topic_task_events = "task-events";
  EXPECT_TRUE(ops::is_taskstream_group(s, "audit-service"));
  EXPECT_TRUE(ops::is_taskstream_group(s, "notification-service"));
  EXPECT_TRUE(ops::is_taskstream_group(s, "websocket-service-host-1a2b3c"));
  EXPECT_TRUE(ops::is_taskstream_group(s, "taskstream-redrive.task-events.dlq"));
  EXPECT_TRUE(ops::is_taskstream_group(s, "taskstream-redrive.task-events.dlq.reason=bad_json"));
  EXPECT_FALSE(ops::is_taskstream_group(s, "taskstream-redrive.other-deployment-task-events.dlq")) << "another deployment's on the same cluster";
  EXPECT_FALSE(ops::is_taskstream_group(s, "taskstream-redrive.task-events.dlqx"));
  EXPECT_FALSE(ops::is_taskstream_group(s, "websocket-service"));
  EXPECT_FALSE(ops::is_taskstream_group(s, "audit-service-2"));
  EXPECT_FALSE(ops::is_taskstream_group(s, "someone-elses-group"));
}
