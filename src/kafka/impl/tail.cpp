#include "kafka/tail.hpp"

#include <nlohmann/json.hpp>

#include "kafka/admin.hpp"
#include "kafka/impl/client.hpp"

namespace taskstream::kafka {

void tail(const config::Settings& settings, const std::string& topic, const TailOptions& options,
          const std::function<bool(const Message&)>& on_message, const std::atomic<bool>& stop) {
  auto info = Admin(settings).describe_topic(topic);
  // A group id is required by the client even though nothing is committed with it.
  ConsumerProperties cp{"taskstream-tail", "taskstream-tail", {{"enable.auto.commit", "false"}}};
  auto rk = impl::make_client(RD_KAFKA_CONSUMER, consumer_properties(settings, resolve_bootstrap(settings), cp));
  rd_kafka_poll_set_consumer(rk.get());
  auto* parts = rd_kafka_topic_partition_list_new(static_cast<int>(info.partitions.size()));
  for (const auto& p : info.partitions)
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), p.id)->offset =
        options.from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
  auto err = rd_kafka_assign(rk.get(), parts);
  rd_kafka_topic_partition_list_destroy(parts);
  if (err) throw KafkaException(impl::make_error(err, "assign " + topic));

  std::size_t seen = 0;
  auto last = std::chrono::steady_clock::now();
  while (!stop.load()) {
    if (options.max_messages && seen >= *options.max_messages) break;
    if (options.idle_timeout && std::chrono::steady_clock::now() - last > *options.idle_timeout) break;
    rd_kafka_message_t* raw = rd_kafka_consumer_poll(rk.get(), 100);
    if (!raw) continue;
    if (raw->err) {
      auto e = impl::make_error(raw->err, "tail " + topic);
      rd_kafka_message_destroy(raw);
      if (!e.is_retriable()) throw KafkaException(e);
      continue;
    }
    Message m(raw);
    ++seen;
    last = std::chrono::steady_clock::now();
    if (!on_message(m)) break;
  }
  rd_kafka_consumer_close(rk.get());
}

std::string message_to_json_line(const Message& m) {
  nlohmann::json j;
  j["topic"] = m.topic();
  j["partition"] = m.partition();
  j["offset"] = m.offset();
  j["timestamp"] = m.timestamp_ms();
  j["key"] = m.key().empty() ? nlohmann::json(nullptr) : nlohmann::json(std::string(m.key()));
  auto& headers = j["headers"] = nlohmann::json::object();
  for (const auto& [k, v] : m.headers()) headers[std::string(k)] = std::string(v);
  auto value = nlohmann::json::parse(m.payload(), nullptr, /*allow_exceptions=*/false);
  // Not JSON: the raw text (invalid UTF-8 is replaced when printed).
  if (value.is_discarded()) j["value"] = std::string(m.payload());
  else j["value"] = std::move(value);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace taskstream::kafka
