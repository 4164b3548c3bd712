// Operations (docs/operations.md, "Metrics"): /metrics figures move as requests, events and consumed
// messages go by; LOG_FORMAT=json gives one object a line with request and event ids; a
// request's traceparent travels into its events' Kafka headers and the consumers' logs.

#include <gtest/gtest.h>

#include <atomic>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kafka/producer.hpp"
#include "kafka/tail.hpp"
#include "serve_process.hpp"
#include "test_env.hpp"
#include "ws_client.hpp"

using namespace taskstream;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

/// One sample of the Prometheus text format.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

std::vector<Sample> parse_metrics(const std::string& text) {
  std::vector<Sample> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    auto brace = line.find('{');
    auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    s.name = line.substr(0, std::min(brace, space));
    if (brace != std::string::npos && brace < space) {
      auto close = line.rfind('}', space);
      std::string body = line.substr(brace + 1, close - brace - 1);
      std::size_t pos = 0;
      while (pos < body.size()) {
        auto eq = body.find('=', pos);
        auto q2 = body.find('"', eq + 2);
        s.labels[body.substr(pos, eq - pos)] = body.substr(eq + 2, q2 - eq - 2);
        pos = q2 + 2;  // past `",`
      }
    }
    s.value = std::stod(line.substr(space + 1));
    out.push_back(std::move(s));
  }
  return out;
}

/// Samples named `name` whose labels include every one of `match`.
std::vector<Sample> select(const std::vector<Sample>& all, const std::string& name, const std::map<std::string, std::string>& match = {}) {
  std::vector<Sample> out;
  for (const auto& s : all) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : match) ok = ok && s.labels.count(k) && s.labels.at(k) == v;
    if (ok) out.push_back(s);
  }
  return out;
}

double sum(const std::vector<Sample>& samples) {
  double t = 0;
  for (const auto& s : samples) t += s.value;
  return t;
}

std::vector<Sample> scrape(std::uint16_t port) {
  auto r = itest::http_request(port, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.headers["content-type"].find("text/plain"), std::string::npos);
  return parse_metrics(r.body);
}

}  // namespace

TEST(Observability, MetricsMoveWithRequestsEventsConsumersAndSockets) {
  // serve publishes; a worker consumes (so its /metrics shows the consumer figures alone).
  itest::ServeProcess serve({}, {"serve", "--consumers", "none"});
  itest::wait_ready(serve);
  auto [user, token] = serve.new_user("metrics");
  itest::WsClient ws(serve.port(), itest::bearer(token));
  ASSERT_EQ(ws.status(), 101);
  ws.start_reading();

  // The socket is counted once the hub has registered it, a moment after the 101.
  auto before = scrape(serve.port());
  EXPECT_TRUE(itest::wait_until([&] {
    before = scrape(serve.port());
    return sum(select(before, "websocket_connections")) == 1;
  }, 10s)) << "websocket_connections stays " << sum(select(before, "websocket_connections"));
  constexpr int kTasks = 12;
  for (int i = 0; i < kTasks; ++i) ASSERT_EQ(serve.call("POST", "/tasks", json{{"title", "t" + std::to_string(i)}}.dump(), token).status, 201);
  EXPECT_EQ(serve.call("POST", "/tasks", "{not json", token).status, 400);

  // Every change published (task-events + task-updates each), the outbox empty again, and
  // the socket got one frame per change. A request is counted just after its answer is
  // written, so the last one (the 400) may be counted a moment after the client read it.
  std::vector<Sample> m;
  ASSERT_TRUE(itest::wait_until([&] {
    m = scrape(serve.port());
    return sum(select(m, "outbox_events_published_total")) >= 2 * kTasks && sum(select(m, "outbox_events_waiting")) == 0 &&
           sum(select(m, "websocket_frames_sent_total")) >= kTasks &&
           sum(select(m, "http_requests_total", {{"method", "POST"}, {"route", "/tasks"}, {"status", "400"}})) >= 1;
  }, 60s)) << serve.log();
  EXPECT_EQ(sum(select(m, "http_requests_total", {{"method", "POST"}, {"route", "/tasks"}, {"status", "201"}})), kTasks);
  EXPECT_EQ(sum(select(m, "http_requests_total", {{"method", "POST"}, {"route", "/tasks"}, {"status", "400"}})), 1);
  EXPECT_EQ(sum(select(m, "http_request_duration_seconds_count", {{"method", "POST"}, {"route", "/tasks"}, {"status", "201"}})), kTasks);
  auto inf = select(m, "http_request_duration_seconds_bucket", {{"route", "/tasks"}, {"status", "201"}, {"le", "+Inf"}});
  ASSERT_EQ(inf.size(), 1u);
  EXPECT_EQ(inf[0].value, kTasks);
  EXPECT_EQ(select(m, "outbox_oldest_event_age_seconds").size(), 1u);
  EXPECT_EQ(sum(select(m, "outbox_oldest_event_age_seconds")), 0) << "nothing waits";
  EXPECT_EQ(sum(select(m, "outbox_events_failed_total")), 0);
  // The hub's own consumer reports per partition too.
  const auto ws_group = select(m, "consumer_messages_processed_total");
  EXPECT_GE(sum(ws_group), kTasks);

  // A worker with a new audit group reads from the earliest offset: its processed count
  // reaches the events, every partition's lag drops to 0.
  const auto worker_port = itest::free_port();
  auto env = serve.env();
  env["HTTP_PORT"] = std::to_string(worker_port);
  itest::ServeProcess worker(env, {"worker", "--consumers", "audit", "--port", std::to_string(worker_port)});
  const std::map<std::string, std::string> audit{{"group", env["KAFKA_CONSUMER_GROUP_AUDIT"]}, {"topic", serve.topic("task-events")}};
  std::vector<Sample> w;
  ASSERT_TRUE(itest::wait_until([&] {
    w = scrape(worker_port);
    auto lags = select(w, "consumer_lag", audit);
    return sum(select(w, "consumer_messages_processed_total", audit)) == kTasks && lags.size() == 3 && sum(lags) == 0;
  }, 60s)) << worker.log();
  EXPECT_EQ(sum(select(w, "consumer_messages_dead_lettered_total", audit)), 0);

  // A poison message: dead-lettered and counted on its partition; lag back to 0.
  kafka::Producer producer(config::Settings::load(itest::kafka_env()));
  auto poison = producer.send({serve.topic("task-events"), user, "{not json", {}, std::nullopt}).get();
  ASSERT_TRUE(poison.ok());
  ASSERT_TRUE(itest::wait_until([&] {
    w = scrape(worker_port);
    return sum(select(w, "consumer_messages_dead_lettered_total", audit)) == 1 && sum(select(w, "consumer_lag", audit)) == 0;
  }, 60s)) << worker.log();
  auto dead = select(w, "consumer_messages_dead_lettered_total", audit);
  for (const auto& s : dead) EXPECT_EQ(s.value, s.labels.at("partition") == std::to_string(poison.partition) ? 1 : 0);
  EXPECT_EQ(sum(select(w, "consumer_messages_processed_total", audit)), kTasks);
  EXPECT_EQ(worker.stop(), 0) << worker.log();
}

