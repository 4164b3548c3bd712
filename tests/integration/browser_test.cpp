// The web page in a real browser: each flow in tests/browser/*.cjs (playwright-core driving
// Debian's chromium, headless, with axe-core) against a real `serve` and broker of its own.
// scripts/test installs both and sets TASKSTREAM_NODE_PATH; screenshots land in
// TASKSTREAM_ARTIFACT_DIR (docs/img/web/ holds the ones from screens.cjs).

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "serve_process.hpp"

using namespace taskstream;
using namespace std::chrono_literals;

namespace {

const char* const kJwtSecret = "browser-test-secret-browser-test-secret-0123";

class Browser : public ::testing::TestWithParam<const char*> {};

std::string run_flow(const std::string& script, itest::ServeProcess& serve, const std::filesystem::path& artifacts, int& status) {
  const char* node_path = std::getenv("TASKSTREAM_NODE_PATH");
  const std::string cmd = "NODE_PATH='" + std::string(node_path) + "' BASE_URL='http://127.0.0.1:" + std::to_string(serve.port()) +
                          "' ARTIFACT_DIR='" + artifacts.string() + "' JWT_SECRET='" + kJwtSecret + "' node '" TASKSTREAM_SOURCE_DIR "/tests/browser/" +
                          script + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    status = -1;
    return "popen failed";
  }
  std::string out;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  status = pclose(p);
  return out;
}

}  // namespace

TEST_P(Browser, Flow) {
  const char* node_path = std::getenv("TASKSTREAM_NODE_PATH");
  ASSERT_TRUE(node_path && *node_path) << "TASKSTREAM_NODE_PATH is not set: run scripts/test (it installs playwright-core and axe-core)";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "chromium is not installed: run scripts/deps";
  const char* artifacts_env = std::getenv("TASKSTREAM_ARTIFACT_DIR");
  const std::filesystem::path artifacts = artifacts_env && *artifacts_env ? artifacts_env : std::filesystem::current_path() / "artifacts";
  std::filesystem::create_directories(artifacts);

  // Email stays off: the flows look at in-app notifications; SMTP has tests of its own.
  itest::ServeProcess serve(std::map<std::string, std::string>{{"JWT_SECRET", kJwtSecret}, {"EMAIL_NOTIFICATIONS_ENABLED", "false"}});
  ASSERT_TRUE(itest::wait_until([&] { return serve.call("GET", "/readyz").status == 200; }, 30s)) << serve.log();
  const std::string script = std::string(GetParam()) + ".cjs";
  int status = 0;
  const auto out = run_flow(script, serve, artifacts, status);
  EXPECT_EQ(status, 0) << out << "\n--- serve log ---\n" << serve.log();
  EXPECT_NE(out.find("checks passed"), std::string::npos) << out;
  std::printf("%s", out.c_str());
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
