#include "app/serve.hpp"

#include <fmt/format.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <utility>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <functional>
#include <optional>
#include <string_view>
#include <thread>

#include "api/api.hpp"
#include "api/metrics.hpp"
#include "events/events.hpp"
#include "auth/jwt.hpp"
#include "http/server.hpp"
#include "kafka/admin.hpp"
#include "kafka/producer.hpp"
#include "ops/live_feed.hpp"
#include "ops/monitor.hpp"
#include "outbox/relay.hpp"
#include "reminders/scheduler.hpp"
#include "storage/store.hpp"
#include "util/logging.hpp"
#include "workers/consumers.hpp"
#include "ws/hub.hpp"

namespace taskstream::app {
namespace {

/// Threads of serve's blocking pool (see where it is made).
constexpr std::size_t kBlockingThreads = 64;

/// Creates the service topics (and their DLQs) that are missing. A failure is logged, not
/// fatal: writes wait in the outbox and consumers wait for their topics.
void ensure_topics_at_start(const config::Settings& settings) {
  try {
    auto r = kafka::Admin(settings).ensure_topics(kafka::service_topics(settings), std::chrono::seconds(10));
    if (!r.created.empty()) spdlog::info("created {} topic(s)", r.created.size());
  } catch (const std::exception& e) {
    spdlog::warn("could not ensure topics at start ({}); going on", e.what());
  }
}

std::string random_secret() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return hex;
}

/// Kafka reachability for /readyz, asked at most every 2 s (the answer is cached).
class KafkaProbe final {
 public:
  explicit KafkaProbe(const config::Settings& s) : settings_(s) {}
  bool ready() {
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    if (now - checked_ < std::chrono::seconds(2)) return last_;
    try {
      if (!admin_) admin_ = std::make_unique<kafka::Admin>(settings_);
      last_ = admin_->broker_count(std::chrono::seconds(2)) > 0;
    } catch (const std::exception& e) {
      spdlog::debug("readiness: Kafka: {}", e.what());
      last_ = false;
    }
    checked_ = now;
    return last_;
  }

 private:
  const config::Settings& settings_;
  std::mutex mutex_;
  std::unique_ptr<kafka::Admin> admin_;
  std::chrono::steady_clock::time_point checked_{};
  bool last_ = false;
};

/// Per consumer group and partition: messages processed, dead-lettered, retried, and lag.
/// `runners` is read at each scrape (a runner may not exist yet).
void add_consumer_metrics(api::Metrics& metrics, std::function<std::vector<const kafka::ConsumerRunner*>()> runners) {
  metrics.add_collector([runners = std::move(runners)](std::string& out) {
    struct Row {
      std::string labels;
      kafka::PartitionStats s;
    };
    std::vector<Row> rows;
    for (const auto* r : runners()) {
      if (!r) continue;
      for (auto& s : r->partition_stats())
        rows.push_back({fmt::format("group=\"{}\",topic=\"{}\",partition=\"{}\"", api::escape_label(r->group_id()),
                                    api::escape_label(s.topic), s.partition),
                        std::move(s)});
    }
    auto family = [&](std::string_view name, std::string_view type, std::string_view help, auto value) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
      for (const auto& row : rows)
        if (auto v = value(row.s)) out += fmt::format("{}{{{}}} {}\n", name, row.labels, *v);
    };
    family("consumer_messages_processed_total", "counter", "Messages handled, per consumer group and partition.",
           [](const kafka::PartitionStats& s) { return std::optional<std::uint64_t>(s.processed); });
    family("consumer_messages_dead_lettered_total", "counter", "Messages sent to the dead-letter topic, per consumer group and partition.",
           [](const kafka::PartitionStats& s) { return std::optional<std::uint64_t>(s.dead_lettered); });
    family("consumer_messages_retried_total", "counter", "Handler attempts beyond the first, per message, per consumer group and partition.",
           [](const kafka::PartitionStats& s) { return std::optional<std::uint64_t>(s.retried); });
    family("consumer_lag", "gauge", "End offset minus the group's committed offset, per assigned partition (refreshed every second).",
           [](const kafka::PartitionStats& s) { return s.lag; });
  });
}

