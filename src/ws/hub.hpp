#pragma once
// The WebSocket hub (docs/websocket.md): `GET /ws` sessions and the per-instance consumer that
// feeds them. Modelled on Boost.Beast's chat-multi example (a shared state holding weak
// references to sessions, each session with its own send queue), with two additions:
//
// - Gap-free, duplicate-free order per socket, kept by ws::Sequencer (no I/O; see its
//   header for the rules: live frames in seq order, gaps filled from the outbox table,
//   `{"type":"resume","last_seq":N}` answered with `resumed`, recovered:false when rows are
//   gone). The session carries out what it says: sends frames, reads the DB off its strand.
// - Every serving instance consumes every partition of task-updates (and
//   notification.request, for in-app notifications) in a group of its own
//   (KAFKA_CONSUMER_GROUP_WEBSOCKET-<instance id>), starting at the end: a client that was
//   away catches up from the DB, not from Kafka.
//
// Limits: a send queue of WS_SEND_QUEUE_MAX frames per socket (a client that stops reading
// is disconnected when it overflows; the others are not slowed, as each socket writes on its
// own strand), WS_MAX_SOCKETS_PER_USER sockets per user (429 beyond), 16 KiB client frames,
// pings after 15 s of silence (a peer still silent 15 s after the ping is dropped), and the socket closes
// (1008 "token expired") when its token expires.
//
// Thread-safety: on_upgrade runs on the connection's strand; deliver_* from the consumer
// thread; each session's state only on its own strand.

#include <utility>  // Boost 1.74's awaitable.hpp misses it

#include <atomic>
#include <chrono>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/jwt.hpp"
#include "config/settings.hpp"
#include "http/message.hpp"
#include "kafka/consumer_runner.hpp"
#include "storage/roles.hpp"
#include "util/metrics.hpp"
#include "ws/upgrade.hpp"

namespace taskstream::ws {

class Session;

struct HubStats {
  std::uint64_t sockets = 0;           ///< open now
  std::uint64_t frames_sent = 0;
  std::uint64_t overflow_closes = 0;   ///< sockets closed for a full send queue
  std::uint64_t gap_fills = 0;         ///< times a session read missing updates from the DB
  std::uint64_t refused = 0;           ///< upgrades refused (auth, origin, cap)
};

class Hub final {
 public:
  /// `store`, `jwt` and `blocking` (where DB reads run) must outlive the hub. `setup` (may
  /// be null) adjusts the consumer's options before it is built.
  Hub(const config::Settings& settings, storage::ReplayStore& store, const auth::JwtCodec& jwt,
      boost::asio::thread_pool& blocking, kafka::ConsumerSetup setup = {});
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  /// The http::Server upgrade hook: takes `/ws` upgrades (accepting or refusing them with a
  /// problem+json answer), returns false for anything else.
  bool on_upgrade(http::Request& req, boost::beast::tcp_stream& stream,
                  boost::beast::http::request<boost::beast::http::string_body>& raw);

  /// Starts the per-instance consumer (when Kafka is enabled).
  void start();
  /// Stops the consumer (bounded by its stop deadline and by `until`) and closes every
  /// socket (1001 going away). Idempotent.
  void stop(std::chrono::steady_clock::time_point until = std::chrono::steady_clock::time_point::max());

  /// Sends a task update (`frame`: the task-updates event JSON, with `seq`) to the user's
  /// sockets on this instance. Thread-safe.
  void deliver_update(const std::string& user_id, std::int64_t seq, std::shared_ptr<const std::string> frame);
  /// Sends a frame that is not part of the seq stream (a notification). Thread-safe.
  void deliver_other(const std::string& user_id, std::shared_ptr<const std::string> frame);

  HubStats stats() const noexcept;
  /// Registers the websocket_* metrics (sockets open, frames sent, overflow closes).
  void register_metrics(util::MetricsRegistry& registry);
  /// True once the per-instance consumer has its partitions (or Kafka is disabled): before
  /// that, a change could reach this instance's sockets only with the next one.
  bool ready() const noexcept;
  const std::string& instance_id() const noexcept { return instance_id_; }
  /// The per-instance consumer of task-updates (null before start or without Kafka).
  const kafka::ConsumerRunner* consumer() const noexcept { return consumer_view_.load(std::memory_order_acquire); }

 private:
  friend class Session;
  /// Takes one of the user's WS_MAX_SOCKETS_PER_USER slots for a socket still in its
  /// handshake; false when they are all taken (open or reserved). Checking and taking under
  /// one lock: counting only registered sockets let a client that already had its 101 (the
  /// session registers a moment later) be followed by one socket too many.
  bool reserve(const std::string& user_id);
  /// Gives back a reservation whose handshake failed.
  void unreserve(const std::string& user_id);
  /// Registers a socket, turning its reservation into an open socket.
  void add(const std::string& user_id, const std::shared_ptr<Session>& s);
  void remove(const std::string& user_id, const Session* s);
  void release_reservation_locked(const std::string& user_id);  ///< mutex_ held
  std::vector<std::shared_ptr<Session>> sessions_of(const std::string& user_id);

  const config::Settings& settings_;
  storage::ReplayStore& store_;
  const auth::JwtCodec& jwt_;
  boost::asio::thread_pool& blocking_;
  std::string instance_id_;
  kafka::ConsumerSetup setup_;
  std::unique_ptr<kafka::ConsumerRunner> consumer_;
  std::atomic<const kafka::ConsumerRunner*> consumer_view_{nullptr};  ///< consumer_, once started: readable from any thread

  std::mutex mutex_;
  std::unordered_map<std::string, std::vector<std::weak_ptr<Session>>> sessions_;
  std::unordered_map<std::string, std::size_t> reserved_;  ///< sockets in their handshake, per user
  std::atomic<bool> stopped_{false};

 public:
  // Counters the sessions update.
  std::atomic<std::uint64_t> sockets{0}, frames_sent{0}, overflow_closes{0}, gap_fills{0}, refused{0};
};

}  // namespace taskstream::ws
