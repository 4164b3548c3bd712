#include "workers/audit_consumer.hpp"

#include <any>

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

namespace {

/// A batch made ready ahead of the handler: its rows, and what goes to the DLQ.
struct PreparedAudit {
  std::vector<storage::AuditEntry> entries;
  ParsedBatch<events::TaskEvent> parsed;  ///< only its failures are kept
};

PreparedAudit prepare_audit(std::span<const kafka::Message> batch) {
  PreparedAudit p;
  p.parsed = parse_batch(batch, events::parse_task_event);
  p.entries.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (auto& e = p.parsed.events[i]) p.entries.push_back(to_audit_entry(std::move(*e), batch[i].topic(), batch[i].partition(), batch[i].offset()));
  p.parsed.events.clear();
  return p;
}

}  // namespace

void apply_audit_batching(kafka::ConsumerOptions& options) {
  options.max_batch = kAuditBatch;
  options.prepare = [](std::span<const kafka::Message> batch) -> std::any { return prepare_audit(batch); };
}

kafka::BatchHandler audit_handler(storage::AuditStore& store, std::string consumer_group) {
  return [&store, group = std::move(consumer_group)](std::span<const kafka::Message> batch, kafka::BatchContext& ctx) {
    // Prepared on the poll thread while the previous batch was written (pipelining), or now.
    const PreparedAudit* ready = ctx.prepared<PreparedAudit>();
    PreparedAudit here;
    if (!ready) {
      here = prepare_audit(batch);
      ready = &here;
    }
    ready->parsed.dead_letter_failures(ctx);
    if (!ready->entries.empty()) store.record_audit(group, ready->entries);
  };
}

}  // namespace taskstream::workers
