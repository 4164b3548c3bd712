#include "kafka/consumer_metrics.hpp"

#include "kafka/clients.hpp"

#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>

namespace taskstream::kafka {

void register_consumer_metrics(util::MetricsRegistry& metrics, std::function<std::vector<const ConsumerRunner*>()> runners) {
  metrics.add_collector([runners = std::move(runners)](std::string& out) {
    struct Row {
      std::string labels;
      PartitionStats s;
    };
    std::vector<Row> rows;
    for (const auto* r : runners()) {
      if (!r) continue;
      for (auto& s : r->partition_stats())
        rows.push_back({fmt::format("group=\"{}\",topic=\"{}\",partition=\"{}\"", util::escape_label(r->group_id()),
                                    util::escape_label(s.topic), s.partition),
                        std::move(s)});
    }
    auto family = [&](std::string_view name, std::string_view type, std::string_view help, auto value) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
      for (const auto& row : rows)
        if (auto v = value(row.s)) out += fmt::format("{}{{{}}} {}\n", name, row.labels, *v);
    };
    family("consumer_messages_processed_total", "counter", "Messages handled, per consumer group and partition.",
           [](const PartitionStats& s) { return std::optional<std::uint64_t>(s.processed); });
    family("consumer_messages_dead_lettered_total", "counter", "Messages sent to the dead-letter topic, per consumer group and partition.",
           [](const PartitionStats& s) { return std::optional<std::uint64_t>(s.dead_lettered); });
    family("consumer_messages_retried_total", "counter", "Handler attempts beyond the first, per message, per consumer group and partition.",
           [](const PartitionStats& s) { return std::optional<std::uint64_t>(s.retried); });
    family("consumer_lag", "gauge", "End offset minus the group's committed offset, per assigned partition (refreshed every second).",
           [](const PartitionStats& s) { return s.lag; });
  });
}

void register_client_metrics(util::MetricsRegistry& metrics) {
  metrics.add_collector([](std::string& out) {
    out += "# HELP kafka_clients librdkafka clients alive in this process, by type (admin clients are producers) and client.id.\n"
           "# TYPE kafka_clients gauge\n";
    for (const auto& c : live_clients())
      out += fmt::format("kafka_clients{{type=\"{}\",client_id=\"{}\"}} {}\n", c.type, util::escape_label(c.client_id), c.count);
  });
}

}  // namespace taskstream::kafka
