// The web page in a real browser: tests/browser/live_updates.cjs (playwright-core driving
// Debian's chromium, headless) against a real `serve`. scripts/test installs both and sets
// TASKSTREAM_NODE_PATH; the screenshots land in TASKSTREAM_ARTIFACT_DIR.

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "serve_process.hpp"

using namespace taskstream;
using namespace std::chrono_literals;

TEST(Browser, TwoPagesOfOneUserSeeEachOthersChangesLiveAndResume) {
  const char* node_path = std::getenv("TASKSTREAM_NODE_PATH");
  ASSERT_TRUE(node_path && *node_path) << "TASKSTREAM_NODE_PATH is not set: run scripts/test (it installs playwright-core)";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "chromium is not installed: run scripts/deps";
  const char* artifacts_env = std::getenv("TASKSTREAM_ARTIFACT_DIR");
  const std::filesystem::path artifacts = artifacts_env && *artifacts_env ? artifacts_env : std::filesystem::current_path() / "artifacts";
  std::filesystem::create_directories(artifacts);
  std::filesystem::remove(artifacts / "web-page-phone.png");

  itest::ServeProcess serve;
  ASSERT_TRUE(itest::wait_until([&] { return serve.call("GET", "/readyz").status == 200; }, 30s)) << serve.log();
  const std::string cmd = "NODE_PATH='" + std::string(node_path) + "' BASE_URL='http://127.0.0.1:" + std::to_string(serve.port()) +
                          "' ARTIFACT_DIR='" + artifacts.string() + "' node '" TASKSTREAM_SOURCE_DIR "/tests/browser/live_updates.cjs' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  EXPECT_EQ(status, 0) << out << "\n--- serve log ---\n" << serve.log();
  EXPECT_NE(out.find("all browser checks passed"), std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::exists(artifacts / "web-page-phone.png")) << "screenshot artifact";
  std::printf("%s", out.c_str());
  EXPECT_EQ(serve.stop(), 0);
}
