#include "app/serve.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <utility>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <span>
#include <string_view>
#include <functional>
#include <optional>
#include <thread>

#include "api/api.hpp"
#include "app/lifecycle.hpp"
#include "http/metrics.hpp"
#include "events/events.hpp"
#include "auth/jwt.hpp"
#include "http/server.hpp"
#include "kafka/admin.hpp"
#include "kafka/clients.hpp"
#include "kafka/dead_letter.hpp"
#include "kafka/consumer_metrics.hpp"
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

/// The setup of every consumer of this process (workers::Consumers, ws::Hub): its dead
/// letters go through the process's one DLQ producer (null with Kafka disabled), and
/// TASKSTREAM_FAILPOINT (tests only, docs/configuration.md) with `kill_before_commit` makes it
/// die by SIGKILL after a batch's effects and before its offsets are stored, as a crash there
/// would (WorkerCrash.*).
kafka::ConsumerSetup consumer_setup_for(std::shared_ptr<kafka::Producer> dead_letters) {
  const char* fp = std::getenv("TASKSTREAM_FAILPOINT");
  const bool kill_before_commit = fp && std::string_view(fp) == "kill_before_commit";
  return [dead_letters = std::move(dead_letters), kill_before_commit](kafka::ConsumerOptions& o) {
    o.dead_letter_producer = dead_letters;
    if (!kill_before_commit) return;
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

/// What a process runs. `serve` is the API with the relay, the reminder scheduler, the
/// WebSocket hub and the console's monitor, plus the consumers asked for; `worker` is the
/// consumers alone with the operations routes. One wiring, one lifecycle for both.
struct Plan {
  std::string_view command;  ///< "serve" | "worker", for messages
  bool api = true;           ///< serve's components and routes
  bool dev = false;
  std::string consumers;
  std::uint16_t port = 0;    ///< 0: HTTP_PORT
  std::chrono::milliseconds stop_deadline{15000};
};

int run(const config::Settings& settings, const Plan& plan);

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
    settings.jwt_secret = auth::random_jwt_secret();
    spdlog::warn("--dev: generated a random JWT_SECRET for this run; tokens will not survive a restart");
  }
  return run(settings, Plan{"serve", true, options.dev, options.consumers, 0, options.stop_deadline});
}

int worker(const config::Settings& settings, const WorkerOptions& options) {
  if (!settings.kafka_enabled) {
    std::cerr << "taskstream worker: KAFKA_ENABLED=false: there is nothing to consume\n";
    return 2;
  }
  return run(settings, Plan{"worker", false, false, options.consumers, options.port, options.stop_deadline});
}

