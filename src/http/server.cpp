#include "http/server.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <random>
#include <stdexcept>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "http/wire.hpp"
#include "util/logging.hpp"

namespace taskstream::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

// After an error answer the client may still be sending a body we refused; read (and drop)
// that much at most before closing, so the close does not reset the connection before the
// client has read the answer.
constexpr std::size_t kLingerDrainLimit = 8 << 20;
constexpr std::chrono::seconds kLingerTimeout{2};

bool is_http_parse_error(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
}

bool wants_upgrade(const BeastRequest& msg) {
  return !msg[bhttp::field::upgrade].empty() &&
         bhttp::token_list{msg[bhttp::field::connection]}.exists("upgrade");
}

/// One accepted socket. Every member is touched only on `strand` (the session coroutine and
/// the close posted by stop_accepting), so none needs a lock.
struct Connection final {
  Connection(tcp::socket socket, asio::any_io_executor ex) : strand(std::move(ex)), stream(std::move(socket)) {}

  asio::any_io_executor strand;
  beast::tcp_stream stream;
  bool busy = false;      ///< between a complete request head and the end of its response
  bool detached = false;  ///< the upgrade hook took the stream over
};

}  // namespace

struct Server::Impl final : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& io_, const Router& router_, ServerOptions options_, RequestObserver observer_)
      : io(io_), router(router_), options(std::move(options_)), observer(std::move(observer_)), acceptor(io_) {}

  asio::io_context& io;
  const Router& router;
  const ServerOptions options;
  const RequestObserver observer;
  UpgradeHandler upgrade;

  // The acceptor is closed from the owner's thread while the accept chain runs on the
  // io_context: the mutex orders close() against the next async_accept().
  std::mutex acceptor_mutex;
  tcp::acceptor acceptor;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint16_t> bound_port{0};

  std::mutex idle_mutex;
  std::condition_variable idle_cv;
  std::atomic<std::size_t> in_flight{0};

  std::mutex connections_mutex;
  std::unordered_set<std::shared_ptr<Connection>> connections;

  class RequestScope;

  void do_accept();
  void on_accept(const beast::error_code& ec, tcp::socket socket);
  void close_idle_connections();
  void request_done();
  void observe(const Request& req, std::string_view label, int status,
               std::chrono::steady_clock::time_point started) const;
  static asio::awaitable<void> session(std::shared_ptr<Impl> self, std::shared_ptr<Connection> conn);
  /// Answers an error the server itself detected (400, 413, 431) and closes the connection.
  static asio::awaitable<void> reject(Impl& self, beast::tcp_stream& stream, const Request& req, int status,
                                      std::string detail, unsigned version,
                                      std::chrono::steady_clock::time_point started);
};

namespace {

asio::awaitable<void> write_response(beast::tcp_stream& stream, BeastResponse& msg,
                                     std::chrono::seconds timeout, beast::error_code& ec) {
  stream.expires_after(timeout);
  co_await bhttp::async_write(stream, msg, asio::redirect_error(asio::use_awaitable, ec));
}

/// Half-closes, drains what the client is still sending (bounded), then closes.
asio::awaitable<void> linger_close(beast::tcp_stream& stream) {
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, 16384> sink;
  std::size_t drained = 0;
  stream.expires_after(kLingerTimeout);
  while (drained < kLingerDrainLimit) {
    const std::size_t n =
        co_await stream.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    drained += n;
  }
  stream.close();
}

}  // namespace

/// Counts a request as in flight (for wait_idle) and marks its connection busy (so that
/// stop_accepting lets it finish) for the scope of one request.
class Server::Impl::RequestScope final {
 public:
  RequestScope(Impl& impl, Connection& conn) : impl_(impl), conn_(conn) {
    conn_.busy = true;
    ++impl_.in_flight;
  }
  ~RequestScope() {
    conn_.busy = false;
    impl_.request_done();
  }
  RequestScope(const RequestScope&) = delete;
  RequestScope& operator=(const RequestScope&) = delete;

 private:
  Impl& impl_;
  Connection& conn_;
};

asio::awaitable<void> Server::Impl::reject(Impl& self, beast::tcp_stream& stream, const Request& req, int status,
                                           std::string detail, unsigned version,
                                           std::chrono::steady_clock::time_point started) {
  auto msg = to_beast(Response::problem(status, detail), version, false, req.request_id);
  beast::error_code ec;
  co_await write_response(stream, msg, self.options.header_timeout, ec);
  self.observe(req, "unmatched", status, started);
  co_await linger_close(stream);
}

