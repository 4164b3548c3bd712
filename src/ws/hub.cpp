#include "ws/hub.hpp"

#include <charconv>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <random>

#include "events/cloudevents.hpp"
#include "events/events.hpp"
#include "kafka/message.hpp"
#include "ws/client_message.hpp"
#include "ws/sequencer.hpp"

namespace taskstream::ws {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
using nlohmann::json;

namespace {

std::string make_instance_id() {
  char host[64] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{}-{:06x}", host, ::getpid(), rng() & 0xffffff);
}

}  // namespace

// ---- Session --------------------------------------------------------------------------

class Session final : public std::enable_shared_from_this<Session> {
 public:
  /// `resume_from`: the client's last seq from `/ws?last_seq=N`, resumed before any frame
  /// goes out (a resume message sent after the handshake can race a live frame).
  Session(Hub& hub, beast::tcp_stream&& stream, std::string user_id, std::chrono::system_clock::time_point expires,
          std::optional<std::int64_t> resume_from)
      : hub_(hub), ws_(std::move(stream)), user_id_(std::move(user_id)), expires_(expires), expiry_(ws_.get_executor()),
        resume_from_(resume_from) {}

  ~Session() {
    if (registered_) hub_.sockets--;
    else hub_.unreserve(user_id_);  // made after Hub::reserve; the handshake never finished
  }

  const std::string& user_id() const { return user_id_; }

  void run(bhttp::request<bhttp::string_body> raw, bool bearer_subprotocol) {
    websocket::stream_base::timeout t;
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = std::chrono::seconds(30);  // a ping after 15 s of silence, dropped 15 s later
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.read_message_max(16 * 1024);
    ws_.set_option(websocket::stream_base::decorator([bearer_subprotocol](websocket::response_type& res) {
      res.set(bhttp::field::server, "taskstream");
      if (bearer_subprotocol) res.set(bhttp::field::sec_websocket_protocol, "bearer");
    }));
    auto req = std::make_shared<bhttp::request<bhttp::string_body>>(std::move(raw));
    if (resume_from_) {  // the resume says where to start
      sequencer_.emplace(std::nullopt, resume_from_);
      return accept(std::move(req));
    }
    // A new socket starts at the user's seq read *before* its 101 goes out: a change the
    // client makes once it holds the 101 is newer, so it reaches the socket (live, or from
    // the DB in the sequencer's first read), however late the session registers. Reading
    // it after the handshake lost such a change: the read could already include it.
    asio::post(hub_.blocking_, [self = shared_from_this(), req]() mutable {
      std::optional<std::int64_t> seq;
      try {
        seq = self->hub_.store_.user_last_seq(self->user_id_);
      } catch (const std::exception& e) {
        spdlog::warn("ws: user {}: reading the current seq: {}", self->user_id_, e.what());
      }
      asio::post(self->ws_.get_executor(), [self, req = std::move(req), seq]() mutable {
        if (seq) self->sequencer_.emplace(seq, std::nullopt);
        self->accept(std::move(req));
      });
    });
  }