namespace {

int run(const config::Settings& settings, const Plan& plan) {
  std::vector<std::string> consumer_names;
  try {
    consumer_names = workers::parse_consumer_list(plan.consumers);
  } catch (const std::exception& e) {
    std::cerr << "taskstream " << plan.command << ": --consumers: " << e.what() << "\n";
    return 2;
  }
  auto store = open_migrated_store(settings);
  if (!store) return 1;
  if (settings.kafka_enabled) ensure_topics_at_start(settings);

  // ---- build, in dependency order (destroyed in reverse)
  http::Metrics metrics;
  KafkaProbe probe(settings);
  // The blocking pool runs database calls (and password hashing, which auth bounds to one
  // per core). Its threads mostly wait: on SQLite they queue for the group commit, where
  // the more changes wait together, the more share one fsync, so serve's pool is sized for
  // concurrent requests rather than for cores. The worker's only serves /readyz.
  boost::asio::thread_pool blocking_pool(plan.api ? kBlockingThreads : 2);
  // The worker serves no user routes; the codec only satisfies the context.
  auth::JwtCodec jwt(settings.jwt_secret.value_or(std::string(32, 'w')));
  api::ApiContext ctx{settings, *store, blocking_pool, jwt, nullptr, {}, &metrics};
  if (settings.kafka_enabled) ctx.kafka_ready = [&probe] { return probe.ready(); };
  const unsigned io_threads = plan.api ? std::max(1u, std::thread::hardware_concurrency()) : 1;
  boost::asio::io_context io(static_cast<int>(io_threads));
  http::Router router;

  std::optional<kafka::Producer> producer;  // the relay's alone
  std::optional<outbox::Relay> relay;
  // The process's one dead-letter producer, shared by every consumer (the hub's too) and the
  // email dispatcher: one librdkafka client instead of one each. Built before them and
  // closed after they all stopped (below), so it outlives every dead letter they send.
  std::shared_ptr<kafka::Producer> dead_letters;
  if (settings.kafka_enabled) dead_letters = std::make_shared<kafka::Producer>(settings, kafka::dead_letter_producer_options());
  const auto consumer_setup = consumer_setup_for(dead_letters);
  workers::Consumers consumers(settings, *store, consumer_names, consumer_setup, dead_letters);
  std::optional<reminders::Scheduler> reminder_scheduler;
  // Operators' Kafka work (reading a dead-letter topic, a redrive) takes seconds: on threads
  // of its own, so it never holds up the database calls of user requests.
  std::optional<boost::asio::thread_pool> kafka_pool;
  std::optional<ws::Hub> hub;
  std::optional<ops::LiveFeed> live;  // the console's live feed: each sample, pushed (outlives the monitor)
  std::optional<ops::Monitor> monitor;
  if (plan.api) {
    producer.emplace(settings, outbox::relay_producer_options());
    relay.emplace(*store, *producer);
    relay->register_metrics(metrics);
    reminder_scheduler.emplace(settings, *store, *store, [&relay] { relay->wake(); });
    reminder_scheduler->register_metrics(metrics);
    ctx.relay = &*relay;
    ctx.wake_relay = [&relay] { relay->wake(); };
    kafka_pool.emplace(2);
    ctx.kafka_pool = &*kafka_pool;
    ctx.first_account_is_operator = plan.dev && settings.admin_emails.empty();
    if (ctx.first_account_is_operator) spdlog::warn("--dev without ADMIN_EMAILS: the first account registered is an operator (/admin, /console)");
    hub.emplace(settings, *store, jwt, blocking_pool, consumer_setup);
    hub->register_metrics(metrics);
    // Ready for traffic once the hub's consumer has its partitions too.
    ctx.websocket_ready = [&hub] { return hub->ready(); };
    live.emplace(settings, jwt);
    monitor.emplace(settings, *store, &*relay, &metrics, hub->instance_id());
    ctx.monitor = &*monitor;
    monitor->set_live_frames_counter([&hub] { return hub->stats().frames_sent; });
    monitor->on_sample([&live](const ops::Monitor::Views& v) { live->publish(v.live_frame); });
    api::register_routes(router, ctx);
  } else {
    api::register_operations_routes(router, ctx);
  }
  kafka::register_client_metrics(metrics);
  kafka::register_consumer_metrics(metrics, [&] {
    std::vector<const kafka::ConsumerRunner*> rs;
    if (hub) rs.push_back(hub->consumer());
    for (const auto& e : consumers.entries()) rs.push_back(e.runner.get());
    return rs;
  });

  http::ServerOptions so;
  so.host = settings.http_host;
  so.port = plan.port ? plan.port : settings.http_port;
  http::Server server(io, router, so, [&](const http::Request& req, std::string_view route, int status, std::chrono::nanoseconds took) {
    metrics.observe_request(req.method, std::string(route), status, took);
    if (spdlog::should_log(spdlog::level::debug)) {
      util::LogScope scope({.request_id = req.request_id, .traceparent = req.header("traceparent").value_or("")});
      spdlog::debug("{} {} {} {:.3f} ms", req.method, req.path, status, took.count() / 1e6);
    }
  });
  if (hub) {
    server.set_upgrade_handler([&hub, &live](http::Request& req, boost::beast::tcp_stream& stream,
                                            boost::beast::http::request<boost::beast::http::string_body>& raw) {
      return hub->on_upgrade(req, stream, raw) || live->on_upgrade(req, stream, raw);
    });
  }

  // ---- one lifecycle: started in this order, stopped in reverse by one deadline
  Lifecycle life;
  const auto left = [](Lifecycle::Deadline until) {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()));
  };
  // The listener first (a port in use fails the start before anything else runs); its stop,
  // last of all, ends the I/O threads.
  life.add({"http listener", [&] { server.start(); }, [&](auto) { io.stop(); }});
  if (producer) life.add({"producer", {}, [&](auto until) { producer->close(left(until)); }});
  if (relay) {
    life.add({"outbox relay", [&] { relay->start(); }, [&](auto until) {
                if (!relay->drain(left(until) / 2))
                  spdlog::warn("outbox not drained at stop: {} event(s) wait for the next start", store->outbox_stats().waiting);
                relay->stop();
              }});
  }
  // Stopped after every consumer and the email dispatcher (those wait for their own dead
  // letters' acknowledgements): whatever is left is flushed, by the deadline.
  if (dead_letters) life.add({"dead-letter producer", {}, [&](auto until) { dead_letters->close(left(until)); }});
  // The consumers, the scheduler, the console's monitor and feed and the hub stop side by
  // side: each close is bounded, but with the broker gone they would add up past the deadline.
  life.add({"consumers", [&] { consumers.start(); }, [&](auto until) { consumers.stop(until); }, true});  // each commits what it handled
  if (reminder_scheduler) life.add({"reminder scheduler", [&] { reminder_scheduler->start(); }, [&](auto) { reminder_scheduler->stop(); }, true});
  if (monitor) life.add({"monitor", [&] { monitor->start(); }, [&](auto) { monitor->stop(); }, true});  // a sample in progress waits for the cluster, up to 5 s
  if (live) life.add({"live feed", {}, [&](auto) { live->stop(); }, true});  // consoles get 1001 going away
  if (hub) life.add({"websocket hub", [&] { hub->start(); }, [&](auto until) { hub->stop(until); }, true});  // sockets get 1001 going away; clients reconnect elsewhere and resume
  // Stopped first: requests in flight finish (the listener stopped accepting at the signal).
  life.add({"http requests", {}, [&](auto until) {
              if (!server.wait_idle(left(until) / 3)) spdlog::warn("stopping with {} request(s) unfinished", server.in_flight());
            }});
  try {
    life.start_all();
  } catch (const std::exception& e) {
    if (plan.api) spdlog::critical("{}", e.what());
    else spdlog::critical("worker: {} (choose another with --port)", e.what());
    return 1;
  }
  if (plan.api) {
    spdlog::info("taskstream serving on http://{}:{} (database {}, Kafka {})", settings.http_host, server.port(),
                 settings.database.kind == config::DatabaseKind::sqlite ? "SQLite" : "PostgreSQL",
                 settings.kafka_enabled ? settings.kafka_bootstrap_servers : "disabled");
  } else {
    spdlog::info("taskstream worker: consumers [{}], health on http://{}:{}", plan.consumers, settings.http_host, server.port());
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  std::thread stopper;
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping (deadline {} ms)", sig, plan.stop_deadline.count());
    server.stop_accepting();
    stopper = std::thread([&] { life.stop_all(std::chrono::steady_clock::now() + plan.stop_deadline); });
  });

  std::vector<std::thread> threads;
  for (unsigned i = 1; i < io_threads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  if (stopper.joinable()) stopper.join();
  if (kafka_pool) kafka_pool->join();
  blocking_pool.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

}  // namespace taskstream::app
