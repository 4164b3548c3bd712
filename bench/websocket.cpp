// WebSocket benchmarks against a real `taskstream serve` (started here, on the broker in
// KAFKA_BOOTSTRAP_SERVERS, with a fresh SQLite database and topics of its own).
//
//   websocket [--sockets 10000] [--changes 20] [--seconds 5] [--rates 100,1000]
//
// 0. Floor: the broker round trip alone (produce -> consume, open loop at each rate).
//
// BENCH_DATABASE_URL picks another database (e.g. the PostgreSQL of scripts/postgres).
//
// 1. End-to-end latency, open loop: POST /tasks at a fixed offered rate (each request has
//    its scheduled time; latency is measured from it, so a slow server cannot hide its
//    queueing), until the task_created frame reaches a WebSocket client of the same user.
//    p50/p99/max, beside the floor measured in the same run: the POST's own response time
//    (the commit), which the frame cannot beat.
// 2. Fan-out: N sockets of one user on the instance; resident memory of the server per
//    socket, then `changes` task changes, each delivered to all N: frames/s from the first
//    POST to the last frame. Beside the ceiling: the same N clients fed the same number of
//    frames by a bare Boost.Beast broadcaster in this process (no Kafka, no DB, no JSON).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>
#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "config/settings.hpp"
#include "kafka/admin.hpp"
#include "kafka/consumer_runner.hpp"
#include "kafka/producer.hpp"
#include "util/logging.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

using bench::HttpConn;
using bench::Serve;

namespace {

// ---- async WebSocket clients -----------------------------------------------------------

struct ClientStats {
  std::atomic<std::uint64_t> connected{0}, frames{0}, failed{0};
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::io_context& io, ClientStats& stats, std::function<void(const std::string&)> on_frame = {})
      : ws_(asio::make_strand(io)), stats_(stats), on_frame_(std::move(on_frame)) {}
  void start(std::uint16_t port, std::string token, std::string target = "/ws") {
    token_ = std::move(token);
    target_ = std::move(target);
    beast::get_lowest_layer(ws_).async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                               [self = shared_from_this(), port](beast::error_code ec) { self->on_connect(ec, port); });
  }

 private:
  void on_connect(beast::error_code ec, std::uint16_t port) {
    if (ec) return fail();
    if (!token_.empty())
      ws_.set_option(websocket::stream_base::decorator(
          [t = token_](websocket::request_type& r) { r.set(bhttp::field::authorization, "Bearer " + t); }));
    ws_.async_handshake("127.0.0.1:" + std::to_string(port), target_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail();
      self->stats_.connected++;
      self->read();
    });
  }
  void read() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      self->stats_.frames++;
      if (self->on_frame_) self->on_frame_(beast::buffers_to_string(self->buf_.data()));
      self->buf_.consume(self->buf_.size());
      self->read();
    });
  }
  void fail() { stats_.failed++; }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  ClientStats& stats_;
  std::function<void(const std::string&)> on_frame_;
  std::string token_, target_;
};

/// Opens `n` clients, at most 256 handshakes in flight; waits until all connected (or failed).
void open_clients(asio::io_context& io, ClientStats& stats, std::uint16_t port, const std::string& token, std::size_t n,
                  std::vector<std::shared_ptr<Client>>& keep) {
  for (std::size_t i = 0; i < n; ++i) {
    while (i - stats.connected - stats.failed >= 256) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    auto c = std::make_shared<Client>(io, stats);
    keep.push_back(c);
    asio::post(io, [c, port, token] { c->start(port, token); });
  }
  while (stats.connected + stats.failed < n) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

// ---- the ceiling: a bare broadcaster ---------------------------------------------------

class Broadcaster {
 public:
  Broadcaster(asio::io_context& io, std::uint16_t port) : io_(io), acceptor_(io, {asio::ip::make_address("127.0.0.1"), port}) { accept(); }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::size_t sessions() {
    std::lock_guard l(m_);
    return sessions_.size();
  }
  void broadcast(std::shared_ptr<const std::string> frame) {
    std::lock_guard l(m_);
    for (auto& s : sessions_) asio::post(s->ws.get_executor(), [s, frame] { s->send(frame); });
  }

 private:
  struct Session : std::enable_shared_from_this<Session> {
    explicit Session(tcp::socket sock) : ws(std::move(sock)) {}
    websocket::stream<beast::tcp_stream> ws;
    std::deque<std::shared_ptr<const std::string>> q;
    void send(std::shared_ptr<const std::string> f) {
      q.push_back(std::move(f));
      if (q.size() == 1) write();
    }
    void write() {
      ws.async_write(asio::buffer(*q.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) return;
        self->q.pop_front();
        if (!self->q.empty()) self->write();
      });
    }
  };
  void accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket sock) {
      if (!ec) {
        auto s = std::make_shared<Session>(std::move(sock));
        s->ws.async_accept([this, s](beast::error_code ec) {
          if (ec) return;
          std::lock_guard l(m_);
          sessions_.push_back(s);
        });
      }
      accept();
    });
  }
  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::mutex m_;
  std::vector<std::shared_ptr<Session>> sessions_;
};