  // Called from any thread: hop onto the session's strand.
  void post_update(std::int64_t seq, std::shared_ptr<const std::string> frame) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), seq, frame = std::move(frame)]() mutable {
      self->on_update(seq, std::move(frame));
    });
  }
  void post_other(std::shared_ptr<const std::string> frame) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), frame = std::move(frame)]() mutable { self->enqueue(std::move(frame)); });
  }
  void post_close(websocket::close_code code, std::string reason) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), code, reason = std::move(reason)] { self->close(code, reason); });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) {
      spdlog::debug("ws: handshake failed: {}", ec.message());
      return;
    }
    registered_ = true;
    hub_.sockets++;
    // Registered before the DB is read again: an update committed meanwhile is held, then
    // released or dropped in order, so nothing falls between the read and the first frame.
    hub_.add(user_id_, shared_from_this());
    if (!sequencer_) return close(websocket::close_code::try_again_later, "database unavailable");
    apply(sequencer_->begin());
    arm_expiry();
    read();
  }

  void accept(std::shared_ptr<bhttp::request<bhttp::string_body>> req) {
    ws_.async_accept(*req, [self = shared_from_this(), req](beast::error_code ec) { self->on_accept(ec); });
  }

  void arm_expiry() {
    const auto left = expires_ - std::chrono::system_clock::now();
    expiry_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(left));
    expiry_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->close(websocket::close_code::policy_error, "token expired");
    });
  }

  void read() {
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) return finish(ec);
    const auto text = beast::buffers_to_string(in_.data());
    in_.consume(in_.size());
    // A client's message never throws here: an exception out of this handler would end the
    // io_context thread (it once did, for {"type":5}: json::value on a non-string).
    switch (const auto msg = parse_client_message(text); msg.kind) {
      case ClientMessage::Kind::resume:
        if (sequencer_ && !closed_) apply(sequencer_->on_resume(msg.last_seq));
        break;
      case ClientMessage::Kind::ping:
        enqueue(std::make_shared<const std::string>(R"({"type":"pong"})"));
        break;
      case ClientMessage::Kind::error:
        send_error(msg.detail);
        break;
    }
    read();
  }

  void send_error(const std::string& detail) {
    enqueue(std::make_shared<const std::string>(error_frame(detail)));
  }

  // -- the seq stream: ws::Sequencer decides, the session sends and reads

  void on_update(std::int64_t seq, std::shared_ptr<const std::string> frame) {
    if (closed_ || !sequencer_) return;
    apply(sequencer_->on_live(seq, std::move(frame)));
  }

  /// Sends what the sequencer says, and makes the read it asks for: on the blocking pool,
  /// its answer back on this session's strand (a DB error closes the socket, 1013).
  void apply(Sequencer::Step step) {
    const auto fills = sequencer_->gap_fills();
    if (fills > gap_fills_seen_) hub_.gap_fills += fills - gap_fills_seen_;
    gap_fills_seen_ = fills;
    for (auto& out : step.send) enqueue(std::move(out.frame), out.replay);
    if (!step.read) return;
    asio::post(hub_.blocking_, [self = shared_from_this(), read = *step.read]() {
      std::optional<Sequencer::Replay> replay;
      try {
        replay = self->read_replay(read);
      } catch (const std::exception& e) {
        spdlog::warn("ws: user {}: reading updates: {}", self->user_id_, e.what());
      }
      asio::post(self->ws_.get_executor(), [self, replay = std::move(replay)]() mutable {
        if (self->closed_) return;
        if (!replay) return self->close(websocket::close_code::try_again_later, "database unavailable");
        const auto skipped = self->sequencer_->unrecovered_gaps();
        self->apply(self->sequencer_->on_read(std::move(*replay)));
        if (self->sequencer_->unrecovered_gaps() > skipped)
          spdlog::warn("ws: user {}: updates no longer in the outbox; told the client (recovered:false, seq {})", self->user_id_,
                       self->sequencer_->last_seq());
      });
    });
  }

  /// The user's current seq and, when asked, their task-updates after `after` (all pages).
  /// Runs on the blocking pool.
  Sequencer::Replay read_replay(const Sequencer::Read& read) {
    Sequencer::Replay r;
    r.current = hub_.store_.user_last_seq(user_id_);
    std::int64_t after = read.after;
    while (read.rows) {
      auto page = hub_.store_.events_after(user_id_, hub_.settings_.kafka_topic_task_updates, after, 1000);
      if (page.empty()) break;
      after = page.back().seq;
      const bool last_page = page.size() < 1000;
      for (auto& row : page) r.rows.push_back({row.seq, std::make_shared<const std::string>(std::move(row.payload))});
      if (last_page || r.rows.size() >= 100'000) break;
    }
    return r;
  }

  // -- sending

  /// Queues a frame. Live frames count against WS_SEND_QUEUE_MAX; replayed ones (a resume
  /// or a gap fill, bounded by what the DB returned) do not, so a resume of a long absence
  /// is not mistaken for a client that stopped reading.
  void enqueue(std::shared_ptr<const std::string> frame, bool replay = false) {
    if (closed_) return;
    if (!replay && live_queued_ >= static_cast<std::size_t>(hub_.settings_.ws_send_queue_max)) {
      hub_.overflow_closes++;
      spdlog::warn("ws: user {}: send queue full ({} frames), disconnecting a client that does not read", user_id_, queue_.size());
      // A write is stuck (the client does not read), so a close frame could not go out
      // either: drop the connection.
      closed_ = true;
      beast::error_code ec;
      beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
      beast::get_lowest_layer(ws_).socket().close(ec);
      return finish({});
    }
    queue_.push_back({std::move(frame), replay});
    if (!replay) ++live_queued_;
    if (!writing_) write_next();
  }

  void write_next() {
    if (queue_.empty()) {
      writing_ = false;
      if (close_after_write_) do_close();
      return;
    }
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(*queue_.front().frame), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->finish(ec);
      self->hub_.frames_sent++;
      if (!self->queue_.front().replay) --self->live_queued_;
      self->queue_.pop_front();
      self->write_next();
    });
  }

  void close(websocket::close_code code, std::string reason) {
    if (closed_) return;
    close_reason_ = websocket::close_reason(code, reason);
    close_after_write_ = true;
    if (!writing_) do_close();
  }

  void do_close() {
    if (closed_) return;
    closed_ = true;
    expiry_.cancel();
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code ec) { self->finish(ec); });
  }

  void finish(beast::error_code ec) {
    if (ec && ec != websocket::error::closed && ec != asio::error::operation_aborted && ec != asio::error::eof)
      spdlog::debug("ws: user {}: {}", user_id_, ec.message());
    closed_ = true;
    expiry_.cancel();
    if (registered_ && !removed_) {
      removed_ = true;
      hub_.remove(user_id_, this);
    }
  }

  Hub& hub_;
  websocket::stream<beast::tcp_stream> ws_;
  std::string user_id_;
  std::chrono::system_clock::time_point expires_;
  asio::steady_timer expiry_;
  beast::flat_buffer in_;
  struct Out {
    std::shared_ptr<const std::string> frame;
    bool replay;
  };
  std::deque<Out> queue_;
  std::size_t live_queued_ = 0;
  std::optional<std::int64_t> resume_from_;  ///< /ws?last_seq=N
  /// Made once the start is known (the user's seq read before the 101, or the resume);
  /// none after that read failed: the socket closes 1013 after its handshake.
  std::optional<Sequencer> sequencer_;
  std::uint64_t gap_fills_seen_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  bool close_after_write_ = false;
  bool registered_ = false;
  bool removed_ = false;
  websocket::close_reason close_reason_;
};

