#pragma once
// Fault tests the way trusted systems check theirs: write uniquely identifiable changes
// while faults are injected, then compare sets. Every change is a task version, so
// (task_id, version) names it on both topics; the database says what was committed. Checked:
// every acknowledged change has exactly one event per topic and one audit row, nothing
// appears for a change that was refused, each user's seq runs 1..N with no gap, no
// duplicate and in order, and the audit trail holds each event once.

#include <gtest/gtest.h>

#include <fstream>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "../integration/serve_process.hpp"
#include "kafka/admin.hpp"
#include "kafka/tail.hpp"
#include "storage/store.hpp"

namespace taskstream::rtest {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// TASKSTREAM_ROBUSTNESS_FULL=1 (scripts/test --full) runs the sizes of the issue; CI runs
/// shorter loads with the same faults.
inline bool full_size() {
  const char* v = std::getenv("TASKSTREAM_ROBUSTNESS_FULL");
  return v && *v && std::string(v) != "0";
}

/// The checkout whose scripts/kafka manages the broker (TASKSTREAM_REPO_DIR overrides this
/// build's source dir, to run these tests against another checkout's broker).
inline std::string repo_dir() {
  const char* v = std::getenv("TASKSTREAM_REPO_DIR");
  return v && *v ? v : TASKSTREAM_SOURCE_DIR;
}

/// A file of broker `node` in the script's layout: var/kafka/node-N/<name> (pid, kafka.log,
/// server.properties).
inline std::string broker_file(int node, const std::string& name) {
  return repo_dir() + "/var/kafka/node-" + std::to_string(node) + "/" + name;
}

/// The pid of broker `node` of scripts/kafka (-1 when it is not running).
inline pid_t broker_pid(int node) {
  std::ifstream f(broker_file(node, "pid"));
  pid_t pid = -1;
  f >> pid;
  return pid;
}

inline std::size_t count_in(std::string_view text, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string_view::npos; pos = text.find(needle, pos + needle.size())) ++n;
  return n;
}

