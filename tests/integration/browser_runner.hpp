#pragma once
// Runs a browser flow of tests/browser/ (playwright-core driving Debian's chromium, with
// axe-core) against a serve process. scripts/test installs both and sets
// TASKSTREAM_NODE_PATH; screenshots land in TASKSTREAM_ARTIFACT_DIR (default ./artifacts).

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "serve_process.hpp"

namespace taskstream::itest {

struct FlowRun {
  int status = -1;  ///< pclose's status: 0 when every check passed
  std::string out;  ///< what the flow printed (its checks, and any failure)
};

/// Fails the test (not skips it) when node's packages or chromium are missing.
inline void expect_browser() {
  const char* node_path = std::getenv("TASKSTREAM_NODE_PATH");
  ASSERT_TRUE(node_path && *node_path) << "TASKSTREAM_NODE_PATH is not set: run scripts/test (it installs playwright-core and axe-core)";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "chromium is not installed: run scripts/deps";
}

/// Runs tests/browser/`script` with BASE_URL (the serve's), ARTIFACT_DIR, JWT_SECRET (the
/// serve's) and `env`, and waits for it.
inline FlowRun run_browser_flow(const std::string& script, const ServeProcess& serve, const std::map<std::string, std::string>& env = {}) {
  FlowRun run;
  const char* node_path = std::getenv("TASKSTREAM_NODE_PATH");
  if (!node_path || !*node_path) {
    run.out = "TASKSTREAM_NODE_PATH is not set: run scripts/test (it installs playwright-core and axe-core)";
    return run;
  }
  const char* artifacts_env = std::getenv("TASKSTREAM_ARTIFACT_DIR");
  const std::filesystem::path artifacts = artifacts_env && *artifacts_env ? artifacts_env : std::filesystem::current_path() / "artifacts";
  std::filesystem::create_directories(artifacts);
  std::string cmd = "NODE_PATH='" + std::string(node_path) + "' BASE_URL='http://127.0.0.1:" + std::to_string(serve.port()) + "' ARTIFACT_DIR='" +
                    artifacts.string() + "' JWT_SECRET='" + serve.env().at("JWT_SECRET") + "'";
  for (const auto& [k, v] : env) cmd += " " + k + "='" + v + "'";
  cmd += " node '" TASKSTREAM_SOURCE_DIR "/tests/browser/" + script + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    run.out = "popen failed";
    return run;
  }
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) run.out.append(buf, n);
  run.status = pclose(p);
  return run;
}

}  // namespace taskstream::itest
