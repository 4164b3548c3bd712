#pragma once
// A `taskstream serve` child process for API tests, on a free port with its own SQLite
// file (or DATABASE_URL) and its own topic names, plus a small blocking HTTP client.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test_env.hpp"

namespace taskstream::itest {

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

/// One request on a fresh connection.
inline HttpResult http_request(std::uint16_t port, const std::string& method, const std::string& target, const std::string& body = {},
                               const std::map<std::string, std::string>& headers = {}) {
  namespace beast = boost::beast;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  beast::http::request<beast::http::string_body> req{beast::http::string_to_verb(method), target, 11};
  req.set(beast::http::field::host, "127.0.0.1");
  if (!body.empty()) req.set(beast::http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  beast::http::write(socket, req);
  beast::flat_buffer buf;
  beast::http::response_parser<beast::http::string_body> parser;
  parser.body_limit(64 << 20);
  beast::http::read(socket, buf, parser);
  auto& res = parser.get();
  HttpResult out{static_cast<int>(res.result_int()), res.body(), {}};
  for (const auto& f : res) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    out.headers[name] = std::string(f.value());
  }
  return out;
}

inline std::uint16_t free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

class ServeProcess final {
 public:
  /// Starts serve with `env` over the defaults below; waits until /healthz answers.
  explicit ServeProcess(std::map<std::string, std::string> env = {}, std::vector<std::string> args = {"serve"}) : args_(std::move(args)) {
    port_ = env.count("HTTP_PORT") ? static_cast<std::uint16_t>(std::stoi(env["HTTP_PORT"])) : free_port();
    prefix_ = unique_name("api");
    dir_ = std::filesystem::temp_directory_path() / prefix_;
    std::filesystem::create_directories(dir_);
    std::map<std::string, std::string> all{
        {"HTTP_PORT", std::to_string(port_)},
        {"DATABASE_URL", "sqlite:///" + (dir_ / "taskstream.db").string()},
        {"JWT_SECRET", "integration-test-secret-integration-test-secret"},
        {"KAFKA_TOPIC_TASK_EVENTS", prefix_ + "-task-events"},
        {"KAFKA_TOPIC_TASK_UPDATES", prefix_ + "-task-updates"},
        {"KAFKA_TOPIC_NOTIFICATION_REQUEST", prefix_ + "-notification.request"},
        {"KAFKA_TOPIC_PARTITIONS", "3"},
        // Groups of their own too: tests running side by side must not rebalance each other.
        {"KAFKA_CONSUMER_GROUP_AUDIT", prefix_ + "-audit"},
        {"KAFKA_CONSUMER_GROUP_NOTIFICATION", prefix_ + "-notification"},
        {"KAFKA_CONSUMER_GROUP_WEBSOCKET", prefix_ + "-websocket"},
        {"LOG_LEVEL", "info"},
    };
    if (const char* b = std::getenv("KAFKA_BOOTSTRAP_SERVERS")) all["KAFKA_BOOTSTRAP_SERVERS"] = b;
    for (auto& [k, v] : env) all[k] = v;
    env_ = all;
    start();
  }
  /// Stops it. The database goes too unless the test failed (it can be gigabytes over a
  /// run); serve.log stays, for the sanitizer scan in scripts/test and for reading.
  ~ServeProcess() {
    stop();
    if (::testing::Test::HasFailure()) return;
    std::error_code ec;
    for (const char* name : {"taskstream.db", "taskstream.db-wal", "taskstream.db-shm"}) std::filesystem::remove(dir_ / name, ec);
  }

  void start() {
    pid_ = fork();
    if (pid_ == 0) {
      for (const auto& [k, v] : env_) setenv(k.c_str(), v.c_str(), 1);
      chdir(dir_.c_str());
      std::string log = (dir_ / "serve.log").string();
      freopen(log.c_str(), "a", stderr);
      std::vector<char*> argv{const_cast<char*>(TASKSTREAM_BINARY)};
      for (auto& a : args_) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(TASKSTREAM_BINARY, argv.data());
      _exit(127);
    }
    bool up = wait_until([&] {
      try {
        return http_request(port_, "GET", "/healthz").status == 200;
      } catch (...) {
        return false;
      }
    }, std::chrono::seconds(30));
    if (!up) ADD_FAILURE() << "serve did not start; log:\n" << log();
  }

