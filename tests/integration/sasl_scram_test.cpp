// SASL/SCRAM-SHA-512 against the broker's SASL_PLAINTEXT and SASL_SSL listeners
// (scripts/kafka creates the user and a test CA; scripts/test passes the addresses, the CA
// and the credentials).

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "kafka/client_config.hpp"
#include "kafka/error.hpp"
#include "kafka/producer.hpp"
#include "publish.hpp"
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

// SASL_SSL (SCRAM-SHA-512) to `bootstrap`, trusting the CA in `ca`.
config::Settings sasl_ssl_settings(const std::string& bootstrap, const std::string& password, const std::string& ca) {
  return itest::kafka_settings({{"KAFKA_BOOTSTRAP_SERVERS", bootstrap},
                                  {"KAFKA_SECURITY_PROTOCOL", "SASL_SSL"},
                                  {"KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"},
                                  {"KAFKA_SASL_USERNAME", env_or_fail("KAFKA_SCRAM_USER")},
                                  {"KAFKA_SASL_PASSWORD", password},
                                  {"KAFKA_SSL_CA_LOCATION", ca},
                                  {"LOG_LEVEL", "off"}});
}

// Expects listing topics with `s` to fail within the time given plus a margin, and returns the message.
std::string list_topics_error(const config::Settings& s, std::chrono::seconds timeout = std::chrono::seconds(5)) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    kafka::Admin admin(s);
    admin.list_topics(timeout);
  } catch (const kafka::KafkaException& e) {
    EXPECT_LT(std::chrono::steady_clock::now() - t0, timeout + std::chrono::seconds(5)) << e.what();
    EXPECT_FALSE(e.error().is_retriable()) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "listing topics succeeded on " << s.kafka_bootstrap_servers;
  return {};
}

// A self-signed CA that signed nothing the broker serves (made with the openssl CLI).
std::string unrelated_ca() {
  const auto dir = std::filesystem::temp_directory_path() / itest::unique_name("unrelated-ca");
  std::filesystem::create_directories(dir);
  const auto cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=unrelated test CA' -keyout '" +
                   (dir / "ca.key").string() + "' -out '" + (dir / "ca.crt").string() + "' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl could not make a CA: " + cmd);
  return (dir / "ca.crt").string();
}

/// With `s`, a new topic shows in the topic list and an event to it is acknowledged.
void expect_topics_listed_and_event_published(const config::Settings& s, const std::string& name) {
  const auto topic = itest::unique_name(name);
  itest::create_topic_with_dlq(s, topic, 1);
  kafka::Admin admin(s);
  auto topics = admin.list_topics();
  EXPECT_TRUE(std::any_of(topics.begin(), topics.end(), [&](auto& t) { return t.name == topic; }));
  kafka::Producer producer(s);
  auto r = itest::publish_event(producer, topic, {{"event_id", events::new_event_id()}, {"type", "task_created"}}, "u");
  EXPECT_EQ(r.status, itest::PublishStatus::published) << r.detail;
}
}  // namespace

TEST(KafkaRealBroker, ScramLoginWithTheRightPasswordProducesAndListsTopics) {
  expect_topics_listed_and_event_published(scram_settings(env_or_fail("KAFKA_SCRAM_PASSWORD")), "scram");
}

TEST(KafkaRealBroker, ScramLoginWithAWrongPasswordFailsWithAClearError) {
  auto what = list_topics_error(scram_settings("definitely-not-the-password"), std::chrono::seconds(10));
  EXPECT_NE(what.find("KAFKA_SASL_PASSWORD"), std::string::npos) << what;
  EXPECT_EQ(what.find("definitely-not-the-password"), std::string::npos) << "the password leaked: " << what;
  EXPECT_TRUE(what.find("uthentication") != std::string::npos || what.find("SASL") != std::string::npos) << what;
}

