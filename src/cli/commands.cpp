#include "cli/commands.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <stdexcept>

#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "kafka/error.hpp"
#include "kafka/dead_letter.hpp"
#include "kafka/redrive.hpp"
#include "kafka/tail.hpp"
#include "storage/store.hpp"

namespace taskstream::cli {
namespace {

template <typename F>
int guarded(const char* what, F&& f) {
  try {
    return f();
  } catch (const kafka::KafkaException& e) {
    std::cerr << "taskstream " << what << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "taskstream " << what << ": " << e.what() << "\n";
    return 1;
  }
}

std::string ids(const std::vector<std::int32_t>& v) {
  std::string out;
  for (auto id : v) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

void print_topic(const kafka::TopicInfo& t) {
  std::cout << fmt::format("{}\tpartitions={}\treplication={}\n", t.name, t.partitions.size(),
                           t.partitions.empty() ? 0 : t.partitions.front().replicas.size());
}

}  // namespace

int topics_ensure(const config::Settings& s) {
  return guarded("topics ensure", [&] {
    kafka::Admin admin(s);
    auto r = admin.ensure_topics(kafka::service_topics(s));
    for (const auto& n : r.created) std::cout << "created\t" << n << "\n";
    for (const auto& n : r.existing) std::cout << "exists\t" << n << "\n";
    for (const auto& n : r.mismatched)
      std::cerr << "warning: " << n << " exists with a partition count other than KAFKA_TOPIC_PARTITIONS=" << s.kafka_topic_partitions
                << "; left unchanged\n";
    return 0;
  });
}

int topics_list(const config::Settings& s) {
  return guarded("topics list", [&] {
    kafka::Admin admin(s);
    for (const auto& t : admin.list_topics()) print_topic(t);
    return 0;
  });
}

int topics_describe(const config::Settings& s, const std::optional<std::string>& topic) {
  return guarded("topics describe", [&] {
    kafka::Admin admin(s);
    std::vector<kafka::TopicInfo> infos;
    if (topic) infos.push_back(admin.describe_topic(*topic));
    else
      for (const auto& spec : kafka::service_topics(s)) infos.push_back(admin.describe_topic(spec.name));
    for (const auto& t : infos) {
      print_topic(t);
      for (const auto& p : t.partitions)
        std::cout << fmt::format("  partition {}\tleader={}\treplicas={}\tisr={}\n", p.id, p.leader, ids(p.replicas), ids(p.isrs));
    }
    return 0;
  });
}

int tail(const config::Settings& s, const TailArgs& args, const std::atomic<bool>& stop) {
  return guarded("tail", [&] {
    kafka::TailOptions o;
    o.from_beginning = args.from_beginning;
    o.max_messages = args.max_messages;
    if (args.idle_timeout_ms) o.idle_timeout = std::chrono::milliseconds(*args.idle_timeout_ms);
    kafka::tail(
        s, args.topic, o,
        [](const kafka::Message& m) {
          std::cout << kafka::message_to_json_line(m) << '\n' << std::flush;
          return static_cast<bool>(std::cout);
        },
        stop);
    return 0;
  });
}

int dlq_list(const config::Settings& s, const std::string& topic, const std::atomic<bool>& stop) {
  return guarded("dlq list", [&] {
    std::size_t n = 0;
    kafka::tail(
        s, kafka::dlq_topic(topic), {.from_beginning = true, .max_messages = std::nullopt, .idle_timeout = std::chrono::seconds(3)},
        [&](const kafka::Message& m) {
          auto h = [&](const char* name) { return std::string(m.header(name).value_or("")); };
          nlohmann::json line{{"dlq_partition", m.partition()},      {"dlq_offset", m.offset()},
                              {"reason", h("dlq.reason")},           {"error_class", h("dlq.error_class")},
                              {"source_topic", h("dlq.source_topic")}, {"source_partition", h("dlq.source_partition")},
                              {"source_offset", h("dlq.source_offset")}, {"attempts", h("dlq.attempts")},
                              {"first_failure", h("dlq.first_failure")}, {"last_failure", h("dlq.last_failure")},
                              {"key", std::string(m.key())},         {"detail", h("dlq.detail")}};
          std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
          ++n;
          return true;
        },
        stop);
    std::cerr << n << " dead letter(s) in " << kafka::dlq_topic(topic) << "\n";
    return 0;
  });
}

namespace {

/// Keeps the redrive in the operators' action log (the console shows it) when DATABASE_URL
/// names the service's database and it answers; a run where it does not still redrives,
/// and says so (without DATABASE_URL there is no log to keep it in: no file is created).
void record_action(const config::Settings& s, const std::string& topic, const std::string& filter, bool dry_run,
                   const kafka::RedriveResult& r) {
  if (const char* url = std::getenv("DATABASE_URL"); !url || !*url) {
    std::cerr << "dlq redrive: DATABASE_URL is not set: not kept in the operators' action log\n";
    return;
  }
  try {
    auto store = storage::open_store(s.database);
    store->migrate();
    const char* user = std::getenv("USER");
    store->record_operator_action({0, events::now_rfc3339(), std::string("cli (") + (user && *user ? user : "unknown") + ")",
                                   dry_run ? "dlq.dry_run" : "dlq.redrive", topic, filter, static_cast<std::int64_t>(r.seen),
                                   static_cast<std::int64_t>(r.matched), static_cast<std::int64_t>(r.sent), "ok", ""});
  } catch (const std::exception& e) {
    std::cerr << "dlq redrive: not kept in the action log: " << e.what() << "\n";
  }
}

}  // namespace

int dlq_redrive(const config::Settings& s, const std::string& topic, const std::string& filter, bool dry_run) {
  std::optional<kafka::DeadLetterFilter> parsed;
  try {
    parsed.emplace(filter);
  } catch (const std::invalid_argument& e) {  // a bad argument: exit 2, before any connection
    std::cerr << "taskstream dlq redrive: " << e.what() << "\n";
    return 2;
  }
  return guarded("dlq redrive", [&] {
    const auto& f = *parsed;
    // A run that fails says so on stderr to the one who ran it; a run that went is logged.
    auto r = kafka::redrive(s, topic, f, dry_run, [](const kafka::RedriveResult& p) {
      std::cerr << "... " << p.seen << " read, " << p.matched << " matched, " << p.sent << " sent\n";
    });
    record_action(s, topic, filter, dry_run, r);
    std::cout << (dry_run ? "dry run: " : "") << r.seen << " dead letter(s) read, " << r.matched << " matched"
              << (filter.empty() ? "" : " " + filter) << ", " << r.sent << " sent back to " << topic << "\n";
    return 0;
  });
}

}  // namespace taskstream::cli
