// `taskstream worker` against the real broker and SMTP server: a worker SIGKILLed after its
// effects but before its offsets were committed gets the batch again and changes nothing
// (one audit row, one notification, one email); a restarted worker resumes where it stopped.

#include <gtest/gtest.h>

#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "kafka/producer.hpp"
#include "publish.hpp"
#include "serve_process.hpp"
#include "smtp_env.hpp"
#include "storage/store.hpp"

using namespace taskstream;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

itest::ServeProcess start_worker(std::map<std::string, std::string> env) {
  const auto port = std::to_string(itest::free_port());
  env["HTTP_PORT"] = port;
  env["SMTP_HOST"] = "127.0.0.1";
  env["SMTP_PORT"] = itest::shared_smtp_port();
  return itest::ServeProcess(env, {"worker", "--consumers", "audit,notification", "--port", port});
}

std::int64_t total_lag(const config::Settings& s, const std::string& group, const std::string& topic) {
  std::int64_t lag = 0;
  for (const auto& [p, l] : kafka::Admin(s).consumer_lag(group, topic)) lag += l;
  return lag;
}

}  // namespace

TEST(WorkerCrash, KilledAfterEffectBeforeCommitGivesOneAuditRowOneNotificationOneEmail) {
  auto worker = start_worker({{"TASKSTREAM_FAILPOINT", "kill_before_commit"}, {"SMTP_FROM", "tasks@taskstream.test"}});
  const auto s = itest::kafka_settings();
  const std::string user = events::new_event_id();
  const auto event = itest::sample_task_event(user, 1);
  const std::string subject = "Crash once " + itest::unique_name("s");
  json request{{"event_id", events::new_event_id()}, {"user_id", user}, {"task_id", event.task_id}, {"type", "deadline_reminder"},
               {"title", subject}, {"message", "Sent once, crash or not."}, {"channels", {"in_app", "email"}},
               {"email", "crash@example.com"}};
  kafka::Producer producer(s);
  ASSERT_TRUE(itest::publish_event(producer, worker.topic("task-events"), events::to_json(event), user));
  ASSERT_TRUE(itest::publish_event(producer, worker.topic("notification.request"), request, user));

  // The failpoint kills the worker after the first batch it handles.
  ASSERT_EQ(worker.wait_exit(60s), SIGKILL) << worker.log();
  EXPECT_NE(worker.log().find("failpoint kill_before_commit"), std::string::npos);
  auto store = storage::open_store(config::Settings::load({{"DATABASE_URL", worker.database_url()}}).database);

  // Nothing was committed by the consumer that was killed, so the next one must redo it.
  worker.restart({{"TASKSTREAM_FAILPOINT", ""}});
  ASSERT_TRUE(itest::wait_until([&] {
    return total_lag(s, worker.env().at("KAFKA_CONSUMER_GROUP_AUDIT"), worker.topic("task-events")) == 0 &&
           total_lag(s, worker.env().at("KAFKA_CONSUMER_GROUP_NOTIFICATION"), worker.topic("notification.request")) == 0;
  }, 60s)) << worker.log();
  ASSERT_TRUE(itest::wait_until([&]() -> bool {
    auto list = store->list_notifications(user, false, 10);
    return list.size() == 1 && list[0].channels.size() == 2 && list[0].channels[1].status == "sent";
  }, 30s)) << worker.log();
  // Quiescent now: both groups at lag 0 (above) and the email row sent (only pending rows are
  // sent), so nothing more can come; no pause needed before counting.

  EXPECT_EQ(store->task_history(user, event.task_id).size(), 1u);
  EXPECT_EQ(store->list_notifications(user, false, 10).size(), 1u);
  EXPECT_EQ(itest::mails_with(subject).size(), 1u) << "one email across the crash";
  EXPECT_EQ(worker.stop(), 0);
}

TEST(WorkerCrash, RestartedWorkerResumesWhereItStopped) {
  auto worker = start_worker({});
  const auto s = itest::kafka_settings();
  const auto group = worker.env().at("KAFKA_CONSUMER_GROUP_AUDIT");
  const auto topic = worker.topic("task-events");
  const std::string user = events::new_event_id();
  kafka::Producer producer(s);
  std::vector<events::TaskEvent> sent;
  for (int i = 1; i <= 50; ++i) {
    sent.push_back(itest::sample_task_event(user, i));
    ASSERT_TRUE(itest::publish_event(producer, topic, events::to_json(sent.back()), user));
  }
  auto store = storage::open_store(config::Settings::load({{"DATABASE_URL", worker.database_url()}}).database);
  ASSERT_TRUE(itest::wait_until([&] { return total_lag(s, group, topic) == 0; }, 60s)) << worker.log();
  EXPECT_EQ(worker.stop(), 0);

  // While it is down: 50 more. The restarted worker reads those and none of the first 50.
  for (int i = 51; i <= 100; ++i) {
    sent.push_back(itest::sample_task_event(user, i));
    ASSERT_TRUE(itest::publish_event(producer, topic, events::to_json(sent.back()), user));
  }
  EXPECT_EQ(total_lag(s, group, topic), 50);
  worker.restart();
  ASSERT_TRUE(itest::wait_until([&] { return total_lag(s, group, topic) == 0; }, 60s)) << worker.log();
  for (const auto& e : sent) EXPECT_EQ(store->task_history(user, e.task_id).size(), 1u) << "seq " << *e.seq;
  EXPECT_EQ(worker.stop(), 0);
}
