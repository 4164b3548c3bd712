#include "http/router.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "util/logging.hpp"

namespace taskstream::http {

namespace {

bool is_param(std::string_view segment) noexcept {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

/// "/a/b" → {"a","b"}; "/" → {""}; "/a/" → {"a",""} (a trailing slash is a different path).
std::vector<std::string> split(std::string_view path, bool decode) {
  std::vector<std::string> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    const auto slash = path.find('/');
    const std::string_view piece = path.substr(0, slash);
    out.push_back(decode ? percent_decode(piece) : std::string{piece});
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool matches(const std::vector<std::string>& pattern, const std::vector<std::string>& path) {
  if (pattern.size() != path.size()) return false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (is_param(pattern[i])) {
      if (path[i].empty()) return false;  // "/tasks/" must not match "/tasks/{id}"
    } else if (pattern[i] != path[i]) {
      return false;
    }
  }
  return true;
}

/// True when `a` should win over `b`: the first segment where they differ in kind is a
/// literal in `a` ("/tasks/search" beats "/tasks/{id}" whatever the registration order).
bool more_specific(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const bool pa = is_param(a[i]);
    const bool pb = is_param(b[i]);
    if (pa != pb) return !pa;
  }
  return false;
}

}  // namespace

void Router::add(Route route, Handler handler) {
  if (route.pattern.empty() || route.pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + route.pattern);
  }
  if (!handler) throw std::invalid_argument("route without a handler: " + route.pattern);
  auto segments = split(route.pattern, false);
  for (const auto& s : segments) {
    if (s == "{}") throw std::invalid_argument("route pattern has an unnamed {} segment: " + route.pattern);
  }
  for (const auto& r : routes_) {
    if (r.method == route.method && r.pattern == route.pattern) {
      throw std::invalid_argument("route registered twice: " + route.method + " " + route.pattern);
    }
  }
  routes_.push_back(std::move(route));
  handlers_.push_back(std::move(handler));
  segments_.push_back(std::move(segments));
}

boost::asio::awaitable<Response> Router::dispatch(Request& req, std::string* route_label) const {
  if (CorsPolicy::is_preflight(req)) {
    if (route_label) *route_label = "preflight";
    const auto path = req.raw_path.empty() ? split(req.path, false) : split(req.raw_path, true);
    std::vector<std::string> methods;
    for (std::size_t i = 0; i < routes_.size(); ++i)
      if (matches(segments_[i], path)) methods.push_back(routes_[i].method);
    std::sort(methods.begin(), methods.end());
    methods.erase(std::unique(methods.begin(), methods.end()), methods.end());
    co_return cors_.preflight(req, methods);
  }
  Response res = co_await route(req, route_label);
  cors_.decorate(req, res);
  co_return res;
}

boost::asio::awaitable<Response> Router::route(Request& req, std::string* route_label) const {
  if (route_label) *route_label = "unmatched";
  req.params.clear();
  req.user_id.clear();

  // The raw path keeps "%2F" inside its segment; hand-built requests only have the path.
  const auto path = req.raw_path.empty() ? split(req.path, false) : split(req.raw_path, true);

  std::optional<std::size_t> best;
  std::vector<std::string> allowed;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (!matches(segments_[i], path)) continue;
    if (routes_[i].method == req.method) {
      if (!best || more_specific(segments_[i], segments_[*best])) best = i;
    } else {
      allowed.push_back(routes_[i].method);
    }
  }

  if (!best) {
    if (allowed.empty()) co_return Response::problem(404, "no route matches " + req.path);
    std::sort(allowed.begin(), allowed.end());
    allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
    std::string allow;
    for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    Response res = Response::problem(405, "method " + req.method + " is not allowed for " + req.path);
    res.headers.emplace_back("Allow", std::move(allow));
    co_return res;
  }

  const Route& route = routes_[*best];
  if (route_label) *route_label = route.pattern;
  const auto& pattern = segments_[*best];
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (is_param(pattern[i])) req.params.insert_or_assign(pattern[i].substr(1, pattern[i].size() - 2), path[i]);
  }

  Response res;
  bool authenticating = false;
  try {
    if (route.requires_auth) {
      if (!authenticator_) {
        // A wiring mistake, not the client's: never let a protected route run unchecked.
        util::LogScope scope({.request_id = req.request_id});
        spdlog::error("route {} {} requires auth but the router has no authenticator", route.method, route.pattern);
        co_return Response::problem(500, "internal server error");
      }
      authenticating = true;
      auto who = authenticator_(req);
      authenticating = false;
      req.user_id = std::move(who.user_id);
      req.roles = std::move(who.roles);
      if (!route.role.empty() && std::find(req.roles.begin(), req.roles.end(), route.role) == req.roles.end())
        throw HttpError(403, "forbidden: this route is for accounts with the " + route.role + " role");
    }
    res = co_await handlers_[*best](req);
  } catch (const HttpError& e) {
    if (e.status() < 100 || e.status() > 599) {
      util::LogScope scope({.request_id = req.request_id});
      spdlog::error("{} {} threw HttpError with invalid status {}: {}", req.method, route.pattern, e.status(), e.what());
      res = Response::problem(500, "internal server error");
    } else {
      res = Response::problem(e.status(), e.what());
      // RFC 7235: a 401 names the scheme the client should use.
      if (authenticating && e.status() == 401) res.headers.emplace_back("WWW-Authenticate", "Bearer");
    }
  } catch (const std::exception& e) {
    // The detail stays generic: exception texts can carry SQL or paths clients must not see.
    util::LogScope scope({.request_id = req.request_id});
    std::optional<Response> translated;
    if (translator_) translated = translator_(e);
    if (translated) {
      spdlog::warn("{} {} answered {}: {}", req.method, route.pattern, translated->status, e.what());
      res = std::move(*translated);
    } else {
      spdlog::error("{} {} failed: {}", req.method, route.pattern, e.what());
      res = Response::problem(500, "internal server error");
    }
  } catch (...) {
    util::LogScope scope({.request_id = req.request_id});
    spdlog::error("{} {} failed with a non-standard exception", req.method, route.pattern);
    res = Response::problem(500, "internal server error");
  }
  co_return res;
}

}  // namespace taskstream::http
