#pragma once
// Admin: topics for the service and its dead-letter twins.
//
// Blocking: every call waits for the cluster, up to `timeout`; call it from a CLI or at
// start-up, never from a thread that serves requests. Thread-safe. Throws KafkaException.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/settings.hpp"

namespace taskstream::kafka {

struct TopicSpec {
  std::string name;
  int partitions = 1;
  int replication_factor = 1;
  std::map<std::string, std::string> configs;
};

struct PartitionInfo {
  std::int32_t id = -1;
  std::int32_t leader = -1;
  std::vector<std::int32_t> replicas;
  std::vector<std::int32_t> isrs;
};

struct TopicInfo {
  std::string name;
  std::vector<PartitionInfo> partitions;
};

/// A member of a consumer group and the partitions the group gave it.
struct GroupMember {
  std::string member_id, client_id, host;
  std::vector<std::pair<std::string, std::int32_t>> assignment;  ///< topic, partition
};

/// Where a group stands on one partition: `committed` is -1 when it committed nothing
/// there, and its lag then counts from the partition's first offset.
struct GroupPartition {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t committed = -1;
  std::int64_t end = -1;  ///< the high watermark (the next offset to be written)
  std::int64_t lag = 0;
};

struct GroupStatus {
  std::string group_id;
  std::string state;  ///< Stable, Empty, PreparingRebalance, ... (Kafka's names)
  std::string error;  ///< describing or reading its offsets failed (the rest may be partial)
  std::vector<GroupMember> members;
  std::vector<GroupPartition> partitions;  ///< sorted by topic, partition
};

struct EnsureResult {
  std::vector<std::string> created;
  std::vector<std::string> existing;
  /// Existing topics whose partition count differs from the spec (never changed silently).
  std::vector<std::string> mismatched;
};

/// The three topics of docs/events.md and their `.dlq` twins, from the settings.
std::vector<TopicSpec> service_topics(const config::Settings& s);
/// The names of the three topics alone (task events, task updates, notification requests).
std::vector<std::string> service_topic_names(const config::Settings& s);

class Admin final {
 public:
  explicit Admin(const config::Settings& settings);
  ~Admin();
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  /// Creates the topics that do not exist; existing ones are left as they are. Idempotent.
  EnsureResult ensure_topics(const std::vector<TopicSpec>& topics, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// Topics of the cluster (internal ones, starting with "__", left out), sorted by name.
  std::vector<TopicInfo> list_topics(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// One topic; throws KafkaException (UNKNOWN_TOPIC_OR_PART) when it does not exist.
  TopicInfo describe_topic(const std::string& name, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Brokers in the cluster's metadata.
  int broker_count(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Lag of `group` on each partition of `topic`: end offset minus committed offset (the
  /// whole partition when the group committed nothing there).
  std::map<std::int32_t, std::int64_t> consumer_lag(const std::string& group, const std::string& topic,
                                                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Every consumer group of the cluster whose id `wanted` accepts, described (state,
  /// members, assignment) with its committed offsets, the partitions' end offsets and lag:
  /// what `kafka-consumer-groups --describe` shows. Sorted by group id. Four to five
  /// admin requests plus one per group; callers cache the answer.
  /// `known` names the topics a group consumes when the caller knows them: their
  /// partitions are shown even before the group committed or was assigned any (a group
  /// whose only member stopped before its first commit still lags on them).
  std::vector<GroupStatus> consumer_groups(const std::function<bool(std::string_view)>& wanted,
                                           const std::function<std::vector<TopicInfo>(std::string_view)>& known = {},
                                           std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// The end offset (high watermark) of every partition of `topics`, by topic and partition.
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> end_offsets(const std::vector<TopicInfo>& topics,
                                                                          std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Deletes topics (tests). Missing ones are ignored.
  void delete_topics(const std::vector<std::string>& names, std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskstream::kafka
