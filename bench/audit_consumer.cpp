// Audit consumer throughput against its ceiling, on the same machine in the same run.
//
//   audit_consumer [N=100000] [PARTITIONS=3]
//
// 1. Fills a fresh topic with N task events (realistic payloads, 1,000 users as keys).
// 2. Ceiling: the same rows, built directly (no Kafka, no parsing), written into a fresh
//    SQLite database with Store::record_audit in batches of the consumer's size (2,000).
// 3. Consumer: the audit consumer (ConsumerRunner + audit_handler, as `serve` runs it) on a
//    fresh SQLite database and a new group, timed from start() until every event's row has
//    committed (the handler returns after its transaction commits).
// Prints both rates and their ratio. KAFKA_BOOTSTRAP_SERVERS picks the broker.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "config/settings.hpp"
#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "kafka/consumer_runner.hpp"
#include "kafka/producer.hpp"
#include "storage/store.hpp"
#include "util/logging.hpp"
#include "workers/audit_consumer.hpp"

using namespace taskstream;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kBatch = workers::kAuditBatch;  // the audit consumer's batch size

std::unique_ptr<storage::Store> fresh_sqlite(const std::filesystem::path& dir, const std::string& name) {
  auto path = dir / name;
  std::filesystem::remove(path);
  auto settings = config::Settings::load({{"DATABASE_URL", "sqlite:///" + path.string()}});
  auto store = storage::open_store(settings.database);
  store->migrate();
  return store;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::stol(argv[1]) : 100'000;
  const int partitions = argc > 2 ? std::stoi(argv[2]) : 3;
  auto settings = config::Settings::from_environment();
  util::setup_logging("warn", settings.log_format);
  const auto dir = std::filesystem::temp_directory_path() / ("audit-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string topic = "bench-audit-" + events::new_event_id().substr(0, 8);

  // ---- the events, built once
  std::vector<events::TaskEvent> evs;
  evs.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) {
    events::TaskEvent e;
    e.event_id = events::new_event_id();
    e.type = "task_updated";
    e.action = "updated";
    e.timestamp = events::now_rfc3339();
    e.user_id = "user-" + std::to_string(i % 1000);
    e.task_id = events::new_event_id();
    e.seq = i / 1000 + 1;
    e.task_data = {{"id", e.task_id},           {"user_id", e.user_id},   {"title", "Write the quarterly report " + std::to_string(i)},
                   {"description", "Collect the figures from every team and write them up for review."},
                   {"status", "in_progress"},   {"priority", "high"},     {"due_at", "2026-12-01T17:00:00.000Z"},
                   {"created_at", e.timestamp}, {"updated_at", e.timestamp}, {"completed_at", nullptr}, {"version", 2}};
    evs.push_back(std::move(e));
  }

  // ---- fill the topic
  kafka::Admin(settings).ensure_topics({{topic, partitions, 1, {}}, {topic + ".dlq", partitions, 1, {}}});
  {
    kafka::Producer producer(settings);
    std::atomic<long> failed{0};
    const auto t0 = Clock::now();
    for (const auto& e : evs)
      producer.produce({topic, e.user_id, events::serialize(e), kafka::event_headers(e.event_id, e.type), std::nullopt},
                       [&](const kafka::DeliveryResult& r) {
                         if (!r.ok()) failed++;
                       });
    producer.flush(std::chrono::minutes(5));
    if (failed) {
      std::fprintf(stderr, "%ld events failed to produce\n", failed.load());
      return 1;
    }
    std::printf("filled %s: %ld events (%d partitions) in %.2f s\n", topic.c_str(), n, partitions, seconds_since(t0));
  }

  // ---- ceiling: the same rows, the same batched insert, no Kafka
  double ceiling = 0;
  {
    auto store = fresh_sqlite(dir, "ceiling.db");
    std::vector<std::vector<storage::AuditEntry>> batches(1);
    for (const auto& e : evs) {
      if (batches.back().size() == kBatch) batches.emplace_back();
      batches.back().push_back(workers::to_audit_entry(e, topic, 0, 0));
    }
    const auto t0 = Clock::now();
    std::size_t rows = 0;
    for (const auto& b : batches) rows += store->record_audit("bench-ceiling", b);
    const double secs = seconds_since(t0);
    ceiling = static_cast<double>(rows) / secs;
    std::printf("ceiling   record_audit, batches of %zu, SQLite: %zu rows in %.2f s = %.0f rows/s\n", kBatch, rows, secs, ceiling);
  }

  // ---- the audit consumer
  {
    auto store = fresh_sqlite(dir, "consumer.db");
    kafka::ConsumerOptions o;
    o.group_id = topic + "-audit";
    o.topics = {topic};
    o.client_id = "bench-audit";
    workers::apply_audit_batching(o);  // as serve runs it
    kafka::ConsumerRunner runner(settings, o, workers::audit_handler(*store, o.group_id));
    const auto t0 = Clock::now();
    runner.start();
    double first = -1;
    while (runner.stats().processed < static_cast<std::uint64_t>(n) && seconds_since(t0) < 600) {
      if (first < 0 && runner.stats().processed > 0) first = seconds_since(t0);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const double secs = seconds_since(t0);
    const auto st = runner.stats();
    runner.stop();
    const double rate = static_cast<double>(st.processed) / secs;
    std::printf("consumer  audit consumer from start to last commit:   %lu events in %.2f s = %.0f events/s (%lu batches)\n",
                static_cast<unsigned long>(st.processed), secs, rate, static_cast<unsigned long>(st.batches));
    std::printf("          (first batch committed %.2f s after start: group join and first fetch)\n", first);
    std::printf("ratio     consumer / ceiling = %.0f %%\n", 100.0 * rate / ceiling);
  }
  kafka::Admin(settings).delete_topics({topic, topic + ".dlq"});
  std::filesystem::remove_all(dir);
  return 0;
}