void Server::Impl::do_accept() {
  std::lock_guard lock(acceptor_mutex);
  if (stopping || !acceptor.is_open()) return;
  // Each connection gets its own strand: its coroutine and a close from stop_accepting()
  // never run at the same time.
  acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](const beast::error_code& ec,
                                                                          tcp::socket socket) {
    self->on_accept(ec, std::move(socket));
  });
}

void Server::Impl::on_accept(const beast::error_code& ec, tcp::socket socket) {
  if (stopping || ec == asio::error::operation_aborted) return;
  if (ec) {
    // Typically EMFILE: retrying at once would spin, so back off briefly.
    spdlog::warn("http: accept failed: {}", ec.message());
    auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(100));
    timer->async_wait([self = shared_from_this(), timer](const beast::error_code&) { self->do_accept(); });
    return;
  }
  // No Nagle: a response or WebSocket frame goes out when written. With Nagle a second
  // small frame waited for the client's (delayed, up to 40 ms) ACK of the first, which
  // was most of the POST -> frame latency at 1,000 changes/s.
  beast::error_code nodelay_ec;
  socket.set_option(tcp::no_delay(true), nodelay_ec);
  auto ex = socket.get_executor();
  auto conn = std::make_shared<Connection>(std::move(socket), ex);
  {
    std::lock_guard lock(connections_mutex);
    connections.insert(conn);
  }
  asio::co_spawn(conn->strand, session(shared_from_this(), conn),
                 [self = shared_from_this(), conn](std::exception_ptr e) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       spdlog::error("http: connection failed: {}", ex.what());
                     } catch (...) {
                       spdlog::error("http: connection failed with a non-standard exception");
                     }
                   }
                   std::lock_guard lock(self->connections_mutex);
                   self->connections.erase(conn);
                 });
  do_accept();
}

void Server::Impl::close_idle_connections() {
  std::vector<std::shared_ptr<Connection>> snapshot;
  {
    std::lock_guard lock(connections_mutex);
    snapshot.assign(connections.begin(), connections.end());
  }
  for (auto& conn : snapshot) {
    asio::post(conn->strand, [conn] {
      if (conn->busy || conn->detached) return;  // a busy one closes after its response
      beast::error_code ec;
      conn->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      conn->stream.close();
    });
  }
}

void Server::Impl::request_done() {
  {
    std::lock_guard lock(idle_mutex);
    --in_flight;
  }
  idle_cv.notify_all();
}

void Server::Impl::observe(const Request& req, std::string_view label, int status,
                           std::chrono::steady_clock::time_point started) const {
  if (!observer) return;
  try {
    observer(req, label, status, std::chrono::steady_clock::now() - started);
  } catch (const std::exception& e) {
    spdlog::warn("http: request observer failed: {}", e.what());
  }
}

