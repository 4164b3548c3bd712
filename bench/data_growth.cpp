// Cost as data grows (issue 20, target 5): the same requests on a nearly empty database and
// on one with 1,000,000 tasks, same users, same server set-up.
//
//   data_growth [--tasks 1000000] [--users 10000] [--rate 200] [--rounds 10] [--slice 1] [--keep DIR]
//
// 1. Loads each database directly through the storage layer's SQLite driver (storage/sqlite:
//    its Connection, statements and write_task), in transactions of 50,000 tasks with
//    synchronous=OFF, into a fresh file. What it writes is what a year of API use leaves:
//    - users (email, email_key, an Argon2id hash of "benchmark-password", so they can log in);
//    - tasks created over the last 365 days in time order (ids UUIDv7 of their creation
//      time), 55 % todo, 15 % in_progress and 30 % done after a later update or completion
//      (version 2, a second event), 30 % with a due date (done ones in the past, open ones
//      over a month ahead, so no reminder is due);
//    - user_seq: the user's count of changes;
//    - audit_log and processed_events (the audit group of its `serve`): one row each per
//      task-events event, as the audit consumer writes them (workers::to_audit_entry);
//    - outbox: only the last 7 days' rows (OUTBOX_RETENTION_HOURS=168 pruned the rest),
//      all published, so the relay has nothing to drain while we measure.
//    Then checkpoints (TRUNCATE) and reports the load time and (db + wal) bytes per task.
// 2. "Empty" database: the same 10,000 users with 5 tasks each. Both databases give the
//    16 measured users 120 tasks, so a page (default 50 items) and the page after it (via
//    next_cursor) carry the same number of items in both: what changes is the size of the
//    tables around them, which is what this measures.
// 3. Starts a `taskstream serve` on each database (bench_support.hpp; the same environment
//    but for the database and its own topics and groups) and drives, open loop (wrk2-style,
//    latency from the scheduled send time), at --rate req/s, 16 keep-alive connections (one
//    user each): GET /tasks/{id} (a random task of the user), GET /tasks,
//    GET /tasks?cursor=<page 1's next_cursor>, GET /tasks/{id}/history, POST /tasks. Each
//    endpoint alternates between the two servers in slices of --slice seconds, --rounds
//    times, so whatever else the machine runs falls on both alike. Prints each p99 (of
//    all the slices) beside the empty one and their ratio (target <= 1.5), and, less
//    sensitive to one stall of the machine, the median of the slices' own p99s.
//    Before that, the store's own cost of each of those reads on both databases (Store
//    calls in this process, no HTTP, no server: "growth   store ..." lines, p50 in us),
//    which the scheduling noise of a shared machine hardly touches.
// 4. Prints SQLite's plan (EXPLAIN QUERY PLAN) of the store's queries on the 1M database.
// KAFKA_BOOTSTRAP_SERVERS picks the broker `serve` uses. Output lines start with "growth"
// or "plan"; see docs/benchmarks.md.

#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <cstdio>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "auth/password.hpp"
#include "bench_support.hpp"
#include "config/settings.hpp"
#include "events/events.hpp"
#include "outbox/task_events.hpp"
#include "storage/impl/common.hpp"
#include "storage/sqlite/database.hpp"
#include "storage/sqlite/rows.hpp"
#include "storage/store.hpp"
#include "util/logging.hpp"
#include "workers/audit_consumer.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace taskstream;
using bench::pct;

