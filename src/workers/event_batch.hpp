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

/// Calls `on_event(message, event)` for each message that `parse` accepts, in batch order;
/// `parse` is one of events::parse_task_event, parse_task_update, parse_notification_request.
template <typename Parse, typename OnEvent>
void for_each_event(std::span<const kafka::Message> batch, kafka::BatchContext& ctx, Parse&& parse, OnEvent&& on_event) {
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& m = batch[i];
    try {
      auto event = parse(m.payload(), events::SourcePosition{m.topic(), m.partition(), m.offset()});
      on_event(m, std::move(event));
    } catch (const events::EventError& e) {
      ctx.dead_letter(i, std::string(e.reason()), "permanent", e.what());
    }
  }
}

}  // namespace taskstream::workers