/// Keeps what this process logs (the default logger's lines, librdkafka's included) while it
/// lives, so a test can assert its fault's evidence. Construct before the clients it watches.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(50'000)) { spdlog::default_logger()->sinks().push_back(sink_); }
  ~LogCapture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::size_t count(std::string_view needle) const {
    std::size_t n = 0;
    for (const auto& line : sink_->last_formatted()) n += count_in(line, needle);
    return n;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

inline std::size_t count_in_file(const std::string& path, std::string_view needle) {
  std::ifstream f(path);
  return count_in(std::string(std::istreambuf_iterator<char>(f), {}), needle);
}

inline int postgres_script(const std::string& args) {
  return std::system((repo_dir() + "/scripts/postgres " + args + " >/dev/null 2>&1").c_str());
}

inline int kafka_script(const std::string& args) {
  std::string cmd = repo_dir() + "/scripts/kafka " + args + " >/dev/null 2>&1";
  return std::system(cmd.c_str());
}

inline std::string kafka_script_output(const std::string& args) {
  std::string cmd = repo_dir() + "/scripts/kafka " + args + " 2>/dev/null";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  return out;
}

/// The broker's bootstrap string as `scripts/kafka status` prints it.
inline std::string bootstrap_servers() {
  auto out = kafka_script_output("status");
  auto pos = out.find("bootstrap: ");
  if (pos == std::string::npos) return {};
  auto end = out.find('\n', pos);
  return out.substr(pos + 11, end - pos - 11);
}

inline double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct Account {
  std::string id, token;
};

enum class Outcome { acked, refused, unknown };

struct Change {
  std::string user, task_id;  // task_id empty for a create whose answer never came
  std::int64_t version = 0;
  Outcome outcome = Outcome::unknown;
};

inline std::string key_of(const std::string& task_id, std::int64_t version) { return task_id + "#" + std::to_string(version); }

/// Makes changes through the given API ports at about `rate` per second (open loop in
/// the sense that it does not slow down when answers are slow: a thread per user group
/// keeps its own schedule). Each user's changes are made in order by one thread: create a
/// task, change it four times, create the next. A request that gets no answer counts as
/// unknown: the database decides whether it happened.
class Load {
 public:
  Load(std::vector<std::uint16_t> ports, std::vector<Account> users, double rate, std::size_t max_changes, int threads = 4)
      : ports_(std::move(ports)), users_(std::move(users)), rate_(rate), max_changes_(max_changes) {
    for (int t = 0; t < threads; ++t) threads_.emplace_back([this, t, threads] { run(t, threads); });
  }
  ~Load() { stop(); }

  /// Stops making changes and waits for the requests in flight.
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  bool finished() const { return done_threads_.load() == threads_.size(); }
  std::size_t made() const { return made_.load(); }
  std::size_t acked() const { return count(Outcome::acked); }

  std::vector<Change> changes() const {
    std::lock_guard lock(mutex_);
    return changes_;
  }
  std::vector<double> latencies_ms() const {
    std::lock_guard lock(mutex_);
    return latencies_;
  }
  /// How many answers had each HTTP status.
  std::map<int, std::size_t> statuses() const {
    std::lock_guard lock(mutex_);
    return statuses_;
  }
  std::size_t count(Outcome o) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(std::count_if(changes_.begin(), changes_.end(), [o](const Change& c) { return c.outcome == o; }));
  }

 private:
  struct UserState {
    std::string task_id;
    std::int64_t version = 0;
  };

  void run(int t, int threads) {
    std::map<std::string, UserState> state;
    std::vector<const Account*> mine;
    for (std::size_t i = t; i < users_.size(); i += threads) mine.push_back(&users_[i]);
    const auto interval = std::chrono::duration<double>(static_cast<double>(threads) / rate_);
    auto next = Clock::now();
    std::size_t k = 0, port_index = t;
    while (!stop_ && !mine.empty()) {
      if (made_.fetch_add(1) >= max_changes_) break;
      next += std::chrono::duration_cast<Clock::duration>(interval);
      std::this_thread::sleep_until(next);
      const Account& a = *mine[k++ % mine.size()];
      auto& st = state[a.id];
      Change c{a.id, st.task_id, st.version + 1, Outcome::unknown};
      const auto port = ports_[port_index % ports_.size()];
      const auto t0 = Clock::now();
      try {
        itest::HttpResult r;
        std::map<std::string, std::string> auth{{"Authorization", "Bearer " + a.token}};
        if (st.task_id.empty() || st.version >= 5) {
          c.task_id.clear();
          c.version = 1;
          r = itest::http_request(port, "POST", "/tasks", json{{"title", "load " + std::to_string(k)}}.dump(), auth);
          if (r.status == 201) c.task_id = r.json()["id"];
        } else {
          r = itest::http_request(port, "PATCH", "/tasks/" + st.task_id, json{{"description", "change " + std::to_string(k)}}.dump(), auth);
        }
        {
          std::lock_guard lock(mutex_);
          statuses_[r.status]++;
        }
        if (r.status / 100 == 2) {
          c.outcome = Outcome::acked;
          c.version = r.json()["version"];
          st = {c.task_id, c.version};
        } else if (r.status == 503 || r.status == 507) {
          // The database was out: a commit that got no answer may still have been saved,
          // so the database decides, as for a request that got no answer at all.
          c.outcome = Outcome::unknown;
          st = {};
        } else {
          c.outcome = Outcome::refused;
          st = {};  // start a new task: the state of this one is not ours to guess
        }
      } catch (const std::exception&) {
        c.outcome = Outcome::unknown;
        st = {};
        ++port_index;  // another instance, if there is one
        std::this_thread::sleep_for(100ms);
      }
      std::lock_guard lock(mutex_);
      latencies_.push_back(ms_since(t0));
      changes_.push_back(std::move(c));
    }
    done_threads_++;
  }

  std::vector<std::uint16_t> ports_;
  std::vector<Account> users_;
  double rate_;
  std::size_t max_changes_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> made_{0}, done_threads_{0};
  mutable std::mutex mutex_;
  std::vector<Change> changes_;
  std::vector<double> latencies_;
  std::map<int, std::size_t> statuses_;
  std::vector<std::thread> threads_;
};

inline std::vector<Account> make_users(const itest::ServeProcess& s, int n) {
  std::vector<Account> out;
  for (int i = 0; i < n; ++i) {
    auto [id, token] = s.new_user("load");
    out.push_back({id, token});
  }
  return out;
}

struct TopicEvent {
  std::string user, task_id, event_id;
  std::int64_t seq = 0, version = 0;
};

