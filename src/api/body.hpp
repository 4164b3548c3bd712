#pragma once
// Reading and checking JSON request bodies: malformed JSON is 400, a body that is not an
// object, an unknown or server-owned field, a wrong type or an out-of-range value is 422
// naming the field.

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http/message.hpp"

namespace taskstream::api {

/// Parses a request body as a JSON object (400 on malformed JSON or nesting deeper than 32,
/// 422 when it is not an object).
nlohmann::json parse_object(std::string_view body);

/// 422 for any key of `body` not in `allowed`; keys in `server_owned` get "is set by the server".
void check_fields(const nlohmann::json& body, std::initializer_list<std::string_view> allowed,
                  std::initializer_list<std::string_view> server_owned = {});

/// The string field `name` (422 when it has another type); nullopt when absent.
/// With `nullable`, JSON null is returned as an empty optional inside the outer one.
std::optional<std::string> string_field(const nlohmann::json& body, std::string_view name);
/// Whether `name` is present and null.
bool is_null(const nlohmann::json& body, std::string_view name);

/// Number of Unicode code points in valid UTF-8 `s`.
std::size_t utf8_length(std::string_view s);

}  // namespace taskstream::api
