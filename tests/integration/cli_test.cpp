// The taskstream binary's Kafka commands, run as a user would, against the real broker.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "events/events.hpp"
#include "kafka/producer.hpp"
#include "kafka/tail.hpp"
#include "publish.hpp"
#include "test_env.hpp"

using namespace taskstream;

namespace {

struct Run {
  int exit_code;
  std::string out;  // stdout and stderr together
};

Run run(const std::string& env, const std::string& args) {
  std::string cmd = env + " " TASKSTREAM_BINARY " " + args + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (auto n = fread(buf.data(), 1, buf.size(), f)) out.append(buf.data(), n);
  int status = pclose(f);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string bootstrap_env() { return std::string("KAFKA_BOOTSTRAP_SERVERS=") + std::getenv("KAFKA_BOOTSTRAP_SERVERS") + " LOG_LEVEL=warn"; }

}  // namespace

TEST(Cli, TopicsEnsureCreatesTheTopicsAndTheirDlqTwinsIdempotently) {
  itest::kafka_settings();  // fails when the broker address is missing
  const auto prefix = itest::unique_name("cli");
  const std::string env = bootstrap_env() + " KAFKA_TOPIC_TASK_EVENTS=" + prefix + "-events KAFKA_TOPIC_TASK_UPDATES=" + prefix +
                          "-updates KAFKA_TOPIC_NOTIFICATION_REQUEST=" + prefix + ".notification KAFKA_TOPIC_PARTITIONS=4";
  auto first = run(env, "topics ensure");
  ASSERT_EQ(first.exit_code, 0) << first.out;
  for (const auto& t : {prefix + "-events", prefix + "-events.dlq", prefix + "-updates", prefix + "-updates.dlq", prefix + ".notification",
                        prefix + ".notification.dlq"})
    EXPECT_NE(first.out.find("created\t" + t + "\n"), std::string::npos) << first.out;
  auto second = run(env, "topics ensure");
  ASSERT_EQ(second.exit_code, 0) << second.out;
  EXPECT_EQ(second.out.find("created"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("exists\t" + prefix + "-events\n"), std::string::npos) << second.out;

  auto described = run(env, "topics describe");
  ASSERT_EQ(described.exit_code, 0) << described.out;
  EXPECT_NE(described.out.find(prefix + "-events\tpartitions=4\treplication=1"), std::string::npos) << described.out;
  EXPECT_NE(described.out.find("  partition 3\tleader="), std::string::npos) << described.out;
  auto listed = run(env, "topics list");
  EXPECT_NE(listed.out.find(prefix + ".notification.dlq\t"), std::string::npos) << listed.out;
}

TEST(Cli, TailPrintsOneJsonObjectPerMessage) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("tail");
  itest::create_topic_with_dlq(s, topic, 2);
  kafka::Producer producer(s);
  std::string id = events::new_event_id();
  ASSERT_TRUE(itest::publish_event(producer, topic, {{"event_id", id}, {"type", "task_created"}, {"n", 1}}, "user-a"));
  ASSERT_TRUE(producer.send({topic, "user-b", "not json \xff", {}, std::nullopt}).get().ok());

  auto r = run(bootstrap_env(), "tail " + topic + " --from-beginning --max-messages 2 --idle-timeout-ms 20000");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<nlohmann::json> got;
  while (std::getline(lines, line))
    if (!line.empty() && line[0] == '{') got.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(got.size(), 2u) << r.out;
  std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a["key"] < b["key"]; });
  EXPECT_EQ(got[0]["topic"], topic);
  EXPECT_EQ(got[0]["value"]["event_id"], id);
  EXPECT_EQ(got[0]["headers"]["event_type"], "task_created");
  EXPECT_EQ(got[0]["headers"]["schema_version"], "1");
  EXPECT_TRUE(got[0]["offset"].is_number());
  EXPECT_TRUE(got[1]["value"].is_string());  // not JSON: printed as text
}

TEST(Cli, ClearErrorsForAMissingTopicAnUnreachableBrokerAndABadSetting) {
  itest::kafka_settings();
  // A topic that does not exist: each command that reads one names it and says how to create it.
  const auto absent = "no-such-topic-" + itest::unique_name("x");
  for (const auto& args : {"tail " + absent + " --idle-timeout-ms 1000", "topics describe " + absent, "dlq list " + absent,
                           "dlq redrive " + absent, "dlq redrive " + absent + " --dry-run"}) {
    auto missing = run(bootstrap_env(), args);
    EXPECT_EQ(missing.exit_code, 1) << args << ": " << missing.out;
    EXPECT_NE(missing.out.find(absent), std::string::npos) << args << ": " << missing.out;
    EXPECT_NE(missing.out.find("topics ensure"), std::string::npos) << args << ": " << missing.out;
  }

  // No broker at the address: the Kafka commands fail with exit 1 after 10 s and name the
  // setting (one of each path: metadata, a consumer, redrive's producer and consumer).
  for (const std::string args : {"topics list", "tail task-events --idle-timeout-ms 1000", "dlq redrive task-events"}) {
    auto down = run("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1", args);
    EXPECT_EQ(down.exit_code, 1) << args << ": " << down.out;
    EXPECT_NE(down.out.find("KAFKA_BOOTSTRAP_SERVERS"), std::string::npos) << args << ": " << down.out;
    EXPECT_EQ(std::count(down.out.begin(), down.out.end(), '\n'), 1) << "one line, not the client's retries: " << down.out;
  }

  auto bad = run("HTTP_PORT=eighty", "config");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.out, "taskstream: configuration error: HTTP_PORT: 'eighty' is not a whole number; allowed: 1..65535\n");
}

