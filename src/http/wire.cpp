#include "http/wire.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <random>

#include <spdlog/spdlog.h>

#include "util/logging.hpp"

namespace taskstream::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::size_t kMaxRequestIdLength = 128;

bool is_bodyless_status(int status) { return (status >= 100 && status < 200) || status == 204 || status == 304; }

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

/// Beast 1.74 hands out boost::string_view.
std::string_view sv(boost::beast::string_view s) noexcept { return {s.data(), s.size()}; }

}  // namespace

std::string generate_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t v = rng();
  std::string id(16, '0');
  for (auto& c : id) {
    c = kHex[v & 0xf];
    v >>= 4;
  }
  return id;
}

bool acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

void fill_request(const BeastRequest& msg, Request& req) {
  req.method = std::string{msg.method_string()};
  parse_target(sv(msg.target()), req);
  req.headers.clear();
  for (const auto& field : msg) req.headers.emplace_back(ascii_lower(sv(field.name_string())), std::string{sv(field.value())});
  const auto id = sv(msg["X-Request-Id"]);
  req.request_id = acceptable_request_id(id) ? std::string{id} : generate_request_id();
}

BeastResponse to_beast(Response res, unsigned version, bool keep_alive, const std::string& request_id) {
  if (res.status < 100 || res.status > 599) {
    util::LogScope scope({.request_id = request_id});
    spdlog::error("handler answered with invalid status {}", res.status);
    res = Response::problem(500, "internal server error");
  }
  BeastResponse msg;
  msg.version(version);
  msg.result(static_cast<unsigned>(res.status));
  msg.set(bhttp::field::server, "taskstream");
  for (auto& [name, value] : res.headers) {
    // Handlers may echo client input into headers; a CR/LF there would split the response.
    if (name.empty() || has_crlf(name) || has_crlf(value)) {
      util::LogScope scope({.request_id = request_id});
      spdlog::warn("dropped response header with CR/LF or an empty name");
      continue;
    }
    msg.insert(name, value);
  }
  msg.set("X-Request-Id", request_id);
  msg.keep_alive(keep_alive);
  if (is_bodyless_status(res.status)) return msg;  // RFC 9110: no body, no Content-Length
  if (!res.content_type.empty()) msg.set(bhttp::field::content_type, res.content_type);
  msg.body() = std::move(res.body);
  msg.content_length(msg.body().size());
  return msg;
}

}  // namespace taskstream::http
