#pragma once
// Router: method + path pattern → handler. Patterns are literal segments and `{name}`
// segments ("/tasks/{id}/complete"). Built once at start, then read-only (thread-safe).

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "http/cors.hpp"
#include "http/message.hpp"

#include <utility>  // Boost 1.74's awaitable.hpp misses it
#include <boost/asio/awaitable.hpp>

namespace taskstream::http {

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

/// Who a request comes from: the user id and the roles its (verified) token grants.
struct Principal {
  Principal(std::string id = {}, std::vector<std::string> r = {}) : user_id(std::move(id)), roles(std::move(r)) {}
  std::string user_id;
  std::vector<std::string> roles;
};

/// Checks the Authorization header of a request to a protected route: returns who it is
/// (a user id converts), or throws HttpError(401, ...).
using Authenticator = std::function<Principal(const Request&)>;

struct Route {
  std::string method;
  std::string pattern;
  bool requires_auth = true;
  std::string summary;  ///< for the OpenAPI description and logs
  /// A role the caller's token must grant ("operator" for /admin routes); empty: any user.
  /// Missing: 403, checked on every request after the 401 checks.
  std::string role = {};
};

class Router final {
 public:
  /// Throws std::invalid_argument for a pattern that does not start with "/", an empty
  /// `{}` segment, or a method + pattern pair that is already registered.
  void add(Route route, Handler handler);
  void set_authenticator(Authenticator a) { authenticator_ = std::move(a); }
  /// Gives an exception a handler let through its response (the API maps a database
  /// outage to 503/507); nullopt leaves it a 500. Called on the handler's thread.
  using ErrorTranslator = std::function<std::optional<Response>(const std::exception&)>;
  void set_error_translator(ErrorTranslator t) { translator_ = std::move(t); }
  /// Cross-origin calls (docs/api.md, "CORS"): answers preflights itself and adds the CORS
  /// headers to every answer. Off (no header, preflights 403) until set.
  void set_cors(CorsPolicy cors) { cors_ = std::move(cors); }

  /// Finds the route (404 when no pattern matches, 405 with Allow when only the method is
  /// wrong), authenticates when the route needs it, fills req.params / req.user_id, calls
  /// the handler. HttpError → problem response; another exception → the translator's
  /// response, else 500 (logged).
  /// `route_label` receives the matched pattern (for metrics), or "unmatched". A CORS
  /// preflight is answered by the CorsPolicy (label "preflight"); every answer gets its
  /// CORS headers.
  boost::asio::awaitable<Response> dispatch(Request& req, std::string* route_label = nullptr) const;

  const std::vector<Route>& routes() const noexcept { return routes_; }

 private:
  boost::asio::awaitable<Response> route(Request& req, std::string* route_label) const;

  std::vector<Route> routes_;
  std::vector<Handler> handlers_;
  std::vector<std::vector<std::string>> segments_;  ///< routes_[i].pattern split at "/", once in add()
  Authenticator authenticator_;
  ErrorTranslator translator_;
  CorsPolicy cors_;
};

}  // namespace taskstream::http
