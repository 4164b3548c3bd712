#include "events/events.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <limits>
#include <utility>

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <fmt/format.h>

namespace taskstream::events {

namespace {

using json = nlohmann::json;

struct TypeAction {
    std::string_view type;
    std::string_view action;
};

constexpr std::array<TypeAction, 4> kTaskTypes{{
    {"task_created", "created"},
    {"task_updated", "updated"},
    {"task_completed", "completed"},
    {"task_deleted", "deleted"},
}};

constexpr std::array<std::string_view, 3> kChannels{"in_app", "email", "sms"};

// Fixed namespace for derive_event_id (a random v4 picked once for taskstream). It must
// never change: ids already derived and stored for deduplication would stop matching.
constexpr const char* kDerivedIdNamespace = "15354074-9589-4396-b4f2-d7cf0c103638";

[[noreturn]] void schema_error(std::string field, const std::string& detail) {
    throw EventError(ErrorKind::wrong_schema, std::move(field), detail);
}

// Parser messages quote the bytes they choked on; those may be invalid UTF-8 or control
// characters, which must not leak into DLQ headers or log lines.
std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const unsigned char c : text) {
        out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
    }
    return out;
}

json parse_object(std::string_view payload) {
    json doc;
    try {
        // nlohmann's lexer rejects ill-formed UTF-8 inside strings, and any non-ASCII
        // byte outside a string is a syntax error, so this doubles as the UTF-8 check.
        doc = json::parse(payload);
    } catch (const json::exception& e) {
        // parse_error, and out_of_range for a number too large for a double ("1e400").
        throw EventError(ErrorKind::bad_json, {}, printable(e.what()));
    }
    if (!doc.is_object()) {
        throw EventError(ErrorKind::bad_json, {},
                         fmt::format("payload must be a JSON object, not {}", doc.type_name()));
    }
    return doc;
}

const json& require(const json& doc, const char* name) {
    const auto it = doc.find(name);
    if (it == doc.end()) {
        schema_error(name, "is required");
    }
    return *it;
}

// Pydantic writes an unset Optional as null, so for optional fields null means absent.
const json* find_optional(const json& doc, const char* name) {
    const auto it = doc.find(name);
    if (it == doc.end() || it->is_null()) {
        return nullptr;
    }
    return &*it;
}

std::string as_string(const json& value, const char* name) {
    if (!value.is_string()) {
        schema_error(name, "must be a string");
    }
    return value.get<std::string>();
}

std::string require_string(const json& doc, const char* name) {
    return as_string(require(doc, name), name);
}

std::string require_non_empty(const json& doc, const char* name) {
    auto value = require_string(doc, name);
    if (value.empty()) {
        schema_error(name, "must be a non-empty string");
    }
    return value;
}

std::string as_uuid(const json& value, const char* name) {
    if (!value.is_string() || !is_uuid(value.get_ref<const std::string&>())) {
        schema_error(name, "must be a UUID string");
    }
    return value.get<std::string>();
}

std::string require_timestamp(const json& doc) {
    const auto& value = require(doc, "timestamp");
    if (!value.is_string() || !is_rfc3339(value.get_ref<const std::string&>())) {
        schema_error("timestamp", "must be an RFC 3339 date-time string");
    }
    return value.get<std::string>();
}

std::string event_id_or_derived(const json& doc, const SourcePosition& pos) {
    if (const auto* value = find_optional(doc, "event_id")) {
        return as_uuid(*value, "event_id");
    }
    if (!pos.cloudevent_id.empty()) {
        return std::string(pos.cloudevent_id);
    }
    return derive_event_id(pos.topic, pos.partition, pos.offset);
}

std::optional<std::int64_t> optional_seq(const json& doc) {
    const auto* value = find_optional(doc, "seq");
    if (value == nullptr) {
        return std::nullopt;
    }
    // nlohmann stores non-negative literals as unsigned and negative ones as signed;
    // floats (even 42.0) are rejected because a seq that is not exact is useless.
    if (value->is_number_unsigned()) {
        const auto seq = value->get<std::uint64_t>();
        if (seq > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            schema_error("seq", "must fit in a signed 64-bit integer");
        }
        return static_cast<std::int64_t>(seq);
    }
    schema_error("seq", "must be a non-negative integer");
}

