// taskstream: one binary, a subcommand per process kind (README.md, "Commands").

#include <CLI/CLI.hpp>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include <spdlog/spdlog.h>

#include "app/serve.hpp"
#include "cli/commands.hpp"
#include "config/settings.hpp"
#include "util/logging.hpp"

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

/// glibc gives each thread that meets a contended arena a new one, up to 8 per core; serve
/// runs ~100 threads (the blocking pool, librdkafka's), so an idle process held 15 arenas,
/// each with its own free space: ~5 MiB of a 39 MiB RSS. One arena per core (at least 2),
/// with glibc's per-thread cache in front, keeps contention low (docs/benchmarks.md,
/// "Memory of an idle serve"). MALLOC_ARENA_MAX or GLIBC_TUNABLES=glibc.malloc.arena_max wins.
void limit_malloc_arenas() {
  if (std::getenv("MALLOC_ARENA_MAX")) return;
  if (const char* t = std::getenv("GLIBC_TUNABLES"); t && std::strstr(t, "arena_max")) return;
  mallopt(M_ARENA_MAX, static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));
}

}  // namespace

int main(int argc, char** argv) {
  limit_malloc_arenas();  // before any thread starts
  using namespace taskstream;
  CLI::App app{"taskstream: a task service with Kafka event streaming"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("taskstream 0.1.0"));

  auto* serve_cmd = app.add_subcommand("serve", "HTTP API, WebSocket hub, web page, outbox relay, reminders and (by default) every consumer in one process");
  app::ServeOptions serve_options;
  serve_cmd->add_flag("--dev", serve_options.dev, "Generate a JWT secret when JWT_SECRET is not set");
  serve_cmd->add_option("--consumers", serve_options.consumers, "Consumers to run in this process: all, none, or a comma list of audit, notification")
      ->capture_default_str();
  auto* worker_cmd = app.add_subcommand("worker", "Consumers only, with /healthz, /readyz and /metrics on their own port");
  app::WorkerOptions worker_options;
  worker_cmd->add_option("--consumers", worker_options.consumers, "all, or a comma list of audit, notification")->capture_default_str();
  worker_cmd->add_option("--port", worker_options.port, "Port of /healthz, /readyz, /metrics")->capture_default_str();
  auto* migrate_cmd = app.add_subcommand("migrate", "Apply the database migrations");

  auto* config_cmd = app.add_subcommand("config", "Print the effective settings (secrets masked)");

  auto* topics = app.add_subcommand("topics", "Create and inspect the service's topics and their .dlq twins");
  topics->require_subcommand(1);
  auto* ensure = topics->add_subcommand("ensure", "Create missing topics with KAFKA_TOPIC_PARTITIONS and KAFKA_REPLICATION_FACTOR (idempotent)");
  auto* list = topics->add_subcommand("list", "List the cluster's topics");
  auto* describe = topics->add_subcommand("describe", "Partitions, leaders, replicas and ISR of a topic (default: the service's topics)");
  std::optional<std::string> describe_topic;
  describe->add_option("topic", describe_topic, "Topic name");

  auto* tail = app.add_subcommand("tail", "Print messages of TOPIC as they arrive, one JSON object a line");
  cli::TailArgs tail_args;
  tail->add_option("topic", tail_args.topic, "Topic name")->required();
  tail->add_flag("--from-beginning", tail_args.from_beginning, "Start at the oldest retained message");
  tail->add_option("--max-messages", tail_args.max_messages, "Exit after this many messages");
  tail->add_option("--idle-timeout-ms", tail_args.idle_timeout_ms, "Exit after this long without a message");

  auto* dlq = app.add_subcommand("dlq", "Dead letters: list them, send them back");
  dlq->require_subcommand(1);
  auto* dlq_list = dlq->add_subcommand("list", "Print the dead letters of TOPIC (from TOPIC.dlq), one JSON object a line");
  std::string dlq_topic;
  dlq_list->add_option("topic", dlq_topic, "Source topic, e.g. task-events")->required();
  auto* dlq_redrive = dlq->add_subcommand("redrive", "Send the dead letters of TOPIC back to it (only those not redriven before)");
  dlq_redrive->add_option("topic", dlq_topic, "Source topic, e.g. task-events")->required();
  std::string dlq_filter;
  bool dlq_dry_run = false;
  dlq_redrive->add_option("--filter", dlq_filter, "FIELD=VALUE: reason=bad_json, error_class=..., key=USER or any header");
  dlq_redrive->add_flag("--dry-run", dlq_dry_run, "Count what would be sent; send and remember nothing");

  // Exit codes (README, "Commands"): 0 done (--help too), 1 a Kafka error, 2 a bad setting or
  // argument. CLI11's own codes (104-106 ...) would say nothing a script can rely on.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  config::Settings settings;
  try {
    settings = config::Settings::from_environment();
  } catch (const config::ConfigError& e) {
    std::cerr << "taskstream: configuration error: " << e.what() << "\n";
    return 2;
  }
  util::setup_logging(settings.log_level, settings.log_format);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  if (*serve_cmd) return app::serve(settings, serve_options);
  if (*migrate_cmd) return app::migrate(settings);
  if (*worker_cmd) return app::worker(settings, worker_options);
  if (*config_cmd) {
    for (const auto& [k, v] : settings.describe()) std::cout << k << "=" << v << "\n";
    return 0;
  }
  if (!settings.kafka_enabled && (*topics || *tail || *dlq)) {
    std::cerr << "taskstream: KAFKA_ENABLED=false; set it to true to use Kafka commands\n";
    return 2;
  }
  // The one-shot Kafka commands end with one error line naming what to fix; the client's
  // own warnings on the way there (each failed connect) are for LOG_LEVEL=warn or lower.
  if (!std::getenv("LOG_LEVEL")) spdlog::set_level(spdlog::level::critical);
  if (*ensure) return cli::topics_ensure(settings);
  if (*list) return cli::topics_list(settings);
  if (*describe) return cli::topics_describe(settings, describe_topic);
  if (*tail) return cli::tail(settings, tail_args, g_stop);
  if (*dlq_list) return cli::dlq_list(settings, dlq_topic, g_stop);
  if (*dlq_redrive) return cli::dlq_redrive(settings, dlq_topic, dlq_filter, dlq_dry_run);
  return 0;
}