asio::awaitable<void> Server::Impl::session(std::shared_ptr<Impl> self, std::shared_ptr<Connection> conn) {
  auto& stream = conn->stream;
  const auto& options = self->options;
  beast::flat_buffer buffer;
  beast::error_code ec;
  std::string remote;
  if (auto ep = stream.socket().remote_endpoint(ec); !ec) remote = ep.address().to_string();

  for (bool first = true; !self->stopping; first = false) {
    // Between keep-alive requests the idle timeout applies; once a request has started
    // (or on a fresh connection) the shorter header timeout does, against slow-loris.
    if (!first && buffer.size() == 0) {
      stream.expires_after(options.idle_timeout);
      const std::size_t n = co_await stream.async_read_some(buffer.prepare(4096),
                                                            asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      buffer.commit(n);
    }

    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(options.body_limit);
    stream.expires_after(options.header_timeout);
    co_await bhttp::async_read_header(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    const auto started = std::chrono::steady_clock::now();
    Request req;
    req.remote = remote;
    // body_limit here means the head was complete and announced a Content-Length over the
    // limit: that is a 413 for a well-formed request, handled below.
    if (ec && ec != bhttp::error::body_limit) {
      if (!is_http_parse_error(ec)) break;  // timeout, reset, EOF: nobody to answer
      req.request_id = generate_request_id();
      const bool head_too_large = ec == bhttp::error::header_limit;
      std::string detail = head_too_large ? "request head too large" : "malformed HTTP request: " + ec.message();
      co_await reject(*self, stream, req, head_too_large ? 431 : 400, std::move(detail), 11, started);
      co_return;
    }

    RequestScope scope(*self, *conn);
    fill_request(parser.get(), req);
    const unsigned version = parser.get().version();

    // An announced oversize body is refused before it is read; a chunked one is caught by
    // the parser's body limit while reading.
    bool too_large = ec == bhttp::error::body_limit ||
                     (parser.content_length() && *parser.content_length() > options.body_limit);
    if (!too_large) {
      if (beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, version};
        stream.expires_after(options.header_timeout);
        co_await bhttp::async_write(stream, cont, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
      }
      // A body may legitimately take longer than a head: give it the idle timeout.
      stream.expires_after(options.idle_timeout);
      co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      too_large = ec == bhttp::error::body_limit;
      if (ec && !too_large) {
        if (!is_http_parse_error(ec)) break;
        std::string detail = "malformed HTTP request: " + ec.message();
        co_await reject(*self, stream, req, 400, std::move(detail), version, started);
        co_return;
      }
    }
    if (too_large) {
      std::string detail = "request body is larger than " + std::to_string(options.body_limit) + " bytes";
      co_await reject(*self, stream, req, 413, std::move(detail), version, started);
      co_return;
    }
    req.body = std::move(parser.get().body());

    if (self->upgrade && wants_upgrade(parser.get())) {
      stream.expires_never();
      if (self->upgrade(req, stream, parser.get())) {
        conn->detached = true;
        co_return;
      }
    }

    Response res;
    std::string label = "unmatched";
    try {
      res = co_await self->router.dispatch(req, &label);
    } catch (const std::exception& e) {
      // Router::dispatch converts handler exceptions itself; this is a last line of defence.
      util::LogScope scope({.request_id = req.request_id});
      spdlog::error("dispatch failed: {}", e.what());
      res = Response::problem(500, "internal server error");
    }
    const bool keep_alive = parser.get().keep_alive() && !self->stopping;
    auto msg = to_beast(std::move(res), version, keep_alive, req.request_id);
    co_await write_response(stream, msg, options.idle_timeout, ec);
    self->observe(req, label, static_cast<int>(msg.result_int()), started);
    if (ec || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.close();
}

Server::Server(asio::io_context& io, const Router& router, ServerOptions options, RequestObserver observer)
    : impl_(std::make_shared<Impl>(io, router, std::move(options), std::move(observer))) {}

Server::~Server() { stop_accepting(); }

void Server::set_upgrade_handler(UpgradeHandler handler) { impl_->upgrade = std::move(handler); }

void Server::start() {
  auto& impl = *impl_;
  const auto& host = impl.options.host;
  const auto where = "HTTP_HOST/HTTP_PORT " + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                     std::to_string(impl.options.port);
  auto fail = [&](const beast::error_code& ec) {
    std::string why = ec.message();
    if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
    throw std::runtime_error(where + ": " + why);
  };

  beast::error_code ec;
  tcp::endpoint endpoint;
  if (auto address = asio::ip::make_address(host, ec); !ec) {
    endpoint = tcp::endpoint(address, impl.options.port);
  } else {
    tcp::resolver resolver(impl.io);
    auto results = resolver.resolve(host, std::to_string(impl.options.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec) fail(ec);
    if (results.empty()) throw std::runtime_error(where + ": host does not resolve");
    endpoint = results.begin()->endpoint();
  }

  std::lock_guard lock(impl.acceptor_mutex);
  if (impl.acceptor.is_open() || impl.stopping) throw std::logic_error("http::Server::start called twice or after stop");
  impl.acceptor.open(endpoint.protocol(), ec);
  if (ec) fail(ec);
  // SO_REUSEADDR lets a restart bind while old connections sit in TIME_WAIT; it does not
  // let two listeners share a port on Linux, so a busy port still fails below.
  impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  impl.acceptor.bind(endpoint, ec);
  if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    impl.acceptor.close(ignored);
    fail(ec);
  }
  impl.bound_port = impl.acceptor.local_endpoint().port();
  asio::post(impl.acceptor.get_executor(), [self = impl_] { self->do_accept(); });
}

std::uint16_t Server::port() const noexcept { return impl_->bound_port; }

void Server::stop_accepting() {
  {
    std::lock_guard lock(impl_->acceptor_mutex);
    impl_->stopping = true;
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  }
  impl_->close_idle_connections();
}

bool Server::wait_idle(std::chrono::milliseconds deadline) {
  std::unique_lock lock(impl_->idle_mutex);
  return impl_->idle_cv.wait_for(lock, deadline, [&] { return impl_->in_flight == 0; });
}

std::size_t Server::in_flight() const noexcept { return impl_->in_flight; }

}  // namespace taskstream::http