/// Every message of `topic` (from the beginning until 5 s pass with nothing new).
/// Every message of `topic`, from the beginning up to its end offsets as the broker gives them
/// now. Reading "until nothing comes for a few seconds" is not enough after a fault: a broker
/// fenced while paused leads its partitions again one topic at a time, and a reader that
/// starts before this topic's turn would see nothing yet (CI saw a whole topic read as empty).
/// 60 s without a message only ends a read that misses messages, which the verdict then shows.
inline std::vector<TopicEvent> read_topic(const config::Settings& kafka, const std::string& topic) {
  std::size_t expected = 0;
  std::string error;
  const bool known = itest::wait_until([&] {
    try {
      kafka::Admin admin(kafka);
      expected = 0;
      for (const auto& [partition, end] : admin.end_offsets({admin.describe_topic(topic)})) expected += static_cast<std::size_t>(end);
      return true;
    } catch (const std::exception& e) {
      error = e.what();
      return false;
    }
  }, 60s);
  EXPECT_TRUE(known) << "the end offsets of " << topic << ": " << error;
  std::vector<TopicEvent> out;
  std::atomic<bool> stop{false};
  kafka::tail(kafka, topic, {.from_beginning = true, .max_messages = expected, .idle_timeout = 60s},
              [&](const kafka::Message& m) {
                auto j = json::parse(m.payload());
                TopicEvent e{j.value("user_id", ""), j.value("task_id", ""), j.value("event_id", ""), j.value("seq", std::int64_t{0}), 0};
                const auto& body = j.contains("task_data") ? j["task_data"] : j.contains("changes") ? j["changes"] : json::object();
                e.version = body.value("version", std::int64_t{0});
                out.push_back(std::move(e));
                return true;
              },
              stop);
  return out;
}

struct Verdict {
  std::size_t acked = 0, refused = 0, unknown = 0;
  std::size_t events = 0, updates = 0, audit_rows = 0;
  std::size_t lost = 0, duplicated = 0, phantom = 0, out_of_order = 0;
  std::size_t redelivered = 0;  ///< the same event_id again on a topic (absorbed by consumers)
  double drain_ms = 0;
  bool clean() const { return lost == 0 && duplicated == 0 && phantom == 0 && out_of_order == 0; }
};

