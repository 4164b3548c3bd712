// How each Kafka setting becomes librdkafka properties (after userver's configuration_test).

#include <gtest/gtest.h>

#include "config/settings.hpp"
#include "kafka/admin.hpp"
#include "kafka/client_config.hpp"
#include "outbox/relay.hpp"

using namespace taskstream;
using kafka::find_property;

namespace {
bool has(const kafka::Properties& p, std::string_view key) {
  return std::any_of(p.begin(), p.end(), [&](auto& kv) { return kv.first == key; });
}
}  // namespace

TEST(KafkaConfig, BootstrapAndPlaintext) {
  auto s = config::Settings::load({{"KAFKA_BOOTSTRAP_SERVERS", "b1:9092,b2:9092"}});
  auto p = kafka::common_properties(s, s.kafka_bootstrap_servers);
  EXPECT_EQ(find_property(p, "bootstrap.servers"), "b1:9092,b2:9092");
  EXPECT_EQ(find_property(p, "security.protocol"), "plaintext");
  EXPECT_FALSE(has(p, "sasl.mechanisms"));
  EXPECT_FALSE(has(p, "sasl.username"));
  EXPECT_FALSE(has(p, "sasl.password"));
  EXPECT_FALSE(has(p, "ssl.ca.location"));
}

TEST(KafkaConfig, SaslScram) {
  auto s = config::Settings::load({{"KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"},
                                   {"KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"},
                                   {"KAFKA_SASL_USERNAME", "svc"},
                                   {"KAFKA_SASL_PASSWORD", "pw"}});
  auto p = kafka::common_properties(s, "h:1");
  EXPECT_EQ(find_property(p, "security.protocol"), "sasl_plaintext");
  EXPECT_EQ(find_property(p, "sasl.mechanisms"), "SCRAM-SHA-512");
  EXPECT_EQ(find_property(p, "sasl.username"), "svc");
  EXPECT_EQ(find_property(p, "sasl.password"), "pw");
}

TEST(KafkaConfig, SaslSslWithCa) {
  auto s = config::Settings::load({{"KAFKA_SECURITY_PROTOCOL", "SASL_SSL"},
                                   {"KAFKA_SASL_MECHANISM", "PLAIN"},
                                   {"KAFKA_SASL_USERNAME", "key"},
                                   {"KAFKA_SASL_PASSWORD", "secret"},
                                   {"KAFKA_SSL_CA_LOCATION", "/etc/ssl/certs"}});
  auto p = kafka::common_properties(s, "h:1");
  EXPECT_EQ(find_property(p, "security.protocol"), "sasl_ssl");
  EXPECT_EQ(find_property(p, "sasl.mechanisms"), "PLAIN");
  EXPECT_EQ(find_property(p, "ssl.ca.location"), "/etc/ssl/certs");
}

TEST(KafkaConfig, SslOnly) {
  auto s = config::Settings::load({{"KAFKA_SECURITY_PROTOCOL", "SSL"}});
  auto p = kafka::common_properties(s, "h:1");
  EXPECT_EQ(find_property(p, "security.protocol"), "ssl");
  EXPECT_FALSE(has(p, "sasl.mechanisms"));
}

TEST(KafkaConfig, ProducerIsIdempotentWithAcksAll) {
  auto s = config::Settings::load({{"KAFKA_PRODUCER_LINGER_MS", "7"}, {"KAFKA_PRODUCER_BATCH_SIZE", "4096"}, {"KAFKA_PRODUCER_COMPRESSION", "zstd"}});
  auto p = kafka::producer_properties(s, "h:1", {});
  EXPECT_EQ(find_property(p, "enable.idempotence"), "true");
  EXPECT_EQ(find_property(p, "acks"), "all");
  EXPECT_EQ(find_property(p, "linger.ms"), "7");
  EXPECT_EQ(find_property(p, "batch.size"), "4096");
  EXPECT_EQ(find_property(p, "compression.type"), "zstd");
  EXPECT_EQ(find_property(p, "partitioner"), "murmur2_random");
  EXPECT_EQ(find_property(p, "bootstrap.servers"), "h:1");
}

TEST(KafkaConfig, TheRelaysProducerNeverTimesOutAMessageAndIsGapless) {
  // Per-user order (docs/reliability.md): a message timeout would let the later messages of
  // its partition through before the retry of the timed-out one.
  auto p = kafka::producer_properties(config::Settings::load({}), "h:1", outbox::relay_producer_options());
  EXPECT_EQ(find_property(p, "message.timeout.ms"), "0");
  EXPECT_EQ(find_property(p, "enable.gapless.guarantee"), "true");
  EXPECT_EQ(find_property(p, "enable.idempotence"), "true");
  // Other producers (dead letters, the CLI) keep a bounded wait and the default.
  auto q = kafka::producer_properties(config::Settings::load({}), "h:1", {});
  EXPECT_EQ(find_property(q, "message.timeout.ms"), "120000");
  EXPECT_FALSE(has(q, "enable.gapless.guarantee"));
}

TEST(KafkaConfig, ProducerExtrasApplyLast) {
  kafka::ProducerOptions o;
  o.extra = {{"linger.ms", "0"}};
  auto p = kafka::producer_properties(config::Settings::load({}), "h:1", o);
  EXPECT_EQ(find_property(p, "linger.ms"), "0");
}

TEST(KafkaConfig, ConsumerStoresOffsetsManuallyAndStartsEarliest) {
  auto p = kafka::consumer_properties(config::Settings::load({}), "h:1", {"audit-service", "c", {}});
  EXPECT_EQ(find_property(p, "group.id"), "audit-service");
  EXPECT_EQ(find_property(p, "auto.offset.reset"), "earliest");
  EXPECT_EQ(find_property(p, "enable.auto.offset.store"), "false");
  EXPECT_EQ(find_property(p, "enable.partition.eof"), "false");
}

TEST(KafkaConfig, ServiceTopicsHaveDlqTwins) {
  auto s = config::Settings::load({{"KAFKA_TOPIC_PARTITIONS", "3"}, {"KAFKA_REPLICATION_FACTOR", "2"}});
  auto topics = kafka::service_topics(s);
  ASSERT_EQ(topics.size(), 6u);
  std::vector<std::string> names;
  for (const auto& t : topics) {
    names.push_back(t.name);
    EXPECT_EQ(t.partitions, 3);
    EXPECT_EQ(t.replication_factor, 2);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"task-events", "task-events.dlq", "task-updates", "task-updates.dlq",
                                              "notification.request", "notification.request.dlq"}));
}