namespace {

constexpr std::size_t kMeasured = 16;         // users (and connections) the requests run as
constexpr std::size_t kMeasuredTasks = 120;   // tasks of each measured user, in both databases
constexpr std::int64_t kDayMs = 86'400'000;
constexpr const char* kPassword = "benchmark-password";

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// RFC 3339 UTC with milliseconds, the API's shape (events::now_rfc3339 at `t`).
std::string rfc3339(std::int64_t t) {
  using namespace std::chrono;
  const sys_time<milliseconds> at{milliseconds{t}};
  const auto day = floor<days>(at);
  const year_month_day date{day};
  const hh_mm_ss time{at - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                     static_cast<unsigned>(date.day()), time.hours().count(), time.minutes().count(), time.seconds().count(),
                     time.subseconds().count());
}

/// A UUIDv7 of time `t` (what events::new_event_id gives at that time).
std::string uuid7(std::int64_t t, std::mt19937_64& rng) {
  std::uint8_t b[16];
  const std::uint64_t r1 = rng(), r2 = rng();
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(t) >> (8 * (5 - i)));
  for (int i = 6; i < 8; ++i) b[i] = static_cast<std::uint8_t>(r1 >> (8 * i));
  for (int i = 8; i < 16; ++i) b[i] = static_cast<std::uint8_t>(r2 >> (8 * (i - 8)));
  b[6] = static_cast<std::uint8_t>(0x70U | (b[6] & 0x0fU));
  b[8] = static_cast<std::uint8_t>(0x80U | (b[8] & 0x3fU));
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[b[i] >> 4];
    s += hex[b[i] & 0xf];
  }
  return s;
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// ---- the loader -------------------------------------------------------------------------

struct Names {  // the topics and groups of the `serve` that runs on one database
  std::string task_events, task_updates, audit_group;
  std::map<std::string, std::string> env;  // for bench::Serve::start
};
Names serve_names(const std::string& tag) {
  const std::string prefix = "bench-" + std::to_string(::getpid()) + "-" + tag;
  Names n{prefix + "-task-events", prefix + "-task-updates", prefix + "-audit", {}};
  n.env = {{"KAFKA_TOPIC_TASK_EVENTS", n.task_events},
           {"KAFKA_TOPIC_TASK_UPDATES", n.task_updates},
           {"KAFKA_TOPIC_NOTIFICATION_REQUEST", prefix + "-notification.request"},
           {"KAFKA_CONSUMER_GROUP_AUDIT", n.audit_group},
           {"KAFKA_CONSUMER_GROUP_NOTIFICATION", prefix + "-notification"},
           {"KAFKA_CONSUMER_GROUP_WEBSOCKET", prefix + "-websocket"},
           {"AUTH_RATE_LIMIT_PER_ADDRESS", "0"},
           {"AUTH_RATE_LIMIT_PER_ACCOUNT", "0"}};
  return n;
}

struct Loaded {
  std::vector<std::string> emails;                 // of the measured users
  std::vector<std::vector<std::string>> task_ids;  // of the measured users' tasks
  std::size_t tasks = 0, events = 0, outbox_rows = 0;
  double seconds = 0;
  std::uint64_t db_bytes = 0, wal_bytes = 0;
};

