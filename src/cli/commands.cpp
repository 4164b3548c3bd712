#include "cli/commands.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "kafka/admin.hpp"
#include "kafka/error.hpp"
#include "kafka/dead_letter.hpp"
#include "kafka/redrive.hpp"
#include "kafka/tail.hpp"

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

int dlq_redrive(const config::Settings& s, const std::string& topic, const std::string& filter, bool dry_run) {
  return guarded("dlq redrive", [&] {
    kafka::DeadLetterFilter f(filter);
    auto r = kafka::redrive(s, topic, f, dry_run, [](const kafka::RedriveResult& p) {
      std::cerr << "... " << p.seen << " read, " << p.matched << " matched, " << p.sent << " sent\n";
    });
    std::cout << (dry_run ? "dry run: " : "") << r.seen << " dead letter(s) read, " << r.matched << " matched"
              << (filter.empty() ? "" : " " + filter) << ", " << r.sent << " sent back to " << topic << "\n";
    return 0;
  });
}

}  // namespace taskstream::cli
