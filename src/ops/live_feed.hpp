#pragma once
// The console's live feed (docs/operations.md, "Live feed"): `GET /admin/live`, a WebSocket
// that pushes `{"type":"sample","overview":{...}}` each time this instance's Monitor takes a
// sample, so an open console updates by itself without asking. Operators only, checked at
// the handshake like every /admin route: 401 without a valid token, 403 for a signed-in
// non-operator (and for a foreign Origin). The socket closes (1008 "token expired") when
// its token expires, and (1001) when the server stops.
//
// A sample replaces the one before: a socket whose write is still in flight keeps only the
// newest frame, so a slow console never makes the server queue.
//
// Thread-safety: publish() and stop() from any thread; each socket's state on its strand.

#include <atomic>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "config/settings.hpp"
#include "http/message.hpp"

namespace taskstream::ops {

class LiveSession;

class LiveFeed final {
 public:
  static constexpr const char* kPath = "/admin/live";

  LiveFeed(const config::Settings& settings, const auth::JwtCodec& jwt);
  ~LiveFeed();
  LiveFeed(const LiveFeed&) = delete;
  LiveFeed& operator=(const LiveFeed&) = delete;

  /// The http::Server upgrade hook: takes `/admin/live` upgrades, returns false otherwise.
  bool on_upgrade(http::Request& req, boost::beast::tcp_stream& stream,
                  boost::beast::http::request<boost::beast::http::string_body>& raw);
  /// Sends `frame` to every socket (and to each new one first, until the next). Any thread.
  void publish(std::shared_ptr<const std::string> frame);
  /// Closes every socket (1001) and refuses new ones (503). Idempotent.
  void stop();

 private:
  friend class LiveSession;
  void add(const std::shared_ptr<LiveSession>& s);

  const config::Settings& settings_;
  const auth::JwtCodec& jwt_;
  std::mutex mutex_;
  std::vector<std::weak_ptr<LiveSession>> sessions_;
  std::shared_ptr<const std::string> last_;
  std::atomic<bool> stopped_{false};
};

}  // namespace taskstream::ops
