// POST /tasks throughput and latency beside its ceilings, on the same machine in the same run.
//
//   http_load [--connections 64] [--seconds 5] [--instances 1] [--database-only]
//
// Measures, in this order:
// 1. ceiling, database: the same writes as POST /tasks (Store::create_task: the task, the
//    user's next seq and two outbox rows in one transaction) from as many threads as there
//    are connections, without HTTP, into a fresh database of its own with nothing else
//    running (no server started yet);
// then starts `taskstream serve` (--instances N: N of them on the same database, topics and
// groups, the connections dealt among them) on a fresh database (SQLite in a fresh
// directory; BENCH_DATABASE_URL names a PostgreSQL server, e.g. scripts/postgres, and each
// database is then a fresh schema of its own there, dropped at the end) on the broker in
// KAFKA_BOOTSTRAP_SERVERS, with one user per connection, and measures:
// 2. ceiling, server: GET /healthz on the same connections, closed loop (as fast as answered);
// 3. POST /tasks, closed loop: the throughput;
// 4. POST /tasks, open loop (wrk2-style: each request has its scheduled send time and its
//    latency counts from then, so queueing shows) at 50 % and 80 % of that throughput.
// The load generator is one thread here, on the same cores as the server and the broker.
// Exit status 1 if any request failed.

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
#include "storage/postgres/postgres_store.hpp"
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
Result run_phase(const std::vector<std::uint16_t>& ports, bhttp::verb verb, const std::string& target, const std::string& body,
                 const std::vector<std::string>& tokens, double rate, int seconds) {
  asio::io_context io(1);
  Phase phase;
  const auto n = tokens.size();
  const auto start = Clock::now() + std::chrono::milliseconds(200);
  const auto until = start + std::chrono::seconds(seconds);
  const auto interval = rate > 0 ? std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(static_cast<double>(n) / rate))
                                 : Clock::duration::zero();
  for (std::size_t i = 0; i < n; ++i) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), ports[i % ports.size()]);
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

/// A fresh database of the kind BENCH_DATABASE_URL names: a schema of its own on that
/// PostgreSQL server (dropped by the destructor), or a SQLite file in `dir`.
struct FreshDatabase {
  std::string base, schema, url;
  FreshDatabase(const std::string& name, const std::filesystem::path& dir) {
    const char* db = std::getenv("BENCH_DATABASE_URL");
    if (db && *db) {
      base = db;
      schema = "bench_" + name + "_" + std::to_string(::getpid());
      taskstream::storage::postgres_execute(base, "DROP SCHEMA IF EXISTS " + schema + " CASCADE; CREATE SCHEMA " + schema);
      url = base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
    } else {
      std::filesystem::create_directories(dir);
      url = "sqlite:///" + (dir / (name + ".db")).string();
    }
  }
  ~FreshDatabase() {
    if (schema.empty() || std::getenv("BENCH_KEEP")) return;
    try {
      taskstream::storage::postgres_execute(base, "DROP SCHEMA IF EXISTS " + schema + " CASCADE");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "http_load: could not drop schema %s: %s\n", schema.c_str(), e.what());
    }
  }
  const char* kind() const { return schema.empty() ? "SQLite" : "PostgreSQL"; }
};

}  // namespace