// ---- Hub -------------------------------------------------------------------------------

Hub::Hub(const config::Settings& settings, storage::ReplayStore& store, const auth::JwtCodec& jwt, asio::thread_pool& blocking,
         kafka::ConsumerSetup setup)
    : settings_(settings), store_(store), jwt_(jwt), blocking_(blocking), instance_id_(make_instance_id()), setup_(std::move(setup)) {}

Hub::~Hub() { stop(); }

bool Hub::on_upgrade(http::Request& req, beast::tcp_stream& stream, bhttp::request<bhttp::string_body>& raw) {
  if (req.path != "/ws") return false;
  if (!websocket::is_upgrade(raw)) return false;
  if (stopped_) {
    refused++;
    refuse_upgrade(stream, req, 503, "shutting down");
    return true;
  }
  auto credentials = authenticate_upgrade(stream, req, settings_.cors_origins, jwt_);
  if (!credentials) {
    refused++;
    return true;
  }
  const auto& claims = credentials->claims;
  if (!reserve(claims.subject)) {
    refused++;
    refuse_upgrade(stream, req, 429, "too many WebSocket connections for this user (" + std::to_string(settings_.ws_max_sockets_per_user) + ")");
    return true;
  }
  std::optional<std::int64_t> resume_from;
  if (auto q = req.query_param("last_seq")) {
    std::int64_t n = -1;
    auto [end, ec] = std::from_chars(q->data(), q->data() + q->size(), n);
    if (ec != std::errc{} || end != q->data() + q->size() || n < 0) {
      unreserve(claims.subject);
      refused++;
      refuse_upgrade(stream, req, 400, "last_seq must be an integer >= 0");
      return true;
    }
    resume_from = n;
  }
  auto session = std::make_shared<Session>(*this, std::move(stream), claims.subject, claims.expires, resume_from);
  session->run(std::move(raw), credentials->subprotocol);
  return true;
}

