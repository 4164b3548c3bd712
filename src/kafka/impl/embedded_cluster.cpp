#include "kafka/embedded_cluster.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <mutex>
#include <set>
#include <stdexcept>

#include "kafka/error.hpp"

namespace taskstream::kafka::embedded {
namespace {

struct Cluster {
  rd_kafka_t* owner = nullptr;
  rd_kafka_mock_cluster_t* mock = nullptr;
  std::string bootstraps;
};

std::mutex g_mutex;
Cluster* g_cluster = nullptr;  // deliberately never freed: clients may outlive static destructors

Cluster& cluster_locked(int brokers) {
  if (g_cluster) return *g_cluster;
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) throw KafkaException(Error(errc::invalid_config, std::string("embedded cluster: ") + errstr));
  rd_kafka_mock_cluster_t* mock = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mock) {
    rd_kafka_destroy(rk);
    throw KafkaException(Error(errc::invalid_config, "embedded cluster: rd_kafka_mock_cluster_new failed"));
  }
  g_cluster = new Cluster{rk, mock, rd_kafka_mock_cluster_bootstraps(mock)};
  return *g_cluster;
}

}  // namespace

std::string bootstrap(int brokers) {
  std::lock_guard lock(g_mutex);
  return cluster_locked(brokers).bootstraps;
}

bool running() {
  std::lock_guard lock(g_mutex);
  return g_cluster != nullptr;
}

void create_topic(const std::string& name, int partitions, int replication_factor) {
  std::lock_guard lock(g_mutex);
  auto& c = cluster_locked(1);
  auto err = rd_kafka_mock_topic_create(c.mock, name.c_str(), partitions, replication_factor);
  if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
    throw KafkaException(Error(err, "embedded cluster: cannot create topic " + name));
}

void push_request_errors(int api_key, int error, int count) {
  std::lock_guard lock(g_mutex);
  auto& c = cluster_locked(1);
  for (int i = 0; i < count; ++i)
    rd_kafka_mock_push_request_errors(c.mock, static_cast<int16_t>(api_key), 1, static_cast<rd_kafka_resp_err_t>(error));
}

void set_broker_down(std::int32_t broker_id, bool down) {
  std::lock_guard lock(g_mutex);
  auto& c = cluster_locked(1);
  if (down) rd_kafka_mock_broker_set_down(c.mock, broker_id);
  else rd_kafka_mock_broker_set_up(c.mock, broker_id);
}

void set_broker_rtt(std::int32_t broker_id, std::chrono::milliseconds rtt) {
  std::lock_guard lock(g_mutex);
  auto& c = cluster_locked(1);
  rd_kafka_mock_broker_set_rtt(c.mock, broker_id, static_cast<int>(rtt.count()));
}

void push_broker_request_faults(std::int32_t broker_id, int api_key, const std::vector<RequestFault>& faults) {
  std::lock_guard lock(g_mutex);
  auto& c = cluster_locked(1);
  for (const auto& f : faults)
    rd_kafka_mock_broker_push_request_error_rtts(c.mock, broker_id, static_cast<int16_t>(api_key), 1, static_cast<rd_kafka_resp_err_t>(f.error),
                                                 static_cast<int>(f.rtt.count()));
}

void set_partition_leader(const std::string& topic, std::int32_t partition, std::int32_t broker_id) {
  std::lock_guard lock(g_mutex);
  auto& c = cluster_locked(1);
  auto err = rd_kafka_mock_partition_set_leader(c.mock, topic.c_str(), partition, broker_id);
  if (err) throw KafkaException(Error(err, "embedded cluster: cannot move the leader of " + topic));
}

}  // namespace taskstream::kafka::embedded
