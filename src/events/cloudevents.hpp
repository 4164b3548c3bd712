#pragma once
// The CloudEvents 1.0 Kafka protocol binding, binary content mode (docs/events.md,
// "CloudEvents"): the attributes taskstream puts in `ce_*` headers on every message it
// produces, and how a consumer reads them back. Pure functions: no Kafka types here (the
// kafka layer's event_headers / cloudevent_of use them).

#include <string>
#include <string_view>

namespace taskstream::events {

/// Where every version of every event's JSON Schema is published; a schema's URI is
/// this + "<kind>/v<N>.schema.json" (schemas/<kind>/v<N>.schema.json in the repository).
inline constexpr std::string_view kSchemaBaseUri = "https://taskstream.example/schemas/";
/// The schema version today's producers write of `kind` (task-event, task-update,
/// notification-request): 1 for each today. Raised for a kind only once every consumer reads
/// the new version (docs/schemas.md, "How to change an event"); 0 for an unknown kind.
int current_schema_version(std::string_view kind) noexcept;
/// "<kind>/v<N>" for the current version, e.g. "task-event/v1": what the outbox stores per
/// row (header `schema_version`, `ce_dataschema`).
std::string current_schema(std::string_view kind);
/// The `ce_dataschema` URI of a stored schema ("task-event/v1"); empty for an empty one.
std::string dataschema_uri(std::string_view schema);
/// The version number in a stored schema ("task-event/v2" → "2"); "1" when empty or odd
/// (rows written before the outbox kept it were all version 1).
std::string_view schema_version_of(std::string_view schema) noexcept;
/// `ce_type`: com.taskstream.task.created|updated|completed|deleted for a task event (by
/// its `type`), com.taskstream.notification.requested for a notification request.
std::string cloudevent_type(std::string_view schema, std::string_view event_type);
/// `ce_source`: /taskstream/tasks for task events, /taskstream/reminders for the reminder
/// scheduler's notification requests.
std::string_view cloudevent_source(std::string_view schema, std::string_view event_type) noexcept;

/// The CloudEvents attributes a consumer reads, after the checks of read_cloudevent.
struct IncomingCloudEvent {
  std::string_view id;      ///< empty: absent (or malformed, see `ignored`)
  std::string_view source;  ///< empty: absent or malformed
  /// Why headers present on the message were treated as absent ("ce_id: empty"), for a
  /// debug log line; empty when nothing was ignored.
  std::string ignored;
};

/// Reads the binary-mode attributes from the raw header values (nullptr: header absent).
/// A message is a CloudEvent when `ce_specversion` is "1.0"; otherwise its other ce_*
/// headers are ignored. A malformed `ce_id` / `ce_source` (empty, over 1,024 bytes, or with
/// a control character) is treated as absent. Never throws.
IncomingCloudEvent read_cloudevent(const std::string_view* specversion, const std::string_view* id,
                                   const std::string_view* source);

/// The event id a consumer uses for a CloudEvent whose payload has no `event_id`: `ce_id`
/// itself when it is a UUID (lowercased), else a name-based UUID v5 of source and id (a
/// CloudEvent's identity), so a redelivered or re-sent copy gets the same id.
std::string event_id_of_cloudevent(std::string_view id, std::string_view source);
/// Whether a payload's event_id and a CloudEvent's id (event_id_of_cloudevent) name the
/// same event: UUIDs compare case-insensitively.
bool same_event_id(std::string_view a, std::string_view b) noexcept;

}  // namespace taskstream::events
