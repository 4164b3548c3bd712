// Poison messages go to <topic>.dlq with their reason while the good ones around them are
// handled, against a real broker.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "events/events.hpp"
#include "kafka/consumer_runner.hpp"
#include "kafka/producer.hpp"
#include "workers/event_batch.hpp"
#include "kafka/tail.hpp"
#include "serve_process.hpp"
#include "test_env.hpp"

using namespace taskstream;
using namespace std::chrono_literals;

namespace {

std::string good_event(const std::string& user, int n) { return events::serialize(itest::sample_task_event(user, n)); }

struct DeadLetter {
  std::string payload;
  std::map<std::string, std::string> headers;
};

std::vector<DeadLetter> read_dlq(const config::Settings& s, const std::string& topic, std::size_t expected) {
  std::vector<DeadLetter> out;
  std::atomic<bool> stop{false};
  kafka::tail(s, topic + ".dlq", {.from_beginning = true, .max_messages = expected, .idle_timeout = 20s},
              [&](const kafka::Message& m) {
                DeadLetter d{std::string(m.payload()), {}};
                for (const auto& [k, v] : m.headers()) d.headers[std::string(k)] = std::string(v);
                out.push_back(std::move(d));
                return true;
              },
              stop);
  return out;
}

/// The librdkafka clients of process `pid` as librdkafka itself shows them: each client runs
/// exactly one thread named rdk:main.
int rdkafka_clients_of(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    n += name == "rdk:main";
  }
  return n;
}

/// The kafka_clients gauge of a process's /metrics: (type, client_id) -> count.
std::map<std::pair<std::string, std::string>, int> kafka_clients_metric(std::uint16_t port) {
  std::map<std::pair<std::string, std::string>, int> out;
  std::istringstream in(itest::http_request(port, "GET", "/metrics").body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("kafka_clients{", 0) != 0) continue;
    auto field = [&](const std::string& key) {
      auto at = line.find(key + "=\"");
      if (at == std::string::npos) return std::string();
      at += key.size() + 2;
      return line.substr(at, line.find('"', at) - at);
    };
    out[{field("type"), field("client_id")}] += std::stoi(line.substr(line.rfind(' ') + 1));
  }
  return out;
}

/// Waits until the process's figures settle (admin clients come and go) and checks that it
/// runs `consumers` consumer clients and exactly one dead-letter producer, and that
/// /metrics counts every librdkafka client the process has.
void expect_one_dlq_producer(const itest::ServeProcess& p, std::uint16_t port, int consumers) {
  std::map<std::pair<std::string, std::string>, int> clients;
  int dlq = 0, consumer = 0, total = 0, threads = -1;
  const bool settled = itest::wait_until([&] {
    clients = kafka_clients_metric(port);
    dlq = consumer = total = 0;
    for (const auto& [key, n] : clients) {
      total += n;
      if (key.first == "consumer") consumer += n;
      if (key.first == "producer" && key.second.find("dlq") != std::string::npos) dlq += n;
    }
    threads = rdkafka_clients_of(p.pid());
    return dlq == 1 && consumer == consumers && total == threads;
  }, 30s);
  std::string shown;
  for (const auto& [key, n] : clients) shown += key.first + "/" + key.second + "=" + std::to_string(n) + " ";
  EXPECT_TRUE(settled) << "dead-letter producers " << dlq << " (want 1), consumers " << consumer << " (want " << consumers
                       << "), clients in /metrics " << total << " vs rdk:main threads " << threads << ": " << shown;
  EXPECT_EQ(clients[std::make_pair(std::string("producer"), std::string("taskstream-dlq"))], 1) << shown;
}

}  // namespace

