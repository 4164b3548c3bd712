#include "events/cloudevents.hpp"

#include <algorithm>
#include <cctype>

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include "events/events.hpp"

namespace taskstream::events {
namespace {

// Namespace of the UUID v5 given to a CloudEvent without a UUID id (a random v4 picked once).
// It must never change: ids already stored for deduplication would stop matching.
constexpr const char* kCloudEventIdNamespace = "6f1d2c9e-3b7a-4e58-9c0d-8a2b4e6f1a37";
constexpr std::size_t kMaxAttributeBytes = 1024;

bool is_notification(std::string_view schema) noexcept { return schema.starts_with("notification-request"); }

// CloudEvents attributes are non-empty strings; header values carrying control characters
// (or absurd sizes) are not something a producer meant.
const char* attribute_problem(std::string_view value) noexcept {
  if (value.empty()) return "empty";
  if (value.size() > kMaxAttributeBytes) return "longer than 1024 bytes";
  if (std::any_of(value.begin(), value.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
    return "contains a control character";
  return nullptr;
}

std::string_view checked(const std::string_view* value, const char* name, std::string& ignored) {
  if (!value) return {};
  if (const char* problem = attribute_problem(*value)) {
    if (!ignored.empty()) ignored += "; ";
    ignored += name;
    ignored += ": ";
    ignored += problem;
    return {};
  }
  return *value;
}

}  // namespace

int current_schema_version(std::string_view kind) noexcept {
  if (kind == "task-event") return 1;
  if (kind == "task-update") return 1;
  if (kind == "notification-request") return 1;
  return 0;
}

std::string current_schema(std::string_view kind) {
  return std::string(kind) + "/v" + std::to_string(current_schema_version(kind));
}

std::string dataschema_uri(std::string_view schema) {
  if (schema.empty()) return {};
  std::string uri(kSchemaBaseUri);
  uri += schema;
  uri += ".schema.json";
  return uri;
}

std::string_view schema_version_of(std::string_view schema) noexcept {
  const auto at = schema.rfind("/v");
  if (at == std::string_view::npos || at + 2 >= schema.size()) return "1";
  const auto digits = schema.substr(at + 2);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return "1";
  return digits;
}

std::string cloudevent_type(std::string_view schema, std::string_view event_type) {
  const auto action = action_for(event_type);
  if (is_notification(schema) || action.empty()) return "com.taskstream.notification.requested";
  return "com.taskstream.task." + std::string(action);
}

std::string_view cloudevent_source(std::string_view schema, std::string_view event_type) noexcept {
  return is_notification(schema) || action_for(event_type).empty() ? "/taskstream/reminders" : "/taskstream/tasks";
}

IncomingCloudEvent read_cloudevent(const std::string_view* specversion, const std::string_view* id, const std::string_view* source) {
  IncomingCloudEvent ce;
  if (!specversion) {
    if (id || source) ce.ignored = "ce_* headers without ce_specversion";
    return ce;
  }
  if (*specversion != "1.0") {
    ce.ignored = "ce_specversion is not 1.0";
    return ce;
  }
  ce.id = checked(id, "ce_id", ce.ignored);
  ce.source = checked(source, "ce_source", ce.ignored);
  return ce;
}

std::string event_id_of_cloudevent(std::string_view id, std::string_view source) {
  if (is_uuid(id)) {
    std::string out(id);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
  }
  static const boost::uuids::uuid ns = boost::uuids::string_generator{}(kCloudEventIdNamespace);
  std::string name(source);
  name += '\n';  // a control character: cannot occur in either attribute (read_cloudevent)
  name += id;
  return boost::uuids::to_string(boost::uuids::name_generator_sha1(ns)(name));
}

bool same_event_id(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace taskstream::events
