// Fuzz target: the consumers' payload parsers (src/events/events.hpp).
//
// Every input is handed to all three parsers, as a message on each of the three topics, and
// its first three lines to the CloudEvents header reader (events/cloudevents.hpp) as
// ce_specversion, ce_id and ce_source: it must never throw, and an id it accepts must give a
// UUID event id.
// The parsers' contract is "an event or EventError": any other exception escaping, or a
// sanitizer report, is a bug. An accepted event must also survive a serialize/parse round
// trip unchanged, since the relay republishes what the consumers accept.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string_view>

#include "events/cloudevents.hpp"
#include "events/events.hpp"

namespace ev = taskstream::events;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_events: %s\n", what);
  std::abort();
}

template <typename Parse>
void check(std::string_view payload, const ev::SourcePosition& pos, Parse parse) {
  try {
    const auto event = parse(payload, pos);
    std::string again;
    try {
      again = ev::serialize(event);
    } catch (const nlohmann::json::exception& e) {
      // The parser accepted only valid UTF-8, so the serializer must not refuse it.
      std::fprintf(stderr, "%s\n", e.what());
      fail("serialize threw for an accepted event");
    }
    try {
      const auto reparsed = parse(again, pos);
      // Compare as text: JSON numbers that are not exact (floats) compare unreliably as values.
      if (ev::serialize(reparsed) != again) fail("serialize/parse round trip changed the event");
    } catch (const ev::EventError& e) {
      std::fprintf(stderr, "%s\n", e.what());
      fail("a serialized accepted event was rejected");
    }
  } catch (const ev::EventError& e) {
    // The documented rejection: reason() and field() go into DLQ headers.
    const auto reason = e.reason();
    if (reason != "bad_json" && reason != "schema" && reason != "unknown_type") fail("unknown EventError reason");
    if (e.kind() == ev::ErrorKind::bad_json && !e.field().empty()) fail("bad_json with a field");
  }
}

void check_cloudevent(std::string_view input) {
  std::string_view parts[3];
  for (auto& part : parts) {
    const auto nl = input.find('\n');
    part = input.substr(0, nl);
    input = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
  }
  const auto ce = ev::read_cloudevent(&parts[0], &parts[1], &parts[2]);
  if (!ce.id.empty() && !ev::is_uuid(ev::event_id_of_cloudevent(ce.id, ce.source))) fail("a CloudEvent id gave no UUID");
  if (ce.id.empty() && parts[0] == "1.0" && ce.ignored.empty()) fail("ce_id dropped without a reason");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  check_cloudevent(payload);
  check(payload, {"task-events", 0, 42}, [](std::string_view p, const ev::SourcePosition& pos) {
    return ev::parse_task_event(p, pos);
  });
  check(payload, {"task-updates", 1, 7}, [](std::string_view p, const ev::SourcePosition& pos) {
    return ev::parse_task_update(p, pos);
  });
  check(payload, {"notification.request", 2, 0}, [](std::string_view p, const ev::SourcePosition& pos) {
    return ev::parse_notification_request(p, pos);
  });
  return 0;
}
