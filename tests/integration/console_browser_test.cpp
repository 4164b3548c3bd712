// The operations console in a real browser (tests/browser/console.cjs, playwright-core
// driving Debian's chromium with axe-core) against a real serve, worker and broker: the
// audit group's worker is stopped with events and poison behind it, the page shows the lag
// and the dead letters and redrives one; the worker starts again and the page shows the lag
// fall to 0. Screenshots land in TASKSTREAM_ARTIFACT_DIR (docs/img/console/ holds copies).

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "kafka/producer.hpp"
#include "browser_runner.hpp"
#include "serve_process.hpp"

using namespace taskstream;
using namespace std::chrono_literals;


TEST(Console, BrowserShowsLagDeadLettersAndARedriveAndTheLagFallingToZero) {
  ASSERT_NO_FATAL_FAILURE(itest::expect_browser());
  constexpr int kLag = 300;
  itest::ServeProcess serve(std::map<std::string, std::string>{{"ADMIN_EMAILS", "ops@example.com"}, {"EMAIL_NOTIFICATIONS_ENABLED", "false"}},
                            {"serve", "--consumers", "notification"});
  auto creds = nlohmann::json{{"email", "ops@example.com"}, {"password", "correct horse battery"}}.dump();
  ASSERT_EQ(serve.call("POST", "/auth/register", creds).status, 201);
  const auto topic = serve.topic("task-events");
  const auto group = serve.env().at("KAFKA_CONSUMER_GROUP_AUDIT");
  auto env = serve.env();
  const auto worker_port = itest::free_port();
  env["HTTP_PORT"] = std::to_string(worker_port);
  const std::vector<std::string> worker_args{"worker", "--consumers", "audit", "--port", std::to_string(worker_port)};
  {
    // The worker dead-letters three poison messages, then stops.
    itest::ServeProcess worker(env, worker_args);
    kafka::Producer producer(config::Settings::load(config::EnvMap(serve.env().begin(), serve.env().end())));
    for (const std::string p : {std::string("{not json"),
                                std::string(R"({"type":"task_created","user_id":"u","task_id":"not-a-uuid","timestamp":"2026-11-27T12:00:00Z","task_data":{}})"),
                                std::string(R"({"type":"task_exploded","user_id":"u","task_id":"0b7e7a43-3c4c-4e1e-9d8f-4c8f8ad2b2a1","timestamp":"2026-11-27T12:00:00Z","task_data":{}})")})
      ASSERT_TRUE(producer.send({topic, "u", p, {}, std::nullopt}).get().ok());
    ASSERT_TRUE(itest::wait_until([&] {
      auto admin = serve.call("GET", "/admin/dlq/" + topic, {}, serve.call("POST", "/auth/token", creds).json()["access_token"]);
      return admin.status == 200 && admin.json()["total"] == 3;
    }, 60s));
    ASSERT_EQ(worker.stop(), 0) << worker.log();
  }
  // kLag changes by 10 users while nobody consumes the audit group.
  std::vector<std::string> tokens;
  for (int u = 0; u < 10; ++u) tokens.push_back(serve.new_user("console").second);
  for (int i = 0; i < kLag; ++i)
    ASSERT_EQ(serve.call("POST", "/tasks", nlohmann::json{{"title", "backlog " + std::to_string(i)}}.dump(), tokens[static_cast<std::size_t>(i) % tokens.size()]).status, 201);

  std::map<std::string, std::string> extra{{"OPS_EMAIL", "ops@example.com"}, {"AUDIT_GROUP", group}, {"TOPIC", topic}, {"LAG", std::to_string(kLag)}};
  extra["PHASE"] = "lag";
  auto run = itest::run_browser_flow("console.cjs", serve, extra);
  std::printf("%s", run.out.c_str());
  ASSERT_EQ(run.status, 0) << run.out << "\n--- serve log ---\n" << serve.log();
  EXPECT_NE(run.out.find("all console lag checks passed"), std::string::npos) << run.out;

  itest::ServeProcess worker(env, worker_args);
  extra["PHASE"] = "drained";
  run = itest::run_browser_flow("console.cjs", serve, extra);
  std::printf("%s", run.out.c_str());
  EXPECT_EQ(run.status, 0) << run.out << "\n--- worker log ---\n" << worker.log();
  EXPECT_NE(run.out.find("all console drained checks passed"), std::string::npos) << run.out;
  EXPECT_EQ(worker.stop(), 0);
  EXPECT_EQ(serve.stop(), 0);
}