/// TASKSTREAM_FAILPOINT (tests only, docs/configuration.md): with `kill_before_commit`, the
/// setup of every consumer of this process makes it die by SIGKILL after a batch's effects
/// and before its offsets are stored, as a crash there would (WorkerCrash.*). Otherwise null.
kafka::ConsumerSetup failpoint_setup() {
  const char* fp = std::getenv("TASKSTREAM_FAILPOINT");
  if (!fp || std::string_view(fp) != "kill_before_commit") return {};
  return [](kafka::ConsumerOptions& o) {
    o.before_store_offsets = [group = o.group_id](std::span<const kafka::Message> batch) {
      // The pause lets effects that follow the handler (the email dispatcher's send) happen first.
      spdlog::critical("consumer {}: failpoint kill_before_commit: SIGKILL after {} message(s)", group, batch.size());
      spdlog::default_logger()->flush();
      std::this_thread::sleep_for(std::chrono::seconds(1));
      std::raise(SIGKILL);
    };
  };
}

/// The store DATABASE_URL names, migrated; null (and logged) when that fails.
std::unique_ptr<storage::Store> open_migrated_store(const config::Settings& settings) {
  try {
    auto store = storage::open_store(settings.database);
    store->migrate();
    return store;
  } catch (const std::exception& e) {
    spdlog::critical("database {}: {}", config::mask_url_password(settings.database.url), e.what());
    return nullptr;
  }
}

}  // namespace

int migrate(const config::Settings& settings) {
  try {
    auto store = storage::open_store(settings.database);
    store->migrate();
    std::cout << "migrations applied to " << config::mask_url_password(settings.database.url) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "taskstream migrate: " << e.what() << "\n";
    return 1;
  }
}

