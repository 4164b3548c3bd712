#include "events/events.hpp"

#include <chrono>
#include <string_view>
#include <regex>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace ev = taskstream::events;
using nlohmann::json;

namespace {

const ev::SourcePosition kPos{"task-events", 3, 1234};
constexpr const char* kTaskId = "0b7c6f0e-2f4a-4c1e-9a51-6d2f3e8b9c10";
constexpr const char* kEventId = "5f0e8a52-1b3c-4d7e-8f90-a1b2c3d4e5f6";

ev::TaskEvent sample_task_event() {
    ev::TaskEvent event;
    event.event_id = kEventId;
    event.type = "task_completed";
    event.action = "completed";
    event.timestamp = "2026-11-27T12:00:00.123Z";
    event.user_id = "user-42";
    event.task_id = kTaskId;
    event.seq = 42;
    event.task_data = {{"id", kTaskId}, {"title", "Write tests"}, {"status", "done"}};
    return event;
}

ev::TaskUpdateEvent sample_task_update() {
    ev::TaskUpdateEvent event;
    event.event_id = kEventId;
    event.type = "task_updated";
    event.timestamp = "2026-11-27T12:00:00Z";
    event.user_id = "user-42";
    event.task_id = kTaskId;
    event.seq = 0;
    event.changes = {{"status", "done"}, {"completed_at", "2026-11-27T12:00:00Z"}};
    return event;
}

ev::NotificationRequest sample_notification() {
    ev::NotificationRequest request;
    request.event_id = kEventId;
    request.user_id = "user-42";
    request.task_id = kTaskId;
    request.type = "deadline_reminder";
    request.title = "Due soon";
    request.message = "\"Write tests\" is due in 1 hour \xE2\x8F\xB0";  // non-ASCII on purpose
    request.channels = {"in_app", "email"};
    request.email = "someone@example.com";
    return request;
}

// Exactly what the seed's route handler publishes: no event_id, seq or action, and a
// Python isoformat() timestamp with microseconds and +00:00.
json seed_task_event() {
    return {{"type", "task_created"},
            {"task_id", kTaskId},
            {"task_data", {{"id", kTaskId}, {"title", "Buy milk"}, {"completed", false}}},
            {"user_id", "user-42"},
            {"timestamp", "2026-11-27T12:00:00.123456+00:00"}};
}

json valid_task_event() { return ev::to_json(sample_task_event()); }

// Runs `parse` on `payload` and checks the EventError it must throw.
template <typename Parse>
void expect_error(Parse parse, const std::string& payload, ev::ErrorKind kind, const std::string& field) {
    try {
        (void)parse(payload, kPos);
        ADD_FAILURE() << "accepted: " << payload;
    } catch (const ev::EventError& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        EXPECT_EQ(e.field(), field) << e.what();
    }
}

void expect_task_event_error(const json& doc, ev::ErrorKind kind, const std::string& field) {
    expect_error(ev::parse_task_event, doc.dump(), kind, field);
}

}  // namespace

TEST(EventsRoundTrip, TaskEvent) {
    const auto event = sample_task_event();
    EXPECT_EQ(ev::parse_task_event(ev::serialize(event), kPos), event);
}

TEST(EventsRoundTrip, TaskEventWithoutSeqOmitsIt) {
    auto event = sample_task_event();
    event.seq.reset();
    EXPECT_FALSE(ev::to_json(event).contains("seq"));
    EXPECT_EQ(ev::parse_task_event(ev::serialize(event), kPos), event);
}

TEST(EventsRoundTrip, TaskUpdate) {
    const auto event = sample_task_update();
    EXPECT_EQ(ev::parse_task_update(ev::serialize(event), kPos), event);
}

TEST(EventsRoundTrip, NotificationRequest) {
    const auto request = sample_notification();
    EXPECT_EQ(ev::parse_notification_request(ev::serialize(request), kPos), request);
}

TEST(EventsRoundTrip, NotificationOmitsEmptyOptionals) {
    auto request = sample_notification();
    request.task_id.reset();
    request.email.reset();
    const auto doc = ev::to_json(request);
    EXPECT_FALSE(doc.contains("task_id"));
    EXPECT_FALSE(doc.contains("email"));
    EXPECT_EQ(ev::parse_notification_request(doc.dump(), kPos), request);
}

TEST(EventsSerialize, IsCompactJson) {
    const auto text = ev::serialize(sample_task_event());
    EXPECT_EQ(text.find('\n'), std::string::npos);
    EXPECT_EQ(text.find(": "), std::string::npos);
    EXPECT_EQ(json::parse(text), ev::to_json(sample_task_event()));
}

