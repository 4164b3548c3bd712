#include "events/schema_validator.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "events/cloudevents.hpp"
#include "events/events.hpp"
#include "outbox/task_events.hpp"
#include "storage/types.hpp"

namespace ev = taskstream::events;
using nlohmann::json;

namespace {

constexpr const char* kTaskId = "0b7c6f0e-2f4a-4c1e-9a51-6d2f3e8b9c10";
constexpr const char* kKinds[] = {"task-event", "task-update", "notification-request"};

// A task as the store holds it; task_data and changes are built from it by the outbox code.
taskstream::storage::Task stored_task() {
    taskstream::storage::Task task;
    task.id = kTaskId;
    task.user_id = "user-42";
    task.title = "Buy milk";
    task.status = "in_progress";
    task.priority = "high";
    task.due_at = "2026-12-01T17:00:00.000Z";
    task.created_at = "2026-11-27T11:00:00.000Z";
    task.updated_at = "2026-11-27T12:00:00.000Z";
    task.version = 3;
    return task;
}

// Every version file of a kind: schemas/<kind>/v<N>.schema.json, N = 1, 2, ...
std::vector<std::pair<int, std::filesystem::path>> versions_of(const char* kind) {
    std::vector<std::pair<int, std::filesystem::path>> out;
    for (int n = 1;; ++n) {
        const auto path = std::filesystem::path(TASKSTREAM_SCHEMA_DIR) / kind / ("v" + std::to_string(n) + ".schema.json");
        if (!std::filesystem::exists(path)) break;
        out.emplace_back(n, path);
    }
    return out;
}

json load(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path.string());
    return json::parse(in);  // throws (fails the test) if not JSON
}

// What the producer side builds: fresh ids and timestamps from the helpers, so the
// test also covers their output against the schema patterns.
json produced_task_event() {
    ev::TaskEvent event;
    event.event_id = ev::new_event_id();
    event.type = "task_created";
    event.action = "created";
    event.timestamp = ev::now_rfc3339();
    event.user_id = "user-42";
    event.task_id = kTaskId;
    event.seq = 1;
    event.task_data = {{"id", kTaskId}, {"title", "Buy milk"}};
    return ev::to_json(event);
}

json produced_task_update() {
    ev::TaskUpdateEvent event;
    event.event_id = ev::new_event_id();
    event.type = "task_deleted";
    event.timestamp = ev::now_rfc3339();
    event.user_id = "user-42";
    event.task_id = kTaskId;
    event.seq = 7;
    event.changes = {{"deleted", true}};
    return ev::to_json(event);
}

json produced_notification() {
    ev::NotificationRequest request;
    request.event_id = ev::new_event_id();
    request.user_id = "user-42";
    request.task_id = kTaskId;
    request.type = "deadline_reminder";
    request.title = "Due soon";
    request.message = "Buy milk is due in 1 hour";
    request.channels = {"in_app", "email", "sms"};
    request.email = "someone@example.com";
    return ev::to_json(request);
}

std::string joined(const std::vector<std::string>& errors) {
    std::string out;
    for (const auto& error : errors) {
        out += error + "\n";
    }
    return out;
}

}  // namespace

TEST(SchemaFiles, AreDraft07JsonWithVersionedIdAndOpenProperties) {
    for (const char* kind : kKinds) {
        const auto versions = versions_of(kind);
        ASSERT_FALSE(versions.empty()) << "no schemas/" << kind << "/v1.schema.json";
        for (const auto& [n, path] : versions) {
            SCOPED_TRACE(path.string());
            const auto schema = load(path);
            EXPECT_EQ(schema.at("$schema"), "http://json-schema.org/draft-07/schema#");
            // The URI producers put in the ce_dataschema header (docs/schemas.md).
            EXPECT_EQ(schema.at("$id"),
                      "https://taskstream.example/schemas/" + std::string(kind) + "/v" + std::to_string(n) + ".schema.json");
            EXPECT_TRUE(schema.at("title").is_string());
            EXPECT_TRUE(schema.at("description").is_string());
            EXPECT_EQ(schema.at("additionalProperties"), true);
            EXPECT_TRUE(schema.at("required").is_array());
        }
    }
}

