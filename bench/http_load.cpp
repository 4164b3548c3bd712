// POST /tasks throughput and latency beside its ceilings, on the same machine in the same run.
//
//   http_load [--connections 64] [--seconds 5] [--database-only]
//
// Starts `taskstream serve` (SQLite in a fresh directory; BENCH_DATABASE_URL picks another
// database, e.g. the PostgreSQL of scripts/postgres) on the broker in KAFKA_BOOTSTRAP_SERVERS,
// with one user per connection, then measures:
// 1. ceiling, server: GET /healthz on the same connections, closed loop (as fast as answered);
// 2. ceiling, database: the same writes (Store::create_task: the task, the user's next seq
//    and two outbox rows in one transaction) from as many threads, without HTTP, into a
//    fresh database of the same kind;
// 3. POST /tasks, closed loop: the throughput;
// 4. POST /tasks, open loop (wrk2-style: each request has its scheduled send time and its
//    latency counts from then, so queueing shows) at 50 % and 80 % of that throughput.
// The load generator is one thread here, on the same cores as the server and the broker.

#include <utility>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "config/settings.hpp"
#include "events/events.hpp"
#include "outbox/task_events.hpp"
#include "storage/store.hpp"
#include "util/logging.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using bench::pct;

namespace {

struct Phase {
  std::mutex mutex;
  std::vector<double> latencies_ms;
  std::uint64_t ok = 0, errors = 0;
  void add(const std::vector<double>& l, std::uint64_t o, std::uint64_t e) {
    std::lock_guard lock(mutex);
    latencies_ms.insert(latencies_ms.end(), l.begin(), l.end());
    ok += o;
    errors += e;
  }
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

/// One keep-alive connection sending `req` until `until`: as fast as answered (interval
/// zero), or one request every `interval` from `start` (open loop: latency from the
/// scheduled time).
asio::awaitable<void> connection(tcp::endpoint ep, bhttp::request<bhttp::string_body> req, Clock::time_point start,
                                 Clock::duration interval, Clock::time_point until, Phase& phase) {
  std::vector<double> lat;
  std::uint64_t ok = 0, errors = 0;
  try {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    co_await stream.async_connect(ep, asio::use_awaitable);
    stream.socket().set_option(tcp::no_delay(true));
    beast::flat_buffer buf;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (std::uint64_t k = 0;; ++k) {
      const auto scheduled = interval.count() > 0 ? start + interval * static_cast<long>(k) : Clock::now();
      if (scheduled >= until) break;
      if (scheduled > Clock::now()) {
        timer.expires_at(scheduled);
        co_await timer.async_wait(asio::use_awaitable);
      }
      co_await bhttp::async_write(stream, req, asio::use_awaitable);
      bhttp::response<bhttp::string_body> res;
      co_await bhttp::async_read(stream, buf, res, asio::use_awaitable);
      lat.push_back(ms(Clock::now() - scheduled));
      (res.result_int() / 100 == 2 ? ok : errors)++;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "connection: %s\n", e.what());
    errors++;
  }
  phase.add(lat, ok, errors);
}

/// Runs one phase: `tokens.size()` connections (token i on connection i), `rate` requests/s
/// in all (0: closed loop), for `seconds`. Returns {ok/s, p50, p99, max, errors}.
struct Result {
  double per_second = 0, p50 = 0, p99 = 0, max = 0;
  std::uint64_t errors = 0;
};
Result run_phase(std::uint16_t port, bhttp::verb verb, const std::string& target, const std::string& body,
                 const std::vector<std::string>& tokens, double rate, int seconds) {
  asio::io_context io(1);
  Phase phase;
  const auto n = tokens.size();
  const auto start = Clock::now() + std::chrono::milliseconds(200);
  const auto until = start + std::chrono::seconds(seconds);
  const auto interval = rate > 0 ? std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(static_cast<double>(n) / rate))
                                 : Clock::duration::zero();
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
  for (std::size_t i = 0; i < n; ++i) {
    bhttp::request<bhttp::string_body> req{verb, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.keep_alive(true);
    if (!tokens[i].empty()) req.set(bhttp::field::authorization, "Bearer " + tokens[i]);
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    // Connections start spread over one interval, so an open loop sends evenly.
    const auto offset = interval.count() > 0 ? interval * static_cast<long>(i) / static_cast<long>(n) : Clock::duration::zero();
    asio::co_spawn(io, connection(ep, std::move(req), start + offset, interval, until, phase), asio::detached);
  }
  io.run();
  Result r;
  r.per_second = static_cast<double>(phase.ok) / seconds;
  r.p50 = pct(phase.latencies_ms, 0.5);
  r.p99 = pct(phase.latencies_ms, 0.99);
  r.max = pct(phase.latencies_ms, 1.0);
  r.errors = phase.errors;
  return r;
}

/// The database's own rate for the same writes: Store::create_task from `threads` threads
/// for `seconds`, each thread its own user, into a fresh database of the kind `url` names.
double database_ceiling(const std::string& url, std::size_t threads, int seconds) {
  auto settings = taskstream::config::Settings::load({{"DATABASE_URL", url}, {"LOG_LEVEL", "warn"}});
  auto store = taskstream::storage::open_store(settings.database);
  store->migrate();
  auto factory = taskstream::outbox::task_event_factory(settings, "task_created");
  std::vector<std::string> users;
  for (std::size_t i = 0; i < threads; ++i)
    users.push_back(store->create_user("db-ceiling-" + taskstream::events::new_event_id() + "@bench.example", "x")->id);
  std::atomic<std::uint64_t> done{0};
  const auto until = Clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> pool;
  for (std::size_t i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      while (Clock::now() < until) {
        taskstream::storage::Task t;
        t.id = taskstream::events::new_event_id();
        t.user_id = users[i];
        t.title = "bench task";
        t.created_at = t.updated_at = taskstream::events::now_rfc3339();
        store->create_task(t, factory);
        done++;
      }
    });
  for (auto& t : pool) t.join();
  return static_cast<double>(done.load()) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t connections = 64;
  int seconds = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--database-only") {
      // The database ceiling alone, no server (for profiling the store): BENCH_DATABASE_URL
      // or a fresh SQLite file in the working directory.
      const char* db = std::getenv("BENCH_DATABASE_URL");
      const std::string url = db && *db ? db : "sqlite:///http-load-db-only-" + std::to_string(::getpid()) + ".db";
      std::printf("ceiling  database: Store::create_task from %zu threads, no HTTP: %.0f tasks/s\n", connections,
                  database_ceiling(url, connections, seconds));
      return 0;
    }
    if (i + 1 >= argc) break;
    if (a == "--connections") connections = std::stoul(argv[i + 1]);
    else if (a == "--seconds") seconds = std::stoi(argv[i + 1]);
    ++i;
  }
  taskstream::util::setup_logging("warn", taskstream::config::LogFormat::text);
  bench::Serve serve;
  try {
    // Logins for every connection: the per-address login limit would refuse them.
    serve.start(bench::taskstream_binary(), {{"AUTH_RATE_LIMIT_PER_ADDRESS", "0"}, {"AUTH_RATE_LIMIT_PER_ACCOUNT", "0"}});
    std::vector<std::string> tokens;
    for (std::size_t i = 0; i < connections; ++i)
      tokens.push_back(bench::new_user_token(serve.port, "load" + std::to_string(i) + "-" + std::to_string(::getpid()) + "@bench.example"));
    const std::vector<std::string> anonymous(connections);
    const std::string body = R"({"title":"bench task","description":"a task written by the HTTP benchmark","priority":"medium"})";

    auto h = run_phase(serve.port, bhttp::verb::get, "/healthz", "", anonymous, 0, seconds);
    std::printf("ceiling  GET /healthz, %zu connections, closed loop: %.0f req/s, p50 %.2f ms, p99 %.2f ms (errors %lu)\n", connections,
                h.per_second, h.p50, h.p99, static_cast<unsigned long>(h.errors));
    std::fflush(stdout);

    const char* db = std::getenv("BENCH_DATABASE_URL");
    const std::string db_url = db && *db ? db : "sqlite:///" + (serve.dir / "ceiling.db").string();
    const double dbc = database_ceiling(db_url, connections, seconds);
    std::printf("ceiling  database (%s): Store::create_task from %zu threads, no HTTP: %.0f tasks/s\n",
                db && *db ? "BENCH_DATABASE_URL" : "SQLite", connections, dbc);
    std::fflush(stdout);

    auto p = run_phase(serve.port, bhttp::verb::post, "/tasks", body, tokens, 0, seconds);
    std::printf("post     POST /tasks, %zu connections, closed loop: %.0f req/s, p50 %.2f ms, p99 %.2f ms (errors %lu)\n", connections,
                p.per_second, p.p50, p.p99, static_cast<unsigned long>(p.errors));
    std::fflush(stdout);
    for (double share : {0.5, 0.8}) {
      const double rate = std::max(1.0, share * p.per_second);
      auto o = run_phase(serve.port, bhttp::verb::post, "/tasks", body, tokens, rate, seconds);
      std::printf("open     POST /tasks at %.0f req/s (%.0f %% of closed loop), %zu connections: p50 %.2f ms, p99 %.2f ms, max %.2f ms; "
                  "%.0f req/s answered (errors %lu)\n",
                  rate, share * 100, connections, o.p50, o.p99, o.max, o.per_second, static_cast<unsigned long>(o.errors));
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http_load: %s\n", e.what());
    serve.stop();
    return 1;
  }
  serve.stop();
  return 0;
}
