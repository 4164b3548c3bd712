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
//
//   audit_consumer --at-scale [N=1000000] [PARTITIONS=3]
//
// At scale (issue 20): N events produced as they are made (none kept in memory), no
// ceiling, then the consumer as above, with this process's RSS (the consumer, its
// librdkafka queues and the store) read before start, when the first batch has committed,
// at every tenth of the events and at the end. "start" is the RSS at the first tenth:
// by then the consumer holds what it holds at any time (librdkafka's prefetch queue,
// queued.max.messages.kbytes, 64 MiB by default; SQLite's page cache, 64 MiB), which
// it fills in its first seconds; what grows after that grows with the events. One line:
//   audit1m  N events in S s = R events/s ...; rss start X MiB end Y MiB (+P %) ...

#include <malloc.h>

#include <atomic>
#include <fstream>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

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

/// The audit consumer's options as serve runs it, on `topic` with a group of its own.
kafka::ConsumerOptions audit_options(const std::string& topic) {
  kafka::ConsumerOptions o;
  o.group_id = topic + "-audit";
  o.topics = {topic};
  o.client_id = "bench-audit";
  workers::apply_audit_batching(o);
  return o;
}

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

/// The i-th of the benchmark's events: realistic payloads, 1,000 users as keys.
events::TaskEvent make_event(long i) {
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
  return e;
}

/// Produces `n` events (make_event) to `topic`, made one at a time. False when any failed.
bool fill_topic(const config::Settings& settings, const std::string& topic, long n, bool keep_none, std::vector<events::TaskEvent>* keep) {
  kafka::Producer producer(settings);
  std::atomic<long> failed{0};
  for (long i = 0; i < n; ++i) {
    auto e = make_event(i);
    producer.produce({topic, e.user_id, events::serialize(e), kafka::event_headers(e.event_id, e.type), std::nullopt},
                     [&](const kafka::DeliveryResult& r) {
                       if (!r.ok()) failed++;
                     });
    if (!keep_none) keep->push_back(std::move(e));
  }
  producer.flush(std::chrono::minutes(5));
  if (failed) std::fprintf(stderr, "%ld events failed to produce\n", failed.load());
  return failed == 0;
}

double rss_mib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

/// The --at-scale mode (see the top).
int at_scale(const config::Settings& settings, long n, int partitions) {
  const auto dir = std::filesystem::temp_directory_path() / ("audit-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string topic = "bench-audit-" + events::new_event_id().substr(0, 8);
  kafka::Admin(settings).ensure_topics({{topic, partitions, 1, {}}, {topic + ".dlq", partitions, 1, {}}});
  const auto t_fill = Clock::now();
  if (!fill_topic(settings, topic, n, true, nullptr)) return 1;
  std::printf("filled %s: %ld events (%d partitions) in %.2f s\n", topic.c_str(), n, partitions, seconds_since(t_fill));
  std::fflush(stdout);
  malloc_trim(0);  // what the producer freed goes back, so "before" is the consumer's own start
  int rc = 0;
  {
    auto store = fresh_sqlite(dir, "consumer.db");
    const auto o = audit_options(topic);
    kafka::ConsumerRunner runner(settings, o, workers::audit_handler(*store, o.group_id));
    const double before = rss_mib();
    const auto t0 = Clock::now();
    runner.start();
    double first = -1, rss_start = 0, peak = 0;
    std::uint64_t at_first = 0;
    std::vector<double> tenths, tenth_at;  // RSS and time at each tenth of the events
    std::uint64_t done = 0;
    while ((done = runner.stats().processed) < static_cast<std::uint64_t>(n) && seconds_since(t0) < 1200) {
      if (first < 0 && done > 0) {
        first = seconds_since(t0);
        at_first = done;
        rss_start = rss_mib();
      }
      while (first >= 0 && tenths.size() < 9 && done >= static_cast<std::uint64_t>(n) / 10 * (tenths.size() + 1)) {
        tenths.push_back(rss_mib());
        tenth_at.push_back(seconds_since(t0));
      }
      peak = std::max(peak, rss_mib());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const double secs = seconds_since(t0);
    const double rss_end = rss_mib();
    peak = std::max(peak, rss_end);
    const auto st = runner.stats();
    runner.stop();
    // The rate from the first commit to the last: group join and first fetch left out
    // (they are printed), as a long-running consumer never pays them.
    const double steady = static_cast<double>(st.processed - at_first) / std::max(1e-9, secs - first);
    const double rate = static_cast<double>(st.processed) / secs;
    std::string trail;
    for (double r : tenths) trail += fmt::format(" {:.0f}", r);
    // The rate of each tenth: whether ingestion slows as the database grows.
    std::string rates;
    tenth_at.push_back(secs);
    for (std::size_t i = 0; i < tenth_at.size(); ++i)
      rates += fmt::format(" {:.0f}k", static_cast<double>(n) / 10 / (tenth_at[i] - (i == 0 ? first : tenth_at[i - 1])) / 1000);
    const double rss_tenth = tenths.empty() ? rss_start : tenths.front();
    std::printf("audit1m  %lu events in %.2f s = %.0f events/s (%.0f events/s after the first commit at %.2f s); "
                "rss start %.1f MiB end %.1f MiB (%+.1f %%) peak %.1f MiB (start: at the first tenth; before start %.1f MiB, "
                "at the first commit %.1f MiB, at each tenth:%s MiB); events/s of each tenth:%s\n",
                static_cast<unsigned long>(st.processed), secs, rate, steady, first, rss_tenth, rss_end,
                100.0 * (rss_end - rss_tenth) / rss_tenth, peak, before, rss_start, trail.c_str(), rates.c_str());
    if (st.processed < static_cast<std::uint64_t>(n)) rc = 1;
  }
  kafka::Admin(settings).delete_topics({topic, topic + ".dlq"});
  std::filesystem::remove_all(dir);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  auto settings = config::Settings::from_environment();
  util::setup_logging("warn", settings.log_format);
  if (argc > 1 && std::string(argv[1]) == "--at-scale")
    return at_scale(settings, argc > 2 ? std::stol(argv[2]) : 1'000'000, argc > 3 ? std::stoi(argv[3]) : 3);
  const long n = argc > 1 ? std::stol(argv[1]) : 100'000;
  const int partitions = argc > 2 ? std::stoi(argv[2]) : 3;
  const auto dir = std::filesystem::temp_directory_path() / ("audit-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string topic = "bench-audit-" + events::new_event_id().substr(0, 8);

  // ---- the events, built once, and the topic filled with them
  std::vector<events::TaskEvent> evs;
  evs.reserve(static_cast<std::size_t>(n));
  kafka::Admin(settings).ensure_topics({{topic, partitions, 1, {}}, {topic + ".dlq", partitions, 1, {}}});
  {
    const auto t0 = Clock::now();
    if (!fill_topic(settings, topic, n, false, &evs)) return 1;
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
    const auto o = audit_options(topic);
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
