#pragma once
// What every WebSocket endpoint checks before its handshake (docs/websocket.md,
// "Connecting"): the browser's Origin, and the bearer token, which a browser can only send
// as the subprotocols `"bearer", <token>` (it cannot set headers on a WebSocket). Shared by
// the task hub (`/ws`) and the console's live feed (`/admin/live`).

#include <boost/beast/core/tcp_stream.hpp>
#include <string>
#include <string_view>
#include <vector>

#include <optional>

#include "auth/jwt.hpp"
#include "http/message.hpp"

namespace taskstream::ws {

/// The origins a browser may open a socket from: the server's own (`http(s)://<Host>`) and
/// CORS_ORIGINS ("*" allows any). A request without Origin (not a browser) is allowed.
bool origin_allowed(std::string_view origin, std::string_view host, const std::vector<std::string>& cors_origins);

struct UpgradeToken {
  std::string token;          ///< empty: the request carries none
  bool subprotocol = false;   ///< sent as subprotocols: the answer must name "bearer"
};

/// The bearer token of an upgrade request: the Authorization header, else the subprotocols
/// `bearer, <token>`. Throws auth::AuthError for an Authorization header that is not Bearer.
UpgradeToken upgrade_token(const http::Request& req);

/// Answers a refused upgrade with problem+json (`status`, `detail`) and closes the
/// connection; takes the stream over meanwhile.
void refuse_upgrade(boost::beast::tcp_stream& stream, const http::Request& req, int status, const std::string& detail);

struct UpgradeCredentials {
  auth::JwtCodec::Claims claims;
  bool subprotocol = false;  ///< the token came as subprotocols: the answer must name "bearer"
};

/// Checks the Origin and verifies the bearer token of an upgrade. On failure answers it
/// (403 for the origin, 401 for a missing, malformed or invalid token: refuse_upgrade) and
/// returns nullopt; the stream is gone then.
std::optional<UpgradeCredentials> authenticate_upgrade(boost::beast::tcp_stream& stream, const http::Request& req,
                                                       const std::vector<std::string>& cors_origins, const auth::JwtCodec& jwt);

}  // namespace taskstream::ws