// README, "Commands": exit 2 for a bad argument, whatever part of the command line is wrong;
// --help is 0. No broker is needed: each is refused before any connection.
TEST(Cli, BadArgumentsExitTwoWithTheReasonAndHelpExitsZero) {
  const std::string nowhere = "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1";
  for (const std::string args : {"bogus", "tail", "tail task-events --max-messages abc", "tail task-events --no-such-option",
                                 "dlq redrive task-events --filter nonsense", "dlq redrive task-events --filter =x",
                                 "serve --consumers nonsense", "topics describe a b c"}) {
    auto r = run(nowhere, args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.out;
    EXPECT_FALSE(r.out.empty()) << args << ": the reason is printed";
    EXPECT_EQ(r.out.find("KAFKA_BOOTSTRAP_SERVERS"), std::string::npos) << args << ": refused before connecting: " << r.out;
  }
  EXPECT_EQ(run(nowhere, "--help").exit_code, 0);
  EXPECT_EQ(run(nowhere, "dlq redrive --help").exit_code, 0);
}

TEST(Cli, ConfigMasksSecrets) {
  auto r = run("KAFKA_SECURITY_PROTOCOL=SASL_SSL KAFKA_SASL_MECHANISM=PLAIN KAFKA_SASL_USERNAME=u KAFKA_SASL_PASSWORD=topsecret-pw", "config");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("topsecret-pw"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("KAFKA_SASL_PASSWORD=******"), std::string::npos) << r.out;
}

TEST(Cli, DlqListShowsReasonsAndRedriveSendsBackOnlyWhatMatchesOnce) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("redrive");
  itest::create_topic_with_dlq(s, topic, 1);
  kafka::Producer producer(s);
  auto dead = [&](const std::string& key, const std::string& reason, const std::string& payload) {
    ASSERT_TRUE(producer.send({topic + ".dlq", key, payload,
                               {{"event_id", "e-" + key}, {"dlq.reason", reason}, {"dlq.source_topic", topic}, {"dlq.source_offset", "7"}},
                               std::nullopt})
                    .get()
                    .ok());
  };
  dead("user-1", "bad_json", "{broken");
  dead("user-2", "handler_error", R"({"ok":2})");
  dead("user-3", "handler_error", R"({"ok":3})");

  auto list = run(bootstrap_env(), "dlq list " + topic);
  ASSERT_EQ(list.exit_code, 0) << list.out;
  EXPECT_NE(list.out.find(R"("reason":"bad_json")"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("3 dead letter(s) in " + topic + ".dlq"), std::string::npos) << list.out;

  auto dry = run(bootstrap_env(), "dlq redrive " + topic + " --filter reason=handler_error --dry-run");
  ASSERT_EQ(dry.exit_code, 0) << dry.out;
  EXPECT_NE(dry.out.find("dry run: 3 dead letter(s) read, 2 matched"), std::string::npos) << dry.out;

  auto real = run(bootstrap_env(), "dlq redrive " + topic + " --filter reason=handler_error");
  ASSERT_EQ(real.exit_code, 0) << real.out;
  EXPECT_NE(real.out.find("2 sent back to " + topic), std::string::npos) << real.out;
  auto again = run(bootstrap_env(), "dlq redrive " + topic + " --filter reason=handler_error");
  EXPECT_NE(again.out.find("0 dead letter(s) read"), std::string::npos) << "a second redrive must not resend: " << again.out;

  std::vector<std::pair<std::string, std::string>> back;
  std::atomic<bool> stop{false};
  kafka::tail(s, topic, {.from_beginning = true, .max_messages = 3, .idle_timeout = std::chrono::seconds(5)},
              [&](const kafka::Message& m) {
                back.emplace_back(std::string(m.key()), std::string(m.header("event_id").value_or("")));
                EXPECT_FALSE(m.header("dlq.reason").has_value());
                EXPECT_TRUE(m.header("dlq.redriven_from").has_value());
                return true;
              },
              stop);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0], (std::pair<std::string, std::string>{"user-2", "e-user-2"}));
  EXPECT_EQ(back[1], (std::pair<std::string, std::string>{"user-3", "e-user-3"}));
  auto bad_filter = run(bootstrap_env(), "dlq redrive " + topic + " --filter nonsense");
  EXPECT_EQ(bad_filter.exit_code, 2) << "a bad argument, not a Kafka error: " << bad_filter.out;
  EXPECT_NE(bad_filter.out.find("--filter takes FIELD=VALUE"), std::string::npos) << bad_filter.out;
}
