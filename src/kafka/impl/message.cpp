#include "kafka/message.hpp"

#include <librdkafka/rdkafka.h>

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

Headers event_headers(std::string_view event_id, std::string_view event_type, std::string_view traceparent) {
  Headers h{{"event_id", std::string(event_id)}, {"event_type", std::string(event_type)}, {"schema_version", "1"}};
  if (!traceparent.empty()) h.push_back({"traceparent", std::string(traceparent)});
  return h;
}

}  // namespace taskstream::kafka
