#include "workers/audit_consumer.hpp"

#include "workers/event_batch.hpp"

namespace taskstream::workers {

storage::AuditEntry to_audit_entry(events::TaskEvent e, std::string_view topic, std::int32_t partition, std::int64_t offset) {
  storage::AuditEntry a;
  a.event_id = std::move(e.event_id);
  a.user_id = std::move(e.user_id);
  a.task_id = std::move(e.task_id);
  a.type = std::move(e.type);
  a.action = std::move(e.action);
  a.seq = e.seq;
  a.occurred_at = std::move(e.timestamp);
  a.task_data = e.task_data.dump();
  a.source_topic = std::string(topic);
  a.source_partition = partition;
  a.source_offset = offset;
  return a;
}

kafka::BatchHandler audit_handler(storage::Store& store, std::string consumer_group) {
  return [&store, group = std::move(consumer_group)](std::span<const kafka::Message> batch, kafka::BatchContext& ctx) {
    std::vector<storage::AuditEntry> entries;
    entries.reserve(batch.size());
    for_each_event(batch, ctx, events::parse_task_event, [&](const kafka::Message& m, events::TaskEvent e) {
      entries.push_back(to_audit_entry(std::move(e), m.topic(), m.partition(), m.offset()));
    });
    if (!entries.empty()) store.record_audit(group, entries);
  };
}

}  // namespace taskstream::workers
