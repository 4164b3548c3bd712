// The CloudEvents Kafka binding, binary mode (docs/events.md, "CloudEvents"): the headers we
// produce and how a consumer reads them back, malformed ones included.

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "events/cloudevents.hpp"
#include "events/events.hpp"
#include "kafka/message.hpp"

namespace ev = taskstream::events;
namespace kafka = taskstream::kafka;

namespace {

std::map<std::string, std::string> as_map(const kafka::Headers& headers) {
  std::map<std::string, std::string> out;
  for (const auto& h : headers) EXPECT_TRUE(out.emplace(h.key, h.value).second) << "header " << h.key << " twice";
  return out;
}

}  // namespace

TEST(CloudEventsHeaders, TaskEventCarriesEveryAttributeAndOurAliases) {
  const auto h = as_map(kafka::event_headers({.event_id = "019acb1e-6f2b-7c41-9a3e-2b1d4e5f6a70",
                                               .event_type = "task_completed",
                                               .schema = "task-event/v1",
                                               .subject = "019acb10-aa11-7b22-8c33-d44e55f66a77",
                                               .time = "2026-11-27T12:00:00.123Z",
                                               .partition_key = "user-1",
                                               .traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}));
  const std::map<std::string, std::string> expected{
      {"event_id", "019acb1e-6f2b-7c41-9a3e-2b1d4e5f6a70"},
      {"event_type", "task_completed"},
      {"schema_version", "1"},
      {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
      {"ce_specversion", "1.0"},
      {"ce_id", "019acb1e-6f2b-7c41-9a3e-2b1d4e5f6a70"},
      {"ce_source", "/taskstream/tasks"},
      {"ce_type", "com.taskstream.task.completed"},
      {"ce_time", "2026-11-27T12:00:00.123Z"},
      {"ce_subject", "019acb10-aa11-7b22-8c33-d44e55f66a77"},
      {"ce_dataschema", "https://taskstream.example/schemas/task-event/v1.schema.json"},
      {"ce_partitionkey", "user-1"},
      {"ce_traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
      {"content-type", "application/json"},
  };
  EXPECT_EQ(h, expected);
}

TEST(CloudEventsHeaders, NotificationRequestsAndRowsWithoutSchemaOrTrace) {
  auto h = as_map(kafka::event_headers(
      {.event_id = "e", .event_type = "deadline_reminder", .schema = "notification-request/v1", .subject = "t", .partition_key = "u"}));
  EXPECT_EQ(h.at("ce_type"), "com.taskstream.notification.requested");
  EXPECT_EQ(h.at("ce_source"), "/taskstream/reminders");
  EXPECT_EQ(h.at("ce_dataschema"), "https://taskstream.example/schemas/notification-request/v1.schema.json");
  EXPECT_FALSE(h.contains("traceparent"));
  EXPECT_FALSE(h.contains("ce_traceparent"));
  EXPECT_FALSE(h.contains("ce_time"));

  // An outbox row written before the outbox kept a schema: version 1, no dataschema/subject.
  h = as_map(kafka::event_headers("e", "task_updated"));
  EXPECT_EQ(h.at("schema_version"), "1");
  EXPECT_EQ(h.at("ce_type"), "com.taskstream.task.updated");
  EXPECT_FALSE(h.contains("ce_dataschema"));
  EXPECT_FALSE(h.contains("ce_subject"));
  EXPECT_EQ(h.at("content-type"), "application/json");
}

TEST(CloudEventsSchema, VersionsAndUris) {
  EXPECT_EQ(ev::current_schema("task-update"), "task-update/v1");
  EXPECT_EQ(ev::schema_version_of("task-update/v12"), "12");
  EXPECT_EQ(ev::schema_version_of(""), "1");
  EXPECT_EQ(ev::schema_version_of("task-update/vx"), "1");
  EXPECT_EQ(ev::schema_version_of("task-update/v"), "1");
  EXPECT_EQ(ev::dataschema_uri(""), "");
}

TEST(CloudEventsReading, AbsentSpecversionMeansNotACloudEvent) {
  const std::string_view id = "x";
  auto ce = ev::read_cloudevent(nullptr, nullptr, nullptr);
  EXPECT_TRUE(ce.id.empty());
  EXPECT_TRUE(ce.ignored.empty());
  ce = ev::read_cloudevent(nullptr, &id, nullptr);
  EXPECT_TRUE(ce.id.empty());
  EXPECT_NE(ce.ignored.find("without ce_specversion"), std::string::npos);
  const std::string_view v03 = "0.3";
  ce = ev::read_cloudevent(&v03, &id, nullptr);
  EXPECT_TRUE(ce.id.empty());
  EXPECT_NE(ce.ignored.find("not 1.0"), std::string::npos);
}

TEST(CloudEventsReading, MalformedAttributesAreTreatedAsAbsent) {
  const std::string_view v = "1.0", empty = "", control = "abc\ndef", source = "/peer";
  const std::string huge(2000, 'a');
  const std::string_view huge_view = huge;
  auto ce = ev::read_cloudevent(&v, &empty, &source);
  EXPECT_TRUE(ce.id.empty());
  EXPECT_EQ(ce.source, "/peer");
  EXPECT_NE(ce.ignored.find("ce_id: empty"), std::string::npos) << ce.ignored;
  ce = ev::read_cloudevent(&v, &control, &huge_view);
  EXPECT_TRUE(ce.id.empty());
  EXPECT_TRUE(ce.source.empty());
  EXPECT_NE(ce.ignored.find("ce_id: contains a control character"), std::string::npos) << ce.ignored;
  EXPECT_NE(ce.ignored.find("ce_source: longer than 1024 bytes"), std::string::npos) << ce.ignored;
  const std::string_view good = "order-42";
  ce = ev::read_cloudevent(&v, &good, &source);
  EXPECT_EQ(ce.id, "order-42");
  EXPECT_TRUE(ce.ignored.empty());
}

TEST(CloudEventsReading, EventIdOfACloudEvent) {
  EXPECT_EQ(ev::event_id_of_cloudevent("019ACB1E-6F2B-7C41-9A3E-2B1D4E5F6A70", "/x"), "019acb1e-6f2b-7c41-9a3e-2b1d4e5f6a70");
  const auto a = ev::event_id_of_cloudevent("order-42", "/shop");
  EXPECT_TRUE(ev::is_uuid(a));
  EXPECT_EQ(a, ev::event_id_of_cloudevent("order-42", "/shop")) << "a re-sent copy gets the same id";
  EXPECT_NE(a, ev::event_id_of_cloudevent("order-42", "/other")) << "the identity is source and id";
  EXPECT_TRUE(ev::same_event_id("019ACB1E-6F2B-7C41-9A3E-2B1D4E5F6A70", "019acb1e-6f2b-7c41-9a3e-2b1d4e5f6a70"));
  EXPECT_FALSE(ev::same_event_id("019acb1e-6f2b-7c41-9a3e-2b1d4e5f6a70", "019acb1e-6f2b-7c41-9a3e-2b1d4e5f6a71"));
}

TEST(CloudEventsReading, AnIdLessPayloadTakesTheCloudEventsId) {
  nlohmann::json doc{{"type", "task_created"}, {"timestamp", "2026-11-27T12:00:00Z"}, {"user_id", "u"},
                     {"task_id", "019acb10-aa11-7b22-8c33-d44e55f66a77"}, {"task_data", nlohmann::json::object()}};
  const auto id = ev::event_id_of_cloudevent("order-42", "/shop");
  EXPECT_EQ(ev::parse_task_event(doc.dump(), {"t", 0, 1, id}).event_id, id);
  EXPECT_NE(ev::parse_task_event(doc.dump(), {"t", 0, 1}).event_id, id) << "without it: derived from the position";
  doc["event_id"] = "019acb1e-6f2b-7c41-9a3e-2b1d4e5f6a70";
  EXPECT_EQ(ev::parse_task_event(doc.dump(), {"t", 0, 1, id}).event_id, "019acb1e-6f2b-7c41-9a3e-2b1d4e5f6a70")
      << "the payload's own id wins (the consumer then checks that both agree)";
}
