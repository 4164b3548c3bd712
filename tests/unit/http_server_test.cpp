// A real Server on 127.0.0.1 (port 0) inside the test process, driven by a small blocking
// client that reads with poll() deadlines so a misbehaving server fails a test instead of
// hanging it. Also offload(): value, void, exceptions, and which thread runs what.

#include "http/blocking.hpp"
#include "http/server.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>

#include <future>
#include <mutex>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace taskstream::http;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

using ClientResponse = bhttp::response<bhttp::string_body>;

/// Blocking loopback client; every read has a deadline.
class Client final {
 public:
  explicit Client(std::uint16_t port) : socket_(io_) { socket_.connect({asio::ip::make_address("127.0.0.1"), port}); }

  void send(std::string_view raw) { asio::write(socket_, asio::buffer(raw)); }

  ClientResponse read_response(std::chrono::milliseconds limit = 5s) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.eager(true);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!parser.is_done()) {
      if (pending_.empty() && !receive(deadline)) {
        throw std::runtime_error(closed_ ? "connection closed before a response" : "no response before the deadline");
      }
      beast::error_code ec;
      const auto used = parser.put(asio::buffer(pending_), ec);
      pending_.erase(0, used);
      if (ec == bhttp::error::need_more) {
        if (!receive(deadline)) throw std::runtime_error("connection ended inside a response");
        continue;
      }
      if (ec) throw std::runtime_error("bad response: " + ec.message());
    }
    return parser.release();
  }

  /// True when the server closes the connection (EOF or reset) within `limit`; data that
  /// arrives meanwhile is dropped.
  bool closed_within(std::chrono::milliseconds limit) {
    pending_.clear();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (receive(deadline)) pending_.clear();
    return closed_;
  }

 private:
  /// Appends what arrives before `deadline`; false on timeout or when the peer closed.
  bool receive(std::chrono::steady_clock::time_point deadline) {
    if (closed_) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{socket_.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[16384];
    const auto n = ::recv(socket_.native_handle(), buf, sizeof buf, 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  asio::io_context io_;
  tcp::socket socket_;
  std::string pending_;
  bool closed_ = false;
};

std::string get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string{target} + " HTTP/1.1\r\nHost: test\r\n" + std::string{extra_headers} + "\r\n";
}

std::string header(const ClientResponse& res, std::string_view name) {
  auto v = res[beast::string_view{name.data(), name.size()}];
  return std::string{v.data(), v.size()};
}

struct Observation {
  std::string route;
  int status;
  std::string path;
};

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() {
    router.add(Route{"GET", "/hello", false, ""}, [](Request& req) -> asio::awaitable<Response> {
      co_return Response::json(200, json{{"hello", "world"}, {"request_id", req.request_id}});
    });
    router.add(Route{"GET", "/echo/{name}", false, ""}, [](Request& req) -> asio::awaitable<Response> {
      json headers = json::object();
      for (const auto& [k, v] : req.headers) headers[k] = v;
      json query = json::object();
      for (const auto& [k, v] : req.query) query[k] = v;
      co_return Response::json(200, json{{"path", req.path}, {"name", req.params.at("name")}, {"query", query},
                                         {"headers", headers}, {"remote", req.remote}});
    });
    router.add(Route{"POST", "/echo", false, ""}, [](Request& req) -> asio::awaitable<Response> {
      co_return Response::json(200, json{{"length", req.body.size()}});
    });
    router.add(Route{"DELETE", "/echo", false, ""}, [](Request&) -> asio::awaitable<Response> {
      co_return Response::no_content();
    });
    router.add(Route{"GET", "/slow", false, ""}, [](Request&) -> asio::awaitable<Response> {
      asio::steady_timer timer{co_await asio::this_coro::executor, 300ms};
      co_await timer.async_wait(asio::use_awaitable);
      co_return Response::json(200, json{{"slow", true}});
    });
    router.add(Route{"GET", "/offload", false, ""}, [this](Request&) -> asio::awaitable<Response> {
      const auto io_thread = std::this_thread::get_id();
      const auto pool_thread = co_await offload(pool, [] { return std::this_thread::get_id(); });
      const bool back_on_io = std::this_thread::get_id() == io_thread || io_threads_contain(std::this_thread::get_id());
      co_return Response::json(200, json{{"ran_elsewhere", pool_thread != io_thread}, {"back_on_io", back_on_io}});
    });
  }

  void start(ServerOptions options = {}, UpgradeHandler upgrade = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    server = std::make_unique<Server>(io, router, options,
                                      [this](const Request& req, std::string_view route, int status, std::chrono::nanoseconds) {
                                        std::lock_guard lock(observed_mutex);
                                        observed.push_back({std::string{route}, status, req.path});
                                      });
    if (upgrade) server->set_upgrade_handler(std::move(upgrade));
    server->start();
    ASSERT_NE(server->port(), 0);
    for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io.run(); });
  }

  void TearDown() override {
    if (server) {
      server->stop_accepting();
      EXPECT_TRUE(server->wait_idle(5s));
    }
    work.reset();
    io.stop();
    for (auto& t : threads) t.join();
    server.reset();
    pool.join();
  }

  bool io_threads_contain(std::thread::id id) const {
    for (const auto& t : threads) {
      if (t.get_id() == id) return true;
    }
    return false;
  }

  std::vector<Observation> observations() {
    std::lock_guard lock(observed_mutex);
    return observed;
  }

  /// The observer runs after the response is written: give it a moment.
  std::vector<Observation> wait_observations(std::size_t n) {
    for (int i = 0; i < 200 && observations().size() < n; ++i) std::this_thread::sleep_for(10ms);
    return observations();
  }

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  asio::thread_pool pool{1};
  Router router;
  std::unique_ptr<Server> server;
  std::vector<std::thread> threads;
  std::mutex observed_mutex;
  std::vector<Observation> observed;
};

}  // namespace

