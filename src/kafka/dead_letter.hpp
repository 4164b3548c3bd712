#pragma once
// Dead letters: a message that cannot be handled goes to `<topic>.dlq` unchanged (key,
// payload, original headers) with headers saying why and where it came from.
//
// A process writes its dead letters through one producer (dead_letter_producer_options),
// shared by its consumers and its email dispatcher (src/app/serve.cpp): each waits for the
// acknowledgement of its own dead letters before it goes on.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kafka/client_config.hpp"
#include "kafka/message.hpp"

namespace taskstream::kafka {

/// Why a message was dead-lettered and where it came from.
struct DeadLetterInfo {
  std::string reason;       ///< short stable token: bad_json, schema, unknown_type, handler_error…
  std::string error_class;  ///< e.g. "permanent" or "retries_exhausted", or an exception type
  std::string detail;       ///< human-readable message
  std::string source_topic;
  std::int32_t source_partition = -1;
  std::int64_t source_offset = -1;
  int attempts = 1;
  std::string first_failure;  ///< RFC 3339
  std::string last_failure;   ///< RFC 3339
};

/// Names of the headers a dead letter carries.
namespace dlq_header {
inline constexpr std::string_view reason = "dlq.reason";
inline constexpr std::string_view error_class = "dlq.error_class";
inline constexpr std::string_view detail = "dlq.detail";
inline constexpr std::string_view source_topic = "dlq.source_topic";
inline constexpr std::string_view source_partition = "dlq.source_partition";
inline constexpr std::string_view source_offset = "dlq.source_offset";
inline constexpr std::string_view attempts = "dlq.attempts";
inline constexpr std::string_view first_failure = "dlq.first_failure";
inline constexpr std::string_view last_failure = "dlq.last_failure";
}  // namespace dlq_header

/// The options of a process's dead-letter producer (client.id `taskstream-dlq`): idempotent,
/// acks=all like every producer here, and a dead letter not acknowledged within 30 s fails
/// (its sender tries again; nothing waits without limit on a broker that is gone).
ProducerOptions dead_letter_producer_options();

/// `<topic>.dlq`
std::string dlq_topic(std::string_view topic);
/// The original headers (minus any earlier dlq.* ones) followed by the dlq.* headers.
/// Details longer than 1 KiB are cut so a huge exception text cannot bloat the record.
Headers build_dlq_headers(const DeadLetterInfo& info, const std::vector<std::pair<std::string_view, std::string_view>>& original);
/// The dead-letter record for a consumed message.
OutgoingMessage build_dead_letter(const Message& source, const DeadLetterInfo& info);

}  // namespace taskstream::kafka