// Issue 20: one DLQ producer per process, shared by every consumer (the hub's too) and the
// email dispatcher, instead of one each; seen from outside: /metrics' kafka_clients checked
// against librdkafka's own threads (one rdk:main per client), and dead letters of two
// consumers both going through it.
TEST(KafkaRealBroker, ServeAndWorkerRunOneDeadLetterProducerSharedByTheirConsumers) {
  itest::ServeProcess serve;
  ASSERT_TRUE(itest::wait_until([&] { return serve.call("GET", "/readyz").status == 200; }, 60s)) << serve.log();
  expect_one_dlq_producer(serve, serve.port(), 3);  // audit, notification, the hub's

  // A poison message for the audit consumer and one for the notification consumer: both
  // dead-lettered (through the one producer), each counted by its own group.
  auto s = config::Settings::load(config::EnvMap(serve.env().begin(), serve.env().end()));
  kafka::Producer producer(s);
  ASSERT_TRUE(producer.send({serve.topic("task-events"), "user-a", "{not json", {}, std::nullopt}).get().ok());
  ASSERT_TRUE(producer.send({serve.topic("notification.request"), "user-b", "{not json", {}, std::nullopt}).get().ok());
  const auto audit_dl = read_dlq(s, serve.topic("task-events"), 1);
  const auto notification_dl = read_dlq(s, serve.topic("notification.request"), 1);
  ASSERT_EQ(audit_dl.size(), 1u) << serve.log();
  ASSERT_EQ(notification_dl.size(), 1u) << serve.log();
  EXPECT_EQ(audit_dl[0].headers.at("dlq.reason"), "bad_json");
  EXPECT_EQ(notification_dl[0].headers.at("dlq.reason"), "bad_json");
  EXPECT_TRUE(itest::wait_until([&] { return serve.metric("consumer_messages_dead_lettered_total") == 2; }, 30s))
      << serve.metric("consumer_messages_dead_lettered_total");
  expect_one_dlq_producer(serve, serve.port(), 3);
  EXPECT_EQ(serve.stop(), 0) << serve.log();

  auto env = serve.env();
  const auto worker_port = itest::free_port();
  env["HTTP_PORT"] = std::to_string(worker_port);
  itest::ServeProcess worker(env, {"worker", "--consumers", "all", "--port", std::to_string(worker_port)});
  ASSERT_TRUE(itest::wait_until([&] { return itest::http_request(worker_port, "GET", "/readyz").status == 200; }, 60s)) << worker.log();
  expect_one_dlq_producer(worker, worker_port, 2);  // audit, notification
  EXPECT_EQ(worker.stop(), 0) << worker.log();
}

TEST(KafkaRealBroker, PoisonMessagesGoToTheDlqWithTheirReason) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("poison");
  itest::create_topic_with_dlq(s, topic, 1);  // one partition: the good ones sit around the bad ones

  kafka::Producer producer(s);
  const std::string user = "user-dlq";
  std::vector<std::string> payloads = {
      good_event(user, 1),
      "{not json",
      good_event(user, 2),
      R"({"type":"task_created","user_id":"user-dlq","task_id":"not-a-uuid","timestamp":"2026-11-27T12:00:00Z","task_data":{}})",
      good_event(user, 3),
      R"({"type":"task_exploded","user_id":"user-dlq","task_id":"0b7e7a43-3c4c-4e1e-9d8f-4c8f8ad2b2a1","timestamp":"2026-11-27T12:00:00Z","task_data":{}})",
      good_event(user, 4),
      good_event(user, 5),  // sent with another user's key: key_mismatch
  };
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    const std::string key = i + 1 == payloads.size() ? "someone-else" : user;
    ASSERT_TRUE(producer.send({topic, key, payloads[i], {}, std::nullopt}).get().ok());
  }

  std::mutex mutex;
  std::vector<std::int64_t> handled_seqs;
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("poison-group");
  o.topics = {topic};
  kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext& ctx) {
    workers::for_each_event(batch, ctx, events::parse_task_event, [&](const kafka::Message&, events::TaskEvent e) {
      std::lock_guard lock(mutex);
      handled_seqs.push_back(*e.seq);
    });
  });
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return runner.stats().processed + runner.stats().dead_lettered >= payloads.size(); }));
  runner.stop();

  EXPECT_EQ(handled_seqs, (std::vector<std::int64_t>{1, 2, 3, 4}));
  auto dead = read_dlq(s, topic, 4);
  ASSERT_EQ(dead.size(), 4u);
  EXPECT_EQ(dead[0].payload, "{not json");
  EXPECT_EQ(dead[0].headers["dlq.reason"], "bad_json");
  EXPECT_EQ(dead[1].headers["dlq.reason"], "schema");
  EXPECT_NE(dead[1].headers["dlq.detail"].find("task_id"), std::string::npos) << dead[1].headers["dlq.detail"];
  EXPECT_EQ(dead[2].headers["dlq.reason"], "unknown_type");
  EXPECT_EQ(dead[3].headers["dlq.reason"], "key_mismatch");
  EXPECT_EQ(dead[3].headers["dlq.error_class"], "permanent");
  EXPECT_EQ(dead[3].payload, payloads.back()) << "dead-lettered as it came";
  EXPECT_NE(dead[3].headers["dlq.detail"].find("someone-else"), std::string::npos) << dead[3].headers["dlq.detail"];
  for (const auto& d : dead) {
    EXPECT_EQ(d.headers.at("dlq.source_topic"), topic);
    EXPECT_EQ(d.headers.at("dlq.source_partition"), "0");
    EXPECT_FALSE(d.headers.at("dlq.first_failure").empty());
  }
  EXPECT_EQ(dead[0].headers["dlq.source_offset"], "1");
  EXPECT_EQ(dead[1].headers["dlq.source_offset"], "3");
  EXPECT_EQ(dead[2].headers["dlq.source_offset"], "5");
  EXPECT_EQ(dead[3].headers["dlq.source_offset"], "7");
}

