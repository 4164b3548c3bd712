#pragma once
// Admin: topics for the service and its dead-letter twins.
//
// Blocking: every call waits for the cluster, up to `timeout`; call it from a CLI or at
// start-up, never from a thread that serves requests. Thread-safe. Throws KafkaException.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
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

struct EnsureResult {
  std::vector<std::string> created;
  std::vector<std::string> existing;
  /// Existing topics whose partition count differs from the spec (never changed silently).
  std::vector<std::string> mismatched;
};

/// The three topics of SPEC section 3 and their `.dlq` twins, from the settings.
std::vector<TopicSpec> service_topics(const config::Settings& s);

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
  /// Deletes topics (tests). Missing ones are ignored.
  void delete_topics(const std::vector<std::string>& names, std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskstream::kafka