/// A fresh database at `path` with `users` users and `total` tasks (kMeasured users have
/// kMeasuredTasks each, the others share the rest evenly), as described at the top.
Loaded load(const std::string& path, std::size_t users, std::size_t total, const Names& names) {
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(path + ext);
  Loaded out;
  const auto t0 = Clock::now();
  {
    auto settings = config::Settings::load({{"DATABASE_URL", "sqlite:///" + path}});
    storage::open_store(settings.database)->migrate();
  }
  std::mt19937_64 rng(20);
  const std::string hash = auth::hash_password(kPassword);
  const std::int64_t end = now_ms() - 60'000;  // the newest loaded change: a minute ago
  const std::int64_t start = end - 365 * kDayMs;
  const std::int64_t retention_cut = end - 7 * kDayMs;

  // Who owns the k-th task (in creation order): the measured users (spread over the user
  // list) kMeasuredTasks each, the others the rest evenly, shuffled over time.
  std::vector<std::size_t> measured;
  for (std::size_t i = 0; i < kMeasured; ++i) measured.push_back(i * (users / kMeasured));
  std::vector<std::uint32_t> owners;
  owners.reserve(total);
  std::vector<bool> is_measured(users, false);
  for (auto m : measured) {
    is_measured[m] = true;
    owners.insert(owners.end(), kMeasuredTasks, static_cast<std::uint32_t>(m));
  }
  const std::size_t rest = total - kMeasured * kMeasuredTasks, others = users - kMeasured;
  for (std::size_t u = 0, o = 0; u < users; ++u) {
    if (is_measured[u]) continue;
    const std::size_t n = rest / others + (o++ < rest % others ? 1 : 0);
    owners.insert(owners.end(), n, static_cast<std::uint32_t>(u));
  }
  std::shuffle(owners.begin(), owners.end(), rng);

  storage::sqlite::Connection conn(path);
  conn.exec("PRAGMA synchronous = OFF");
  conn.exec("PRAGMA cache_size = -1048576");  // 1 GiB while loading
  using storage::sqlite::Statement;

  std::vector<std::string> user_ids(users);
  std::vector<std::int64_t> seq(users, 0);
  {
    storage::sqlite::Transaction txn(conn, true);
    Statement s(conn, "INSERT INTO users (id, email, email_key, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)");
    for (std::size_t u = 0; u < users; ++u) {
      const std::int64_t at = start - 30 * kDayMs + static_cast<std::int64_t>(u) * 100;
      user_ids[u] = uuid7(at, rng);
      const std::string email = "growth-user" + std::to_string(u) + "@bench.example";
      s.bind(1, user_ids[u]).bind(2, email).bind(3, storage::impl::email_key(email)).bind(4, hash).bind(5, rfc3339(at));
      s.run();
      s.reset();
      if (is_measured[u]) out.emails.push_back(email);
    }
    txn.commit();
  }
  std::vector<int> measured_slot(users, -1);
  for (std::size_t i = 0; i < measured.size(); ++i) measured_slot[measured[i]] = static_cast<int>(i);
  out.task_ids.resize(kMeasured);

  const auto insert_task_sql = fmt::format("INSERT INTO tasks ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                                           storage::impl::kTaskColumns);
  const auto insert_audit_sql = fmt::format("INSERT INTO audit_log ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                                            storage::impl::kAuditColumns);
  const char* insert_processed_sql = "INSERT INTO processed_events (consumer_group, event_id, processed_at) VALUES (?1, ?2, ?3)";
  const char* insert_outbox_sql =
      "INSERT INTO outbox (topic, key, payload, event_id, event_type, traceparent, user_id, seq, created_at, published_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, ?7, ?8, ?9)";
  constexpr int kPartitions = 6;  // KAFKA_TOPIC_PARTITIONS' default: audit rows name a partition and offset
  std::vector<std::int64_t> offsets(kPartitions, 0);

  const char* titles[] = {"Write the quarterly report", "Call the supplier about the delay", "Review the pull request",
                          "Book the team offsite",      "Renew the domain",                  "Plan the sprint",
                          "Fix the flaky checkout test", "Send the invoice to ACME"};
  const char* descriptions[] = {"Collect the figures from every team and write them up for review.",
                                "They promised the parts by Friday; ask for a firm date and a tracking number.",
                                "Look at the migration and the new index in particular; the tests pass locally.",
                                "Two nights, somewhere reachable by train, for twelve people; budget as last year."};

  // One change's events as task_event_factory builds them, at time `at` instead of now.
  auto emit = [&](const std::string& type, const storage::Task* before, const storage::Task& task, std::size_t u, std::int64_t at) {
    const auto s = ++seq[u];
    const auto when = rfc3339(at);
    events::TaskEvent audit;
    audit.event_id = uuid7(at, rng);
    audit.type = type;
    audit.action = std::string(events::action_for(type));
    audit.timestamp = when;
    audit.user_id = task.user_id;
    audit.task_id = task.id;
    audit.seq = s;
    audit.task_data = outbox::task_to_json(task);
    ++out.events;
    if (at >= retention_cut) {  // still in the outbox (published); older rows were pruned
      events::TaskUpdateEvent update;
      update.event_id = uuid7(at, rng);
      update.type = type;
      update.timestamp = when;
      update.user_id = task.user_id;
      update.task_id = task.id;
      update.seq = s;
      update.changes = before ? outbox::task_changes(*before, task) : outbox::task_to_json(task);
      Statement o(conn, insert_outbox_sql);
      const auto published = rfc3339(at + 25);
      o.bind(1, names.task_events).bind(2, task.user_id).bind(3, events::serialize(audit)).bind(4, audit.event_id).bind(5, type);
      o.bind(6, task.user_id).bind(7, s).bind(8, when).bind(9, published).run();
      o.reset();
      o.bind(1, names.task_updates).bind(2, task.user_id).bind(3, events::serialize(update)).bind(4, update.event_id).bind(5, type);
      o.bind(6, task.user_id).bind(7, s).bind(8, when).bind(9, published).run();
      out.outbox_rows += 2;
    }
    const int partition = static_cast<int>(std::hash<std::string>{}(task.user_id) % kPartitions);
    auto e = workers::to_audit_entry(std::move(audit), names.task_events, partition, offsets[partition]++);
    const auto recorded = rfc3339(at + 40);
    Statement a(conn, insert_audit_sql);
    a.bind(1, e.event_id).bind(2, e.user_id).bind(3, e.task_id).bind(4, e.type).bind(5, e.action).bind(6, e.seq).bind(7, e.occurred_at);
    a.bind(8, e.task_data).bind(9, e.source_topic).bind(10, static_cast<std::int64_t>(e.source_partition)).bind(11, e.source_offset);
    a.bind(12, recorded).run();
    Statement p(conn, insert_processed_sql);
    p.bind(1, names.audit_group).bind(2, e.event_id).bind(3, recorded).run();
  };

  constexpr std::size_t kTxn = 50'000;
  std::uniform_int_distribution<int> pct100(0, 99);
  for (std::size_t base = 0; base < total; base += kTxn) {
    storage::sqlite::Transaction txn(conn, true);
    for (std::size_t i = base; i < std::min(total, base + kTxn); ++i) {
      const std::size_t u = owners[i];
      const std::int64_t at = start + static_cast<std::int64_t>((end - start - 3'600'000) * static_cast<double>(i) / total);
      storage::Task t;
      t.id = uuid7(at, rng);
      t.user_id = user_ids[u];
      t.title = std::string(titles[i % 8]) + " #" + std::to_string(i);
      if (pct100(rng) < 60) t.description = descriptions[i % 4];
      t.priority = i % 3 == 0 ? "high" : i % 3 == 1 ? "medium" : "low";
      t.created_at = t.updated_at = rfc3339(at);
      const int plan = pct100(rng);  // < 55 todo, < 70 in_progress, else done
      const bool due = pct100(rng) < 30;
      if (due && plan < 70) t.due_at = rfc3339(end + (30 + pct100(rng)) * kDayMs);
      if (due && plan >= 70) t.due_at = rfc3339(at + 3 * kDayMs);
      emit("task_created", nullptr, t, u, at);
      if (plan >= 55) {  // a second change, up to an hour later
        const storage::Task before = t;
        const std::int64_t later = at + 60'000 + pct100(rng) * 30'000;
        t.updated_at = rfc3339(later);
        t.version = 2;
        if (plan < 70) {
          t.status = "in_progress";
          emit("task_updated", &before, t, u, later);
        } else {
          t.status = "done";
          t.completed_at = t.updated_at;
          emit("task_completed", &before, t, u, later);
        }
      }
      Statement ins(conn, insert_task_sql);
      storage::sqlite::write_task(ins, t);
      ins.run();
      if (measured_slot[u] >= 0) out.task_ids[static_cast<std::size_t>(measured_slot[u])].push_back(t.id);
      ++out.tasks;
    }
    txn.commit();
  }
  {
    storage::sqlite::Transaction txn(conn, true);
    Statement s(conn, "INSERT INTO user_seq (user_id, last_seq) VALUES (?1, ?2)");
    for (std::size_t u = 0; u < users; ++u) {
      if (seq[u] == 0) continue;
      s.bind(1, user_ids[u]).bind(2, seq[u]).run();
      s.reset();
    }
    txn.commit();
  }
  conn.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  out.seconds = seconds_since(t0);
  out.db_bytes = file_size(path);
  out.wal_bytes = file_size(path + "-wal");
  return out;
}

// ---- the load generator (as bench/http_load.cpp, with a target per request) --------------

struct Request {
  bhttp::verb verb = bhttp::verb::get;
  std::string target, body;
};
/// The request connection `c` sends k-th.
using Requests = std::function<Request(std::size_t c, std::uint64_t k)>;

struct Result {
  std::vector<double> latencies_ms;
  std::uint64_t ok = 0, errors = 0;
  void add(const Result& r) {
    latencies_ms.insert(latencies_ms.end(), r.latencies_ms.begin(), r.latencies_ms.end());
    ok += r.ok;
    errors += r.errors;
  }
};

asio::awaitable<void> connection(tcp::endpoint ep, std::size_t c, std::string token, Requests requests, Clock::time_point start,
                                 Clock::duration interval, Clock::time_point until, std::mutex& mutex, Result& result) {
  std::vector<double> lat;
  std::uint64_t ok = 0, errors = 0;
  try {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    co_await stream.async_connect(ep, asio::use_awaitable);
    stream.socket().set_option(tcp::no_delay(true));
    beast::flat_buffer buf;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (std::uint64_t k = 0;; ++k) {
      const auto scheduled = start + interval * static_cast<long>(k);
      if (scheduled >= until) break;
      const auto r = requests(c, k);
      bhttp::request<bhttp::string_body> req{r.verb, r.target, 11};
      req.set(bhttp::field::host, "127.0.0.1");
      req.keep_alive(true);
      req.set(bhttp::field::authorization, "Bearer " + token);
      if (!r.body.empty()) req.set(bhttp::field::content_type, "application/json");
      req.body() = r.body;
      req.prepare_payload();
      if (scheduled > Clock::now()) {
        timer.expires_at(scheduled);
        co_await timer.async_wait(asio::use_awaitable);
      }
      co_await bhttp::async_write(stream, req, asio::use_awaitable);
      bhttp::response<bhttp::string_body> res;
      co_await bhttp::async_read(stream, buf, res, asio::use_awaitable);
      lat.push_back(ms(Clock::now() - scheduled));
      if (res.result_int() / 100 == 2) ok++;
      else if (errors++ == 0) std::fprintf(stderr, "data_growth: %s -> %u %s\n", r.target.c_str(), res.result_int(), res.body().substr(0, 200).c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "connection: %s\n", e.what());
    errors++;
  }
  std::lock_guard lock(mutex);
  result.latencies_ms.insert(result.latencies_ms.end(), lat.begin(), lat.end());
  result.ok += ok;
  result.errors += errors;
}

/// `rate` requests/s in all over the tokens' connections for `seconds`, open loop.
Result run_phase(std::uint16_t port, const std::vector<std::string>& tokens, const Requests& requests, double rate, int seconds) {
  asio::io_context io(1);
  std::mutex mutex;
  Result r;
  const auto n = tokens.size();
  const auto start = Clock::now() + std::chrono::milliseconds(200);
  const auto until = start + std::chrono::seconds(seconds);
  const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(static_cast<double>(n) / rate));
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
  for (std::size_t i = 0; i < n; ++i) {
    const auto offset = interval * static_cast<long>(i) / static_cast<long>(n);
    asio::co_spawn(io, connection(ep, i, tokens[i], requests, start + offset, interval, until, mutex, r), asio::detached);
  }
  io.run();
  return r;
}

// ---- one database under `serve` ----------------------------------------------------------

/// One database under its own `serve`, logged in as the measured users.
struct Server {
  bench::Serve serve;
  const Loaded* loaded = nullptr;
  std::vector<std::string> tokens, cursors;

  void start(const std::string& db_path, const Loaded& l, const Names& names) {
    loaded = &l;
    auto env = names.env;
    env["DATABASE_URL"] = "sqlite:///" + db_path;
    serve.start(bench::taskstream_binary(), env);
    for (const auto& email : l.emails) {
      bench::HttpConn c(serve.port);
      auto [status, body] = c.call(bhttp::verb::post, "/auth/token", nlohmann::json{{"email", email}, {"password", kPassword}}.dump());
      if (status != 200) throw std::runtime_error("login failed: " + body);
      tokens.push_back(nlohmann::json::parse(body)["access_token"]);
      auto [s2, page] = c.call(bhttp::verb::get, "/tasks", "", tokens.back());
      auto j = nlohmann::json::parse(page);
      if (s2 != 200 || !j["next_cursor"].is_string()) throw std::runtime_error("GET /tasks gave no next_cursor: " + page);
      cursors.push_back(j["next_cursor"]);
    }
  }
};

struct Endpoint {
  std::string name;
  Result empty, big;
  std::vector<double> empty_slices, big_slices;  // the p99 of each slice
};

double median(std::vector<double> v) { return pct(std::move(v), 0.5); }

/// Both databases under a `serve` each (same environment but for the database, topics and
/// groups), at once: every endpoint alternates between them in slices of `slice` seconds,
/// `rounds` times, so what else runs on the machine falls on both alike.
std::vector<Endpoint> measure(const std::array<Server*, 2>& servers, double rate, int rounds, int slice) {
  std::mt19937_64 rng(7);
  const std::string post_body = R"({"title":"bench task","description":"a task written by the data growth benchmark","priority":"medium"})";
  std::vector<Endpoint> out;
  for (const std::string name : {"GET-task", "list", "list-page2", "history", "POST"}) out.push_back({name, {}, {}, {}, {}});
  auto requests_for = [&](const std::string& name, Server& s) -> Requests {
    auto random_task = [&s, &rng](std::size_t c) -> const std::string& {
      const auto& ids = s.loaded->task_ids[c];
      return ids[std::uniform_int_distribution<std::size_t>(0, ids.size() - 1)(rng)];
    };
    if (name == "GET-task") return [=](std::size_t c, std::uint64_t) { return Request{bhttp::verb::get, "/tasks/" + random_task(c), {}}; };
    if (name == "list") return [](std::size_t, std::uint64_t) { return Request{bhttp::verb::get, "/tasks", {}}; };
    if (name == "list-page2") return [&s](std::size_t c, std::uint64_t) { return Request{bhttp::verb::get, "/tasks?cursor=" + s.cursors[c], {}}; };
    if (name == "history")
      return [=](std::size_t c, std::uint64_t) { return Request{bhttp::verb::get, "/tasks/" + random_task(c) + "/history", {}}; };
    return [&post_body](std::size_t, std::uint64_t) { return Request{bhttp::verb::post, "/tasks", post_body}; };
  };
  // Warm-up, not counted: the consumers' groups join after start, statements are
  // prepared, the pages the requests touch come into the cache.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  for (auto& e : out)
    for (auto* s : servers) run_phase(s->serve.port, s->tokens, requests_for(e.name, *s), rate, 1);
  for (auto& e : out)
    for (int r = 0; r < rounds; ++r)
      for (int which = 0; which < 2; ++which) {
        // Alternate which goes first, so neither always follows the other's writes.
        const int w = (r % 2 == 0) ? which : 1 - which;
        auto* s = servers[static_cast<std::size_t>(w)];
        const auto r = run_phase(s->serve.port, s->tokens, requests_for(e.name, *s), rate, slice);
        (w == 0 ? e.empty_slices : e.big_slices).push_back(pct(r.latencies_ms, 0.99));
        (w == 0 ? e.empty : e.big).add(r);
      }
  return out;
}

/// The store's own cost of each read an endpoint makes, no HTTP and no other process: the
/// Store (as `serve` opens it) on `path`, `calls` calls each, interleaved, single thread.
/// Returns, per read, the latencies in microseconds.
std::map<std::string, std::vector<double>> store_costs(const std::string& path, const Loaded& l, int calls) {
  auto settings = config::Settings::load({{"DATABASE_URL", "sqlite:///" + path}});
  auto store = storage::open_store(settings.database);
  std::vector<std::string> user_ids, cursors;
  for (const auto& email : l.emails) {
    user_ids.push_back(store->find_user_by_email(email)->id);
    cursors.push_back(*store->list_tasks(user_ids.back(), std::nullopt, 50, std::nullopt).next_cursor);
  }
  std::mt19937_64 rng(3);
  std::map<std::string, std::vector<double>> out;
  auto time = [&](const char* name, auto&& f) {
    const auto t0 = Clock::now();
    f();
    out[name].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  };
  for (int i = 0; i < calls; ++i) {
    const auto c = static_cast<std::size_t>(i) % user_ids.size();
    const auto& ids = l.task_ids[c];
    const auto& task = ids[std::uniform_int_distribution<std::size_t>(0, ids.size() - 1)(rng)];
    time("get_task", [&] { store->get_task(user_ids[c], task); });
    time("list_tasks", [&] { store->list_tasks(user_ids[c], std::nullopt, 50, std::nullopt); });
    time("list_tasks-cursor", [&] { store->list_tasks(user_ids[c], std::nullopt, 50, cursors[c]); });
    time("task_history", [&] { store->task_history(user_ids[c], task); });
  }
  return out;
}

/// SQLite's plans for the store's queries (the SQL of src/storage/sqlite/*.cpp).
void print_plans(const std::string& path) {
  storage::sqlite::Connection conn(path);
  const std::string cols(storage::impl::kTaskColumns);
  const std::vector<std::pair<std::string, std::string>> queries = {
      {"get_task", "SELECT " + cols + " FROM tasks WHERE id = ?1 AND user_id = ?2"},
      {"list_tasks", "SELECT " + cols + " FROM tasks WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?5"},
      {"list_tasks cursor",
       "SELECT " + cols + " FROM tasks WHERE user_id = ?1 AND (created_at, id) < (?3, ?4) ORDER BY created_at DESC, id DESC LIMIT ?5"},
      {"list_tasks status", "SELECT " + cols + " FROM tasks WHERE user_id = ?1 AND status = ?2 ORDER BY created_at DESC, id DESC LIMIT ?5"},
      {"task_history", "SELECT event_id FROM audit_log WHERE user_id = ?1 AND task_id = ?2 ORDER BY rowid"},
      {"next_seq", "INSERT INTO user_seq (user_id, last_seq) VALUES (?1, 1) ON CONFLICT (user_id) DO UPDATE SET last_seq = user_seq.last_seq + 1"},
      {"fetch_unpublished", "SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT ?1"},
      {"outbox_stats", "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL), "
                       "(SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1)"},
      {"mark_published", "UPDATE outbox SET published_at = ?1 WHERE id = ?2 AND published_at IS NULL"},
      {"events_after", "SELECT id FROM outbox WHERE user_id = ?1 AND topic = ?2 AND seq > ?3 ORDER BY seq, id LIMIT ?4"},
      {"prune_outbox", "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?1"},
      {"tasks_due_without_reminder",
       "SELECT t.id FROM tasks t WHERE t.status <> 'done' AND t.due_at IS NOT NULL AND t.due_at <= ?1 AND NOT EXISTS "
       "(SELECT 1 FROM reminders_sent r WHERE r.task_id = t.id AND r.due_at = t.due_at AND r.kind = ?2) ORDER BY t.due_at, t.id LIMIT ?3"},
      {"processed", "SELECT 1 FROM processed_events WHERE consumer_group = ?1 AND event_id = ?2"},
      {"find_user_by_email", "SELECT id FROM users WHERE email_key = ?1"},
  };
  for (const auto& [name, sql] : queries) {
    storage::sqlite::Statement s(conn, "EXPLAIN QUERY PLAN " + sql);
    std::string plan;
    while (s.step()) plan += (plan.empty() ? "" : "; ") + s.text(3);
    std::printf("plan     %-27s %s\n", name.c_str(), plan.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t tasks = 1'000'000, users = 10'000;
  double rate = 200;
  int rounds = 10, slice = 1;
  std::string keep;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--tasks") tasks = std::stoul(argv[i + 1]);
    else if (a == "--users") users = std::stoul(argv[i + 1]);
    else if (a == "--rate") rate = std::stod(argv[i + 1]);
    else if (a == "--rounds") rounds = std::stoi(argv[i + 1]);
    else if (a == "--slice") slice = std::stoi(argv[i + 1]);
    else if (a == "--keep") keep = argv[i + 1];
    else {
      std::fprintf(stderr, "data_growth: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (users < kMeasured * 2 || tasks < users * 5) {
    std::fprintf(stderr, "data_growth: want at least %zu users and 5 tasks per user\n", kMeasured * 2);
    return 2;
  }
  util::setup_logging("warn", config::LogFormat::text);
  const auto dir = keep.empty() ? std::filesystem::temp_directory_path() / ("data-growth-" + std::to_string(::getpid()))
                                : std::filesystem::path(keep);
  std::filesystem::create_directories(dir);
  const auto empty_names = serve_names("empty"), big_names = serve_names("big");
  const std::string empty_db = (dir / "empty.db").string(), big_db = (dir / "big.db").string();
  try {
    const std::size_t empty_tasks = kMeasured * kMeasuredTasks + (users - kMeasured) * 5;
    const auto e = load(empty_db, users, empty_tasks, empty_names);
    std::printf("growth   load empty: %zu tasks, %zu users in %.1f s; %.0f B/task\n", e.tasks, users, e.seconds,
                static_cast<double>(e.db_bytes + e.wal_bytes) / static_cast<double>(e.tasks));
    std::fflush(stdout);
    const auto b = load(big_db, users, tasks, big_names);
    std::printf("growth   load %zu tasks, %zu users, %zu events (audit rows), %zu outbox rows kept: %.1f s = %.0f tasks/s\n", b.tasks,
                users, b.events, b.outbox_rows, b.seconds, static_cast<double>(b.tasks) / b.seconds);
    std::printf("growth   size %.0f B/task (db %.1f MiB + wal %.1f MiB after checkpoint, %zu tasks)\n",
                static_cast<double>(b.db_bytes + b.wal_bytes) / static_cast<double>(b.tasks), static_cast<double>(b.db_bytes) / 1048576.0,
                static_cast<double>(b.wal_bytes) / 1048576.0, b.tasks);
    std::fflush(stdout);
    print_plans(big_db);
    std::fflush(stdout);

    {
      const auto ce = store_costs(empty_db, e, 3000), cb = store_costs(big_db, b, 3000);
      for (const auto& [name, v] : ce) {
        const auto& w = cb.at(name);
        std::printf("growth   store %-17s p50 empty %.0f us  1M %.0f us  ratio %.2f  (p99 empty %.0f us  1M %.0f us; %zu calls each)\n",
                    name.c_str(), pct(v, 0.5), pct(w, 0.5), pct(w, 0.5) / pct(v, 0.5), pct(v, 0.99), pct(w, 0.99), v.size());
      }
      std::fflush(stdout);
    }
    ::sync();  // the loader's dirty pages written back before any fsync is timed (as bench/run's settle)
    std::this_thread::sleep_for(std::chrono::seconds(2));
    Server empty_server, big_server;
    double worst = 0;
    try {
      empty_server.start(empty_db, e, empty_names);
      big_server.start(big_db, b, big_names);
      const auto results = measure({&empty_server, &big_server}, rate, rounds, slice);
      for (const auto& r : results) {
        const double p99e = pct(r.empty.latencies_ms, 0.99), p99b = pct(r.big.latencies_ms, 0.99);
        const double ratio = p99e > 0 ? p99b / p99e : 0;
        worst = std::max(worst, ratio);
        const double me = median(r.empty_slices), mb = median(r.big_slices);
        std::printf("growth   %-10s p99 empty %.2f ms  1M %.2f ms  ratio %.2f  (median of the %zu slices' p99: empty %.2f ms  1M %.2f ms  "
                    "ratio %.2f; p50 empty %.2f ms  1M %.2f ms; max %.1f / %.1f ms; %zu / %zu requests at %.0f req/s; errors %lu / %lu)\n",
                    r.name.c_str(), p99e, p99b, ratio, r.empty_slices.size(), me, mb, me > 0 ? mb / me : 0,
                    pct(r.empty.latencies_ms, 0.5), pct(r.big.latencies_ms, 0.5),
                    pct(r.empty.latencies_ms, 1.0), pct(r.big.latencies_ms, 1.0), r.empty.latencies_ms.size(), r.big.latencies_ms.size(),
                    rate, static_cast<unsigned long>(r.empty.errors), static_cast<unsigned long>(r.big.errors));
        std::fflush(stdout);
      }
    } catch (...) {
      empty_server.serve.stop();
      big_server.serve.stop();
      throw;
    }
    empty_server.serve.stop();
    big_server.serve.stop();
    std::printf("growth   worst p99 ratio %.2f (target <= 1.50)\n", worst);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "data_growth: %s\n", ex.what());
    if (keep.empty()) std::filesystem::remove_all(dir);
    return 1;
  }
  if (keep.empty()) std::filesystem::remove_all(dir);
  return 0;
}
