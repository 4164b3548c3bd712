#pragma once
// What a WebSocket client may send on /ws (docs/websocket.md, "Client → server"), parsed with
// no I/O: `{"type":"resume","last_seq":N}` (N an integer >= 0), `{"type":"ping"}`, anything
// else an error the hub answers with an error frame. Fuzzed by fuzz/fuzz_ws.cpp together with
// the Sequencer it drives.

#include <cstdint>
#include <string>
#include <string_view>

namespace taskstream::ws {

struct ClientMessage {
  enum class Kind { resume, ping, error };
  Kind kind = Kind::error;
  std::int64_t last_seq = 0;  ///< resume: the last seq the client has
  std::string detail;         ///< error: what the hub tells the client
};

/// Never throws; any text (not JSON, not UTF-8, deeply nested, huge numbers) is an answer.
ClientMessage parse_client_message(std::string_view text);

/// The frame the hub sends for an error: {"type":"error","detail":...}.
std::string error_frame(std::string_view detail);

}  // namespace taskstream::ws