TEST(KafkaRealBroker, SaslSslWithTheRightPasswordProducesAndListsTopics) {
  auto s = sasl_ssl_settings(env_or_fail("KAFKA_SASL_SSL_BOOTSTRAP_SERVERS"), env_or_fail("KAFKA_SCRAM_PASSWORD"),
                             env_or_fail("KAFKA_SSL_TEST_CA"));
  auto props = kafka::common_properties(s, s.kafka_bootstrap_servers);
  EXPECT_EQ(kafka::find_property(props, "security.protocol"), "sasl_ssl");
  EXPECT_EQ(kafka::find_property(props, "ssl.ca.location"), env_or_fail("KAFKA_SSL_TEST_CA"));
  EXPECT_EQ(kafka::find_property(props, "ssl.endpoint.identification.algorithm"), "https");
  expect_topics_listed_and_event_published(s, "sasl-ssl");
}

TEST(KafkaRealBroker, SaslSslWithAWrongPasswordFailsWithAClearError) {
  auto what = list_topics_error(sasl_ssl_settings(env_or_fail("KAFKA_SASL_SSL_BOOTSTRAP_SERVERS"),
                                                  "definitely-not-the-password", env_or_fail("KAFKA_SSL_TEST_CA")));
  EXPECT_NE(what.find("KAFKA_SASL_PASSWORD"), std::string::npos) << what;
  EXPECT_EQ(what.find("definitely-not-the-password"), std::string::npos) << "the password leaked: " << what;
  EXPECT_NE(what.find("uthentication"), std::string::npos) << what;
}

TEST(KafkaRealBroker, APlaintextClientOnTheSslListenerIsRefusedWithAClearError) {
  const auto bootstrap = env_or_fail("KAFKA_SASL_SSL_BOOTSTRAP_SERVERS");
  auto sasl_plaintext = itest::kafka_settings({{"KAFKA_BOOTSTRAP_SERVERS", bootstrap},
                                                 {"KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"},
                                                 {"KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"},
                                                 {"KAFKA_SASL_USERNAME", env_or_fail("KAFKA_SCRAM_USER")},
                                                 {"KAFKA_SASL_PASSWORD", env_or_fail("KAFKA_SCRAM_PASSWORD")},
                                                 {"LOG_LEVEL", "off"}});
  auto plaintext = itest::kafka_settings(
      {{"KAFKA_BOOTSTRAP_SERVERS", bootstrap}, {"KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"}, {"LOG_LEVEL", "off"}});
  for (const auto& s : {sasl_plaintext, plaintext}) {
    auto what = list_topics_error(s);
    EXPECT_NE(what.find("KAFKA_SECURITY_PROTOCOL"), std::string::npos) << what;
    EXPECT_EQ(what.find(env_or_fail("KAFKA_SCRAM_PASSWORD")), std::string::npos) << "the password leaked: " << what;
  }
}

TEST(KafkaRealBroker, SaslSslRefusesACertificateForAnotherHost) {
  // Same CA and credentials; the listener serves a certificate for wrong.example.invalid only.
  auto what = list_topics_error(sasl_ssl_settings(env_or_fail("KAFKA_SSL_WRONG_HOST_BOOTSTRAP_SERVERS"),
                                                  env_or_fail("KAFKA_SCRAM_PASSWORD"), env_or_fail("KAFKA_SSL_TEST_CA")));
  EXPECT_NE(what.find("not issued for this host name"), std::string::npos) << what;
  EXPECT_NE(what.find("KAFKA_BOOTSTRAP_SERVERS"), std::string::npos) << what;
  EXPECT_EQ(what.find(env_or_fail("KAFKA_SCRAM_PASSWORD")), std::string::npos) << "the password leaked: " << what;
}

TEST(KafkaRealBroker, SaslSslRefusesABrokerCertificateNotSignedByTheConfiguredCa) {
  const auto ca = unrelated_ca();
  auto what = list_topics_error(
      sasl_ssl_settings(env_or_fail("KAFKA_SASL_SSL_BOOTSTRAP_SERVERS"), env_or_fail("KAFKA_SCRAM_PASSWORD"), ca));
  std::filesystem::remove_all(std::filesystem::path(ca).parent_path());
  EXPECT_NE(what.find("not signed by a CA in KAFKA_SSL_CA_LOCATION"), std::string::npos) << what;
  EXPECT_EQ(what.find(env_or_fail("KAFKA_SCRAM_PASSWORD")), std::string::npos) << "the password leaked: " << what;
}
