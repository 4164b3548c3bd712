#include "http/cors.hpp"

#include <algorithm>
#include <cctype>

namespace taskstream::http {

namespace {

constexpr std::string_view kExposed = "ETag, Location, Retry-After, X-Request-Id, WWW-Authenticate";
constexpr std::string_view kMaxAgeSeconds = "600";

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

CorsPolicy::CorsPolicy(std::vector<std::string> origins) : origins_(std::move(origins)) {
  any_ = std::find(origins_.begin(), origins_.end(), "*") != origins_.end();
}

bool CorsPolicy::allows(std::string_view origin) const noexcept {
  if (origin.empty() || origin == "null") return false;  // "null": sandboxed or file: pages
  return any_ || std::find(origins_.begin(), origins_.end(), origin) != origins_.end();
}

bool CorsPolicy::is_preflight(const Request& req) {
  return req.method == "OPTIONS" && req.header("origin") && req.header("access-control-request-method");
}

const std::vector<std::string_view>& CorsPolicy::allowed_request_headers() {
  // What the API reads (docs/api.md) plus the headers that are safelisted only for some values.
  static const std::vector<std::string_view> headers{"authorization", "content-type", "if-match", "x-request-id",
                                                     "accept", "accept-language", "content-language"};
  return headers;
}

Response CorsPolicy::preflight(const Request& req, const std::vector<std::string>& path_methods) const {
  const auto origin = req.header("origin").value_or("");
  auto refuse = [](int status, std::string detail) {
    Response r = Response::problem(status, detail);
    r.headers.emplace_back("Vary", "Origin");
    return r;
  };
  if (!allows(origin))
    return refuse(403, "CORS preflight: origin " + std::string(origin) +
                           (enabled() ? " is not in CORS_ORIGINS" : " refused: CORS_ORIGINS is empty (cross-origin calls are off)"));
  if (path_methods.empty()) return refuse(404, "CORS preflight: no route matches " + req.path);
  const std::string method{trim_ows(req.header("access-control-request-method").value_or(""))};
  if (std::find(path_methods.begin(), path_methods.end(), method) == path_methods.end()) {
    Response r = refuse(405, "CORS preflight: method " + method + " is not allowed for " + req.path);
    r.headers.emplace_back("Allow", join(path_methods));
    return r;
  }
  const auto& allowed = allowed_request_headers();
  std::string_view asked = req.header("access-control-request-headers").value_or("");
  while (!asked.empty()) {
    const auto comma = asked.find(',');
    const auto name = ascii_lower(trim_ows(asked.substr(0, comma)));
    if (!name.empty() && std::find(allowed.begin(), allowed.end(), name) == allowed.end())
      return refuse(403, "CORS preflight: request header " + name + " is not allowed");
    if (comma == std::string_view::npos) break;
    asked.remove_prefix(comma + 1);
  }
  Response r = Response::no_content();
  r.headers.emplace_back("Access-Control-Allow-Origin", any_ ? std::string("*") : std::string(origin));
  r.headers.emplace_back("Access-Control-Allow-Methods", join(path_methods));
  std::string headers;
  for (auto h : allowed) (headers += headers.empty() ? "" : ", ") += h;
  r.headers.emplace_back("Access-Control-Allow-Headers", std::move(headers));
  r.headers.emplace_back("Access-Control-Max-Age", std::string(kMaxAgeSeconds));
  r.headers.emplace_back("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
  return r;
}

void CorsPolicy::decorate(const Request& req, Response& res) const {
  if (!enabled()) return;
  res.headers.emplace_back("Vary", "Origin");
  const auto origin = req.header("origin");
  if (!origin || !allows(*origin)) return;
  res.headers.emplace_back("Access-Control-Allow-Origin", any_ ? std::string("*") : std::string(*origin));
  res.headers.emplace_back("Access-Control-Expose-Headers", std::string(kExposed));
}

}  // namespace taskstream::http