// Moves the member out of `doc` (the parsers are done with it), so a large task snapshot is
// not copied.
json require_object(json& doc, const char* name) {
    auto& value = const_cast<json&>(require(doc, name));
    if (!value.is_object()) {
        schema_error(name, "must be a JSON object");
    }
    return std::move(value);
}

// Checked before anything else so that a message of a type we do not know yet is
// reported as unknown_type (actionable: upgrade the consumer) even if its other fields
// also differ from what we expect.
std::string require_task_type(const json& doc) {
    auto type = require_string(doc, "type");
    if (action_for(type).empty()) {
        throw EventError(ErrorKind::unknown_type, "type",
                         "must be one of task_created, task_updated, task_completed, task_deleted");
    }
    return type;
}

}  // namespace

EventError::EventError(ErrorKind kind, std::string field, const std::string& detail)
    : std::runtime_error(field.empty() ? detail : field + ": " + detail),
      kind_(kind),
      field_(std::move(field)) {}

std::string_view EventError::reason() const noexcept {
    switch (kind_) {
        case ErrorKind::bad_json:
            return "bad_json";
        case ErrorKind::wrong_schema:
            return "schema";
        case ErrorKind::unknown_type:
            return "unknown_type";
    }
    return "schema";
}

std::string_view action_for(std::string_view type) noexcept {
    for (const auto& entry : kTaskTypes) {
        if (entry.type == type) {
            return entry.action;
        }
    }
    return {};
}

TaskEvent parse_task_event(std::string_view payload, const SourcePosition& pos) {
    auto doc = parse_object(payload);
    TaskEvent event;
    event.type = require_task_type(doc);
    const auto expected_action = action_for(event.type);
    if (const auto* action = find_optional(doc, "action")) {
        event.action = as_string(*action, "action");
        if (event.action != expected_action) {
            schema_error("action", fmt::format("must be \"{}\" for type {}", expected_action, event.type));
        }
    } else {
        // The seed's route handler publishes task events without an action.
        event.action = expected_action;
    }
    event.event_id = event_id_or_derived(doc, pos);
    event.timestamp = require_timestamp(doc);
    event.user_id = require_non_empty(doc, "user_id");
    event.task_id = as_uuid(require(doc, "task_id"), "task_id");
    event.seq = optional_seq(doc);
    event.task_data = require_object(doc, "task_data");
    return event;
}

TaskUpdateEvent parse_task_update(std::string_view payload, const SourcePosition& pos) {
    auto doc = parse_object(payload);
    TaskUpdateEvent event;
    event.type = require_task_type(doc);
    event.event_id = event_id_or_derived(doc, pos);
    event.timestamp = require_timestamp(doc);
    event.user_id = require_non_empty(doc, "user_id");
    event.task_id = as_uuid(require(doc, "task_id"), "task_id");
    event.seq = optional_seq(doc);
    event.changes = require_object(doc, "changes");
    return event;
}

