#include "kafka/dead_letter.hpp"

namespace taskstream::kafka {

ProducerOptions dead_letter_producer_options() {
  ProducerOptions po;
  po.client_id = "taskstream-dlq";
  po.delivery_timeout = std::chrono::seconds(30);
  return po;
}

std::string dlq_topic(std::string_view topic) { return std::string(topic) + ".dlq"; }

Headers build_dlq_headers(const DeadLetterInfo& info, const std::vector<std::pair<std::string_view, std::string_view>>& original) {
  Headers out;
  out.reserve(original.size() + 9);
  for (const auto& [k, v] : original)
    // A redriven message that fails again gets fresh dlq.* headers, not a second set.
    if (k.substr(0, 4) != "dlq.") out.push_back({std::string(k), std::string(v)});
  constexpr std::size_t kMaxDetail = 1024;
  std::string detail = info.detail.size() > kMaxDetail ? info.detail.substr(0, kMaxDetail) + "…" : info.detail;
  out.push_back({std::string(dlq_header::reason), info.reason});
  out.push_back({std::string(dlq_header::error_class), info.error_class});
  out.push_back({std::string(dlq_header::detail), std::move(detail)});
  out.push_back({std::string(dlq_header::source_topic), info.source_topic});
  out.push_back({std::string(dlq_header::source_partition), std::to_string(info.source_partition)});
  out.push_back({std::string(dlq_header::source_offset), std::to_string(info.source_offset)});
  out.push_back({std::string(dlq_header::attempts), std::to_string(info.attempts)});
  out.push_back({std::string(dlq_header::first_failure), info.first_failure});
  out.push_back({std::string(dlq_header::last_failure), info.last_failure});
  return out;
}

OutgoingMessage build_dead_letter(const Message& source, const DeadLetterInfo& info) {
  OutgoingMessage m;
  m.topic = dlq_topic(source.topic());
  m.key = std::string(source.key());
  m.payload = std::string(source.payload());
  m.headers = build_dlq_headers(info, source.headers());
  return m;
}

}  // namespace taskstream::kafka