/// Waits for the outbox to drain and the audit consumer to catch up, then checks the sets.
/// `faults_over` is when the last fault ended (the drain time is measured from it).
inline Verdict verify(const itest::ServeProcess& s, const Load& load, Clock::time_point faults_over,
                      const config::Settings& kafka, std::chrono::seconds drain_timeout = 300s) {
  Verdict v;
  auto store = storage::open_store(config::Settings::load({{"DATABASE_URL", s.database_url()}}).database);
  const bool drained = itest::wait_until([&] { return s.ended_by_itself() || store->outbox_stats().waiting == 0; }, drain_timeout);
  const auto log_tail = [&] {
    const auto log = s.log();
    return "\n--- serve log (tail) ---\n" + (log.size() > 30000 ? log.substr(log.size() - 30000) : log);
  };
  if (s.ended_by_itself()) {
    // A crash: nothing more drains; say so now instead of waiting out every timeout.
    ADD_FAILURE() << "serve is no longer running (stop() reports how it ended)" << log_tail();
    return v;
  }
  // Keep the evidence: the serve's own account of why its relay stopped (last 30 KB).
  if (!drained) ADD_FAILURE() << "outbox never drained (" << store->outbox_stats().waiting << " rows waiting)" << log_tail();
  v.drain_ms = ms_since(faults_over);

  const auto changes = load.changes();
  std::set<std::string> users;
  std::set<std::string> acked, refused;
  for (const auto& c : changes) {
    users.insert(c.user);
    if (c.outcome == Outcome::acked) ++v.acked, acked.insert(key_of(c.task_id, c.version));
    else if (c.outcome == Outcome::refused) ++v.refused, refused.insert(key_of(c.task_id, c.version));
    else ++v.unknown;
  }

  auto check_topic = [&](const std::string& topic, std::size_t& total) -> std::map<std::string, std::vector<TopicEvent>> {
    std::map<std::string, std::vector<TopicEvent>> by_user;
    for (auto& e : read_topic(kafka, topic))
      if (users.count(e.user)) by_user[e.user].push_back(std::move(e));
    std::map<std::string, int> seen;
    for (auto& [user, list] : by_user) {
      std::map<std::int64_t, std::string> seqs;  // seq -> event_id
      std::int64_t prev = 0;
      for (const auto& e : list) {
        if (auto [it, fresh] = seqs.emplace(e.seq, e.event_id); !fresh) {
          // The same event again (a relay crash between delivery and marking it published
          // sends it again; consumers apply each event_id once) or, a real duplicate, a
          // second event with that seq.
          if (it->second == e.event_id) ++v.redelivered;
          else ++v.duplicated;
          continue;
        } else if (e.seq <= prev) {
          ++v.out_of_order;
        }
        prev = std::max(prev, e.seq);
        seen[key_of(e.task_id, e.version)]++;
      }
      total += seqs.size();  // distinct events
      // The database's last seq for the user: seq 1..N, each once.
      const auto last = store->user_last_seq(user);
      for (std::int64_t q = 1; q <= last; ++q)
        if (!seqs.count(q)) ++v.lost;
    }
    for (const auto& k : acked)
      if (!seen.count(k)) ++v.lost;
    for (const auto& [k, n] : seen) {
      if (acked.count(k)) continue;
      // Not acknowledged: it may be an unanswered request that committed; the database
      // must then hold the task at that version or later. A refused change must not be there.
      const auto hash = k.rfind('#');
      const auto task_id = k.substr(0, hash);
      const auto version = std::stoll(k.substr(hash + 1));
      bool committed = false;
      for (const auto& u : users) {
        auto t = store->get_task(u, task_id);
        if (t && t->version >= version) committed = true;
      }
      if (!committed || refused.count(k)) {
        ++v.phantom;
        ADD_FAILURE() << topic << ": event for " << k << " which was not committed";
      }
    }
    return by_user;
  };
  auto events = check_topic(s.topic("task-events"), v.events);
  check_topic(s.topic("task-updates"), v.updates);

  // The audit trail: each task-event once (waiting for the consumer to catch up).
  std::set<std::pair<std::string, std::string>> tasks;
  std::set<std::string> event_ids;
  for (const auto& [user, list] : events)
    for (const auto& e : list) tasks.insert({user, e.task_id}), event_ids.insert(e.event_id);
  std::size_t audit_dups = 0, audit_missing = 0;
  auto audit_ok = [&] {
    std::size_t rows = 0;
    std::set<std::string> ids;
    audit_dups = 0;
    for (const auto& [user, task] : tasks)
      for (const auto& a : store->task_history(user, task)) {
        ++rows;
        if (!ids.insert(a.event_id).second) ++audit_dups;
      }
    v.audit_rows = rows;
    audit_missing = 0;
    for (const auto& id : event_ids) audit_missing += !ids.count(id);
    return audit_missing == 0;
  };
  EXPECT_TRUE(itest::wait_until(audit_ok, drain_timeout)) << audit_missing << " events have no audit row";
  v.lost += audit_missing;
  v.duplicated += audit_dups;
  return v;
}

inline void print(const char* scenario, const Verdict& v, const std::string& extra = {}) {
  std::printf(
      "%s: changes acknowledged %zu, refused %zu, unanswered or 503/507 %zu; events task-events %zu, task-updates %zu; audit rows %zu; "
      "lost %zu, duplicated %zu, phantom %zu, out of order %zu; redelivered (same event_id, absorbed) %zu; "
      "drained %.1f s after the last fault%s%s\n",
      scenario, v.acked, v.refused, v.unknown, v.events, v.updates, v.audit_rows, v.lost, v.duplicated, v.phantom, v.out_of_order,
      v.redelivered,
      v.drain_ms / 1000.0, extra.empty() ? "" : "; ", extra.c_str());
  std::fflush(stdout);
}

/// The environment a worker needs to share `s`'s database, topics and groups.
inline std::map<std::string, std::string> shared_env(const itest::ServeProcess& s) {
  std::map<std::string, std::string> env;
  for (const char* k : {"DATABASE_URL", "KAFKA_TOPIC_TASK_EVENTS", "KAFKA_TOPIC_TASK_UPDATES", "KAFKA_TOPIC_NOTIFICATION_REQUEST",
                        "KAFKA_CONSUMER_GROUP_AUDIT", "KAFKA_CONSUMER_GROUP_NOTIFICATION", "KAFKA_CONSUMER_GROUP_WEBSOCKET",
                        "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_REPLICATION_FACTOR", "KAFKA_TOPIC_PARTITIONS", "JWT_SECRET"})
    if (s.env().count(k)) env[k] = s.env().at(k);
  return env;
}

}  // namespace taskstream::rtest