NotificationRequest parse_notification_request(std::string_view payload, const SourcePosition& pos) {
    const auto doc = parse_object(payload);
    NotificationRequest request;
    // Free text (new reminder kinds need no consumer change), so never unknown_type.
    request.type = require_non_empty(doc, "type");
    request.event_id = event_id_or_derived(doc, pos);
    request.user_id = require_non_empty(doc, "user_id");
    if (const auto* task_id = find_optional(doc, "task_id")) {
        request.task_id = as_uuid(*task_id, "task_id");
    }
    request.title = require_string(doc, "title");
    request.message = require_string(doc, "message");
    if (const auto* channels = find_optional(doc, "channels")) {
        if (!channels->is_array()) {
            schema_error("channels", "must be an array of strings");
        }
        request.channels.clear();
        for (std::size_t i = 0; i < channels->size(); ++i) {
            const auto& channel = (*channels)[i];
            if (!channel.is_string()) {
                schema_error(fmt::format("channels[{}]", i), "must be a string");
            }
            // A channel this version does not know (a newer producer's) is skipped, not an
            // error: the request is delivered on the channels we have (docs/schemas.md).
            const auto& name = channel.get_ref<const std::string&>();
            if (std::find(kChannels.begin(), kChannels.end(), name) != kChannels.end() &&
                std::find(request.channels.begin(), request.channels.end(), name) == request.channels.end()) {
                request.channels.push_back(name);
            }
        }
        if (request.channels.empty() && !channels->empty()) {
            request.channels.emplace_back("in_app");
        }
    }
    if (const auto* email = find_optional(doc, "email")) {
        request.email = as_string(*email, "email");
    }
    return request;
}

nlohmann::json to_json(const TaskEvent& event) {
    json out{
        {"event_id", event.event_id},
        {"type", event.type},
        // Producers may leave action to us; it is fully determined by type.
        {"action", event.action.empty() ? std::string(action_for(event.type)) : event.action},
        {"timestamp", event.timestamp},
        {"user_id", event.user_id},
        {"task_id", event.task_id},
        {"task_data", event.task_data},
    };
    if (event.seq) {
        out["seq"] = *event.seq;
    }
    return out;
}

nlohmann::json to_json(const TaskUpdateEvent& event) {
    json out{
        {"event_id", event.event_id},
        {"type", event.type},
        {"timestamp", event.timestamp},
        {"user_id", event.user_id},
        {"task_id", event.task_id},
        {"changes", event.changes},
    };
    if (event.seq) {
        out["seq"] = *event.seq;
    }
    return out;
}

nlohmann::json to_json(const NotificationRequest& request) {
    json out{
        {"event_id", request.event_id},
        {"user_id", request.user_id},
        {"type", request.type},
        {"title", request.title},
        {"message", request.message},
        {"channels", request.channels},
    };
    if (request.task_id) {
        out["task_id"] = *request.task_id;
    }
    if (request.email) {
        out["email"] = *request.email;
    }
    return out;
}

std::string serialize(const TaskEvent& event) { return to_json(event).dump(); }
std::string serialize(const TaskUpdateEvent& event) { return to_json(event).dump(); }
std::string serialize(const NotificationRequest& request) { return to_json(request).dump(); }

std::string new_event_id() {
    // UUID version 7 (RFC 9562): 48 bits of Unix time in ms, then 74 random bits. Ids made
    // close in time sort close together, so the B-tree indexes keyed by them (tasks.id,
    // outbox.event_id, audit_log.event_id) take each new row at their right edge: a batch
    // of inserts dirties a few pages instead of one random page per row and index (every
    // dirty page is a full WAL frame; +15 % task commits/s in bench/http_load).
    // Within one thread ids also grow strictly (RFC 9562 section 6.2, method 2): in the
    // same millisecond the random bits of the previous id are incremented.
    // The generator holds OS entropy state and is not thread-safe; one per thread avoids
    // both a lock and reseeding on every call.
    thread_local boost::uuids::random_generator generator;
    thread_local std::uint64_t last_ms = 0;
    thread_local boost::uuids::uuid last{};
    const auto now_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    boost::uuids::uuid id;
    if (now_ms > last_ms) {
        id = generator();
        last_ms = now_ms;
    } else {
        // Same millisecond (or the clock went back): keep the previous id's time and add
        // one to its random bits, bytes 15 down to 6 skipping the version and variant bits.
        id = last;
        for (int i = 15; i >= 6; --i) {
            if (i == 8) {  // variant byte: its low 6 bits are random
                const unsigned v = (id.data[8] & 0x3fU) + 1U;
                id.data[8] = static_cast<std::uint8_t>((id.data[8] & 0xc0U) | (v & 0x3fU));
                if (v <= 0x3fU) break;
                continue;
            }
            if (i == 7) {  // bytes 6-7: version nibble then 12 random bits
                if (++id.data[7] != 0) break;
                continue;
            }
            if (i == 6) {
                const unsigned v = (id.data[6] & 0x0fU) + 1U;
                id.data[6] = static_cast<std::uint8_t>(0x70U | (v & 0x0fU));
                break;  // 74 bits wrapped: practically impossible within one millisecond
            }
            if (++id.data[i] != 0) break;
        }
    }
    for (int i = 0; i < 6; ++i) id.data[i] = static_cast<std::uint8_t>(last_ms >> (8 * (5 - i)));
    id.data[6] = static_cast<std::uint8_t>(0x70U | (id.data[6] & 0x0fU));
    id.data[8] = static_cast<std::uint8_t>(0x80U | (id.data[8] & 0x3fU));
    last = id;
    return boost::uuids::to_string(id);
}

