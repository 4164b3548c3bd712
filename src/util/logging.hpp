#pragma once
// Logging set-up: stderr, text or one JSON object a line (LOG_FORMAT=json).

#include <string_view>

#include "config/settings.hpp"

namespace taskstream::util {

/// Configures the default spdlog logger; call once at start, before any thread logs.
void setup_logging(const std::string& level, config::LogFormat format);

/// What a log line is about, beyond its message: JSON lines carry these as fields
/// (`request_id`, `event_id`, `traceparent` and its `trace_id`), text lines as key=value
/// after the message. Empty ones are left out.
struct LogFields {
  std::string_view request_id;
  std::string_view event_id;
  std::string_view traceparent;
};

/// Sets the fields of the lines this thread logs while it lives (the logger formats on the
/// calling thread); restores the previous ones after. The views must outlive the scope.
class LogScope final {
 public:
  explicit LogScope(LogFields fields) noexcept;
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

 private:
  LogFields saved_;
};

/// The fields set on this thread (for tests).
LogFields current_log_fields() noexcept;

/// The trace id of a W3C traceparent (`00-<32 hex>-<16 hex>-<2 hex>`), empty if malformed.
std::string_view trace_id_of(std::string_view traceparent) noexcept;

}  // namespace taskstream::util
