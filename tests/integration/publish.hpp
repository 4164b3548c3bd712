#pragma once
// Tests' publish_event: an event as JSON to a topic through a kafka::Producer, waiting for
// the broker's acknowledgement (the service itself publishes through the outbox relay).

#include <spdlog/spdlog.h>

#include <chrono>
#include <future>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kafka/producer.hpp"

namespace taskstream::itest {

enum class PublishStatus { published, disabled, failed };
struct PublishResult {
  PublishStatus status = PublishStatus::failed;
  std::string detail;  ///< why it was not published
  explicit operator bool() const noexcept { return status == PublishStatus::published; }
};

/// `event` as JSON to `topic`, keyed by `key`, with the standard headers (event_id and type
/// taken from the event), waiting for the acknowledgement up to `timeout`. Never throws.
inline PublishResult publish_event(kafka::Producer& producer, const std::string& topic, const nlohmann::json& event,
                                   const std::string& key, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                   std::string_view traceparent = {}) noexcept {
  try {
    if (!producer.enabled()) {
      spdlog::debug("Kafka disabled, not publishing to {}", topic);
      return {PublishStatus::disabled, "not published: KAFKA_ENABLED=false"};
    }
    auto str = [&](const char* field) {
      auto it = event.find(field);
      return it != event.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    kafka::OutgoingMessage msg{topic, key, event.dump(), kafka::event_headers(str("event_id"), str("type"), traceparent), std::nullopt};
    auto fut = producer.send(std::move(msg));
    if (fut.wait_for(timeout) != std::future_status::ready)
      return {PublishStatus::failed, "not acknowledged within " + std::to_string(timeout.count()) + " ms"};
    auto r = fut.get();
    if (!r.ok()) {
      spdlog::error("failed to publish to {}: {}", topic, r.error.to_string());
      return {PublishStatus::failed, r.error.to_string()};
    }
    return {PublishStatus::published, {}};
  } catch (const std::exception& e) {
    return {PublishStatus::failed, e.what()};
  }
}

}  // namespace taskstream::itest
