// Produce rate of our producer path (JSON payload + key + event headers, idempotent,
// acks=all) to a real broker. bench/produce_vs_kcat runs it beside `kcat -P` on the same
// broker with the same message size, count and keys.
//
// usage: produce_rate TOPIC COUNT SIZE [KEYS]
// Timed from the first produce to the last acknowledgement (flush), the producer connected.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

#include "config/settings.hpp"
#include "events/events.hpp"
#include "kafka/producer.hpp"
#include "util/logging.hpp"

int main(int argc, char** argv) {
  using namespace taskstream;
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s TOPIC COUNT SIZE [KEYS]\n", argv[0]);
    return 2;
  }
  const std::string topic = argv[1];
  const long count = std::stol(argv[2]);
  const std::size_t size = std::stoul(argv[3]);
  const int keys = argc > 4 ? std::stoi(argv[4]) : 100;
  auto settings = config::Settings::from_environment();
  util::setup_logging("warn", settings.log_format);
  kafka::Producer producer(settings);

  // Payloads are built as the service will: an event JSON padded to SIZE bytes.
  const std::string event_id = events::new_event_id();
  std::string pad(size > 200 ? size - 200 : 1, 'x');
  // Connected first (as the service's producer is long before its first event): one
  // message, acknowledged, before the clock starts. librdkafka 2.12 takes about 0.5 s to get
  // an idempotent producer id after start-up (its PID timer), which a service pays once.
  if (!producer.send({topic, "warm-up", "{}", {}, std::nullopt}).get().ok()) {
    std::fprintf(stderr, "produce_rate: warm-up produce to %s failed\n", topic.c_str());
    return 1;
  }
  // The headers of a task update as the relay sends them (ours and the CloudEvents ones), with
  // fixed values: bench/produce_vs_kcat gives kcat the same ones.
  auto headers = [&] {
    return kafka::event_headers({.event_id = event_id,
                                 .event_type = "task_updated",
                                 .schema = "task-update/v1",
                                 .subject = event_id,
                                 .time = "2026-12-04T00:00:00.000Z",
                                 .partition_key = "user-0"});
  };
  std::atomic<long> failed{0};
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < count; ++i) {
    std::string key = "user-" + std::to_string(i % keys);
    std::string payload = R"({"event_id":")" + event_id + R"(","type":"task_updated","seq":)" + std::to_string(i) +
                          R"(,"user_id":")" + key + R"(","changes":{"pad":")" + pad + R"("}})";
    payload.resize(std::max(payload.size(), size), ' ');
    producer.produce({topic, std::move(key), std::move(payload), headers(), std::nullopt},
                     [&](const kafka::DeliveryResult& r) {
                       if (!r.ok()) failed++;
                     });
  }
  producer.flush(std::chrono::minutes(5));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("taskstream\t%ld msgs\t%zu B\t%.2f s\t%.0f msg/s\t%.1f MB/s\tfailed=%ld\n", count, size, secs, count / secs,
              count * static_cast<double>(size) / secs / 1e6, failed.load());
  return failed.load() == 0 ? 0 : 1;
}
