#include <utility>  // Boost 1.74's awaitable.hpp misses it

#include "ops/live_feed.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "auth/jwt.hpp"
#include "ws/upgrade.hpp"

namespace taskstream::ops {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;

class LiveSession final : public std::enable_shared_from_this<LiveSession> {
 public:
  LiveSession(LiveFeed& feed, beast::tcp_stream&& stream, std::chrono::system_clock::time_point expires)
      : feed_(feed), ws_(std::move(stream)), expires_(expires), expiry_(ws_.get_executor()) {}

  void run(bhttp::request<bhttp::string_body> raw, bool bearer_subprotocol) {
    websocket::stream_base::timeout t;
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = std::chrono::seconds(30);
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.read_message_max(4 * 1024);  // the console sends nothing; anything else is read and dropped
    ws_.set_option(websocket::stream_base::decorator([bearer_subprotocol](websocket::response_type& res) {
      res.set(bhttp::field::server, "taskstream");
      if (bearer_subprotocol) res.set(bhttp::field::sec_websocket_protocol, "bearer");
    }));
    auto req = std::make_shared<bhttp::request<bhttp::string_body>>(std::move(raw));
    ws_.async_accept(*req, [self = shared_from_this(), req](beast::error_code ec) {
      if (ec) return spdlog::debug("live feed: handshake failed: {}", ec.message());
      self->feed_.add(self);  // sends the last sample, if any
      self->arm_expiry();
      self->read();
    });
  }

  void post(std::shared_ptr<const std::string> frame) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), frame = std::move(frame)]() mutable { self->send(std::move(frame)); });
  }
  void post_close(websocket::close_code code, std::string reason) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), code, reason = std::move(reason)] { self->close(code, reason); });
  }

 private:
  void arm_expiry() {
    expiry_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(expires_ - std::chrono::system_clock::now()));
    expiry_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->close(websocket::close_code::policy_error, "token expired");
    });
  }

  void read() {
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->finish();
      self->in_.consume(self->in_.size());
      self->read();
    });
  }

  // The newest sample wins: while a write is in flight, a newer frame replaces the waiting one.
  void send(std::shared_ptr<const std::string> frame) {
    if (closed_ || close_after_write_) return;
    if (writing_) {
      waiting_ = std::move(frame);
      return;
    }
    write(std::move(frame));
  }

  void write(std::shared_ptr<const std::string> frame) {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(*frame), [self = shared_from_this(), frame](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      if (ec) return self->finish();
      if (self->waiting_) self->write(std::exchange(self->waiting_, nullptr));
      else if (self->close_after_write_) self->close(self->close_code_, self->close_reason_);
    });
  }

  void close(websocket::close_code code, std::string reason) {
    if (closed_) return;
    if (writing_) {  // one write at a time: close after it
      close_after_write_ = true, close_code_ = code, close_reason_ = std::move(reason);
      waiting_.reset();
      return;
    }
    closed_ = true;
    expiry_.cancel();
    ws_.async_close(websocket::close_reason(code, reason), [self = shared_from_this()](beast::error_code) {});
  }

  void finish() {
    closed_ = true;
    expiry_.cancel();
  }

  LiveFeed& feed_;
  websocket::stream<beast::tcp_stream> ws_;
  std::chrono::system_clock::time_point expires_;
  asio::steady_timer expiry_;
  beast::flat_buffer in_;
  std::shared_ptr<const std::string> waiting_;
  bool writing_ = false, closed_ = false, close_after_write_ = false;
  websocket::close_code close_code_ = websocket::close_code::normal;
  std::string close_reason_;
};

LiveFeed::LiveFeed(const config::Settings& settings, const auth::JwtCodec& jwt) : settings_(settings), jwt_(jwt) {}

LiveFeed::~LiveFeed() { stop(); }

bool LiveFeed::on_upgrade(http::Request& req, beast::tcp_stream& stream, bhttp::request<bhttp::string_body>& raw) {
  if (req.path != kPath || !websocket::is_upgrade(raw)) return false;
  if (stopped_) {
    ws::refuse_upgrade(stream, req, 503, "shutting down");
    return true;
  }
  auto credentials = ws::authenticate_upgrade(stream, req, settings_.cors_origins, jwt_);
  if (!credentials) return true;
  if (!credentials->claims.has_role(auth::kOperatorRole)) {
    ws::refuse_upgrade(stream, req, 403, "the console's live feed is for operators (ADMIN_EMAILS)");
    return true;
  }
  std::make_shared<LiveSession>(*this, std::move(stream), credentials->claims.expires)->run(std::move(raw), credentials->subprotocol);
  return true;
}

void LiveFeed::add(const std::shared_ptr<LiveSession>& s) {
  std::shared_ptr<const std::string> last;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
    sessions_.push_back(s);
    last = last_;
  }
  if (last) s->post(std::move(last));
  if (stopped_) s->post_close(websocket::close_code::going_away, "server stopping");
}

void LiveFeed::publish(std::shared_ptr<const std::string> frame) {
  std::vector<std::shared_ptr<LiveSession>> targets;
  {
    std::lock_guard lock(mutex_);
    last_ = frame;
    for (const auto& w : sessions_)
      if (auto s = w.lock()) targets.push_back(std::move(s));
  }
  for (auto& s : targets) s->post(frame);
}

void LiveFeed::stop() {
  if (stopped_.exchange(true)) return;
  std::vector<std::shared_ptr<LiveSession>> targets;
  {
    std::lock_guard lock(mutex_);
    for (const auto& w : sessions_)
      if (auto s = w.lock()) targets.push_back(std::move(s));
  }
  for (auto& s : targets) s->post_close(websocket::close_code::going_away, "server stopping");
}

}  // namespace taskstream::ops
