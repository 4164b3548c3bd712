#pragma once
// The first step of every consumer: parse each message of a batch into its event type and
// dead-letter the ones that do not parse (bad JSON, wrong schema, unknown type) with the
// parser's reason, so the handler only ever sees valid events.

#include <span>
#include <string>
#include <utility>

#include "events/events.hpp"
#include "kafka/consumer_runner.hpp"

namespace taskstream::workers {

/// The largest event a consumer accepts. A task at its limits (10,000-character description)
/// is well under it; anything larger is not ours and goes to the DLQ as `oversized`.
inline constexpr std::size_t kMaxEventBytes = 64 * 1024;

/// Calls `on_event(message, event)` for each message that `parse` accepts, in batch order;
/// `parse` is one of events::parse_task_event, parse_task_update, parse_notification_request.
template <typename Parse, typename OnEvent>
void for_each_event(std::span<const kafka::Message> batch, kafka::BatchContext& ctx, Parse&& parse, OnEvent&& on_event) {
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& m = batch[i];
    if (m.payload().size() > kMaxEventBytes) {
      ctx.dead_letter(i, "oversized", "permanent",
                      "payload of " + std::to_string(m.payload().size()) + " bytes exceeds " + std::to_string(kMaxEventBytes));
      continue;
    }
    try {
      auto event = parse(m.payload(), events::SourcePosition{m.topic(), m.partition(), m.offset()});
      on_event(m, std::move(event));
    } catch (const events::EventError& e) {
      ctx.dead_letter(i, std::string(e.reason()), "permanent", e.what());
    }
  }
}

}  // namespace taskstream::workers
