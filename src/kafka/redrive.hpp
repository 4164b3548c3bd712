#pragma once
// Dead-letter tools behind `taskstream dlq list|redrive`.
//
// Redrive sends dead letters back to their source topic (key, payload and original headers
// kept; the dlq.* headers dropped, `dlq.redriven_from` = DLQ topic@partition:offset added)
// and remembers how far it got in its own consumer group (`taskstream-redrive.<topic>.dlq`, plus `.<filter>` with a filter), committed only after the
// copies were acknowledged: running it again sends only what was dead-lettered since.
// Blocking: runs on the calling thread until the DLQ has been idle for `idle`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "config/settings.hpp"
#include "kafka/message.hpp"

namespace taskstream::kafka {

/// The header redrive adds to each message it sends back: `<topic>.dlq@partition:offset`.
/// A consumer may treat a redriven message as an operator's request to try again.
inline constexpr const char* kRedrivenFromHeader = "dlq.redriven_from";

/// `key=value` on a header (`reason=bad_json`, `error_class=...`, or any header name) or on
/// the message key (`key=user-1`); empty matches everything. Throws std::invalid_argument.
class DeadLetterFilter final {
 public:
  explicit DeadLetterFilter(const std::string& expression);
  bool matches(const Message& m) const;
  std::string expression() const { return field_.empty() ? std::string() : field_ + "=" + value_; }

 private:
  std::string field_, value_;
};

struct RedriveResult {
  std::uint64_t seen = 0;
  std::uint64_t matched = 0;
  std::uint64_t sent = 0;
};

/// `on_match` sees each letter the filter matched (sent, or on a dry run: would be sent).
RedriveResult redrive(const config::Settings& settings, const std::string& topic, const DeadLetterFilter& filter, bool dry_run,
                      const std::function<void(const RedriveResult&)>& progress, std::chrono::milliseconds idle = std::chrono::seconds(3),
                      const std::function<void(const Message&)>& on_match = {});

/// A dead letter as read back (the console's list; `taskstream dlq list`).
struct DeadLetter {
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::int64_t timestamp_ms = -1;
  std::string key, payload;
  std::vector<std::pair<std::string, std::string>> headers;  ///< all, in order (dlq.* included)
  static DeadLetter from(const Message& m);
};

struct DeadLetterPage {
  std::vector<DeadLetter> letters;  ///< the newest `limit` that matched, oldest first
  std::uint64_t total = 0;          ///< letters read (the whole topic up to its end)
  std::uint64_t matched = 0;
};

/// Reads `<topic>.dlq` from its first offset to the end offsets it has when called (no
/// consumer group: nothing is committed, redrive positions are untouched). Throws
/// KafkaException (UNKNOWN_TOPIC_OR_PART when there is no such topic).
DeadLetterPage read_dead_letters(const config::Settings& settings, const std::string& topic, const DeadLetterFilter& filter, std::size_t limit,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(15));

}  // namespace taskstream::kafka
