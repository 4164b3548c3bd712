#pragma once
// A blocking WebSocket client for tests (Boost.Beast), and the handshake outcome when the
// server refuses the upgrade.

#include <utility>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <sys/socket.h>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "serve_process.hpp"
#include "test_env.hpp"

namespace taskstream::itest {

/// Ready: the hub's consumer has its partitions, so every change from now on is pushed.
inline void wait_ready(const ServeProcess& s) {
  ASSERT_TRUE(wait_until([&] { return s.call("GET", "/readyz").status == 200; }, std::chrono::seconds(30))) << s.log();
}

inline std::map<std::string, std::string> bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

/// The HTTP status an upgrade request to `target` gets (101 when accepted). WsClient's
/// status() is 101 or not: Beast does not hand back the answer of a refused handshake.
inline int upgrade_status(const ServeProcess& s, std::map<std::string, std::string> headers, const std::string& target = "/ws") {
  headers["Connection"] = "Upgrade";
  headers["Upgrade"] = "websocket";
  headers["Sec-WebSocket-Version"] = "13";
  headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ==";
  return http_request(s.port(), "GET", target, {}, headers).status;
}


class WsClient final {
 public:
  /// Connects and upgrades; `status` is 101 on success (see upgrade_status for a refusal's).
  WsClient(std::uint16_t port, const std::map<std::string, std::string>& headers, std::vector<std::string> subprotocols = {},
           const std::string& target = "/ws")
      : ws_(io_) {
    namespace beast = boost::beast;
    auto& sock = beast::get_lowest_layer(ws_);
    sock.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    fd_ = sock.socket().native_handle();
    ws_.set_option(beast::websocket::stream_base::decorator([headers, subprotocols](beast::websocket::request_type& req) {
      for (const auto& [k, v] : headers) req.set(k, v);
      if (!subprotocols.empty()) {
        std::string joined;
        for (const auto& p : subprotocols) joined += (joined.empty() ? "" : ", ") + p;
        req.set(beast::http::field::sec_websocket_protocol, joined);
      }
    }));
    beast::websocket::response_type res;
    beast::error_code ec;
    ws_.handshake(res, "127.0.0.1:" + std::to_string(port), target, ec);
    status_ = static_cast<int>(res.result_int());
    if (res.count(beast::http::field::sec_websocket_protocol))
      subprotocol_ = std::string(res[beast::http::field::sec_websocket_protocol]);
    if (!ec) status_ = 101;
  }
  int status() const { return status_; }
  const std::string& subprotocol() const { return subprotocol_; }

  ~WsClient() {
    // The reader thread may be inside ws_.read() (which closes the socket when it fails):
    // touching the socket object from here would race it (ThreadSanitizer said so). Shutting
    // the descriptor down wakes the read; the object itself stays the reader's.
    if (reader_.joinable()) {
      {
        std::lock_guard lock(mutex_);
        if (!ended_) ::shutdown(fd_, SHUT_RDWR);
      }
      reader_.join();
    } else {
      boost::beast::error_code ec;
      boost::beast::get_lowest_layer(ws_).socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    }
  }

  /// Call before next() starts the reader thread (a sync stream takes one caller at a time).
  void send(const nlohmann::json& j) {
    std::lock_guard lock(write_mutex_);
    ws_.write(boost::asio::buffer(j.dump()));
  }

  /// Sends `text` as it is (a text frame; need not be JSON).
  void send_text(const std::string& text) {
    std::lock_guard lock(write_mutex_);
    ws_.text(true);
    ws_.write(boost::asio::buffer(text));
  }

  /// Starts the thread that reads frames into the inbox (next() starts it if needed; a
  /// test that wants a client that does not read simply does not call next()).
  void start_reading() {
    if (reader_.joinable() || status_ != 101) return;
    reader_ = std::thread([this] {
      for (;;) {
        boost::beast::flat_buffer buf;
        boost::beast::error_code ec;
        ws_.read(buf, ec);
        std::lock_guard lock(mutex_);
        if (ec) {
          ended_ = true;
          error_ = ec.message();
          cv_.notify_all();
          return;
        }
        inbox_.push_back(nlohmann::json::parse(boost::beast::buffers_to_string(buf.data())));
        cv_.notify_all();
      }
    });
  }

  /// The next frame, or nullopt after `timeout` or once the connection ended (closed()).
  std::optional<nlohmann::json> next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    start_reading();
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return !inbox_.empty() || ended_; });
    if (inbox_.empty()) return std::nullopt;
    auto f = std::move(inbox_.front());
    inbox_.pop_front();
    return f;
  }
  bool closed() {
    std::lock_guard lock(mutex_);
    return ended_ && inbox_.empty();
  }
  const std::string& error() const { return error_; }
  int close_code() const { return static_cast<int>(ws_.reason().code); }
  std::string close_reason() const { return std::string(ws_.reason().reason.c_str()); }
  /// Drops the connection (as a client that goes away does); the reader thread ends.
  void close() {
    boost::beast::error_code ec;
    boost::beast::get_lowest_layer(ws_).socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    if (reader_.joinable()) reader_.join();
  }

 private:
  boost::asio::io_context io_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  int status_ = 0;
  std::string subprotocol_;
  std::string error_;
  std::thread reader_;
  std::mutex mutex_, write_mutex_;
  std::condition_variable cv_;
  std::deque<nlohmann::json> inbox_;
  bool ended_ = false;
  int fd_ = -1;  ///< the socket's descriptor, for the destructor's shutdown
};

}  // namespace taskstream::itest