TEST(EventsSerialize, FillsActionFromType) {
    auto event = sample_task_event();
    event.action.clear();
    EXPECT_EQ(ev::to_json(event)["action"], "completed");
}

TEST(EventsSeed, TaskEventIsAccepted) {
    const auto event = ev::parse_task_event(seed_task_event().dump(), kPos);
    EXPECT_EQ(event.type, "task_created");
    EXPECT_EQ(event.action, "created");
    EXPECT_EQ(event.event_id, ev::derive_event_id(kPos.topic, kPos.partition, kPos.offset));
    EXPECT_TRUE(ev::is_uuid(event.event_id));
    EXPECT_FALSE(event.seq.has_value());
    EXPECT_EQ(event.timestamp, "2026-11-27T12:00:00.123456+00:00");
    EXPECT_EQ(event.task_data["title"], "Buy milk");
}

TEST(EventsSeed, DerivedEventIdIsDeterministicPerPosition) {
    const auto payload = seed_task_event().dump();
    const auto first = ev::parse_task_event(payload, kPos).event_id;
    EXPECT_EQ(ev::parse_task_event(payload, kPos).event_id, first);
    EXPECT_NE(ev::parse_task_event(payload, {kPos.topic, kPos.partition, kPos.offset + 1}).event_id, first);
    EXPECT_NE(ev::parse_task_event(payload, {kPos.topic, kPos.partition + 1, kPos.offset}).event_id, first);
    EXPECT_NE(ev::parse_task_event(payload, {"task-updates", kPos.partition, kPos.offset}).event_id, first);
}

TEST(EventsSeed, DerivedEventIdIsVersion5) {
    const auto id = ev::derive_event_id("task-events", 0, 0);
    ASSERT_TRUE(ev::is_uuid(id));
    EXPECT_EQ(id[14], '5');
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos);
}

TEST(EventsSeed, PresentEventIdIsKept) {
    auto doc = seed_task_event();
    doc["event_id"] = kEventId;
    EXPECT_EQ(ev::parse_task_event(doc.dump(), kPos).event_id, kEventId);
}

TEST(EventsSeed, TaskUpdateIsAccepted) {
    const json doc{{"type", "task_updated"},
                   {"task_id", kTaskId},
                   {"changes", {{"status", "done"}}},
                   {"user_id", "user-42"},
                   {"timestamp", "2026-11-27T12:00:00+00:00"}};
    const auto event = ev::parse_task_update(doc.dump(), kPos);
    EXPECT_EQ(event.event_id, ev::derive_event_id(kPos.topic, kPos.partition, kPos.offset));
    EXPECT_EQ(event.changes["status"], "done");
}

TEST(EventsSeed, NotificationWithNullTaskIdAndDefaultChannels) {
    // Pydantic's model_dump() writes Optional fields left unset as null.
    const json doc{{"user_id", "user-42"}, {"task_id", nullptr}, {"type", "task_overdue"},
                   {"title", "Overdue"}, {"message", "A task is overdue"}};
    const auto request = ev::parse_notification_request(doc.dump(), kPos);
    EXPECT_FALSE(request.task_id.has_value());
    EXPECT_EQ(request.channels, std::vector<std::string>{"in_app"});
    EXPECT_TRUE(ev::is_uuid(request.event_id));
}

TEST(EventsCompat, UnknownFieldsAndUppercaseUuidAreTolerated) {
    auto doc = valid_task_event();
    doc["added_in_v2"] = {{"anything", 1}};
    doc["task_id"] = "0B7C6F0E-2F4A-4C1E-9A51-6D2F3E8B9C10";
    EXPECT_NO_THROW((void)ev::parse_task_event(doc.dump(), kPos));
}

TEST(EventsErrors, NotJson) {
    expect_error(ev::parse_task_event, "{\"type\": \"task_created\",", ev::ErrorKind::bad_json, "");
    expect_error(ev::parse_task_event, "", ev::ErrorKind::bad_json, "");
}

TEST(EventsErrors, InvalidUtf8) {
    auto text = valid_task_event().dump();
    const auto at = text.find("user-42");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, 4, "\xC3\x28\xFF\xFE");
    try {
        (void)ev::parse_task_event(text, kPos);
        ADD_FAILURE() << "invalid UTF-8 accepted";
    } catch (const ev::EventError& e) {
        EXPECT_EQ(e.kind(), ev::ErrorKind::bad_json);
        EXPECT_EQ(e.reason(), "bad_json");
        // The message may end up in a DLQ header: no raw bytes from the payload.
        for (const unsigned char c : std::string(e.what())) {
            EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "byte " << static_cast<int>(c);
        }
    }
}

