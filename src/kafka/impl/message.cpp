#include "kafka/message.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

namespace taskstream::kafka {

Message::Message(rd_kafka_message_s* raw) noexcept : raw_(raw) {
  if (raw_ && raw_->rkt) topic_ = rd_kafka_topic_name(raw_->rkt);
}
Message::Message(Message&& o) noexcept : raw_(std::exchange(o.raw_, nullptr)), topic_(o.topic_) {}
Message& Message::operator=(Message&& o) noexcept {
  if (this != &o) {
    if (raw_) rd_kafka_message_destroy(raw_);
    raw_ = std::exchange(o.raw_, nullptr);
    topic_ = o.topic_;
  }
  return *this;
}
Message::~Message() {
  if (raw_) rd_kafka_message_destroy(raw_);
}

std::int32_t Message::partition() const noexcept { return raw_->partition; }
std::int64_t Message::offset() const noexcept { return raw_->offset; }
std::string_view Message::key() const noexcept {
  return raw_->key ? std::string_view(static_cast<const char*>(raw_->key), raw_->key_len) : std::string_view();
}
std::string_view Message::payload() const noexcept {
  return raw_->payload ? std::string_view(static_cast<const char*>(raw_->payload), raw_->len) : std::string_view();
}
std::int64_t Message::timestamp_ms() const noexcept {
  rd_kafka_timestamp_type_t type;
  return rd_kafka_message_timestamp(raw_, &type);
}

std::optional<std::string_view> Message::header(std::string_view name) const {
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(raw_, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs) return std::nullopt;
  const void* value = nullptr;
  size_t size = 0;
  std::string n(name);
  if (rd_kafka_header_get_last(hdrs, n.c_str(), &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
  return value ? std::string_view(static_cast<const char*>(value), size) : std::string_view();
}

std::vector<std::pair<std::string_view, std::string_view>> Message::headers() const {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(raw_, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs) return out;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
    out.emplace_back(name, value ? std::string_view(static_cast<const char*>(value), size) : std::string_view());
  return out;
}

Headers event_headers(const EventHeaderFields& f) {
  Headers h;
  h.reserve(14);
  h.push_back({"event_id", std::string(f.event_id)});
  h.push_back({"event_type", std::string(f.event_type)});
  h.push_back({"schema_version", std::string(events::schema_version_of(f.schema))});
  if (!f.traceparent.empty()) h.push_back({"traceparent", std::string(f.traceparent)});
  // CloudEvents Kafka protocol binding, binary content mode: the value is the event's data.
  h.push_back({"ce_specversion", "1.0"});
  h.push_back({"ce_id", std::string(f.event_id)});
  h.push_back({"ce_source", std::string(events::cloudevent_source(f.schema, f.event_type))});
  h.push_back({"ce_type", events::cloudevent_type(f.schema, f.event_type)});
  h.push_back({"content-type", "application/json"});
  if (!f.time.empty()) h.push_back({"ce_time", std::string(f.time)});
  if (!f.subject.empty()) h.push_back({"ce_subject", std::string(f.subject)});
  if (!f.schema.empty()) h.push_back({"ce_dataschema", events::dataschema_uri(f.schema)});
  if (!f.partition_key.empty()) h.push_back({"ce_partitionkey", std::string(f.partition_key)});
  if (!f.traceparent.empty()) h.push_back({"ce_traceparent", std::string(f.traceparent)});
  return h;
}

Headers event_headers(std::string_view event_id, std::string_view event_type, std::string_view traceparent) {
  return event_headers(EventHeaderFields{.event_id = event_id, .event_type = event_type, .traceparent = traceparent});
}

events::IncomingCloudEvent cloudevent_of(const Message& m) {
  const auto specversion = m.header("ce_specversion");
  std::optional<std::string_view> id, source;
  id = m.header("ce_id");
  if (!specversion && !id) return {};  // no CloudEvents headers: the common case of another producer
  if (specversion) source = m.header("ce_source");
  auto ce = events::read_cloudevent(specversion ? &*specversion : nullptr, id ? &*id : nullptr, source ? &*source : nullptr);
  if (!ce.ignored.empty())
    spdlog::debug("consumer: {}[{}]@{}: CloudEvents headers ignored ({})", m.topic(), m.partition(), m.offset(), ce.ignored);
  return ce;
}

}  // namespace taskstream::kafka
