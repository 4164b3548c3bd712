#include "ws/upgrade.hpp"

#include <fmt/format.h>

#include <boost/beast/http.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "auth/jwt.hpp"

namespace taskstream::ws {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

bool origin_allowed(std::string_view origin, std::string_view host, const std::vector<std::string>& cors_origins) {
  if (origin.empty()) return true;
  if (!host.empty() && (origin == fmt::format("http://{}", host) || origin == fmt::format("https://{}", host))) return true;
  for (const auto& o : cors_origins)
    if (o == "*" || o == origin) return true;
  return false;
}

UpgradeToken upgrade_token(const http::Request& req) {
  if (auto auth = req.header("authorization")) return {auth::bearer_token(*auth), false};
  if (auto proto = req.header("sec-websocket-protocol")) {
    const auto comma = proto->find(',');
    if (comma != std::string_view::npos && http::trim_ows(proto->substr(0, comma)) == "bearer")
      return {std::string(http::trim_ows(proto->substr(comma + 1))), true};
  }
  return {};
}

void refuse_upgrade(beast::tcp_stream& stream, const http::Request& req, int status, const std::string& detail) {
  auto s = std::make_shared<beast::tcp_stream>(std::move(stream));
  auto res = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(status), 11);
  res->set(bhttp::field::content_type, "application/problem+json");
  res->set("X-Request-Id", req.request_id);
  res->keep_alive(false);
  res->body() = nlohmann::json{{"status", status},
                               {"title", std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(status)))},
                               {"detail", detail}}
                    .dump();
  res->prepare_payload();
  s->expires_after(std::chrono::seconds(5));
  bhttp::async_write(*s, *res, [s, res](beast::error_code, std::size_t) {
    beast::error_code ec;
    s->socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  });
}

std::optional<UpgradeCredentials> authenticate_upgrade(beast::tcp_stream& stream, const http::Request& req,
                                                       const std::vector<std::string>& cors_origins, const auth::JwtCodec& jwt) {
  const auto origin = req.header("origin").value_or("");
  if (!origin_allowed(origin, req.header("host").value_or(""), cors_origins)) {
    refuse_upgrade(stream, req, 403, "origin " + std::string(origin) + " is not allowed");
    return std::nullopt;
  }
  try {
    auto bearer = upgrade_token(req);
    if (bearer.token.empty()) {
      refuse_upgrade(stream, req, 401, "missing bearer token (Authorization header or the subprotocols \"bearer\", <token>)");
      return std::nullopt;
    }
    return UpgradeCredentials{jwt.verify_claims(bearer.token), bearer.subprotocol};
  } catch (const auth::AuthError& e) {
    refuse_upgrade(stream, req, 401, e.what());
    return std::nullopt;
  }
}

}  // namespace taskstream::ws