TEST_F(HttpServerTest, GetAnswersJsonWithGeneratedRequestId) {
  start();
  Client client{server->port()};
  client.send(get("/hello"));
  const auto res = client.read_response();
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(header(res, "Content-Type"), "application/json");
  EXPECT_EQ(header(res, "Content-Length"), std::to_string(res.body().size()));
  const auto id = header(res, "X-Request-Id");
  EXPECT_EQ(id.size(), 16u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  const auto body = json::parse(res.body());
  EXPECT_EQ(body["hello"], "world");
  EXPECT_EQ(body["request_id"], id);
  EXPECT_TRUE(res.keep_alive());

  const auto seen = wait_observations(1);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].route, "/hello");
  EXPECT_EQ(seen[0].status, 200);
}

TEST_F(HttpServerTest, EchoesClientRequestId) {
  start();
  Client client{server->port()};
  client.send(get("/hello", "X-Request-Id: abc-123\r\n"));
  const auto res = client.read_response();
  EXPECT_EQ(header(res, "X-Request-Id"), "abc-123");
  EXPECT_EQ(json::parse(res.body())["request_id"], "abc-123");
}

TEST_F(HttpServerTest, RequestFieldsAreDecodedAndHeaderNamesLowerCased) {
  start();
  Client client{server->port()};
  client.send(get("/echo/a%20b?q=x+y%21&limit=5", "X-Custom-Header: Value\r\n"));
  const auto res = client.read_response();
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  const auto body = json::parse(res.body());
  EXPECT_EQ(body["path"], "/echo/a b");
  EXPECT_EQ(body["name"], "a b");
  EXPECT_EQ(body["query"], (json{{"q", "x y!"}, {"limit", "5"}}));
  EXPECT_EQ(body["headers"]["x-custom-header"], "Value");
  EXPECT_EQ(body["headers"]["host"], "test");
  EXPECT_EQ(body["remote"], "127.0.0.1");
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  start();
  Client client{server->port()};
  client.send(get("/hello"));
  const auto first = client.read_response();
  EXPECT_EQ(first.result_int(), 200u);
  EXPECT_TRUE(first.keep_alive());
  client.send(get("/nope"));
  const auto second = client.read_response();
  EXPECT_EQ(second.result_int(), 404u);
  EXPECT_EQ(header(second, "Content-Type"), "application/problem+json");
  EXPECT_NE(header(first, "X-Request-Id"), header(second, "X-Request-Id"));

  // A 204 carries neither body nor Content-Length, and the connection stays usable.
  client.send("DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  const auto third = client.read_response();
  EXPECT_EQ(third.result_int(), 204u);
  EXPECT_EQ(header(third, "Content-Length"), "");
  EXPECT_EQ(header(third, "Content-Type"), "");

  // Pipelined: both requests in one write, both answered in order.
  client.send(get("/hello") + get("/echo/z"));
  EXPECT_EQ(client.read_response().result_int(), 200u);
  EXPECT_EQ(json::parse(client.read_response().body())["name"], "z");

  const auto seen = wait_observations(5);
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[1].route, "unmatched");
  EXPECT_EQ(seen[1].status, 404);
}