int serve(config::Settings settings, const ServeOptions& options) {
  if (!settings.jwt_secret) {
    if (!options.dev) {
      std::cerr << "taskstream: configuration error: JWT_SECRET: required, at least 32 bytes (or run `taskstream serve --dev`)\n";
      return 2;
    }
    settings.jwt_secret = random_secret();
    spdlog::warn("--dev: generated a random JWT_SECRET for this run; tokens will not survive a restart");
  }

  // ---- build, in dependency order
  auto store = open_migrated_store(settings);
  if (!store) return 1;
  if (settings.kafka_enabled) ensure_topics_at_start(settings);
  std::vector<std::string> consumer_names;
  try {
    consumer_names = workers::parse_consumer_list(options.consumers);
  } catch (const std::exception& e) {
    std::cerr << "taskstream serve: --consumers: " << e.what() << "\n";
    return 2;
  }
  kafka::Producer producer(settings, outbox::relay_producer_options());  // the relay's alone
  outbox::Relay relay(*store, producer);
  const auto consumer_setup = failpoint_setup();
  workers::Consumers consumers(settings, *store, consumer_names, consumer_setup);
  reminders::Scheduler reminder_scheduler(settings, *store, [&relay] { relay.wake(); });
  auth::JwtCodec jwt(*settings.jwt_secret);
  api::Metrics metrics;
  KafkaProbe probe(settings);
  // The blocking pool runs database calls (and password hashing, which auth bounds to one
  // per core). Its threads mostly wait: on SQLite they queue for the group commit, where
  // the more changes wait together, the more share one fsync, so the pool is sized for
  // concurrent requests rather than for cores.
  boost::asio::thread_pool blocking_pool(kBlockingThreads);

  metrics.add_collector([&](std::string& out) {
    const auto st = store->outbox_stats();
    double age = 0;
    if (st.oldest_waiting)
      if (auto ms = events::to_unix_millis(*st.oldest_waiting))
        age = std::max(0.0, static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    std::chrono::system_clock::now().time_since_epoch()).count() - *ms) / 1000.0);
    out += fmt::format(
        "# HELP outbox_events_waiting Events in the outbox not yet published.\n# TYPE outbox_events_waiting gauge\noutbox_events_waiting {}\n"
        "# HELP outbox_oldest_event_age_seconds Age of the oldest event waiting in the outbox (0 when none waits).\n"
        "# TYPE outbox_oldest_event_age_seconds gauge\noutbox_oldest_event_age_seconds {:.3f}\n",
        st.waiting, age);
  });
  metrics.add_gauge("outbox_events_published_total", "Events the relay published.", "counter",
                    [&] { return static_cast<double>(relay.stats().published); });
  metrics.add_gauge("outbox_events_failed_total", "Event deliveries that failed and were retried.", "counter",
                    [&] { return static_cast<double>(relay.stats().failed); });
  metrics.add_gauge("kafka_producer_restarts_total", "Times the relay replaced a producer client that stopped delivering or failed fatally.", "counter",
                    [&] { return static_cast<double>(relay.stats().producer_restarts); });
  metrics.add_gauge("outbox_order_violations_total",
                    "User streams delivered out of order in a batch (a row delivered after an earlier one of its user failed); always 0 by design.",
                    "counter", [&] { return static_cast<double>(relay.stats().order_violations); });

  metrics.add_gauge("reminder_scheduler_passes_total", "Passes of the deadline-reminder scheduler that completed.", "counter",
                    [&] { return static_cast<double>(reminder_scheduler.passes()); });

  api::ApiContext ctx{settings, *store, blocking_pool, jwt, &relay, {}, &metrics};
  ctx.wake_relay = [&relay] { relay.wake(); };
  // Operators' Kafka work (reading a dead-letter topic, a redrive) takes seconds: on threads
  // of its own, so it never holds up the database calls of user requests.
  boost::asio::thread_pool kafka_pool(2);
  ctx.kafka_pool = &kafka_pool;
  ctx.first_account_is_operator = options.dev && settings.admin_emails.empty();
  if (ctx.first_account_is_operator) spdlog::warn("--dev without ADMIN_EMAILS: the first account registered is an operator (/admin, /console)");

  http::Router router;
  api::register_routes(router, ctx);

  const unsigned io_threads = std::max(1u, std::thread::hardware_concurrency());
  boost::asio::io_context io(static_cast<int>(io_threads));
  http::ServerOptions so;
  so.host = settings.http_host;
  so.port = settings.http_port;
  ws::Hub hub(settings, *store, jwt, blocking_pool, consumer_setup);
  metrics.add_gauge("websocket_connections", "WebSocket connections open on this instance.", "gauge",
                    [&] { return static_cast<double>(hub.stats().sockets); });
  metrics.add_gauge("websocket_frames_sent_total", "Frames sent to WebSocket clients.", "counter",
                    [&] { return static_cast<double>(hub.stats().frames_sent); });
  metrics.add_gauge("websocket_overflow_closes_total", "Sockets closed because their send queue overflowed.", "counter",
                    [&] { return static_cast<double>(hub.stats().overflow_closes); });
  ops::LiveFeed live(settings, jwt);  // the console's live feed: each sample, pushed (outlives the monitor)
  ops::Monitor monitor(settings, *store, &relay, &metrics, hub.instance_id());
  ctx.monitor = &monitor;
  monitor.set_live_frames_counter([&hub] { return hub.stats().frames_sent; });
  monitor.on_sample([&live](const ops::Monitor::Views& v) { live.publish(v.live_frame); });
  add_consumer_metrics(metrics, [&] {
    std::vector<const kafka::ConsumerRunner*> rs{hub.consumer()};
    for (const auto& e : consumers.entries()) rs.push_back(e.runner.get());
    return rs;
  });
  http::Server server(io, router, so, [&](const http::Request& req, std::string_view route, int status, std::chrono::nanoseconds took) {
    metrics.observe_request(req.method, std::string(route), status, took);
    if (spdlog::should_log(spdlog::level::debug)) {
      util::LogScope scope({.request_id = req.request_id, .traceparent = req.header("traceparent").value_or("")});
      spdlog::debug("{} {} {} {:.3f} ms", req.method, req.path, status, took.count() / 1e6);
    }
  });
  if (settings.kafka_enabled) ctx.kafka_ready = [&probe] { return probe.ready(); };
  // Ready for traffic once the hub's consumer has its partitions too.
  ctx.websocket_ready = [&hub] { return hub.ready(); };
  server.set_upgrade_handler([&hub, &live](http::Request& req, boost::beast::tcp_stream& stream,
                                          boost::beast::http::request<boost::beast::http::string_body>& raw) {
    return hub.on_upgrade(req, stream, raw) || live.on_upgrade(req, stream, raw);
  });
  try {
    server.start();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  relay.start();
  consumers.start();
  hub.start();
  reminder_scheduler.start();
  monitor.start();
  spdlog::info("taskstream serving on http://{}:{} (database {}, Kafka {})", settings.http_host, server.port(),
               settings.database.kind == config::DatabaseKind::sqlite ? "SQLite" : "PostgreSQL",
               settings.kafka_enabled ? settings.kafka_bootstrap_servers : "disabled");

  // ---- stop, in reverse order: intake, requests in flight, relay, producer
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  std::thread stopper;
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping (deadline {} ms)", sig, options.stop_deadline.count());
    server.stop_accepting();
    stopper = std::thread([&] {
      const auto until = std::chrono::steady_clock::now() + options.stop_deadline;
      auto left = [&] { return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now())); };
      if (!server.wait_idle(left() / 3)) spdlog::warn("stopping with {} request(s) unfinished", server.in_flight());
      // The hub's consumer and the workers' stop side by side: each close is bounded, but
      // with the broker gone they would add up past the deadline.
      std::thread hub_stopper([&] { hub.stop(until); });  // sockets get 1001 going away; clients reconnect elsewhere and resume
      live.stop();  // consoles get 1001 going away
      std::thread monitor_stopper([&] { monitor.stop(); });  // a sample in progress waits for the cluster, up to 5 s
      reminder_scheduler.stop();
      consumers.stop(until);  // each commits what it handled
      hub_stopper.join();
      monitor_stopper.join();
      if (!relay.drain(left() / 2)) spdlog::warn("outbox not drained at stop: {} event(s) wait for the next start", store->outbox_stats().waiting);
      producer.close(left());
      io.stop();
    });
  });

  std::vector<std::thread> threads;
  for (unsigned i = 1; i < io_threads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  if (stopper.joinable()) stopper.join();
  relay.stop();
  kafka_pool.join();
  blocking_pool.join();
  spdlog::info("stopped");
  return 0;
}

