// The HTTP API against its own /openapi.json, by a property-based tester: Schemathesis
// (PyPI, installed by scripts/test into the cache dir) generates requests from the document,
// valid and invalid, single and chained (create → read → change → delete), and checks every
// answer: no 5xx, every status code, content type, header and body as documented, invalid
// data rejected, valid data accepted, a deleted resource gone, auth not ignored. All checks,
// a fixed seed, a time budget (90 s; TASKSTREAM_SCHEMATHESIS_SECONDS). The few answers that
// depend on the server's state rather than the request's form are named in
// tests/api/schemathesis.toml; nothing is excluded. See docs/api.md.

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "serve_process.hpp"

using namespace taskstream;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST(ApiContract, SchemathesisFindsNoFailureAgainstTheOpenApiDocument) {
  const std::string st = itest::required_env("TASKSTREAM_SCHEMATHESIS", "Schemathesis's st command");
  const char* secs = std::getenv("TASKSTREAM_SCHEMATHESIS_SECONDS");
  const std::string seconds = secs && *secs ? secs : "90";
  // An operator, so the /admin routes are tested past their 403.
  itest::ServeProcess serve(std::map<std::string, std::string>{{"ADMIN_EMAILS", "api-contract-operator@example.com"},
                                                                    {"LOG_LEVEL", "warn"},
                                                                    // The login limits have tests of their own; here they would
                                                                    // leave /auth/token answering mostly 429.
                                                                    {"AUTH_RATE_LIMIT_PER_ADDRESS", "1000000"},
                                                                    {"AUTH_RATE_LIMIT_PER_ACCOUNT", "1000000"}});
  ASSERT_TRUE(itest::wait_until([&] { return serve.call("GET", "/readyz").status == 200; }, 60s)) << serve.log();
  const json creds{{"email", "api-contract-operator@example.com"}, {"password", "correct horse battery"}};
  ASSERT_EQ(serve.call("POST", "/auth/register", creds.dump()).status, 201);
  const auto token = serve.call("POST", "/auth/token", creds.dump()).json()["access_token"].get<std::string>();

  const std::string base = "http://127.0.0.1:" + std::to_string(serve.port());
  const std::string report = ::testing::TempDir() + "schemathesis-" + std::to_string(getpid()) + ".log";
  const std::string cmd = "'" + st + "' --config-file '" TASKSTREAM_SOURCE_DIR "/tests/api/schemathesis.toml' run '" + base +
                          "/openapi.json' -H 'Authorization: Bearer " + token + "' --checks all --seed 20261204 --max-time " + seconds +
                          " --workers 1 --no-color --request-timeout 10 --generation-database none > '" + report + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  const auto out = read_file(report);
  // What it did, from its own summary: phases, test cases, failures.
  const auto summary = out.find("=== SUMMARY");
  std::printf("%s\n", summary == std::string::npos ? out.c_str() : out.substr(summary).c_str());
  ASSERT_NE(out.find("Tested: "), std::string::npos) << "Schemathesis did not run:\n" << out;
  EXPECT_EQ(out.find("Tested: 0"), std::string::npos) << out;
  EXPECT_EQ(rc, 0) << "Schemathesis reported failures (full report: " << report << "):\n" << out;
  EXPECT_EQ(serve.stop(), 0) << serve.log();
}
