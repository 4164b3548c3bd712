// SASL/SCRAM-SHA-512 against the broker's SASL_PLAINTEXT listener (scripts/kafka creates
// the user; scripts/test passes the address and credentials).

#include <gtest/gtest.h>

#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "kafka/error.hpp"
#include "kafka/producer.hpp"
#include "test_env.hpp"

using namespace taskstream;

namespace {
std::string env_or_fail(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) throw std::runtime_error(std::string(name) + " is not set (run scripts/test)");
  return v;
}

config::Settings scram_settings(const std::string& password) {
  return itest::kafka_settings({{"KAFKA_BOOTSTRAP_SERVERS", env_or_fail("KAFKA_SASL_BOOTSTRAP_SERVERS")},
                                  {"KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"},
                                  {"KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"},
                                  {"KAFKA_SASL_USERNAME", env_or_fail("KAFKA_SCRAM_USER")},
                                  {"KAFKA_SASL_PASSWORD", password},
                                  {"LOG_LEVEL", "off"}});
}
}  // namespace

TEST(KafkaRealBroker, ScramLoginWithTheRightPasswordProducesAndListsTopics) {
  auto s = scram_settings(env_or_fail("KAFKA_SCRAM_PASSWORD"));
  const auto topic = itest::unique_name("scram");
  itest::create_topic_with_dlq(s, topic, 1);
  kafka::Admin admin(s);
  auto topics = admin.list_topics();
  EXPECT_TRUE(std::any_of(topics.begin(), topics.end(), [&](auto& t) { return t.name == topic; }));
  kafka::Producer producer(s);
  auto r = producer.publish_event(topic, {{"event_id", events::new_event_id()}, {"type", "task_created"}}, "u");
  EXPECT_EQ(r.status, kafka::PublishStatus::published) << r.detail;
}

TEST(KafkaRealBroker, ScramLoginWithAWrongPasswordFailsWithAClearError) {
  auto s = scram_settings("definitely-not-the-password");
  kafka::Admin admin(s);
  try {
    admin.list_topics(std::chrono::seconds(10));
    FAIL() << "listing topics with a wrong password succeeded";
  } catch (const kafka::KafkaException& e) {
    std::string what = e.what();
    EXPECT_FALSE(e.error().is_retriable()) << what;
    EXPECT_NE(what.find("KAFKA_SASL_PASSWORD"), std::string::npos) << what;
    EXPECT_EQ(what.find("definitely-not-the-password"), std::string::npos) << "the password leaked: " << what;
    EXPECT_TRUE(what.find("uthentication") != std::string::npos || what.find("SASL") != std::string::npos) << what;
  }
}