void Hub::start() {
  if (!settings_.kafka_enabled || consumer_) return;
  kafka::ConsumerOptions o;
  o.group_id = settings_.kafka_consumer_group_websocket + "-" + instance_id_;
  o.topics = {settings_.kafka_topic_task_updates, settings_.kafka_topic_notification_request};
  o.client_id = "taskstream-ws";
  o.max_batch = 500;
  o.max_attempts = 1;
  // A group of its own each start: begin at the end (clients catch up from the DB), and
  // leave no trace worth keeping.
  o.extra = {{"auto.offset.reset", "latest"}};
  o.start_at_end = true;  // so /readyz means every change from now on is pushed
  if (setup_) setup_(o);
  const auto updates_topic = settings_.kafka_topic_task_updates;
  consumer_ = std::make_unique<kafka::ConsumerRunner>(
      settings_, o, [this, updates_topic](std::span<const kafka::Message> batch, kafka::BatchContext&) {
        for (const auto& m : batch) {
          try {
            // As the owning consumers do (workers/event_batch.hpp): ce_id names the event, and a
            // message whose ce_id and event_id disagree is theirs to dead-letter, not pushed.
            const auto ce = kafka::cloudevent_of(m);
            const auto ce_event_id = ce.id.empty() ? std::string() : events::event_id_of_cloudevent(ce.id, ce.source);
            const events::SourcePosition pos{m.topic(), m.partition(), m.offset(), ce_event_id};
            auto agrees = [&](const std::string& event_id) {
              if (ce_event_id.empty() || events::same_event_id(event_id, ce_event_id)) return true;
              spdlog::debug("ws: skipping {}[{}]@{}: ce_id is not the event's event_id", m.topic(), m.partition(), m.offset());
              return false;
            };
            if (m.topic() == updates_topic) {
              auto u = events::parse_task_update(m.payload(), pos);
              if (!u.seq) continue;  // not one of ours: no place in the seq stream
              if (!agrees(u.event_id)) continue;
              deliver_update(u.user_id, *u.seq, std::make_shared<const std::string>(m.payload()));
            } else {
              auto r = events::parse_notification_request(m.payload(), pos);
              if (!agrees(r.event_id)) continue;
              if (std::find(r.channels.begin(), r.channels.end(), "in_app") == r.channels.end()) continue;
              json n{{"event_id", r.event_id}, {"type", r.type}, {"title", r.title}, {"message", r.message},
                     {"task_id", r.task_id ? json(*r.task_id) : json(nullptr)}, {"created_at", events::now_rfc3339()}};
              deliver_other(r.user_id, std::make_shared<const std::string>(json{{"type", "notification"}, {"notification", n}}.dump()));
            }
          } catch (const events::EventError& e) {
            // The consumers that own these topics dead-letter it; the hub only skips it.
            spdlog::debug("ws: skipping {}[{}]@{}: {}", m.topic(), m.partition(), m.offset(), e.what());
          }
        }
      });
  consumer_->start();
  consumer_view_.store(consumer_.get(), std::memory_order_release);
  spdlog::info("ws: instance {} consuming {} and {} (group {})", instance_id_, o.topics[0], o.topics[1], o.group_id);
}