TEST(SchemaFiles, OpenEnumsAreMarkedAndClosedOnesAreNot) {
    // docs/schemas.md: readers tolerate values outside an enum marked x-open-enum; the
    // task events' type and action are closed (an unknown type is dead-lettered).
    const auto task_event = load(versions_of("task-event").back().second);
    const auto task_update = load(versions_of("task-update").back().second);
    const auto notification = load(versions_of("notification-request").back().second);
    const auto& task_data = task_event.at("properties").at("task_data");
    const auto& changes = task_update.at("properties").at("changes");
    for (const auto* field : {&task_data, &changes}) {
        EXPECT_FALSE(field->contains("required")) << "task_data and changes must stay without required fields";
        const auto& properties = field->at("properties");
        EXPECT_EQ(properties.at("status").at("enum"), (json{"todo", "in_progress", "done"}));
        EXPECT_EQ(properties.at("priority").at("enum"), (json{"low", "medium", "high"}));
        EXPECT_EQ(properties.at("status").value("x-open-enum", false), true);
        EXPECT_EQ(properties.at("priority").value("x-open-enum", false), true);
    }
    EXPECT_EQ(notification.at("properties").at("channels").at("items").value("x-open-enum", false), true);
    EXPECT_FALSE(task_event.at("properties").at("type").contains("x-open-enum"));
    EXPECT_FALSE(task_event.at("properties").at("action").contains("x-open-enum"));
    EXPECT_FALSE(task_update.at("properties").at("type").contains("x-open-enum"));
}

TEST(SchemaValidator, UnknownKindAndMissingFileThrow) {
    EXPECT_THROW((void)ev::SchemaValidator::for_topic_kind("task-events"), std::invalid_argument);
    EXPECT_THROW((void)ev::SchemaValidator::for_version("task-events", 1), std::invalid_argument);
    EXPECT_THROW((void)ev::SchemaValidator::for_version("task-event", 0), std::invalid_argument);
    EXPECT_THROW((void)ev::SchemaValidator::for_version("task-event", 9999), std::runtime_error);
    EXPECT_THROW(ev::SchemaValidator(std::filesystem::path(TASKSTREAM_SCHEMA_DIR) / "nope.schema.json"),
                 std::runtime_error);
}

TEST(SchemaValidator, ForTopicKindLoadsTheHighestVersion) {
    for (const char* kind : kKinds) {
        const auto versions = versions_of(kind);
        ASSERT_FALSE(versions.empty()) << kind;
        EXPECT_EQ(ev::SchemaValidator::latest_version(kind), versions.back().first) << kind;
        EXPECT_EQ(ev::SchemaValidator::for_topic_kind(kind).schema_file(), versions.back().second) << kind;
        EXPECT_EQ(ev::SchemaValidator::for_version(kind, 1).schema_file(), versions.front().second) << kind;
    }
}

TEST(SchemaValidator, ProducedTaskEventIsValid) {
    const auto validator = ev::SchemaValidator::for_topic_kind("task-event");
    for (const char* type : {"task_created", "task_updated", "task_completed", "task_deleted"}) {
        auto doc = produced_task_event();
        doc["type"] = type;
        doc["action"] = std::string(ev::action_for(type));
        EXPECT_EQ(joined(validator.validate(doc)), "") << type;
    }
}

TEST(SchemaValidator, ProducedTaskUpdateIsValid) {
    const auto validator = ev::SchemaValidator::for_topic_kind("task-update");
    EXPECT_EQ(joined(validator.validate(produced_task_update())), "");
}

TEST(SchemaValidator, TaskDataAndChangesFromTheOutboxAreValid) {
    // task_data and changes as the outbox builds them (src/outbox/task_events.cpp), for every
    // status and priority the API accepts.
    namespace outbox = taskstream::outbox;
    const auto task_events = ev::SchemaValidator::for_topic_kind("task-event");
    const auto task_updates = ev::SchemaValidator::for_topic_kind("task-update");
    for (const char* status : {"todo", "in_progress", "done"}) {
        for (const char* priority : {"low", "medium", "high"}) {
            const auto before = stored_task();
            auto after = before;
            after.status = status;
            after.priority = priority;
            after.version = before.version + 1;
            auto event = produced_task_event();
            event["task_data"] = outbox::task_to_json(after);
            EXPECT_EQ(joined(task_events.validate(event)), "") << event.dump();

            auto update = produced_task_update();
            update["type"] = "task_updated";
            update["changes"] = outbox::task_changes(before, after);
            EXPECT_EQ(joined(task_updates.validate(update)), "") << update.dump();
            update["type"] = "task_created";
            update["changes"] = outbox::task_to_json(after);
            EXPECT_EQ(joined(task_updates.validate(update)), "") << update.dump();
        }
    }
}

TEST(SchemaValidator, ProducersStayInsideOpenEnums) {
    // x-open-enum is for readers (docs/schemas.md); what is produced still matches the enum.
    auto event = produced_task_event();
    event["task_data"]["status"] = "archived";
    EXPECT_FALSE(ev::SchemaValidator::for_topic_kind("task-event").validate(event).empty());
    auto update = produced_task_update();
    update["type"] = "task_updated";
    update["changes"] = {{"priority", "urgent"}};
    EXPECT_FALSE(ev::SchemaValidator::for_topic_kind("task-update").validate(update).empty());
}

