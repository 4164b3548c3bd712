// Dead-letter headers and retry backoff: pure logic.

#include <gtest/gtest.h>

#include "kafka/consumer_runner.hpp"
#include "kafka/dead_letter.hpp"
#include "kafka/error.hpp"

using namespace taskstream::kafka;

namespace {
std::string get(const Headers& h, std::string_view key) {
  for (const auto& x : h)
    if (x.key == key) return x.value;
  return "<missing>";
}
}  // namespace

TEST(DeadLetter, TopicName) { EXPECT_EQ(dlq_topic("task-events"), "task-events.dlq"); }

TEST(DeadLetter, HeadersNameReasonAndSource) {
  DeadLetterInfo info{"bad_json", "permanent", "unexpected end of input", "task-events", 4, 1234, 1, "2026-11-27T12:00:00.000Z",
                      "2026-11-27T12:00:01.000Z"};
  auto h = build_dlq_headers(info, {{"event_id", "e1"}, {"traceparent", "00-abc-def-01"}});
  EXPECT_EQ(get(h, "event_id"), "e1");
  EXPECT_EQ(get(h, "traceparent"), "00-abc-def-01");
  EXPECT_EQ(get(h, "dlq.reason"), "bad_json");
  EXPECT_EQ(get(h, "dlq.error_class"), "permanent");
  EXPECT_EQ(get(h, "dlq.detail"), "unexpected end of input");
  EXPECT_EQ(get(h, "dlq.source_topic"), "task-events");
  EXPECT_EQ(get(h, "dlq.source_partition"), "4");
  EXPECT_EQ(get(h, "dlq.source_offset"), "1234");
  EXPECT_EQ(get(h, "dlq.attempts"), "1");
  EXPECT_EQ(get(h, "dlq.first_failure"), "2026-11-27T12:00:00.000Z");
  EXPECT_EQ(get(h, "dlq.last_failure"), "2026-11-27T12:00:01.000Z");
}

TEST(DeadLetter, RedrivenMessageGetsFreshDlqHeaders) {
  DeadLetterInfo info;
  info.reason = "schema";
  auto h = build_dlq_headers(info, {{"dlq.reason", "old"}, {"dlq.attempts", "9"}, {"k", "v"}});
  int reasons = 0;
  for (const auto& x : h) reasons += x.key == "dlq.reason";
  EXPECT_EQ(reasons, 1);
  EXPECT_EQ(get(h, "dlq.reason"), "schema");
  EXPECT_EQ(get(h, "k"), "v");
}

TEST(DeadLetter, LongDetailIsCut) {
  DeadLetterInfo info;
  info.detail = std::string(100000, 'x');
  auto h = build_dlq_headers(info, {});
  EXPECT_LT(get(h, "dlq.detail").size(), 1100u);
}

TEST(Backoff, GrowsExponentiallyWithinJitterAndCaps) {
  using std::chrono::milliseconds;
  EXPECT_EQ(backoff_delay(2, milliseconds(100), milliseconds(10000), 0.5), milliseconds(100));
  EXPECT_EQ(backoff_delay(3, milliseconds(100), milliseconds(10000), 0.5), milliseconds(200));
  EXPECT_EQ(backoff_delay(5, milliseconds(100), milliseconds(10000), 0.5), milliseconds(800));
  EXPECT_EQ(backoff_delay(30, milliseconds(100), milliseconds(10000), 0.5), milliseconds(10000));
  EXPECT_EQ(backoff_delay(2, milliseconds(100), milliseconds(10000), 0.0), milliseconds(75));
  EXPECT_EQ(backoff_delay(2, milliseconds(100), milliseconds(10000), 1.0), milliseconds(125));
}

TEST(KafkaError, ClassifiesAndHints) {
  Error transport(-195 /* _TRANSPORT */, "broker down");
  EXPECT_TRUE(transport.is_retriable());
  EXPECT_FALSE(transport.is_fatal());
  EXPECT_NE(transport.hint().find("KAFKA_BOOTSTRAP_SERVERS"), std::string::npos);
  Error auth(-169 /* _AUTHENTICATION */, "SASL failed");
  EXPECT_FALSE(auth.is_retriable());
  EXPECT_NE(auth.to_string().find("KAFKA_SASL_PASSWORD"), std::string::npos);
  Error fatal(-150 /* _FATAL */, "idempotence broken");
  EXPECT_TRUE(fatal.is_fatal());
  Error unknown_topic(3 /* UNKNOWN_TOPIC_OR_PART */, "no such topic");
  EXPECT_NE(unknown_topic.hint().find("topics ensure"), std::string::npos);
  EXPECT_EQ(transport.error_code().category().name(), std::string("kafka"));
  EXPECT_EQ(transport.error_code().value(), -195);
  EXPECT_EQ(Error(errc::disabled, "off").name(), "DISABLED");
}