void Hub::stop(std::chrono::steady_clock::time_point until) {
  if (stopped_.exchange(true)) return;
  if (consumer_) consumer_->stop(until);
  std::vector<std::shared_ptr<Session>> all;
  {
    std::lock_guard lock(mutex_);
    for (auto& [user, list] : sessions_)
      for (auto& w : list)
        if (auto s = w.lock()) all.push_back(std::move(s));
  }
  for (auto& s : all) s->post_close(websocket::close_code::going_away, "server stopping");
}

void Hub::deliver_update(const std::string& user_id, std::int64_t seq, std::shared_ptr<const std::string> frame) {
  for (auto& s : sessions_of(user_id)) s->post_update(seq, frame);
}

void Hub::deliver_other(const std::string& user_id, std::shared_ptr<const std::string> frame) {
  for (auto& s : sessions_of(user_id)) s->post_other(frame);
}

bool Hub::ready() const noexcept {
  const auto* c = consumer();
  return !settings_.kafka_enabled || (c && c->assigned_partitions() > 0);
}

HubStats Hub::stats() const noexcept {
  return {sockets.load(), frames_sent.load(), overflow_closes.load(), gap_fills.load(), refused.load()};
}

bool Hub::reserve(const std::string& user_id) {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  if (auto it = sessions_.find(user_id); it != sessions_.end())
    for (const auto& w : it->second)
      if (!w.expired()) ++n;
  if (auto it = reserved_.find(user_id); it != reserved_.end()) n += it->second;
  if (n >= static_cast<std::size_t>(settings_.ws_max_sockets_per_user)) return false;
  ++reserved_[user_id];
  return true;
}

void Hub::release_reservation_locked(const std::string& user_id) {
  if (auto it = reserved_.find(user_id); it != reserved_.end() && --it->second == 0) reserved_.erase(it);
}

void Hub::unreserve(const std::string& user_id) {
  std::lock_guard lock(mutex_);
  release_reservation_locked(user_id);
}

void Hub::add(const std::string& user_id, const std::shared_ptr<Session>& s) {
  std::lock_guard lock(mutex_);
  release_reservation_locked(user_id);
  sessions_[user_id].push_back(s);
}

void Hub::remove(const std::string& user_id, const Session* s) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(user_id);
  if (it == sessions_.end()) return;
  auto& list = it->second;
  list.erase(std::remove_if(list.begin(), list.end(),
                            [s](const std::weak_ptr<Session>& w) {
                              auto p = w.lock();
                              return !p || p.get() == s;
                            }),
             list.end());
  if (list.empty()) sessions_.erase(it);
}

std::vector<std::shared_ptr<Session>> Hub::sessions_of(const std::string& user_id) {
  std::vector<std::shared_ptr<Session>> out;
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(user_id);
  if (it == sessions_.end()) return out;
  for (const auto& w : it->second)
    if (auto s = w.lock()) out.push_back(std::move(s));
  return out;
}

void Hub::register_metrics(util::MetricsRegistry& metrics) {
  metrics.add_gauge("websocket_connections", "WebSocket connections open on this instance.", "gauge",
                    [this] { return static_cast<double>(stats().sockets); });
  metrics.add_gauge("websocket_frames_sent_total", "Frames sent to WebSocket clients.", "counter",
                    [this] { return static_cast<double>(stats().frames_sent); });
  metrics.add_gauge("websocket_overflow_closes_total", "Sockets closed because their send queue overflowed.", "counter",
                    [this] { return static_cast<double>(stats().overflow_closes); });
}

}  // namespace taskstream::ws