TEST(Observability, TraceparentTravelsIntoKafkaHeadersAndJsonConsumerLogs) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"LOG_FORMAT", "json"}, {"LOG_LEVEL", "debug"}});
  itest::wait_ready(serve);
  auto [user, token] = serve.new_user("trace");
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto traced = serve.call("POST", "/tasks", json{{"title", "traced"}}.dump(), token, {{"traceparent", tp}, {"X-Request-Id", "req-trace-1"}});
  ASSERT_EQ(traced.status, 201) << traced.body;
  auto untraced = serve.call("POST", "/tasks", json{{"title", "malformed trace"}}.dump(), token, {{"traceparent", "00-zz-nope-01"}});
  ASSERT_EQ(untraced.status, 201);

  // Kafka: the traced change's events carry the traceparent; the malformed one is dropped.
  std::map<std::string, std::string> trace_of_task;  // task id → traceparent header ("" when none)
  std::string event_id;
  std::atomic<bool> stop{false};
  auto s = config::Settings::load(itest::kafka_env());
  kafka::tail(s, serve.topic("task-events"), {.from_beginning = true, .max_messages = 2, .idle_timeout = 30s},
              [&](const kafka::Message& m) {
                auto j = json::parse(m.payload());
                std::string task = j["task_id"];
                trace_of_task[task] = std::string(m.header("traceparent").value_or(""));
                if (task == traced.json()["id"]) event_id = std::string(m.header("event_id").value_or(""));
                return true;
              },
              stop);
  EXPECT_EQ(trace_of_task[traced.json()["id"]], tp);
  EXPECT_EQ(trace_of_task[untraced.json()["id"]], "");
  ASSERT_FALSE(event_id.empty());

  // The log: every line one JSON object; the request's lines carry its id, the audit
  // consumer's line for the event carries the event id and the trace.
  bool request_line = false, consumer_line = false;
  ASSERT_TRUE(itest::wait_until([&] {
    std::istringstream in(serve.log());
    std::string line;
    while (std::getline(in, line)) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        ADD_FAILURE() << "not one JSON object: " << line;
        return true;
      }
      if (!j.contains("time") || !j.contains("level") || !j.contains("message")) ADD_FAILURE() << line;
      if (j.value("request_id", "") == "req-trace-1" && j.value("traceparent", "") == tp) request_line = true;
      if (j.value("event_id", "") == event_id && j.value("traceparent", "") == tp &&
          j.value("trace_id", "") == "4bf92f3577b34da6a3ce929d0e0e4736" &&
          j.value("message", "").find(serve.env().at("KAFKA_CONSUMER_GROUP_AUDIT")) != std::string::npos)
        consumer_line = true;
    }
    return request_line && consumer_line;
  }, 60s)) << serve.log();
  EXPECT_TRUE(request_line);
  EXPECT_TRUE(consumer_line);
  EXPECT_EQ(serve.stop(), 0);
}