using bench::pct;

// A run that lost or missed anything is not a figure: each such finding is printed as a
// FAILED line and the exit status is 1 (bench/run rejects the run).
int g_failures = 0;
void failed(const std::string& what) {
  std::printf("FAILED   %s\n", what.c_str());
  std::fflush(stdout);
  ++g_failures;
}

std::string register_user(std::uint16_t port, const std::string& name) { return bench::new_user_token(port, name + "@bench.example"); }

// ---- 1. latency ------------------------------------------------------------------------

void latency(Serve& serve, int rate, int seconds) {
  const auto token = register_user(serve.port, "lat" + std::to_string(rate));
  asio::io_context io;
  ClientStats stats;
  const int total = rate * seconds;
  std::vector<Clock::time_point> scheduled(static_cast<std::size_t>(total));
  std::vector<double> e2e(static_cast<std::size_t>(total), -1), post(static_cast<std::size_t>(total), -1);
  std::mutex m;
  auto client = std::make_shared<Client>(io, stats, [&](const std::string& text) {
    const auto now = Clock::now();
    auto f = json::parse(text, nullptr, false);
    if (!f.is_object() || f.value("type", "") != "task_created") return;
    const std::string title = f["changes"].value("title", "");
    if (title.rfind("lat-", 0) != 0) return;
    const auto i = static_cast<std::size_t>(std::stol(title.substr(4)));
    std::lock_guard l(m);
    if (i < e2e.size()) e2e[i] = std::chrono::duration<double, std::milli>(now - scheduled[i]).count();
  });
  client->start(serve.port, token);
  std::thread io_thread([&] {
    auto guard = asio::make_work_guard(io);
    io.run();
  });
  while (!stats.connected) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  // Open loop: sender k sends requests k, k+S, ... each at its scheduled time.
  constexpr int kSenders = 8;
  const auto t0 = Clock::now() + std::chrono::milliseconds(50);
  const auto interval = std::chrono::nanoseconds(1'000'000'000 / rate);
  for (int i = 0; i < total; ++i) scheduled[static_cast<std::size_t>(i)] = t0 + i * interval;
  std::vector<std::thread> senders;
  for (int k = 0; k < kSenders; ++k)
    senders.emplace_back([&, k] {
      HttpConn c(serve.port);
      for (int i = k; i < total; i += kSenders) {
        std::this_thread::sleep_until(scheduled[static_cast<std::size_t>(i)]);
        c.call(bhttp::verb::post, "/tasks", json{{"title", "lat-" + std::to_string(i)}}.dump(), token);
        post[static_cast<std::size_t>(i)] = std::chrono::duration<double, std::milli>(Clock::now() - scheduled[static_cast<std::size_t>(i)]).count();
      }
    });
  for (auto& s : senders) s.join();
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    {
      std::lock_guard l(m);
      if (std::none_of(e2e.begin(), e2e.end(), [](double v) { return v < 0; })) break;
    }
    if (Clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::vector<double> got;
  {
    std::lock_guard l(m);
    for (double v : e2e)
      if (v >= 0) got.push_back(v);
  }
  std::printf("latency  %5d changes/s x %d s: POST->frame p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms  (%zu/%d frames) | "
              "floor, POST answered: p50 %6.2f ms  p99 %6.2f ms\n",
              rate, seconds, pct(got, 0.5), pct(got, 0.99), pct(got, 1.0), got.size(), total, pct(post, 0.5), pct(post, 0.99));
  if (got.size() < static_cast<std::size_t>(total))
    failed("latency at " + std::to_string(rate) + "/s: " + std::to_string(static_cast<std::size_t>(total) - got.size()) + " frame(s) never arrived");
  io.stop();
  io_thread.join();
}

// ---- 2. fan-out ------------------------------------------------------------------------

void fanout(Serve& serve, std::size_t sockets, int changes) {
  const auto token = register_user(serve.port, "fan");
  std::uint64_t n_clients = 0;
  {  // phase 1 in a scope: its io_context goes (and with it every socket) before the fork below
  asio::io_context io;
  ClientStats stats;
  std::vector<std::shared_ptr<Client>> clients;
  std::thread io_thread([&] {
    auto guard = asio::make_work_guard(io);
    io.run();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double rss0 = serve.rss_mib();
  const auto c0 = Clock::now();
  open_clients(io, stats, serve.port, token, sockets, clients);
  const double connect_s = std::chrono::duration<double>(Clock::now() - c0).count();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double rss1 = serve.rss_mib();

  HttpConn http(serve.port);
  const auto before = stats.frames.load();
  const auto target = before + static_cast<std::uint64_t>(changes) * stats.connected.load();
  // The changes go in from another thread; the window is the ceiling's: from the first frame
  // a client reads to the last.
  std::thread poster([&] {
    for (int i = 0; i < changes; ++i) http.call(bhttp::verb::post, "/tasks", json{{"title", "fan-" + std::to_string(i)}}.dump(), token);
  });
  const auto wait_from = Clock::now();
  while (stats.frames == before && Clock::now() - wait_from < std::chrono::seconds(60)) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const auto t0 = Clock::now();
  while (stats.frames < target && Clock::now() - t0 < std::chrono::seconds(120)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  poster.join();
  const double rss2 = serve.rss_mib();
  const auto delivered = stats.frames.load() - before;
  std::printf("fan-out  %zu sockets (%lu connected, %lu failed, %.1f s to connect): server RSS %.1f -> %.1f MiB = %.1f KiB/socket; "
              "after the frames %.1f MiB\n",
              sockets, static_cast<unsigned long>(stats.connected.load()), static_cast<unsigned long>(stats.failed.load()), connect_s,
              rss0, rss1, (rss1 - rss0) * 1024.0 / static_cast<double>(std::max<std::uint64_t>(1, stats.connected)), rss2);
  std::printf("fan-out  %d changes x %lu sockets: %lu frames in %.2f s = %.0f frames/s\n", changes,
              static_cast<unsigned long>(stats.connected.load()), static_cast<unsigned long>(delivered), secs,
              static_cast<double>(delivered) / secs);
  n_clients = stats.connected.load();
  if (stats.failed.load() > 0) failed("fan-out: " + std::to_string(stats.failed.load()) + " socket(s) failed to connect");
  if (delivered < target - before) failed("fan-out: " + std::to_string(target - before - delivered) + " frame(s) undelivered");
  io.stop();
  io_thread.join();
  clients.clear();
  }

  // The ceiling: the same clients and frame count, fed by a bare Beast broadcaster in a
  // child process (a process of its own, as the server is, and within the fd limit).
  const std::uint16_t bport = Serve::free_port();
  const pid_t child = fork();
  if (child == 0) {
    // As many I/O threads as `serve` runs (one per core), each session on a strand.
    const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    asio::io_context bio(static_cast<int>(threads));
    Broadcaster b(bio, bport);
    std::vector<std::thread> pool;
    auto guard = asio::make_work_guard(bio);
    for (unsigned k = 0; k < threads; ++k) pool.emplace_back([&] { bio.run(); });
    while (b.sessions() < n_clients) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const std::string sample = json{{"type", "task_created"}, {"seq", 1}, {"task_id", "00000000-0000-4000-8000-000000000000"},
                                    {"changes", {{"title", "fan-0"}, {"status", "todo"}, {"priority", "medium"}}},
                                    {"timestamp", "2026-11-27T12:00:00.000Z"}}
                                  .dump();
    for (int i = 0; i < changes; ++i) b.broadcast(std::make_shared<const std::string>(sample));
    for (auto& t : pool) t.join();  // until killed
    _exit(0);
  }
  asio::io_context cio;
  ClientStats cstats;
  std::vector<std::shared_ptr<Client>> cclients;
  Clock::time_point first{};
  std::atomic<bool> seen{false};
  std::thread cthread([&] {
    auto guard = asio::make_work_guard(cio);
    cio.run();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  open_clients(cio, cstats, bport, "", n_clients, cclients);
  const auto ctarget = static_cast<std::uint64_t>(changes) * cstats.connected.load();
  const auto wait_from = Clock::now();
  while (cstats.frames == 0 && Clock::now() - wait_from < std::chrono::seconds(60)) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const auto ct0 = Clock::now();
  while (cstats.frames < ctarget && Clock::now() - ct0 < std::chrono::seconds(120)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const double csecs = std::chrono::duration<double>(Clock::now() - ct0).count();
  std::printf("ceiling  bare Beast broadcaster (own process, %u I/O threads as serve), same clients, first frame to last: %lu frames in %.2f s = %.0f frames/s\n",
              std::max(1u, std::thread::hardware_concurrency()), static_cast<unsigned long>(cstats.frames.load()), csecs, static_cast<double>(cstats.frames.load()) / csecs);
  if (cstats.frames.load() < ctarget) failed("ceiling: the bare broadcaster delivered " + std::to_string(cstats.frames.load()) + " of " + std::to_string(ctarget) + " frames");
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  cio.stop();
  cthread.join();
}

}  // namespace

// ---- the latency floor: the broker round trip alone ----------------------------------

/// Produce -> consume through the broker alone at `rate` messages/s, open loop, with the
/// service's producer (idempotent, acks=all) and consumer runner on a fresh 3-partition
/// topic: what POST -> frame cannot beat however fast the server is.
void broker_round_trip(int rate, int seconds) {
  const char* bootstrap = std::getenv("KAFKA_BOOTSTRAP_SERVERS");
  const std::string prefix = "bench-rtt-" + std::to_string(::getpid()) + "-" + std::to_string(rate);
  auto s = taskstream::config::Settings::load({{"KAFKA_BOOTSTRAP_SERVERS", bootstrap ? bootstrap : "127.0.0.1:9092"},
                                               {"KAFKA_TOPIC_TASK_EVENTS", prefix + "-events"},
                                               {"KAFKA_TOPIC_TASK_UPDATES", prefix + "-updates"},
                                               {"LOG_LEVEL", "warn"}});
  taskstream::kafka::Admin(s).ensure_topics(taskstream::kafka::service_topics(s));
  const int total = rate * seconds;
  std::vector<Clock::time_point> scheduled(static_cast<std::size_t>(total));
  std::vector<double> rtt(static_cast<std::size_t>(total), -1);
  std::mutex m;
  std::atomic<int> got{0};
  taskstream::kafka::ConsumerOptions o;
  o.group_id = prefix;
  o.topics = {s.kafka_topic_task_updates};
  o.client_id = "bench-rtt";
  o.start_at_end = true;  // assigned (and positioned) before the clock starts
  o.extra = {{"auto.offset.reset", "latest"}};
  taskstream::kafka::ConsumerRunner consumer(s, o, [&](std::span<const taskstream::kafka::Message> batch, taskstream::kafka::BatchContext&) {
    const auto now = Clock::now();
    std::lock_guard l(m);
    for (const auto& msg : batch) {
      const auto i = static_cast<std::size_t>(std::stol(std::string(msg.payload())));
      if (i < rtt.size() && rtt[i] < 0) {
        rtt[i] = std::chrono::duration<double, std::milli>(now - scheduled[i]).count();
        got++;
      }
    }
  });
  consumer.start();
  for (int i = 0; i < 1000 && consumer.assigned_partitions() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  taskstream::kafka::Producer producer(s);
  producer.send({s.kafka_topic_task_events, "warm-up", "{}", {}, std::nullopt}).get();
  const auto t0 = Clock::now() + std::chrono::milliseconds(50);
  const auto interval = std::chrono::nanoseconds(1'000'000'000 / rate);
  for (int i = 0; i < total; ++i) scheduled[static_cast<std::size_t>(i)] = t0 + i * interval;
  for (int i = 0; i < total; ++i) {
    std::this_thread::sleep_until(scheduled[static_cast<std::size_t>(i)]);
    producer.produce({s.kafka_topic_task_updates, "user-" + std::to_string(i % 64), std::to_string(i), {}, std::nullopt},
                     [](const taskstream::kafka::DeliveryResult&) {});
  }
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (got < total && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  consumer.stop();
  std::vector<double> ok;
  {
    std::lock_guard l(m);
    for (double v : rtt)
      if (v >= 0) ok.push_back(v);
  }
  std::printf("rtt      %5d msgs/s x %d s: broker round trip (produce -> consume, acks=all): p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms  (%zu/%d)\n",
              rate, seconds, pct(ok, 0.5), pct(ok, 0.99), pct(ok, 1.0), ok.size(), total);
  std::fflush(stdout);
  if (ok.size() < static_cast<std::size_t>(total)) failed("broker round trip at " + std::to_string(rate) + "/s: " + std::to_string(static_cast<std::size_t>(total) - ok.size()) + " message(s) not consumed");
}

int main(int argc, char** argv) {
  std::size_t sockets = 10'000;
  int changes = 20, seconds = 5;
  std::vector<int> rates{100, 1000};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--sockets") sockets = std::stoul(argv[i + 1]);
    else if (a == "--changes") changes = std::stoi(argv[i + 1]);
    else if (a == "--seconds") seconds = std::stoi(argv[i + 1]);
    else if (a == "--rates") {
      rates.clear();
      std::stringstream ss(argv[i + 1]);
      for (std::string r; std::getline(ss, r, ',');) rates.push_back(std::stoi(r));
    }
  }
  taskstream::util::setup_logging("warn", taskstream::config::LogFormat::text);
  const std::string binary = bench::taskstream_binary();
  Serve serve;
  try {
    for (int r : rates) broker_round_trip(r, seconds);
    serve.start(binary);
    for (int r : rates) latency(serve, r, seconds);
    if (sockets > 0) fanout(serve, sockets, changes);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "websocket bench: %s\n", e.what());
    if (serve.pid > 0) kill(serve.pid, SIGTERM);
    return 1;
  }
  serve.stop();
  return g_failures > 0 ? 1 : 0;
}
