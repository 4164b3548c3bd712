#pragma once
// KAFKA_BOOTSTRAP_SERVERS=embedded: librdkafka's mock cluster, in-process and in-memory.
// For local development and for deterministic fault injection in tests; never a stand-in
// for the real broker in integration tests.
//
// Lifecycle: one cluster per process, started on first use and kept until exit (clients
// may outlive any owner we could pick). Thread-safe.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace taskstream::kafka::embedded {

/// Starts the cluster if needed and returns its bootstrap address list. The first call
/// decides the number of brokers.
std::string bootstrap(int brokers = 1);
/// Creates a topic (idempotent); the mock has no CreateTopics API.
void create_topic(const std::string& name, int partitions, int replication_factor);
bool running();

// Fault injection (tests only).
/// The next `count` requests of API `api_key` fail with `error` (rd_kafka_resp_err_t).
void push_request_errors(int api_key, int error, int count);
void set_broker_down(std::int32_t broker_id, bool down);
void set_broker_rtt(std::int32_t broker_id, std::chrono::milliseconds rtt);
/// The next requests of API `api_key` that broker `broker_id` receives are answered, one
/// per entry, with that error (0: none) after that delay: a fault on the partitions that
/// broker leads only, in the middle of what the others accept.
struct RequestFault {
  int error = 0;
  std::chrono::milliseconds rtt{0};
};
void push_broker_request_faults(std::int32_t broker_id, int api_key, const std::vector<RequestFault>& faults);
/// Moves the leadership of one partition (clients see NOT_LEADER and follow).
void set_partition_leader(const std::string& topic, std::int32_t partition, std::int32_t broker_id);

}  // namespace taskstream::kafka::embedded
