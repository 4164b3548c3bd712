// Outbox relay drain rate beside raw publish, on the same machine in the same run.
//
//   relay_drain [TASKS=50000] [USERS=1000]
//
// 1. Fills a fresh SQLite outbox with TASKS task creations (two events each: task-events and
//    task-updates) for USERS users, with the relay not running (as after a broker outage).
// 2. Ceiling, raw publish: the same rows (topic, key, payload, event headers) handed to the
//    same producer path straight from memory, to topics of their own: messages/s until the
//    last acknowledgement.
// 3. The relay (as `serve` runs it) drains the outbox: events/s from the start until the
//    outbox is empty (every row acknowledged by acks=all and marked published).
// KAFKA_BOOTSTRAP_SERVERS picks the broker.

#include <atomic>
#include <thread>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "kafka/message.hpp"
#include "kafka/producer.hpp"
#include "outbox/relay.hpp"
#include "outbox/task_events.hpp"
#include "storage/store.hpp"
#include "util/logging.hpp"

using namespace taskstream;
using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

int main(int argc, char** argv) {
  const long tasks = argc > 1 ? std::stol(argv[1]) : 50'000;
  const int users_n = argc > 2 ? std::stoi(argv[2]) : 1000;
  util::setup_logging("warn", config::LogFormat::text);
  const std::string prefix = "bench-relay-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000'000);
  const auto db = std::filesystem::temp_directory_path() / (prefix + ".db");
  const char* bootstrap = std::getenv("KAFKA_BOOTSTRAP_SERVERS");
  auto env = [&](const std::string& events, const std::string& updates) {
    return config::Settings::load({{"KAFKA_BOOTSTRAP_SERVERS", bootstrap ? bootstrap : "127.0.0.1:9092"},
                                   {"KAFKA_TOPIC_TASK_EVENTS", events},
                                   {"KAFKA_TOPIC_TASK_UPDATES", updates},
                                   {"DATABASE_URL", "sqlite:///" + db.string()},
                                   {"LOG_LEVEL", "warn"}});
  };
  auto s = env(prefix + "-events", prefix + "-updates");
  auto raw = env(prefix + "-raw-events", prefix + "-raw-updates");
  try {
    kafka::Admin(s).ensure_topics(kafka::service_topics(s));
    kafka::Admin(raw).ensure_topics(kafka::service_topics(raw));
    auto store = storage::open_store(s.database);
    store->migrate();
    std::vector<std::string> users;
    for (int u = 0; u < users_n; ++u) users.push_back(store->create_user("relay-" + std::to_string(u) + "@bench.example", "x")->id);
    auto factory = outbox::task_event_factory(s, "task_created");
    auto t0 = Clock::now();
    for (long i = 0; i < tasks; ++i) {
      storage::Task t;
      t.id = events::new_event_id();
      t.user_id = users[static_cast<std::size_t>(i % users_n)];
      t.title = "relay bench task " + std::to_string(i);
      t.description = "a task written by the relay benchmark, about the size of a real one";
      t.created_at = t.updated_at = events::now_rfc3339();
      store->create_task(t, factory);
    }
    const auto waiting = store->outbox_stats().waiting;
    std::printf("filled   outbox with %ld events (%ld tasks, %d users) in %.2f s\n", static_cast<long>(waiting), tasks, users_n, seconds_since(t0));

    // Ceiling: the same rows from memory through the same producer path, nothing else.
    // The outbox hands out at most a batch at a time; the ceiling cycles through the first
    // rows until it has sent as many messages as the outbox holds.
    const auto rows = store->fetch_unpublished(static_cast<int>(waiting));
    const std::size_t total = static_cast<std::size_t>(waiting);
    // Both producers connect before their clocks start (one message each to a topic of its own).
    auto warm = [](kafka::Producer& p, const std::string& topic) {
      if (!p.send({topic, "warm-up", "{}", {}, std::nullopt}).get().ok()) throw std::runtime_error("warm-up produce to " + topic + " failed");
    };
    {
      kafka::Producer producer(raw);
      warm(producer, raw.kafka_topic_task_events);
      warm(producer, raw.kafka_topic_task_updates);
      std::atomic<long> failed{0};
      t0 = Clock::now();
      for (std::size_t i = 0; i < total; ++i) {
        const auto& r = rows[i % rows.size()];
        const auto& topic = r.topic == s.kafka_topic_task_events ? raw.kafka_topic_task_events : raw.kafka_topic_task_updates;
        producer.produce({topic, r.key, r.payload, kafka::event_headers({.event_id = r.event_id,
                                                                         .event_type = r.event_type,
                                                                         .schema = r.data_schema,
                                                                         .subject = r.subject,
                                                                         .time = r.created_at,
                                                                         .partition_key = r.key,
                                                                         .traceparent = r.traceparent}), std::nullopt},
                         [&](const kafka::DeliveryResult& d) { failed += !d.ok(); });
      }
      producer.flush(std::chrono::minutes(5));
      const double secs = seconds_since(t0);
      std::printf("ceiling  raw publish of %zu messages (the outbox's rows) from memory: %.2f s = %.0f msg/s (failed %ld)\n", total, secs,
                  static_cast<double>(total) / secs, failed.load());
    }

    kafka::Producer producer(s);
    // The topics it writes get one warm-up message each (nobody consumes them here).
    warm(producer, s.kafka_topic_task_events);
    warm(producer, s.kafka_topic_task_updates);
    outbox::Relay relay(*store, producer);
    // Running as serve runs it (its own thread, rows marked published beside it), timed
    // until every row is marked.
    t0 = Clock::now();
    relay.start();
    const auto give_up = Clock::now() + std::chrono::minutes(10);
    while (relay.stats().published < total && Clock::now() < give_up) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const double secs = seconds_since(t0);
    const bool drained = relay.stats().published >= total;
    relay.stop();
    const auto stats = relay.stats();
    std::printf("relay    drained %lu events in %.2f s = %.0f events/s (%lu batches, drained %s)\n", static_cast<unsigned long>(stats.published),
                secs, static_cast<double>(stats.published) / secs, static_cast<unsigned long>(stats.batches), drained ? "yes" : "NO");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "relay_drain: %s\n", e.what());
    return 1;
  }
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db.string() + suffix, ec);
  return 0;
}
