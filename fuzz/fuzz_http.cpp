// Fuzz target: HTTP request parsing and routing.
//
// The input is the bytes a client sends on a connection. They go through Beast's request
// parser with the limits src/http/server.cpp uses (Beast's default 8 KiB head, a 1 MiB
// body); a request that parses completely is turned into an http::Request the way the
// server's fill_request does and dispatched by the project's Router over the API's route
// table (fuzz_http_routes.cpp: the real patterns, methods and auth flags; handlers that
// validate like the real ones but use no store).
//
// Bugs: a sanitizer report, an exception escaping dispatch, a status outside 100..599, a
// 500 (none of these handlers can fail through the server's fault), a CR/LF in a response
// header, or a response body that is not JSON.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "fuzz_http_routes.hpp"
#include "http/message.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using taskstream::http::Request;
using taskstream::http::Response;

namespace {

constexpr std::size_t kBodyLimit = 1 << 20;  // ServerOptions::body_limit's default

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_http: %s\n", what);
  std::abort();
}

std::string_view sv(beast::string_view s) noexcept { return {s.data(), s.size()}; }

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // the router logs handler errors; keep the output readable
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.body_limit(kBodyLimit);
  parser.eager(true);
  beast::error_code ec;
  auto buffer = asio::buffer(data, size);
  while (buffer.size() > 0 && !parser.is_done()) {
    const auto used = parser.put(buffer, ec);
    if (ec == bhttp::error::need_more) break;
    if (ec) return 0;  // the server answers 400/413/431 and closes
    if (used == 0) break;
    buffer += used;
  }
  if (!parser.is_done()) return 0;  // incomplete: the server would wait for more bytes

  // As fill_request in src/http/server.cpp.
  const auto& msg = parser.get();
  Request req;
  req.remote = "192.0.2.1";
  req.method = std::string{msg.method_string()};
  taskstream::http::parse_target(sv(msg.target()), req);
  for (const auto& field : msg) req.headers.emplace_back(lower(sv(field.name_string())), std::string{sv(field.value())});
  req.request_id = "fuzz";
  req.body = msg.body();

  std::string label;
  const Response res = fuzz_dispatch(req, label);

  if (res.status < 100 || res.status > 599) fail("status outside 100..599");
  if (res.status == 500) {
    std::fprintf(stderr, "500 from %s: %s\n", label.c_str(), res.body.c_str());
    fail("a 500 answer");
  }
  for (const auto& [name, value] : res.headers)
    if (name.empty() || has_crlf(name) || has_crlf(value)) fail("response header with CR/LF");
  if (res.status != 204 && !nlohmann::json::accept(res.body)) fail("response body is not JSON");
  return 0;
}
