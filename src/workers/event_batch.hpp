#pragma once
// The first step of every consumer: parse each message of a batch into its event type and
// dead-letter the ones that do not parse (bad JSON, wrong schema, unknown type) with the
// parser's reason, whose key names another user than the event (`key_mismatch`), or whose
// CloudEvents `ce_id` names another event than the payload's event_id (`id_mismatch`,
// docs/events.md), so the handler only ever sees valid events.

#include <future>
#include <optional>
#include <span>
#include <vector>
#include <string>
#include <utility>

#include "events/events.hpp"
#include "kafka/consumer_runner.hpp"

namespace taskstream::workers {

/// The largest event a consumer accepts. A task at its limits (10,000-character description)
/// is well under it; anything larger is not ours and goes to the DLQ as `oversized`.
inline constexpr std::size_t kMaxEventBytes = 64 * 1024;

/// Why a message did not parse.
struct ParseFailure {
  std::string reason, detail;
};

/// A parsed batch: slot i holds batch[i]'s event or why it did not parse.
template <typename Event>
struct ParsedBatch {
  std::vector<std::optional<Event>> events;
  std::vector<std::optional<ParseFailure>> failed;
  /// Records the failures in `ctx` (dead letters, in batch order).
  void dead_letter_failures(kafka::BatchContext& ctx) const {
    for (std::size_t i = 0; i < failed.size(); ++i)
      if (failed[i]) ctx.dead_letter(i, failed[i]->reason, "permanent", failed[i]->detail);
  }
};

/// A message key as it may be shown in a dead letter's detail: at most 64 bytes, control
/// characters as '?'.
inline std::string printable_key(std::string_view key) {
  std::string out(key.substr(0, 64));
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return key.size() > 64 ? out + "..." : out;
}

/// parse_events (below) without a context: pure, so it may run ahead of the handler
/// (ConsumerOptions::prepare).
template <typename Parse>
auto parse_batch(std::span<const kafka::Message> batch, Parse&& parse) {
  using Event = decltype(parse(std::string_view{}, events::SourcePosition{}));
  ParsedBatch<Event> parsed;
  parsed.events.resize(batch.size());
  parsed.failed.resize(batch.size());
  auto& out = parsed.events;
  auto& failed = parsed.failed;
  auto work = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const auto& m = batch[i];
      if (m.payload().size() > kMaxEventBytes) {
        failed[i] = ParseFailure{"oversized", "payload of " + std::to_string(m.payload().size()) + " bytes exceeds " +
                                             std::to_string(kMaxEventBytes)};
        continue;
      }
      // CloudEvents headers are optional (docs/events.md, "CloudEvents"): when present, ce_id
      // names the event; an id-less payload takes it, one with another event_id is refused.
      const auto ce = kafka::cloudevent_of(m);
      const std::string ce_event_id = ce.id.empty() ? std::string() : events::event_id_of_cloudevent(ce.id, ce.source);
      try {
        out[i].emplace(parse(m.payload(), events::SourcePosition{m.topic(), m.partition(), m.offset(), ce_event_id}));
      } catch (const events::EventError& e) {
        failed[i] = ParseFailure{std::string(e.reason()), e.what()};
        continue;
      }
      if (!ce_event_id.empty() && !events::same_event_id(out[i]->event_id, ce_event_id)) {
        failed[i] = ParseFailure{"id_mismatch", "ce_id \"" + printable_key(ce.id) + "\" is not the event's event_id \"" +
                                                    out[i]->event_id + "\""};
        out[i].reset();
        continue;
      }
      // Events are keyed by their user (per-user order rests on it): a key naming someone
      // else is a producer's bug or a forgery, never applied. A message without a key (a
      // hand-made one, e.g. kcat -P) is accepted; it has no order with the user's others.
      if (!m.key().empty() && m.key() != out[i]->user_id) {
        failed[i] = ParseFailure{"key_mismatch", "message key \"" + printable_key(m.key()) + "\" is not the event's user_id \"" +
                                                     out[i]->user_id + "\""};
        out[i].reset();
      }
    }
  };
  constexpr std::size_t kParallelFrom = 256;
  if (batch.size() >= kParallelFrom) {
    const std::size_t half = batch.size() / 2;
    auto second = std::async(std::launch::async, work, half, batch.size());
    work(0, half);
    second.get();
  } else {
    work(0, batch.size());
  }
  return parsed;
}

/// Parses every message of `batch` with `parse` (one of events::parse_task_event,
/// parse_task_update, parse_notification_request): slot i holds the event of batch[i], or
/// nothing when it was dead-lettered (oversized, bad JSON, wrong schema, unknown type; the
/// dead letters are recorded in `ctx` in batch order). A large batch is parsed in two halves
/// on two threads: parsing is the CPU-heavy part of a consumer and the DB write that follows
/// is mostly waiting.
template <typename Parse>
auto parse_events(std::span<const kafka::Message> batch, kafka::BatchContext& ctx, Parse&& parse) {
  auto parsed = parse_batch(batch, std::forward<Parse>(parse));
  parsed.dead_letter_failures(ctx);
  return std::move(parsed.events);
}

/// Calls `on_event(message, event)` for each message that `parse` accepts, in batch order
/// (see parse_events).
template <typename Parse, typename OnEvent>
void for_each_event(std::span<const kafka::Message> batch, kafka::BatchContext& ctx, Parse&& parse, OnEvent&& on_event) {
  auto parsed = parse_events(batch, ctx, std::forward<Parse>(parse));
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (parsed[i]) on_event(batch[i], std::move(*parsed[i]));
}

}  // namespace taskstream::workers