TEST(SchemaValidator, ProducedNotificationIsValid) {
    const auto validator = ev::SchemaValidator::for_topic_kind("notification-request");
    EXPECT_EQ(joined(validator.validate(produced_notification())), "");

    // Default-constructed channels and no optional fields.
    ev::NotificationRequest minimal;
    minimal.event_id = ev::new_event_id();
    minimal.user_id = "u";
    minimal.type = "task_overdue";
    EXPECT_EQ(joined(validator.validate(ev::to_json(minimal))), "");
}

TEST(SchemaValidator, SchemaAgreesWithParserOnProducedMessages) {
    // Whatever passes the schema must also pass our parser, and vice versa, for the
    // messages we produce; guards against the two drifting apart.
    const ev::SourcePosition pos{"task-events", 0, 0};
    EXPECT_NO_THROW((void)ev::parse_task_event(produced_task_event().dump(), pos));
    EXPECT_NO_THROW((void)ev::parse_task_update(produced_task_update().dump(), pos));
    EXPECT_NO_THROW((void)ev::parse_notification_request(produced_notification().dump(), pos));
}

TEST(SchemaValidator, MissingRequiredFieldFails) {
    const auto task_events = ev::SchemaValidator::for_topic_kind("task-event");
    for (const char* field : {"event_id", "type", "action", "timestamp", "user_id", "task_id", "seq", "task_data"}) {
        auto doc = produced_task_event();
        doc.erase(field);
        EXPECT_FALSE(task_events.validate(doc).empty()) << field;
    }
    auto update = produced_task_update();
    update.erase("changes");
    EXPECT_FALSE(ev::SchemaValidator::for_topic_kind("task-update").validate(update).empty());

    auto notification = produced_notification();
    notification.erase("channels");
    EXPECT_FALSE(ev::SchemaValidator::for_topic_kind("notification-request").validate(notification).empty());
}

TEST(SchemaValidator, BadEnumFails) {
    auto doc = produced_task_event();
    doc["type"] = "task_archived";
    EXPECT_FALSE(ev::SchemaValidator::for_topic_kind("task-event").validate(doc).empty());

    auto notification = produced_notification();
    notification["channels"] = {"in_app", "pigeon"};
    EXPECT_FALSE(ev::SchemaValidator::for_topic_kind("notification-request").validate(notification).empty());
}

TEST(SchemaValidator, MismatchedActionFails) {
    auto doc = produced_task_event();  // task_created
    doc["action"] = "deleted";
    EXPECT_FALSE(ev::SchemaValidator::for_topic_kind("task-event").validate(doc).empty());
}

TEST(SchemaValidator, BadPatternsAndTypesFail) {
    const auto validator = ev::SchemaValidator::for_topic_kind("task-event");
    const std::vector<std::pair<const char*, json>> bad{
        {"task_id", "not-a-uuid"},   {"event_id", 17},         {"timestamp", "2026-11-27 12:00"},
        {"timestamp", {{"a", 1}}},   {"seq", -1},              {"seq", "1"},
        {"user_id", ""},             {"task_data", json::array()},
    };
    for (const auto& [field, value] : bad) {
        auto doc = produced_task_event();
        doc[field] = value;
        EXPECT_FALSE(validator.validate(doc).empty()) << field << " = " << value.dump();
    }
}

TEST(SchemaValidator, DeleteUpdateMustSayDeleted) {
    auto update = produced_task_update();  // task_deleted
    update["changes"] = {{"status", "done"}};
    EXPECT_FALSE(ev::SchemaValidator::for_topic_kind("task-update").validate(update).empty());
}

TEST(SchemaValidator, ExtraFieldsAreAllowed) {
    auto doc = produced_task_event();
    doc["added_in_v2"] = true;
    EXPECT_TRUE(ev::SchemaValidator::for_topic_kind("task-event").validate(doc).empty());
}

// Producers never write a version that is not in schemas/ (a v2 file may exist before they
// write it: consumers are deployed first, docs/schemas.md).
TEST(SchemaVersions, WhatProducersWriteIsAVersionInSchemas) {
    for (const auto kind : {"task-event", "task-update", "notification-request"}) {
        const int current = taskstream::events::current_schema_version(kind);
        EXPECT_GE(current, 1) << kind;
        EXPECT_LE(current, ev::SchemaValidator::latest_version(kind)) << kind;
        EXPECT_NO_THROW((void)ev::SchemaValidator::for_version(kind, current)) << kind;
        EXPECT_EQ(taskstream::events::dataschema_uri(taskstream::events::current_schema(kind)),
                  "https://taskstream.example/schemas/" + std::string(kind) + "/v" + std::to_string(current) + ".schema.json");
    }
}
