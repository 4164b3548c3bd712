// Network faults between the service and the broker, during load: latency with jitter, a
// bandwidth limit, connections reset mid-stream, then a full partition, then healed. This
// kernel has no netem qdisc, so a userspace TCP fault proxy (Toxiproxy, built by
// scripts/toxiproxy) sits in front of the broker's PROXIED listener, whose advertised
// address is the proxy's: metadata sends the clients back through the proxy, never around
// it. Sets are compared as in fault_test.cpp, and each fault's own evidence is asserted.
// See docs/reliability.md.

#include <sstream>
#include <unistd.h>

#include "fault_harness.hpp"
#include "kafka/admin.hpp"
#include "kafka/producer.hpp"

using namespace taskstream;
using namespace taskstream::rtest;

namespace {

/// A toxiproxy-server of our own on a free loopback port, driven through its HTTP API.
class Toxiproxy {
 public:
  Toxiproxy()
      : port_(itest::free_port()),
        log_("/tmp/toxiproxy-" + std::to_string(getpid()) + ".log"),
        server_({binary(), "-host", "127.0.0.1", "-port", std::to_string(port_)}, log_) {
    if (!itest::wait_until(
            [&] {
              try {
                return call("GET", "/version").status == 200;
              } catch (const std::exception&) {
                return false;
              }
            },
            20s))
      ADD_FAILURE() << "toxiproxy-server did not answer on 127.0.0.1:" << port_ << "; its log: " << log_;
  }
  itest::HttpResult call(const std::string& method, const std::string& path, const json& body = nullptr) const {
    return itest::http_request(port_, method, path, body.is_null() ? std::string() : body.dump(),
                               {{"Content-Type", "application/json"}});
  }
  void create(const std::string& name, const std::string& listen, const std::string& upstream) const {
    const auto r = call("POST", "/proxies", {{"name", name}, {"listen", listen}, {"upstream", upstream}, {"enabled", true}});
    ASSERT_EQ(r.status, 201) << r.body;
  }
  /// A toxic on both directions (named `name`-up and `name`-down).
  void add(const std::string& proxy, const std::string& name, const std::string& type, const json& attributes) const {
    for (const char* stream : {"upstream", "downstream"}) {
      const auto r = call("POST", "/proxies/" + proxy + "/toxics",
                          {{"name", name + "-" + stream}, {"type", type}, {"stream", stream}, {"toxicity", 1.0}, {"attributes", attributes}});
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }
  void remove(const std::string& proxy, const std::string& name) const {
    for (const char* stream : {"upstream", "downstream"}) {
      const auto r = call("DELETE", "/proxies/" + proxy + "/toxics/" + name + "-" + stream);
      ASSERT_EQ(r.status, 204) << r.body;
    }
  }
  /// Disabled: the proxy closes every connection and stops listening (a partition).
  void set_enabled(const std::string& proxy, bool enabled) const {
    const auto r = call("POST", "/proxies/" + proxy, {{"enabled", enabled}});
    ASSERT_EQ(r.status, 200) << r.body;
  }

 private:
  /// TASKSTREAM_TOXIPROXY (scripts/test sets it), else what scripts/toxiproxy builds.
  static std::string binary() {
    if (const char* v = std::getenv("TASKSTREAM_TOXIPROXY"); v && *v) return v;
    std::string out;
    if (FILE* p = popen((repo_dir() + "/scripts/toxiproxy path 2>/dev/null").c_str(), "r")) {
      char buf[512];
      while (fgets(buf, sizeof buf, p)) out = buf;  // the last line
      pclose(p);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    if (out.empty()) throw std::runtime_error("no toxiproxy-server: scripts/toxiproxy path failed");
    return out;
  }

  std::uint16_t port_;
  std::string log_;
  itest::ChildProcess server_;
};

/// The PROXIED listener of broker 1 and the address it advertises (scripts/kafka status:
/// "proxied: advertised A listeners L").
std::pair<std::string, std::string> proxied_addresses() {
  const auto out = kafka_script_output("status");
  const auto pos = out.find("proxied: advertised ");
  if (pos == std::string::npos) return {};
  std::istringstream line(out.substr(pos + 20, out.find('\n', pos) - pos - 20));
  std::string advertised, word, listener;
  line >> advertised >> word >> listener;
  return {advertised, listener};
}

/// How long one message takes from produce to acknowledgement through `bootstrap`, on a
/// probe topic of its own (the service's topics hold only events: verify() reads them all).
double one_delivery_ms(const std::string& bootstrap) {
  const auto topic = itest::unique_name("network-probe");
  kafka::Admin(itest::kafka_settings()).ensure_topics({{topic, 1, 1, {}}});
  kafka::Producer p(itest::kafka_settings({{"KAFKA_BOOTSTRAP_SERVERS", bootstrap}}));
  (void)p.send({topic, "probe", "warm-up", {}, std::nullopt}).get();  // metadata, connection
  const auto t0 = Clock::now();
  const auto r = p.send({topic, "probe", "probe", {}, std::nullopt}).get();
  return r.ok() ? ms_since(t0) : -1;
}

}  // namespace

TEST(NetworkFaults, LatencyBandwidthResetsAndAPartitionBetweenServiceAndBrokerLoseNothing) {
  const auto [advertised, listener] = proxied_addresses();
  ASSERT_FALSE(advertised.empty()) << "scripts/kafka status names no PROXIED listener (a broker started by an older script?)";
  Toxiproxy toxi;
  ASSERT_FALSE(HasFailure());
  toxi.create("kafka", advertised, listener);
  ASSERT_FALSE(HasFailure());

  itest::ServeProcess serve(std::map<std::string, std::string>{{"KAFKA_BOOTSTRAP_SERVERS", advertised}});
  ASSERT_TRUE(itest::wait_until([&] { return serve.call("GET", "/readyz").status == 200; }, 60s)) << serve.log();
  auto store = storage::open_store(config::Settings::load({{"DATABASE_URL", serve.database_url()}}).database);
  auto users = make_users(serve, 8);
  const auto phase = full_size() ? 30s : 8s;
  Load load({serve.port()}, users, full_size() ? 100 : 40, 1'000'000);
  std::this_thread::sleep_for(3s);
  const auto log_count = [&](std::string_view needle) { return count_in(serve.log(), needle); };

  // 1. Latency 200 ms ± 50 ms each way. Evidence: a message produced through the proxy
  // takes at least the injected delay to be acknowledged.
  toxi.add("kafka", "latency", "latency", {{"latency", 200}, {"jitter", 50}});
  const double probe_ms = one_delivery_ms(advertised);
  EXPECT_GE(probe_ms, 150.0) << "a produce through the proxy was not slowed: the latency toxic did not apply";
  std::this_thread::sleep_for(phase);
  toxi.remove("kafka", "latency");

  // 2. Bandwidth limited to 16 KB/s each way.
  toxi.add("kafka", "bandwidth", "bandwidth", {{"rate", 16}});
  std::this_thread::sleep_for(phase);
  toxi.remove("kafka", "bandwidth");

  // 3. Connections reset (TCP RST) 500 ms after data starts flowing, again on every
  // reconnect. Evidence: the service's clients log the resets.
  const auto resets_before = log_count("reset by peer");
  toxi.add("kafka", "reset", "reset_peer", {{"timeout", 500}});
  std::this_thread::sleep_for(phase);
  toxi.remove("kafka", "reset");
  EXPECT_TRUE(itest::wait_until([&] { return log_count("reset by peer") > resets_before; }, 10s))
      << "no client of the service saw a connection reset";

  // 4. A full partition for 20 s: the proxy refuses and drops every connection. Writes go
  // on being acknowledged (they never wait on Kafka) while their events wait in the outbox.
  const auto acked_before = load.acked();
  const auto answers_before = load.latencies_ms().size();
  const auto unknown_before = load.count(Outcome::unknown);
  toxi.set_enabled("kafka", false);
  std::int64_t backlog = 0;
  const auto partition_end = Clock::now() + 20s;
  while (Clock::now() < partition_end) {
    backlog = std::max<std::int64_t>(backlog, static_cast<std::int64_t>(store->outbox_stats().waiting));
    std::this_thread::sleep_for(500ms);
  }
  const auto acked_during = load.acked() - acked_before;
  const auto unknown_during = load.count(Outcome::unknown) - unknown_before;
  auto during = load.latencies_ms();
  during.erase(during.begin(), during.begin() + static_cast<std::ptrdiff_t>(answers_before));
  toxi.set_enabled("kafka", true);
  EXPECT_GT(backlog, 0) << "the outbox never held anything back: the partition did not cut the relay off";
  EXPECT_GT(acked_during, 0u) << "no write was acknowledged while Kafka was unreachable";
  EXPECT_EQ(unknown_during, 0u) << "requests went unanswered during the partition";

  // Healed.
  std::this_thread::sleep_for(3s);
  const auto faults_over = Clock::now();
  load.stop();
  EXPECT_EQ(load.count(Outcome::refused) + load.count(Outcome::unknown), 0u) << "the API kept answering 2xx";
  auto v = verify(serve, load, faults_over, itest::kafka_settings());
  auto all = load.latencies_ms();
  char extra[400];
  std::snprintf(extra, sizeof extra,
                "phases %lld s each, partition 20 s; probe delivery under latency %.0f ms; outbox backlog peak %lld; during the "
                "partition %zu writes acknowledged, p50 %.1f ms, p99 %.1f ms; overall p50 %.1f ms, p99 %.1f ms, max %.1f ms",
                static_cast<long long>(phase.count()), probe_ms, static_cast<long long>(backlog), acked_during,
                percentile(during, 0.5), percentile(during, 0.99), percentile(all, 0.5), percentile(all, 0.99), percentile(all, 1.0));
  print("network faults via Toxiproxy (latency, bandwidth, resets, partition)", v, extra);
  EXPECT_TRUE(v.clean());
  EXPECT_EQ(v.events, v.acked);
  EXPECT_EQ(v.audit_rows, v.acked);
  EXPECT_EQ(serve.stop(), 0);
}
