#include "outbox/task_events.hpp"

#include "events/cloudevents.hpp"
#include "events/events.hpp"

namespace taskstream::outbox {
namespace {

nlohmann::json optional_string(const std::optional<std::string>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

}  // namespace

nlohmann::json task_to_json(const storage::Task& t) {
  return {{"id", t.id},
          {"user_id", t.user_id},
          {"title", t.title},
          {"description", optional_string(t.description)},
          {"status", t.status},
          {"priority", t.priority},
          {"due_at", optional_string(t.due_at)},
          {"created_at", t.created_at},
          {"updated_at", t.updated_at},
          {"completed_at", optional_string(t.completed_at)},
          {"version", t.version}};
}

nlohmann::json task_changes(const storage::Task& before, const storage::Task& after) {
  nlohmann::json changes = nlohmann::json::object();
  if (before.title != after.title) changes["title"] = after.title;
  if (before.description != after.description) changes["description"] = optional_string(after.description);
  if (before.status != after.status) changes["status"] = after.status;
  if (before.priority != after.priority) changes["priority"] = after.priority;
  if (before.due_at != after.due_at) changes["due_at"] = optional_string(after.due_at);
  if (before.completed_at != after.completed_at) changes["completed_at"] = optional_string(after.completed_at);
  if (!changes.empty() || before.version != after.version) {
    changes["updated_at"] = after.updated_at;
    changes["version"] = after.version;
  }
  return changes;
}

storage::EventFactory task_event_factory(const config::Settings& settings, std::string type, std::string traceparent) {
  return [events_topic = settings.kafka_topic_task_events, updates_topic = settings.kafka_topic_task_updates, type = std::move(type),
          traceparent = std::move(traceparent)](const storage::Task* before, const storage::Task* after, std::int64_t seq) {
    const storage::Task& task = after ? *after : *before;
    const auto now = events::now_rfc3339();

    events::TaskEvent audit;
    audit.event_id = events::new_event_id();
    audit.type = type;
    audit.action = std::string(events::action_for(type));
    audit.timestamp = now;
    audit.user_id = task.user_id;
    audit.task_id = task.id;
    audit.seq = seq;
    audit.task_data = task_to_json(task);

    events::TaskUpdateEvent update;
    update.event_id = events::new_event_id();
    update.type = type;
    update.timestamp = now;
    update.user_id = task.user_id;
    update.task_id = task.id;
    update.seq = seq;
    if (!before) update.changes = task_to_json(task);
    else if (!after) update.changes = {{"deleted", true}};
    else update.changes = task_changes(*before, *after);

    std::vector<storage::OutboxRecord> out(2);
    out[0].topic = events_topic;
    out[0].key = task.user_id;
    out[0].payload = events::serialize(audit);
    out[0].event_id = audit.event_id;
    out[0].event_type = type;
    out[0].data_schema = events::current_schema("task-event");
    out[1].topic = updates_topic;
    out[1].key = task.user_id;
    out[1].payload = events::serialize(update);
    out[1].event_id = update.event_id;
    out[1].event_type = type;
    out[1].data_schema = events::current_schema("task-update");
    for (auto& r : out) {
      r.traceparent = traceparent;
      r.user_id = task.user_id;
      r.seq = seq;
      r.created_at = now;
      r.subject = task.id;
    }
    return out;
  };
}

}  // namespace taskstream::outbox
