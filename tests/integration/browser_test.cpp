// The web page in a real browser: each flow in tests/browser/*.cjs (playwright-core driving
// Debian's chromium, headless, with axe-core) against a real `serve` and broker of its own.
// scripts/test installs both and sets TASKSTREAM_NODE_PATH; screenshots land in
// TASKSTREAM_ARTIFACT_DIR (docs/img/web/ holds the ones from screens.cjs).

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "browser_runner.hpp"
#include "serve_process.hpp"

using namespace taskstream;
using namespace std::chrono_literals;

namespace {

const char* const kJwtSecret = "browser-test-secret-browser-test-secret-0123";

class Browser : public ::testing::TestWithParam<const char*> {};

}  // namespace

TEST_P(Browser, Flow) {
  ASSERT_NO_FATAL_FAILURE(itest::expect_browser());

  // Email stays off: the flows look at in-app notifications; SMTP has tests of its own.
  itest::ServeProcess serve(std::map<std::string, std::string>{{"JWT_SECRET", kJwtSecret}, {"EMAIL_NOTIFICATIONS_ENABLED", "false"}});
  ASSERT_TRUE(itest::wait_until([&] { return serve.call("GET", "/readyz").status == 200; }, 30s)) << serve.log();
  const std::string script = std::string(GetParam()) + ".cjs";
  const auto run = itest::run_browser_flow(script, serve);
  EXPECT_EQ(run.status, 0) << run.out << "\n--- serve log ---\n" << serve.log();
  EXPECT_NE(run.out.find("checks passed"), std::string::npos) << run.out;
  std::printf("%s", run.out.c_str());
  EXPECT_EQ(serve.stop(), 0);
}

// live_updates: two pages see each other's changes and resume; edits: conflicts, live updates
// during an edit, failures and limits; tasks: the whole task, time zones, filters, undo,
// paging; session: badge, sign-out, expiry; notifications: a reminder arrives live, read and
// read-all; keyboard: shortcuts, focus, motion, dark mode; screens: axe-core and screenshots
// of every screen, desktop and phone, light and dark.
INSTANTIATE_TEST_SUITE_P(WebPage, Browser,
                         ::testing::Values("live_updates", "edits", "tasks", "session", "notifications", "keyboard", "screens"),
                         [](const auto& info) { return std::string(info.param); });

// The static files: modules and vendored libraries with their types, an ETag and 304.
TEST(WebAssets, ModulesAreServedWithTheirTypeAndRevalidateWithEtags) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"KAFKA_ENABLED", "false"}});
  auto page = serve.call("GET", "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.headers["content-security-policy"].find("default-src 'self'"), std::string::npos);
  auto main_js = serve.call("GET", "/static/js/main.js");
  ASSERT_EQ(main_js.status, 200);
  EXPECT_EQ(main_js.headers["content-type"], "text/javascript; charset=utf-8");
  const auto etag = main_js.headers["etag"];
  ASSERT_FALSE(etag.empty());
  auto again = itest::http_request(serve.port(), "GET", "/static/js/main.js", {}, {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  auto preact = serve.call("GET", "/static/vendor/preact.mjs");
  EXPECT_EQ(preact.status, 200);
  EXPECT_EQ(preact.headers["content-type"], "text/javascript; charset=utf-8");
  EXPECT_NE(preact.headers["etag"], etag);
  EXPECT_EQ(serve.call("GET", "/static/vendor/nope.mjs").status, 404);
  EXPECT_EQ(serve.call("GET", "/static/../CMakeLists.txt").status, 404);
  EXPECT_EQ(serve.call("GET", "/static/js/..%2F..%2FCMakeLists.txt").status, 404);
  EXPECT_EQ(serve.call("GET", "/static/index.html").status, 404);
  EXPECT_EQ(serve.stop(), 0);
}

// CORS (docs/api.md, "CORS") as Chromium enforces it: a listed origin's page calls the API
// (preflights included), an unlisted origin's page is refused and writes nothing. The serve's
// metrics prove the preflights reached it and were answered both ways.
TEST(WebCors, AListedOriginCallsTheApiAndAnUnlistedOneIsRefused) {
  ASSERT_NO_FATAL_FAILURE(itest::expect_browser());
  // Two ports the kernel says are free (not port + 1: that one may be any socket's).
  const auto allowed_port = itest::free_port();
  auto other_port = itest::free_port();
  while (other_port == allowed_port) other_port = itest::free_port();
  const std::string allowed = "http://localhost:" + std::to_string(allowed_port);
  const std::string other = "http://localhost:" + std::to_string(other_port);
  itest::ServeProcess serve(std::map<std::string, std::string>{{"JWT_SECRET", kJwtSecret}, {"CORS_ORIGINS", allowed}});
  ASSERT_TRUE(itest::wait_until([&] { return serve.call("GET", "/readyz").status == 200; }, 30s)) << serve.log();
  const auto run = itest::run_browser_flow("cors.cjs", serve, {{"ALLOWED_ORIGIN", allowed}, {"OTHER_ORIGIN", other}});
  EXPECT_EQ(run.status, 0) << run.out << "\n--- serve log ---\n" << serve.log();
  EXPECT_NE(run.out.find("checks passed"), std::string::npos) << run.out;
  std::printf("%s", run.out.c_str());
  const auto metrics = serve.call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("method=\"OPTIONS\",route=\"preflight\",status=\"204\""), std::string::npos) << "no preflight answered 204";
  EXPECT_NE(metrics.find("method=\"OPTIONS\",route=\"preflight\",status=\"403\""), std::string::npos) << "no preflight refused";
  EXPECT_EQ(serve.stop(), 0);
}
