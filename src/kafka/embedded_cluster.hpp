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

namespace taskstream::kafka::embedded {

/// Starts the cluster if needed and returns its bootstrap address list.
std::string bootstrap(int brokers = 1);
/// Creates a topic (idempotent); the mock has no CreateTopics API.
void create_topic(const std::string& name, int partitions, int replication_factor);
bool running();

// Fault injection (tests only).
/// The next `count` requests of API `api_key` fail with `error` (rd_kafka_resp_err_t).
void push_request_errors(int api_key, int error, int count);
void set_broker_down(std::int32_t broker_id, bool down);
void set_broker_rtt(std::int32_t broker_id, std::chrono::milliseconds rtt);

}  // namespace taskstream::kafka::embedded
