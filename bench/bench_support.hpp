#pragma once
// What the benchmarks that drive a real `taskstream serve` share: a blocking keep-alive
// HTTP client for set-up calls, and the server itself, started as a child process on a free
// port with topics, groups and a database of its own.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <algorithm>

namespace bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// ---- a keep-alive HTTP client ----------------------------------------------------------

class HttpConn {
 public:
  explicit HttpConn(std::uint16_t port) : stream_(io_) { stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port)); }
  std::pair<int, std::string> call(bhttp::verb verb, const std::string& target, const std::string& body, const std::string& token = {}) {
    bhttp::request<bhttp::string_body> req{verb, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.keep_alive(true);
    if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    bhttp::write(stream_, req);
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream_, buf, res);
    return {static_cast<int>(res.result_int()), res.body()};
  }

 private:
  asio::io_context io_;
  beast::tcp_stream stream_;
};

// ---- the server under test -------------------------------------------------------------

struct Serve {
  pid_t pid = -1;
  std::uint16_t port = 0;
  std::filesystem::path dir;
  /// Names this instance's directory when several run side by side (same topics and groups).
  std::string instance;

  static std::uint16_t free_port() {
    asio::io_context io;
    tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
  }

  /// `extra` is added to (and overrides) the environment below.
  void start(const std::string& binary, const std::map<std::string, std::string>& extra = {}) {
    port = free_port();
    const std::string prefix = "bench-" + std::to_string(::getpid());
    dir = std::filesystem::temp_directory_path() / (prefix + instance);
    std::filesystem::create_directories(dir);
    std::map<std::string, std::string> env{
        {"HTTP_PORT", std::to_string(port)},
        {"DATABASE_URL", "sqlite:///" + (dir / "bench.db").string()},
        {"JWT_SECRET", "benchmark-secret-benchmark-secret-benchmark"},
        {"KAFKA_TOPIC_TASK_EVENTS", prefix + "-task-events"},
        {"KAFKA_TOPIC_TASK_UPDATES", prefix + "-task-updates"},
        {"KAFKA_TOPIC_NOTIFICATION_REQUEST", prefix + "-notification.request"},
        {"KAFKA_CONSUMER_GROUP_AUDIT", prefix + "-audit"},
        {"KAFKA_CONSUMER_GROUP_NOTIFICATION", prefix + "-notification"},
        {"KAFKA_CONSUMER_GROUP_WEBSOCKET", prefix + "-websocket"},
        {"WS_MAX_SOCKETS_PER_USER", "100000"},
        {"WS_SEND_QUEUE_MAX", "4096"},
        {"LOG_LEVEL", "warning"},
    };
    if (const char* db = std::getenv("BENCH_DATABASE_URL"); db && *db) env["DATABASE_URL"] = db;
    for (const auto& [k, v] : extra) env[k] = v;
    pid = fork();
    if (pid == 0) {
      for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
      std::string log = (dir / "serve.log").string();
      freopen(log.c_str(), "a", stderr);
      execl(binary.c_str(), binary.c_str(), "serve", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 600; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      try {
        HttpConn c(port);
        if (c.call(bhttp::verb::get, "/readyz", "").first == 200) return;
      } catch (...) {
      }
    }
    throw std::runtime_error("serve did not become ready; see " + (dir / "serve.log").string());
  }

  double rss_mib() const {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    return 0;
  }

  void stop() {
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    pid = -1;
    if (!std::getenv("BENCH_KEEP")) std::filesystem::remove_all(dir);
  }
};


/// A registered user and a bearer token for it.
inline std::string new_user_token(std::uint16_t port, const std::string& email) {
  HttpConn c(port);
  const std::string creds = nlohmann::json{{"email", email}, {"password", "benchmark-password"}}.dump();
  c.call(bhttp::verb::post, "/auth/register", creds);
  auto [status, body] = c.call(bhttp::verb::post, "/auth/token", creds);
  if (status != 200) throw std::runtime_error("login failed: " + body);
  return nlohmann::json::parse(body)["access_token"];
}

/// The p-quantile (0..1) of `v`; 0 for none.
inline double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

/// This binary's sibling `taskstream` (build/bench/X -> build/taskstream).
inline std::string taskstream_binary() {
  return std::filesystem::canonical("/proc/self/exe").parent_path().parent_path() / "taskstream";
}

}  // namespace bench
