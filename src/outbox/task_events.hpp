#pragma once
// The events of a task change, as outbox records (docs/events.md): one on task-events
// (audit trail, the whole task) and one on task-updates (live sync, what changed), both
// keyed by the user and carrying the change's per-user seq.

#include <string>

#include <nlohmann/json.hpp>

#include "config/settings.hpp"
#include "storage/store.hpp"

namespace taskstream::outbox {

/// The task as the API returns it.
nlohmann::json task_to_json(const storage::Task& t);

/// The fields that differ between `before` and `after` (new values), always with
/// updated_at and version when anything changed.
nlohmann::json task_changes(const storage::Task& before, const storage::Task& after);

/// An EventFactory for a change of kind `type` (task_created, task_updated,
/// task_completed, task_deleted). `traceparent` travels into the records' headers.
storage::EventFactory task_event_factory(const config::Settings& settings, std::string type, std::string traceparent = {});

}  // namespace taskstream::outbox