TEST(KafkaRealBroker, HandlerThatKeepsFailingIsRetriedThenDeadLettered) {
  auto s = itest::kafka_settings();
  const auto topic = itest::unique_name("retry");
  itest::create_topic_with_dlq(s, topic, 1);
  kafka::Producer producer(s);
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(producer.send({topic, "u", good_event("u", i), {}, std::nullopt}).get().ok());

  std::mutex mutex;
  std::map<std::int64_t, int> attempts;
  std::vector<std::int64_t> committed;
  kafka::ConsumerOptions o;
  o.group_id = itest::unique_name("retry-group");
  o.topics = {topic};
  o.max_attempts = 3;
  o.backoff_initial = 10ms;
  kafka::ConsumerRunner runner(s, o, [&](std::span<const kafka::Message> batch, kafka::BatchContext&) {
    std::vector<std::int64_t> seqs;
    for (const auto& m : batch) {
      auto e = events::parse_task_event(m.payload(), {m.topic(), m.partition(), m.offset()});
      std::lock_guard lock(mutex);
      attempts[*e.seq]++;
      // seq 3 fails every time, seq 4 fails once then succeeds: a transient error.
      if (*e.seq == 3 || (*e.seq == 4 && attempts[4] == 1)) throw std::runtime_error("downstream unavailable for seq " + std::to_string(*e.seq));
      seqs.push_back(*e.seq);
    }
    std::lock_guard lock(mutex);
    committed.insert(committed.end(), seqs.begin(), seqs.end());
  });
  runner.start();
  ASSERT_TRUE(itest::wait_until([&] { return runner.stats().dead_lettered >= 1 && runner.stats().processed >= 4; }));
  runner.stop();

  std::sort(committed.begin(), committed.end());
  committed.erase(std::unique(committed.begin(), committed.end()), committed.end());
  EXPECT_EQ(committed, (std::vector<std::int64_t>{1, 2, 4, 5}));
  EXPECT_GT(runner.stats().retries, 0u);
  auto dead = read_dlq(s, topic, 1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].headers["dlq.reason"], "handler_error");
  EXPECT_EQ(dead[0].headers["dlq.error_class"], "retries_exhausted");
  EXPECT_EQ(dead[0].headers["dlq.attempts"], "3");
  EXPECT_NE(dead[0].headers["dlq.detail"].find("seq 3"), std::string::npos);
  EXPECT_EQ(dead[0].headers["dlq.source_offset"], "2");
}