TEST(EventsErrors, ArrayInsteadOfObject) {
    expect_error(ev::parse_task_event, json::array({valid_task_event()}).dump(), ev::ErrorKind::bad_json, "");
    expect_error(ev::parse_notification_request, "\"just a string\"", ev::ErrorKind::bad_json, "");
}

TEST(EventsErrors, MissingUserId) {
    auto doc = valid_task_event();
    doc.erase("user_id");
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "user_id");
    doc["user_id"] = "";
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "user_id");
    doc["user_id"] = 42;
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "user_id");
}

TEST(EventsErrors, TaskIdNotUuid) {
    auto doc = valid_task_event();
    doc["task_id"] = "not-a-uuid";
    try {
        (void)ev::parse_task_event(doc.dump(), kPos);
        ADD_FAILURE() << "bad task_id accepted";
    } catch (const ev::EventError& e) {
        EXPECT_EQ(e.kind(), ev::ErrorKind::wrong_schema);
        EXPECT_EQ(e.field(), "task_id");
        EXPECT_EQ(e.reason(), "schema");
        EXPECT_STREQ(e.what(), "task_id: must be a UUID string");
    }
    doc["task_id"] = "0b7c6f0e2f4a4c1e9a516d2f3e8b9c10";  // hex without dashes
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "task_id");
    doc["task_id"] = 12345;
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "task_id");
}

TEST(EventsErrors, EventIdNotUuid) {
    auto doc = valid_task_event();
    doc["event_id"] = "evt-1";
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "event_id");
}

TEST(EventsErrors, SeqWrongTypeOrNegative) {
    auto doc = valid_task_event();
    doc["seq"] = "42";
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "seq");
    doc["seq"] = 42.5;
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "seq");
    doc["seq"] = -1;
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "seq");
    doc["seq"] = std::numeric_limits<std::uint64_t>::max();
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "seq");

    auto update = ev::to_json(sample_task_update());
    update["seq"] = -7;
    expect_error(ev::parse_task_update, update.dump(), ev::ErrorKind::wrong_schema, "seq");
}

TEST(EventsErrors, BadTimestamp) {
    auto doc = valid_task_event();
    for (const char* bad : {"2026-11-27 12:00:00", "2026-11-27T12:00:00", "2026-02-30T12:00:00Z",
                            "2026-11-27T24:00:00Z", "yesterday", "2026-11-27T12:00:00.Z"}) {
        doc["timestamp"] = bad;
        expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "timestamp");
    }
    doc["timestamp"] = 1764244800;
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "timestamp");
}

TEST(EventsErrors, UnknownType) {
    auto doc = valid_task_event();
    doc["type"] = "task_archived";
    try {
        (void)ev::parse_task_event(doc.dump(), kPos);
        ADD_FAILURE() << "unknown type accepted";
    } catch (const ev::EventError& e) {
        EXPECT_EQ(e.kind(), ev::ErrorKind::unknown_type);
        EXPECT_EQ(e.field(), "type");
        EXPECT_EQ(e.reason(), "unknown_type");
    }
    auto update = ev::to_json(sample_task_update());
    update["type"] = "task_archived";
    expect_error(ev::parse_task_update, update.dump(), ev::ErrorKind::unknown_type, "type");
}

TEST(EventsErrors, MissingTypeIsSchemaNotUnknown) {
    auto doc = valid_task_event();
    doc.erase("type");
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "type");
}

TEST(EventsErrors, NotificationEmptyTypeIsSchema) {
    auto doc = ev::to_json(sample_notification());
    doc["type"] = "";
    expect_error(ev::parse_notification_request, doc.dump(), ev::ErrorKind::wrong_schema, "type");
    doc["type"] = "brand_new_kind";  // free text: accepted
    EXPECT_NO_THROW((void)ev::parse_notification_request(doc.dump(), kPos));
}

TEST(EventsTolerantReader, UnknownChannelsAreLeftOutNotRejected) {
    auto doc = ev::to_json(sample_notification());
    doc["channels"] = {"in_app", "pigeon", "email", "in_app"};  // a newer producer's channel
    EXPECT_EQ(ev::parse_notification_request(doc.dump(), kPos).channels, (std::vector<std::string>{"in_app", "email"}));
    doc["channels"] = {"pigeon"};  // nothing we know: shown in the app
    EXPECT_EQ(ev::parse_notification_request(doc.dump(), kPos).channels, (std::vector<std::string>{"in_app"}));
}

