#include "ws/client_message.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>

namespace taskstream::ws {

ClientMessage parse_client_message(std::string_view text) {
  using nlohmann::json;
  ClientMessage out;
  // No exceptions: a parse error gives a discarded value.
  const auto msg = json::parse(text, nullptr, false);
  const json::const_iterator type = msg.is_object() ? msg.find("type") : msg.end();
  const bool typed = msg.is_object() && type != msg.end() && type->is_string();
  if (typed && *type == "resume") {
    const auto it = msg.find("last_seq");
    const bool valid = it != msg.end() && (it->is_number_unsigned() ? it->get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX)
                                                                     : it->is_number_integer() && it->get<std::int64_t>() >= 0);
    if (valid) {
      out.kind = ClientMessage::Kind::resume;
      out.last_seq = it->get<std::int64_t>();
    } else {
      out.detail = "resume needs last_seq, an integer >= 0";
    }
  } else if (typed && *type == "ping") {
    out.kind = ClientMessage::Kind::ping;
  } else {
    out.detail = "unknown message; expected {\"type\":\"resume\",\"last_seq\":N}";
  }
  return out;
}

std::string error_frame(std::string_view detail) { return nlohmann::json{{"type", "error"}, {"detail", detail}}.dump(); }

}  // namespace taskstream::ws
