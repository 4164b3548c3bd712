#include "api/body.hpp"

#include <algorithm>

namespace taskstream::api {

nlohmann::json parse_object(std::string_view body) {
  constexpr int kMaxDepth = 32;
  bool too_deep = false;
  auto limit_depth = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxDepth) too_deep = true;
    return !too_deep;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body, limit_depth);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for "1e400"
    if (too_deep) throw http::HttpError(400, "request body nests deeper than 32 levels");
    // nlohmann's message names the byte offset; keep only that part.
    throw http::HttpError(400, "malformed JSON: " + std::string(e.what()).substr(std::string(e.what()).find(']') + 2));
  }
  if (too_deep) throw http::HttpError(400, "request body nests deeper than 32 levels");
  if (!j.is_object()) throw http::HttpError(422, "request body must be a JSON object");
  return j;
}

void check_fields(const nlohmann::json& body, std::initializer_list<std::string_view> allowed,
                  std::initializer_list<std::string_view> server_owned) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(server_owned.begin(), server_owned.end(), key) != server_owned.end())
      throw http::HttpError(422, key + ": is set by the server and cannot be given");
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      throw http::HttpError(422, key + ": unknown field");
  }
}

std::optional<std::string> string_field(const nlohmann::json& body, std::string_view name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) throw http::HttpError(422, std::string(name) + ": must be a string");
  return it->get<std::string>();
}

bool is_null(const nlohmann::json& body, std::string_view name) {
  auto it = body.find(name);
  return it != body.end() && it->is_null();
}

std::size_t utf8_length(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

}  // namespace taskstream::api