TEST(EventsTolerantReader, UnknownFieldsAndHigherVersionsAreRead) {
    auto doc = valid_task_event();
    doc["schema_version"] = 7;
    doc["origin"] = {{"device", "watch"}};
    doc["task_data"]["priority"] = "urgent";  // a value a newer version may add
    const auto e = ev::parse_task_event(doc.dump(), kPos);
    EXPECT_EQ(e.task_data["priority"], "urgent");
    EXPECT_EQ(e.event_id, doc["event_id"]);
}

TEST(EventsErrors, ChannelOfWrongType) {
    auto doc = ev::to_json(sample_notification());
    doc["channels"] = {"email", 3};
    expect_error(ev::parse_notification_request, doc.dump(), ev::ErrorKind::wrong_schema, "channels[1]");
    doc["channels"] = "in_app";
    expect_error(ev::parse_notification_request, doc.dump(), ev::ErrorKind::wrong_schema, "channels");
}

TEST(EventsErrors, MismatchedAction) {
    auto doc = valid_task_event();
    doc["action"] = "deleted";  // type is task_completed
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "action");
    doc["action"] = 1;
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "action");
}

TEST(EventsErrors, PayloadsMustBeObjects) {
    auto doc = valid_task_event();
    doc["task_data"] = json::array();
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "task_data");
    doc.erase("task_data");
    expect_task_event_error(doc, ev::ErrorKind::wrong_schema, "task_data");

    auto update = ev::to_json(sample_task_update());
    update["changes"] = "status=done";
    expect_error(ev::parse_task_update, update.dump(), ev::ErrorKind::wrong_schema, "changes");
}

TEST(EventsErrors, NotificationMissingTitle) {
    auto doc = ev::to_json(sample_notification());
    doc.erase("title");
    expect_error(ev::parse_notification_request, doc.dump(), ev::ErrorKind::wrong_schema, "title");
}

TEST(EventsHelpers, NowRfc3339Format) {
    const auto now = ev::now_rfc3339();
    EXPECT_TRUE(std::regex_match(now, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)"))) << now;
    EXPECT_TRUE(ev::is_rfc3339(now)) << now;
}

TEST(EventsHelpers, IsRfc3339) {
    for (const char* good : {"2026-11-27T12:00:00Z", "2026-11-27T12:00:00.123Z", "2026-11-27t12:00:00z",
                             "2026-11-27T12:00:00.123456+00:00", "2024-02-29T23:59:60-05:30"}) {
        EXPECT_TRUE(ev::is_rfc3339(good)) << good;
    }
    for (const char* bad : {"", "2026-11-27", "2025-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
                            "2026-11-27T12:00:00+0000", "2026-11-27T12:00:00+24:00", "2026-11-27T12:00:00Zjunk"}) {
        EXPECT_FALSE(ev::is_rfc3339(bad)) << bad;
    }
}

TEST(EventsHelpers, NewEventIdIsUniqueTimeOrderedV7) {
    std::set<std::string> ids;
    std::string previous;
    const auto before_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch()).count();
    for (int i = 0; i < 100000; ++i) {
        const auto id = ev::new_event_id();
        ASSERT_TRUE(ev::is_uuid(id)) << id;
        EXPECT_EQ(id[14], '7') << id;
        EXPECT_NE(std::string_view("89ab").find(id[19]), std::string_view::npos) << id;  // RFC 9562 variant
        ASSERT_GT(id, previous) << "ids from one thread grow strictly";
        previous = id;
        ids.insert(id);
    }
    EXPECT_EQ(ids.size(), 100000U);
    // The first 48 bits are the Unix time in ms.
    const auto id = ev::new_event_id();
    const auto ms = std::stoll(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
    EXPECT_GE(ms, before_ms);
    EXPECT_LE(ms, before_ms + 60'000);
}

TEST(EventsHelpers, ActionFor) {
    EXPECT_EQ(ev::action_for("task_created"), "created");
    EXPECT_EQ(ev::action_for("task_updated"), "updated");
    EXPECT_EQ(ev::action_for("task_completed"), "completed");
    EXPECT_EQ(ev::action_for("task_deleted"), "deleted");
    EXPECT_TRUE(ev::action_for("deadline_reminder").empty());
}
