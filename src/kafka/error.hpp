#pragma once
// One error type for everything the Kafka layer reports, after modern-cpp-kafka's
// kafka::Error: it knows whether it is retriable or fatal, converts to std::error_code,
// and its message ends in a hint naming the setting to look at.

#include <stdexcept>
#include <string>
#include <system_error>

namespace taskstream::kafka {

/// Category of librdkafka error codes (rd_kafka_resp_err_t values).
const std::error_category& kafka_category() noexcept;

class Error final {
 public:
  Error() = default;
  /// `code` is an rd_kafka_resp_err_t value; `message` what the client said.
  Error(int code, std::string message);
  Error(int code, std::string message, bool retriable, bool fatal);

  int code() const noexcept { return code_; }
  /// librdkafka's symbolic name, e.g. "_TRANSPORT" or "TOPIC_AUTHORIZATION_FAILED".
  std::string name() const;
  const std::string& message() const noexcept { return message_; }
  bool is_retriable() const noexcept { return retriable_; }
  /// A fatal error leaves the client unusable: it must be rebuilt (idempotent producer state).
  bool is_fatal() const noexcept { return fatal_; }
  /// The setting or action to look at, or empty.
  std::string hint() const;
  /// "NAME: message (retriable) — hint".
  std::string to_string() const;
  std::error_code error_code() const noexcept { return {code_, kafka_category()}; }
  explicit operator bool() const noexcept { return code_ != 0; }

 private:
  int code_ = 0;
  std::string message_;
  bool retriable_ = false;
  bool fatal_ = false;
};

/// Thrown where an operation cannot report through a result (construction, admin calls).
class KafkaException final : public std::runtime_error {
 public:
  explicit KafkaException(Error e) : std::runtime_error(e.to_string()), error_(std::move(e)) {}
  const Error& error() const noexcept { return error_; }

 private:
  Error error_;
};

/// Error codes the layer raises itself (values outside librdkafka's range).
namespace errc {
inline constexpr int disabled = -10000;        ///< KAFKA_ENABLED=false
inline constexpr int invalid_config = -10001;  ///< a property librdkafka refused
inline constexpr int timed_out = -10002;       ///< our own deadline passed
inline constexpr int closed = -10003;          ///< the client was closed
/// Kafka's own UNKNOWN_TOPIC_OR_PARTITION (RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART), for
/// callers that do not include rdkafka.h.
inline constexpr int unknown_topic = 3;
}  // namespace errc

}  // namespace taskstream::kafka