int main(int argc, char** argv) {
  std::size_t connections = 64;
  int seconds = 5;
  std::size_t instances = 1;
  bool database_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--database-only") {
      database_only = true;  // the database ceiling alone, no server (for profiling the store)
      continue;
    }
    if (i + 1 >= argc) break;
    if (a == "--connections") connections = std::stoul(argv[i + 1]);
    else if (a == "--seconds") seconds = std::stoi(argv[i + 1]);
    else if (a == "--instances") instances = std::max<std::size_t>(1, std::stoul(argv[i + 1]));
    ++i;
  }
  taskstream::util::setup_logging("warn", taskstream::config::LogFormat::text);
  const auto scratch = std::filesystem::temp_directory_path() / ("bench-http-" + std::to_string(::getpid()));
  std::vector<bench::Serve> serves(instances);
  std::uint64_t failures = 0;
  try {
    {
      // 1. Nothing else runs yet: no server, no relay or consumer reading the database.
      FreshDatabase ceiling_db("ceiling", scratch);
      const double dbc = database_ceiling(ceiling_db.url, connections, seconds);
      std::printf("ceiling  database (%s, fresh, nothing else running): Store::create_task from %zu threads, no HTTP: %.0f tasks/s\n",
                  ceiling_db.kind(), connections, dbc);
      std::fflush(stdout);
    }
    if (database_only) {
      std::filesystem::remove_all(scratch);
      return 0;
    }
    FreshDatabase serve_db("serve", scratch);
    std::vector<std::uint16_t> ports;
    for (std::size_t k = 0; k < instances; ++k) {
      serves[k].instance = "-" + std::to_string(k);
      // Logins for every connection: the per-address login limit would refuse them.
      serves[k].start(bench::taskstream_binary(), {{"AUTH_RATE_LIMIT_PER_ADDRESS", "0"},
                                                   {"AUTH_RATE_LIMIT_PER_ACCOUNT", "0"},
                                                   {"DATABASE_URL", serve_db.url}});
      ports.push_back(serves[k].port);
    }
    std::vector<std::string> tokens;
    for (std::size_t i = 0; i < connections; ++i)
      tokens.push_back(bench::new_user_token(ports[i % ports.size()], "load" + std::to_string(i) + "-" + std::to_string(::getpid()) + "@bench.example"));
    const std::vector<std::string> anonymous(connections);
    const std::string body = R"({"title":"bench task","description":"a task written by the HTTP benchmark","priority":"medium"})";
    const std::string where = instances == 1 ? "" : " over " + std::to_string(instances) + " instances";

    auto h = run_phase(ports, bhttp::verb::get, "/healthz", "", anonymous, 0, seconds);
    std::printf("ceiling  GET /healthz, %zu connections%s, closed loop: %.0f req/s, p50 %.2f ms, p99 %.2f ms (errors %lu)\n", connections,
                where.c_str(), h.per_second, h.p50, h.p99, static_cast<unsigned long>(h.errors));
    std::fflush(stdout);
    failures += h.errors;

    auto p = run_phase(ports, bhttp::verb::post, "/tasks", body, tokens, 0, seconds);
    std::printf("post     POST /tasks, %zu connections%s, closed loop: %.0f req/s, p50 %.2f ms, p99 %.2f ms (errors %lu)\n", connections,
                where.c_str(), p.per_second, p.p50, p.p99, static_cast<unsigned long>(p.errors));
    std::fflush(stdout);
    failures += p.errors;
    for (double share : {0.5, 0.8}) {
      const double rate = std::max(1.0, share * p.per_second);
      auto o = run_phase(ports, bhttp::verb::post, "/tasks", body, tokens, rate, seconds);
      std::printf("open     POST /tasks at %.0f req/s (%.0f %% of closed loop), %zu connections%s: p50 %.2f ms, p99 %.2f ms, max %.2f ms; "
                  "%.0f req/s answered (errors %lu)\n",
                  rate, share * 100, connections, where.c_str(), o.p50, o.p99, o.max, o.per_second, static_cast<unsigned long>(o.errors));
      std::fflush(stdout);
      failures += o.errors;
    }
    for (auto& s : serves) s.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http_load: %s\n", e.what());
    for (auto& s : serves) s.stop();
    std::filesystem::remove_all(scratch);
    return 1;
  }
  std::filesystem::remove_all(scratch);
  if (failures > 0) std::printf("FAILED   %lu request(s) failed\n", static_cast<unsigned long>(failures));
  return failures > 0 ? 1 : 0;
}