std::string derive_event_id(std::string_view topic, std::int32_t partition, std::int64_t offset) {
    static const boost::uuids::uuid kNamespace = boost::uuids::string_generator{}(kDerivedIdNamespace);
    const boost::uuids::name_generator_sha1 generator(kNamespace);
    return boost::uuids::to_string(generator(fmt::format("{}/{}/{}", topic, partition, offset)));
}

std::string now_rfc3339() {
    using namespace std::chrono;
    const auto now = floor<milliseconds>(system_clock::now());
    const auto day = floor<days>(now);
    const year_month_day date{day};
    const hh_mm_ss time{now - day};
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(date.year()),
                       static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                       time.hours().count(), time.minutes().count(), time.seconds().count(),
                       time.subseconds().count());
}

bool is_uuid(std::string_view text) noexcept {
    if (text.size() != 36) {
        return false;
    }
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return false;
            }
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

namespace {

// Reads exactly `count` ASCII digits at `pos`; false if any is missing.
bool read_digits(std::string_view text, std::size_t pos, std::size_t count, int& value) noexcept {
    if (pos + count > text.size()) {
        return false;
    }
    value = 0;
    for (std::size_t i = pos; i < pos + count; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return false;
        }
        value = value * 10 + (text[i] - '0');
    }
    return true;
}

int days_in_month(int year, int month) noexcept {
    static constexpr std::array<int, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : kDays[static_cast<std::size_t>(month - 1)];
}

}  // namespace

bool is_rfc3339(std::string_view text) noexcept {
    // Fixed prefix: YYYY-MM-DDTHH:MM:SS (19 characters).
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!read_digits(text, 0, 4, year) || text.size() < 19 || text[4] != '-' ||
        !read_digits(text, 5, 2, month) || text[7] != '-' || !read_digits(text, 8, 2, day) ||
        (text[10] != 'T' && text[10] != 't') || !read_digits(text, 11, 2, hour) || text[13] != ':' ||
        !read_digits(text, 14, 2, minute) || text[16] != ':' || !read_digits(text, 17, 2, second)) {
        return false;
    }
    // Second 60 is a leap second, which RFC 3339 allows.
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 60) {
        return false;
    }
    std::size_t pos = 19;
    if (pos < text.size() && text[pos] == '.') {
        const std::size_t start = ++pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
            ++pos;
        }
        if (pos == start) {
            return false;
        }
    }
    if (pos >= text.size()) {
        return false;  // the offset is mandatory in RFC 3339
    }
    if (text[pos] == 'Z' || text[pos] == 'z') {
        return pos + 1 == text.size();
    }
    int offset_hour = 0, offset_minute = 0;
    return (text[pos] == '+' || text[pos] == '-') && pos + 6 == text.size() &&
           read_digits(text, pos + 1, 2, offset_hour) && text[pos + 3] == ':' &&
           read_digits(text, pos + 4, 2, offset_minute) && offset_hour <= 23 && offset_minute <= 59;
}

}  // namespace taskstream::events