  /// SIGTERM and wait; returns the exit status (or -1 when it had to be killed).
  int stop(std::chrono::seconds deadline = std::chrono::seconds(30)) {
    if (pid_ <= 0) return 0;
    kill(pid_, SIGTERM);
    int status = 0;
    auto until = std::chrono::steady_clock::now() + deadline;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        // Evidence before the SIGKILL: where each thread of the stuck process is (gdb, when
        // the machine has it), and the end of its log, in the test's output.
        const auto stacks = (dir_ / "stuck-stacks.txt").string();
        const std::string cmd = "command -v gdb >/dev/null 2>&1 && timeout 60 gdb -p " + std::to_string(pid_) +
                                " -batch -ex 'thread apply all bt' > '" + stacks + "' 2>&1";
        if (std::system(cmd.c_str()) == 0) {
          std::ifstream f(stacks);
          std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
          std::fprintf(stderr, "serve %d did not stop within %lld s of SIGTERM; its threads:\n%s\n", static_cast<int>(pid_),
                       static_cast<long long>(deadline.count()), text.substr(0, 60000).c_str());
        }
        const auto tail = log();
        std::fprintf(stderr, "--- serve log (tail) ---\n%s\n", tail.substr(tail.size() > 20000 ? tail.size() - 20000 : 0).c_str());
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        pid_ = -1;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    // Not a clean exit: say how it ended and show the end of its log in the test's output.
    const auto tail = log();
    std::fprintf(stderr, "serve ended after SIGTERM with %s %d; log (tail):\n%s\n", WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                 tail.substr(tail.size() > 20000 ? tail.size() - 20000 : 0).c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void kill_hard() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  /// Whether the process ended by itself (a crash) while it was meant to run: false when
  /// it runs, and when the test stopped or killed it. It is not reaped here: stop() and
  /// wait_exit() still see how it ended.
  bool ended_by_itself() const {
    if (pid_ <= 0) return false;
    siginfo_t info{};
    return waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0;
  }
  /// Waits for the process to end by itself: the signal that ended it, 0 for an exit, or -1
  /// when it is still running after `deadline`.
  int wait_exit(std::chrono::seconds deadline) {
    if (pid_ <= 0) return 0;
    int status = 0;
    auto until = std::chrono::steady_clock::now() + deadline;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }
  /// Starts it again (same port, database, topics and groups) after it stopped, with
  /// `changes` applied to its environment (an empty value removes the variable).
  void restart(const std::map<std::string, std::string>& changes = {}) {
    stop();
    for (const auto& [k, v] : changes) {
      if (v.empty()) env_.erase(k);
      else env_[k] = v;
    }
    start();
  }
  std::string database_url() const { return env_.at("DATABASE_URL"); }

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& prefix() const { return prefix_; }
  const std::map<std::string, std::string>& env() const { return env_; }
  std::string topic(const std::string& name) const { return prefix_ + "-" + name; }
  std::string log() const {
    std::ifstream f(dir_ / "serve.log");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

  HttpResult call(const std::string& method, const std::string& target, const std::string& body = {}, const std::string& token = {},
                  std::map<std::string, std::string> headers = {}) const {
    if (!token.empty()) headers["Authorization"] = "Bearer " + token;
    return http_request(port_, method, target, body, headers);
  }

  /// The sum of every series of metric `name` in /metrics (-1 when it has none).
  double metric(std::string_view name) const {
    const auto body = http_request(port_, "GET", "/metrics").body;
    double sum = 0;
    bool seen = false;
    std::size_t start = 0;
    while (start < body.size()) {
      auto end = body.find('\n', start);
      if (end == std::string::npos) end = body.size();
      const std::string_view line(body.data() + start, end - start);
      if (line.size() > name.size() && line.substr(0, name.size()) == name && (line[name.size()] == ' ' || line[name.size()] == '{')) {
        sum += std::stod(std::string(line.substr(line.rfind(' ') + 1)));
        seen = true;
      }
      start = end + 1;
    }
    return seen ? sum : -1;
  }

  /// Registers a fresh user and returns {user id, token}.
  std::pair<std::string, std::string> new_user(const std::string& email_prefix = "user") const {
    auto email = unique_name(email_prefix) + "@example.com";
    nlohmann::json creds{{"email", email}, {"password", "correct horse battery"}};
    auto r = call("POST", "/auth/register", creds.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    auto t = call("POST", "/auth/token", creds.dump());
    EXPECT_EQ(t.status, 200) << t.body;
    return {r.json()["id"], t.json()["access_token"]};
  }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::string prefix_;
  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
  std::vector<std::string> args_;
};

}  // namespace taskstream::itest