TEST_F(HttpServerTest, ConnectionCloseRequestIsHonoured) {
  start();
  Client client{server->port()};
  client.send(get("/hello", "Connection: close\r\n"));
  const auto res = client.read_response();
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(header(res, "Connection"), "close");
  EXPECT_TRUE(client.closed_within(2s));
}

TEST_F(HttpServerTest, BodyWithinLimitIsRead) {
  ServerOptions options;
  options.body_limit = 1024;
  start(options);
  Client client{server->port()};
  client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n" + std::string(1024, 'x'));
  const auto res = client.read_response();
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(json::parse(res.body())["length"], 1024);
}

TEST_F(HttpServerTest, BodyOverLimitGets413AndClose) {
  ServerOptions options;
  options.body_limit = 1024;
  start(options);
  Client client{server->port()};
  client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n" + std::string(65536, 'x'));
  const auto res = client.read_response();
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_EQ(header(res, "Content-Type"), "application/problem+json");
  EXPECT_EQ(header(res, "Connection"), "close");
  EXPECT_EQ(json::parse(res.body())["status"], 413);
  EXPECT_TRUE(client.closed_within(3s));
}

TEST_F(HttpServerTest, ChunkedBodyOverLimitGets413) {
  ServerOptions options;
  options.body_limit = 1024;
  start(options);
  Client client{server->port()};
  std::string chunked = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) chunked += "400\r\n" + std::string(1024, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  client.send(chunked);
  EXPECT_EQ(client.read_response().result_int(), 413u);
}

TEST_F(HttpServerTest, ExpectContinueGetsInterimResponse) {
  start();
  Client client{server->port()};
  client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(client.read_response().result_int(), 100u);
  client.send("hello");
  const auto res = client.read_response();
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(json::parse(res.body())["length"], 5);
}

TEST_F(HttpServerTest, MalformedRequestGets400AndClose) {
  start();
  Client client{server->port()};
  client.send("THIS IS NOT HTTP\r\n\r\n");
  const auto res = client.read_response();
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(header(res, "Content-Type"), "application/problem+json");
  EXPECT_EQ(header(res, "Connection"), "close");
  EXPECT_TRUE(client.closed_within(3s));
  const auto seen = wait_observations(1);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].status, 400);
}

TEST_F(HttpServerTest, HeaderTimeoutClosesPartialHead) {
  ServerOptions options;
  options.header_timeout = 1s;
  start(options);
  Client client{server->port()};
  const auto started = std::chrono::steady_clock::now();
  client.send("GET /hello HTTP/1.1\r\nHost: slow");  // never finished
  EXPECT_TRUE(client.closed_within(4s));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_GE(elapsed, 900ms);
  EXPECT_TRUE(observations().empty());
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
  ServerOptions options;
  options.idle_timeout = 1s;
  start(options);
  Client client{server->port()};
  client.send(get("/hello"));
  EXPECT_EQ(client.read_response().result_int(), 200u);
  EXPECT_FALSE(client.closed_within(500ms));
  EXPECT_TRUE(client.closed_within(3s));
}

TEST_F(HttpServerTest, OffloadedHandlerRunsOnPoolAndResumesOnIo) {
  start();
  Client client{server->port()};
  client.send(get("/offload"));
  const auto res = client.read_response();
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  const auto body = json::parse(res.body());
  EXPECT_EQ(body["ran_elsewhere"], true);
  EXPECT_EQ(body["back_on_io"], true);
}

