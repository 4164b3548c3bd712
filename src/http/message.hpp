#pragma once
// HTTP requests and responses as handlers see them: plain values, no Beast types.

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace taskstream::http {

struct Request {
  std::string method;  ///< "GET", "POST", ...
  std::string path;    ///< decoded path without the query, e.g. "/tasks/abc"
  /// The path as sent (still percent-encoded). The router splits this one when it is set so
  /// that an encoded "/" ("%2F") stays inside its segment; empty for hand-built requests.
  std::string raw_path;
  std::map<std::string, std::string, std::less<>> query;  ///< decoded query parameters (last wins)
  std::map<std::string, std::string, std::less<>> params; ///< path parameters from the route, e.g. {"id": "abc"}
  std::vector<std::pair<std::string, std::string>> headers;  ///< names lower-cased
  std::string body;
  std::string remote;  ///< peer address
  std::string request_id;  ///< X-Request-Id if sent, else generated
  std::string user_id;     ///< set by the router after authentication (routes that need it)
  std::vector<std::string> roles;  ///< the roles the caller's token grants (same)

  /// First header `name` (case-insensitive), if present.
  std::optional<std::string_view> header(std::string_view name) const;
  std::optional<std::string_view> query_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers

  static Response json(int status, const nlohmann::json& body);
  static Response no_content();  ///< 204
  /// application/problem+json with {"status","title","detail"} (FastAPI clients read detail).
  static Response problem(int status, std::string_view detail, std::string_view title = {});
};

/// Thrown by handlers (or body parsing) to answer with a problem response.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, std::string detail) : std::runtime_error(detail), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

/// The standard reason phrase of `status` ("Not Found"); "Unknown" for unlisted codes.
std::string_view reason_phrase(int status);

/// ASCII lower case (header names, tokens).
std::string ascii_lower(std::string_view s);
/// `s` without leading and trailing spaces and tabs (HTTP's optional whitespace).
std::string_view trim_ows(std::string_view s);

/// Decodes %XX escapes (and "+" as a space when `plus_as_space`, for query strings).
/// Malformed escapes are kept as they are: a lenient decoder never fails a request.
std::string percent_decode(std::string_view text, bool plus_as_space = false);

/// Splits a request target ("/tasks/a%20b?status=todo&limit=5") into req.raw_path, the
/// decoded req.path and the decoded req.query (a repeated key: the last one wins).
void parse_target(std::string_view target, Request& req);

}  // namespace taskstream::http
