#pragma once

// Event types carried on the three taskstream topics (docs/events.md) and their
// strict-but-forgiving parsers. Strict: every field we rely on is type-checked so a
// malformed message is rejected with a reason fit for a DLQ header instead of blowing
// up deeper in a consumer. Forgiving: messages produced by the seed's Python code
// (no event_id, no seq, no action) and messages carrying fields we do not know yet
// are accepted, so old producers and newer producers can share a topic with us.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace taskstream::events {

// Audit-trail event on `task-events`.
struct TaskEvent {
    std::string event_id;
    std::string type;    // task_created | task_updated | task_completed | task_deleted
    std::string action;  // created | updated | completed | deleted, matching `type`
    std::string timestamp;
    std::string user_id;
    std::string task_id;
    std::optional<std::int64_t> seq;
    // An object by default so a default-constructed event still serializes to a
    // schema-valid message.
    nlohmann::json task_data = nlohmann::json::object();

    bool operator==(const TaskEvent&) const = default;
};

// Live-sync event on `task-updates`.
struct TaskUpdateEvent {
    std::string event_id;
    std::string type;  // same four task_* types as TaskEvent
    std::string timestamp;
    std::string user_id;
    std::string task_id;
    std::optional<std::int64_t> seq;
    nlohmann::json changes = nlohmann::json::object();

    bool operator==(const TaskUpdateEvent&) const = default;
};

// Request on `notification.request`.
struct NotificationRequest {
    std::string event_id;
    std::string user_id;
    std::optional<std::string> task_id;
    std::string type;  // free text but non-empty: deadline_reminder, task_overdue, ...
    std::string title;
    std::string message;
    // Each of in_app | email | sms. Channels a newer producer may name that this version does
    // not know are left out (tolerant reader, docs/schemas.md); a request naming only unknown
    // channels is shown in the app.
    std::vector<std::string> channels{"in_app"};
    std::optional<std::string> email;

    bool operator==(const NotificationRequest&) const = default;
};

enum class ErrorKind { bad_json, wrong_schema, unknown_type };

// Why a message was rejected. Consumers put reason() and field() in DLQ headers, so
// both are stable tokens rather than prose.
class EventError final : public std::runtime_error {
public:
    EventError(ErrorKind kind, std::string field, const std::string& detail);

    [[nodiscard]] ErrorKind kind() const noexcept { return kind_; }
    // Name of the offending field ("task_id", "channels[1]"); empty for bad_json.
    [[nodiscard]] const std::string& field() const noexcept { return field_; }
    // "bad_json" | "schema" | "unknown_type".
    [[nodiscard]] std::string_view reason() const noexcept;

private:
    ErrorKind kind_;
    std::string field_;
};

// Where a message came from; used to derive a stable event_id for messages that
// arrive without one.
struct SourcePosition {
    std::string_view topic;
    std::int32_t partition;
    std::int64_t offset;
    // The event id its CloudEvents headers give (event_id_of_cloudevent), used instead of the
    // derived one when the payload has no event_id; empty when it has none.
    std::string_view cloudevent_id{};
};

// All three throw EventError. The payload must be a UTF-8 JSON object.
[[nodiscard]] TaskEvent parse_task_event(std::string_view payload, const SourcePosition& pos);
[[nodiscard]] TaskUpdateEvent parse_task_update(std::string_view payload, const SourcePosition& pos);
[[nodiscard]] NotificationRequest parse_notification_request(std::string_view payload,
                                                             const SourcePosition& pos);

[[nodiscard]] nlohmann::json to_json(const TaskEvent& event);
[[nodiscard]] nlohmann::json to_json(const TaskUpdateEvent& event);
[[nodiscard]] nlohmann::json to_json(const NotificationRequest& request);

// Compact JSON. Throws nlohmann::json::type_error if a string is not valid UTF-8:
// putting bytes on a topic that every consumer would reject is worse than failing here.
[[nodiscard]] std::string serialize(const TaskEvent& event);
[[nodiscard]] std::string serialize(const TaskUpdateEvent& event);
[[nodiscard]] std::string serialize(const NotificationRequest& request);

// A new UUID version 7 (time-ordered, RFC 9562), lowercase. Ids from one thread grow
// strictly; ids from different threads sort by their millisecond.
[[nodiscard]] std::string new_event_id();
// Name-based UUID v5 of "topic/partition/offset": a redelivered message gets the same
// id, which is what makes idempotent consumption of id-less seed messages possible.
[[nodiscard]] std::string derive_event_id(std::string_view topic, std::int32_t partition,
                                          std::int64_t offset);

// Current UTC time, millisecond precision, e.g. 2026-11-27T12:00:00.123Z.
[[nodiscard]] std::string now_rfc3339();

// 8-4-4-4-12 hex digits, either case.
[[nodiscard]] bool is_uuid(std::string_view text) noexcept;
// RFC 3339 date-time: "T" or "t" separator, optional fraction of any length, "Z"/"z" or
// a ±HH:MM offset; calendar-checked (no 2026-02-30). Accepts Python's isoformat().
[[nodiscard]] bool is_rfc3339(std::string_view text) noexcept;

// "created" for "task_created" etc.; empty if `type` is not a known task event type.
[[nodiscard]] std::string_view action_for(std::string_view type) noexcept;

}  // namespace taskstream::events

namespace taskstream::events {

// An RFC 3339 date-time as UTC in the one shape the service stores and compares as text:
// `YYYY-MM-DDTHH:MM:SS.mmmZ` (offsets applied, fractions cut to milliseconds). nullopt when
// `text` is not RFC 3339.
[[nodiscard]] std::optional<std::string> to_utc_millis(std::string_view text);
// The same instant as milliseconds since the Unix epoch (negative before 1970).
[[nodiscard]] std::optional<std::int64_t> to_unix_millis(std::string_view text);

}  // namespace taskstream::events