TEST_F(HttpServerTest, StopAcceptingLetsInFlightRequestFinish) {
  start();
  Client idle{server->port()};
  idle.send(get("/hello"));
  ASSERT_EQ(idle.read_response().result_int(), 200u) << "idle";
  // The client can read the answer before the server has finished its bookkeeping.
  for (int i = 0; i < 200 && server->in_flight() != 0; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(server->in_flight(), 0u);

  Client slow{server->port()};
  slow.send(get("/slow"));
  for (int i = 0; i < 200 && server->in_flight() == 0; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(server->in_flight(), 1u);

  const auto port = server->port();
  const auto started = std::chrono::steady_clock::now();
  server->stop_accepting();
  EXPECT_TRUE(server->wait_idle(5s));
  EXPECT_EQ(server->in_flight(), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);

  ClientResponse res;
  ASSERT_NO_THROW(res = slow.read_response());
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(json::parse(res.body())["slow"], true);
  EXPECT_EQ(header(res, "Connection"), "close");  // no further request on this connection
  EXPECT_TRUE(slow.closed_within(2s));
  EXPECT_TRUE(idle.closed_within(2s));  // the idle keep-alive one is closed at once

  asio::io_context client_io;
  tcp::socket late{client_io};
  beast::error_code ec;
  late.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  EXPECT_TRUE(ec) << "connected after stop_accepting";
}

TEST_F(HttpServerTest, UpgradeHookTakesTheConnectionOver) {
  start({}, [](Request& req, beast::tcp_stream& stream, bhttp::request<bhttp::string_body>&) {
    if (req.path != "/ws") return false;
    auto owned = std::make_shared<beast::tcp_stream>(std::move(stream));
    auto reply = std::make_shared<std::string>("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n");
    asio::async_write(*owned, asio::buffer(*reply), [owned, reply](beast::error_code, std::size_t) {});
    return true;
  });
  Client client{server->port()};
  client.send(get("/ws", "Connection: Upgrade\r\nUpgrade: test\r\n"));
  EXPECT_EQ(client.read_response().result_int(), 101u);
  for (int i = 0; i < 200 && server->in_flight() != 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(server->in_flight(), 0u);

  Client other{server->port()};  // declined by the hook: the router answers
  other.send(get("/hello", "Connection: Upgrade\r\nUpgrade: test\r\n"));
  EXPECT_EQ(other.read_response().result_int(), 200u);
}

TEST_F(HttpServerTest, StartOnBusyPortThrowsNamingHostAndPort) {
  start();
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = server->port();
  Server second{io, router, options};
  try {
    second.start();
    FAIL() << "second bind succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string{e.what()}, "HTTP_HOST/HTTP_PORT 127.0.0.1:" + std::to_string(options.port) +
                                         ": address already in use");
  }
}

namespace {

template <typename T>
T run_on_io(asio::io_context& io, asio::awaitable<T> op) {
  std::promise<T> result;
  asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, T value) {
    if (e) {
      result.set_exception(e);
    } else {
      result.set_value(std::move(value));
    }
  });
  io.run();
  io.restart();
  return result.get_future().get();
}

struct NoDefault {
  explicit NoDefault(int v) : value(v) {}
  int value;
};

}  // namespace

TEST(HttpOffload, ReturnsValueFromPoolThreadAndResumesOnCaller) {
  asio::io_context io;
  asio::thread_pool pool{1};
  const auto caller = std::this_thread::get_id();  // io.run() runs here
  auto op = [&]() -> asio::awaitable<std::vector<std::thread::id>> {
    const auto worker = co_await offload(pool, [] { return std::this_thread::get_id(); });
    co_return std::vector<std::thread::id>{worker, std::this_thread::get_id()};
  };
  const auto ids = run_on_io(io, op());
  EXPECT_NE(ids[0], caller);
  EXPECT_EQ(ids[1], caller);
  pool.join();
}

TEST(HttpOffload, SupportsVoidMoveOnlyAndNonDefaultConstructibleResults) {
  asio::io_context io;
  asio::thread_pool pool{1};
  std::atomic<int> ran{0};
  auto op = [&]() -> asio::awaitable<int> {
    co_await offload(pool, [&] { ++ran; });
    auto p = co_await offload(pool, [] { return std::make_unique<int>(7); });
    auto nd = co_await offload(pool, [] { return NoDefault{5}; });
    co_return *p + nd.value;
  };
  EXPECT_EQ(run_on_io(io, op()), 12);
  EXPECT_EQ(ran, 1);
  pool.join();
}

TEST(HttpOffload, PropagatesExceptions) {
  asio::io_context io;
  asio::thread_pool pool{1};
  auto op = [&]() -> asio::awaitable<std::string> {
    try {
      co_await offload(pool, []() -> int { throw std::runtime_error("database is down"); });
    } catch (const std::runtime_error& e) {
      co_return std::string{e.what()};
    }
    co_return std::string{"no exception"};
  };
  EXPECT_EQ(run_on_io(io, op()), "database is down");

  auto void_op = [&]() -> asio::awaitable<int> {
    co_await offload(pool, [] { throw std::logic_error("void failure"); });
    co_return 0;
  };
  EXPECT_THROW(run_on_io(io, void_op()), std::logic_error);
  pool.join();
}
