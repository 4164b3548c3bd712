#pragma once
// Messages in and out of Kafka, without librdkafka types in the interface.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "events/cloudevents.hpp"

struct rd_kafka_message_s;

namespace taskstream::kafka {

struct Header {
  std::string key;
  std::string value;
};
using Headers = std::vector<Header>;

/// What a producer sends. Owned strings: the producer copies them into its queue once.
struct OutgoingMessage {
  std::string topic;
  std::string key;      ///< empty: no key
  std::string payload;
  Headers headers;
  std::optional<std::int32_t> partition;  ///< unset: the partitioner chooses by key
};

/// A consumed message. Owns the client's buffer (no copy of key or payload); the views it
/// hands out live as long as the Message. Movable, not copyable; not thread-safe.
class Message final {
 public:
  explicit Message(rd_kafka_message_s* raw) noexcept;
  Message(Message&&) noexcept;
  Message& operator=(Message&&) noexcept;
  ~Message();

  std::string_view topic() const noexcept { return topic_; }
  std::int32_t partition() const noexcept;
  std::int64_t offset() const noexcept;
  std::string_view key() const noexcept;
  std::string_view payload() const noexcept;
  /// Milliseconds since the epoch, or -1.
  std::int64_t timestamp_ms() const noexcept;
  /// The last value of header `name`, if present.
  std::optional<std::string_view> header(std::string_view name) const;
  std::vector<std::pair<std::string_view, std::string_view>> headers() const;

 private:
  rd_kafka_message_s* raw_;
  std::string_view topic_;
};

/// What a producer knows of one event, for its headers.
struct EventHeaderFields {
  std::string_view event_id{};
  std::string_view event_type{};   ///< the payload's `type`
  std::string_view schema{};       ///< "task-event/v1" (events::current_schema); empty: unknown
  std::string_view subject{};      ///< the task id; empty: none
  std::string_view time{};         ///< RFC 3339; empty: none
  std::string_view partition_key{};  ///< the message key (the user id); empty: none
  std::string_view traceparent{};  ///< W3C traceparent; empty: none
};

/// The headers every event carries (docs/events.md, "Headers"): ours (`event_id`,
/// `event_type`, `schema_version`, `traceparent`) and the CloudEvents Kafka binding's, binary
/// mode (`ce_specversion`, `ce_id`, `ce_source`, `ce_type`, `ce_time`, `ce_subject`,
/// `ce_dataschema`, `ce_partitionkey`, `ce_traceparent`, `content-type`).
Headers event_headers(const EventHeaderFields& fields);
/// The same for an event known only by id and type (tests, benchmarks, other tools).
Headers event_headers(std::string_view event_id, std::string_view event_type, std::string_view traceparent = {});

/// A consumed message's CloudEvents attributes (events::read_cloudevent); headers that are
/// malformed are treated as absent and logged at debug level.
events::IncomingCloudEvent cloudevent_of(const Message& message);

}  // namespace taskstream::kafka
