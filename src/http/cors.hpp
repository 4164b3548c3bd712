#pragma once
// Cross-origin requests to the HTTP API (docs/api.md, "CORS"): the origins of CORS_ORIGINS
// ("*": any) may call the API from a browser page served elsewhere. Credentials are off
// (the API authenticates with a bearer token, never a cookie), so no
// Access-Control-Allow-Credentials is ever sent. Pure logic over Request/Response; the
// router applies it to every answer (thread-safe: read-only after construction).

#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"

namespace taskstream::http {

class CorsPolicy final {
 public:
  CorsPolicy() = default;
  explicit CorsPolicy(std::vector<std::string> origins);

  /// False without any origin: no CORS header is sent and every preflight is refused.
  bool enabled() const noexcept { return !origins_.empty(); }
  bool allows(std::string_view origin) const noexcept;

  /// A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method.
  static bool is_preflight(const Request& req);

  /// The answer to a preflight for a path whose routes accept `path_methods` (empty: no
  /// route matches the path). 204 with the Access-Control-Allow-* headers; 403 for an origin
  /// or a request header that is not allowed, 404 for an unknown path, 405 (with Allow) for
  /// a method the path does not accept; each a problem+json naming what was refused.
  Response preflight(const Request& req, const std::vector<std::string>& path_methods) const;

  /// Adds the headers of an actual request's answer: Vary: Origin whenever CORS is on (the
  /// answer depends on it); Access-Control-Allow-Origin and -Expose-Headers when the
  /// request's Origin is allowed.
  void decorate(const Request& req, Response& res) const;

  /// The request headers a page may send (lower case), beyond the CORS-safelisted ones.
  static const std::vector<std::string_view>& allowed_request_headers();

 private:
  std::vector<std::string> origins_;
  bool any_ = false;
};

}  // namespace taskstream::http
