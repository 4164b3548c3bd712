#pragma once
// The server's conversions between Beast's messages and the plain Request/Response handlers
// see (src/http/server.cpp's request path): split out so the fuzzer (fuzz/fuzz_api.cpp)
// drives exactly what the server runs.

#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/message.hpp"

namespace taskstream::http {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using BeastResponse = boost::beast::http::response<boost::beast::http::string_body>;

/// A fresh request id: 16 hex digits.
std::string generate_request_id();

/// A client-sent X-Request-Id is echoed only when it is short (128 bytes at most), visible
/// ASCII: it ends up in logs.
bool acceptable_request_id(std::string_view id);

/// Fills method, target (raw path, path, query), lower-cased headers and the request id
/// (the client's when acceptable, else a new one) from a parsed head. Body and remote are
/// the caller's.
void fill_request(const BeastRequest& msg, Request& req);

/// The Beast response for `res`: an invalid status becomes a 500, a header with CR/LF or
/// an empty name is dropped (handlers may echo client input), X-Request-Id and Server set,
/// no body and no Content-Length for 1xx/204/304.
BeastResponse to_beast(Response res, unsigned version, bool keep_alive, const std::string& request_id);

}  // namespace taskstream::http
