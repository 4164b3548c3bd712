#pragma once
// The audit consumer (group KAFKA_CONSUMER_GROUP_AUDIT, topic task-events): one audit row
// per event_id, written a batch at a time in one transaction together with the
// processed-events records, so a redelivered batch changes nothing.

#include <string>
#include <string_view>

#include "events/events.hpp"
#include "kafka/consumer_runner.hpp"
#include "storage/roles.hpp"

namespace taskstream::workers {

/// The audit row of one task event read at (topic, partition, offset).
storage::AuditEntry to_audit_entry(events::TaskEvent e, std::string_view topic, std::int32_t partition, std::int64_t offset);

/// The batch handler: parses every message (dead-lettering what does not parse) and records
/// the rest with Store::record_audit. A storage error propagates, so the runner retries the
/// batch with backoff and commits nothing meanwhile.
kafka::BatchHandler audit_handler(storage::AuditStore& store, std::string consumer_group);

/// The audit consumer's batch size.
inline constexpr std::size_t kAuditBatch = 2000;

/// The audit consumer's batching, as `serve` and `worker` run it: batches of kAuditBatch,
/// each parsed into rows (ConsumerOptions::prepare) while the one before is written, so
/// the handler only writes them.
void apply_audit_batching(kafka::ConsumerOptions& options);

}  // namespace taskstream::workers