int worker(const config::Settings& settings, const WorkerOptions& options) {
  std::vector<std::string> names;
  try {
    names = workers::parse_consumer_list(options.consumers);
  } catch (const std::exception& e) {
    std::cerr << "taskstream worker: --consumers: " << e.what() << "\n";
    return 2;
  }
  if (!settings.kafka_enabled) {
    std::cerr << "taskstream worker: KAFKA_ENABLED=false: there is nothing to consume\n";
    return 2;
  }
  auto store = open_migrated_store(settings);
  if (!store) return 1;
  ensure_topics_at_start(settings);
  workers::Consumers consumers(settings, *store, names, failpoint_setup());
  api::Metrics metrics;
  add_consumer_metrics(metrics, [&] {
    std::vector<const kafka::ConsumerRunner*> rs;
    for (const auto& e : consumers.entries()) rs.push_back(e.runner.get());
    return rs;
  });
  KafkaProbe probe(settings);
  boost::asio::thread_pool blocking_pool(2);
  // The worker serves no user routes; the codec only satisfies the context.
  auth::JwtCodec jwt(settings.jwt_secret.value_or(std::string(32, 'w')));
  api::ApiContext ctx{settings, *store, blocking_pool, jwt, nullptr, [&probe] { return probe.ready(); }, &metrics};
  http::Router router;
  api::register_operations_routes(router, ctx);
  boost::asio::io_context io(1);
  http::ServerOptions so;
  so.host = settings.http_host;
  so.port = options.port;
  http::Server server(io, router, so, [&](const http::Request& req, std::string_view route, int status, std::chrono::nanoseconds took) {
    metrics.observe_request(req.method, std::string(route), status, took);
  });
  try {
    server.start();
  } catch (const std::exception& e) {
    spdlog::critical("worker: {} (choose another with --port)", e.what());
    return 1;
  }
  consumers.start();
  spdlog::info("taskstream worker: consumers [{}], health on http://{}:{}", options.consumers, settings.http_host, server.port());

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  std::thread stopper;
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping", sig);
    server.stop_accepting();
    stopper = std::thread([&] {
      consumers.stop(std::chrono::steady_clock::now() + options.stop_deadline);
      server.wait_idle(std::chrono::seconds(2));
      io.stop();
    });
  });
  io.run();
  if (stopper.joinable()) stopper.join();
  blocking_pool.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace taskstream::app
