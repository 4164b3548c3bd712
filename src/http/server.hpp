#pragma once
// HTTP/1.1 server on Boost.Beast with C++20 coroutines (one coroutine a connection),
// after Beast's advanced server example: keep-alive, a body limit (413), a header timeout
// and an idle timeout, and a graceful stop.
//
// Lifecycle: construct, start() (binds and listens; throws on a busy port), run the
// io_context on N threads, stop_accepting(), then wait_idle(deadline) lets requests in
// flight finish before the owner stops the io_context.
// Thread-safety: start/stop from the owner; handlers run on the io_context's threads and
// must not block (post blocking work elsewhere: see blocking.hpp).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "http/router.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace taskstream::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;  ///< 0: any free port (see Server::port())
  std::size_t body_limit = 1 << 20;  ///< larger bodies get 413
  std::chrono::seconds header_timeout{10};  ///< time to receive the request head (slow-loris)
  std::chrono::seconds idle_timeout{60};    ///< keep-alive connections idle longer are closed
};

/// Called after each request with its route label, status and duration (metrics, logs).
using RequestObserver = std::function<void(const Request&, std::string_view route, int status, std::chrono::nanoseconds)>;

/// A request for a protocol upgrade (WebSocket, issue 5): the hook takes the socket over.
/// Returns false to let the router answer instead.
///
/// Offered every fully read request that carries `Connection: upgrade` and an `Upgrade`
/// header, on the connection's strand (the stream's executor). Returning true means the hook
/// moved `stream` out (e.g. into a websocket::stream, passing `raw` to async_accept) and owns
/// it from now on: the server forgets the connection, does not answer, does not call the
/// observer, and does not count it as in flight. The stream's timeout is cleared beforehand.
/// Bytes the client sent beyond the request are not handed over (clients wait for the 101).
/// Must not block (start the session with co_spawn and return).
using UpgradeHandler = std::function<bool(Request& req, boost::beast::tcp_stream& stream,
                                          boost::beast::http::request<boost::beast::http::string_body>& raw)>;

class Server final {
 public:
  Server(boost::asio::io_context& io, const Router& router, ServerOptions options, RequestObserver observer = {});
  /// Stops accepting. Connections still open keep a reference to the router: destroy the
  /// Server (and the Router) only after wait_idle() or after the io_context has stopped.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Set before start(); see UpgradeHandler.
  void set_upgrade_handler(UpgradeHandler handler);

  /// Binds and listens on options.host:options.port. Throws std::runtime_error naming
  /// "HTTP_HOST/HTTP_PORT host:port" when the host does not resolve or the port is busy.
  void start();
  std::uint16_t port() const noexcept;
  /// Closes the listening socket; open connections finish their current request and close.
  /// Idle keep-alive connections are closed at once (on their own strands, so the
  /// io_context must still run). Non-blocking; safe from any thread, also from a handler.
  void stop_accepting();
  /// Waits (blocking, call from a thread not running the io_context) until no request is
  /// in flight or `deadline` passes; true when idle.
  bool wait_idle(std::chrono::milliseconds deadline);
  std::size_t in_flight() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace taskstream::http
