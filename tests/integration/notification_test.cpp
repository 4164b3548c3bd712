// The notification consumer with the real broker and the real SMTP server: one row per
// request with per-channel status, one email with the right To/From/Subject/body, none
// again for a redelivered request, seed-shaped requests accepted; the notification routes.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "events/events.hpp"
#include "kafka/producer.hpp"
#include "serve_process.hpp"

using namespace taskstream;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string maildir() {
  const char* d = std::getenv("TASKSTREAM_SMTP_MAILDIR");
  return d && *d ? d : TASKSTREAM_SOURCE_DIR "/var/smtp/mail";
}

/// Messages in the SMTP server's mail dir that contain `needle`.
std::vector<std::string> mails_with(const std::string& needle) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(maildir())) return out;
  for (const auto& f : std::filesystem::directory_iterator(maildir())) {
    if (f.path().extension() != ".eml") continue;
    std::ifstream in(f.path());
    std::string text((std::istreambuf_iterator<char>(in)), {});
    if (text.find(needle) != std::string::npos) out.push_back(text);
  }
  return out;
}

itest::ServeProcess serve_with_smtp() {
  const char* port = std::getenv("SMTP_TEST_PORT");
  return itest::ServeProcess(std::map<std::string, std::string>{
      {"SMTP_HOST", "127.0.0.1"}, {"SMTP_PORT", port && *port ? port : "2525"}, {"SMTP_FROM", "tasks@taskstream.test"}});
}

}  // namespace

TEST(Notifications, EmailChannelDeliversOneEmailAndTheRowSaysSent) {
  auto serve = serve_with_smtp();
  auto [user, token] = serve.new_user("notify");
  const std::string subject = "Deadline soon " + itest::unique_name("s");
  const std::string to = itest::unique_name("someone") + "@example.com";
  json request{{"event_id", events::new_event_id()}, {"user_id", user}, {"task_id", events::new_event_id()}, {"type", "deadline_reminder"},
               {"title", subject}, {"message", "Your task is due in an hour."}, {"channels", {"in_app", "email", "sms"}}, {"email", to}};
  auto s = itest::kafka_settings();
  kafka::Producer producer(s);
  // Twice: a redelivered request must not give a second row or a second email.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(producer.publish_event(serve.topic("notification.request"), request, user));

  json items;
  ASSERT_TRUE(itest::wait_until([&] {
    items = serve.call("GET", "/notifications", {}, token).json()["items"];
    return items.size() == 1 && items[0]["channels"][1]["status"] != "pending";
  }, 60s)) << items.dump() << serve.log();
  std::this_thread::sleep_for(1s);
  items = serve.call("GET", "/notifications", {}, token).json()["items"];
  ASSERT_EQ(items.size(), 1u) << items.dump();
  const auto& n = items[0];
  EXPECT_EQ(n["title"], subject);
  EXPECT_EQ(n["read"], false);
  std::map<std::string, std::string> status;
  for (auto& c : n["channels"]) status[c["channel"]] = c["status"];
  EXPECT_EQ(status["in_app"], "sent");
  EXPECT_EQ(status["email"], "sent") << n.dump();
  EXPECT_EQ(status["sms"], "skipped");

  auto mails = mails_with(subject);
  ASSERT_EQ(mails.size(), 1u) << "expected exactly one email";
  EXPECT_NE(mails[0].find("To: " + to), std::string::npos) << mails[0];
  EXPECT_NE(mails[0].find("From: tasks@taskstream.test"), std::string::npos) << mails[0];
  EXPECT_NE(mails[0].find("Subject: " + subject), std::string::npos) << mails[0];
  EXPECT_NE(mails[0].find("Your task is due in an hour."), std::string::npos) << mails[0];

  // Read it.
  const std::string id = n["id"];
  auto read = serve.call("POST", "/notifications/" + id + "/read", {}, token);
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.json()["read"], true);
  EXPECT_EQ(serve.call("GET", "/notifications?unread=true", {}, token).json()["items"].size(), 0u);
  auto [other, other_token] = serve.new_user("stranger");
  EXPECT_EQ(serve.call("POST", "/notifications/" + id + "/read", {}, other_token).status, 404);
  EXPECT_EQ(serve.call("GET", "/notifications", {}, other_token).json()["items"].size(), 0u);
  EXPECT_EQ(serve.stop(), 0);
}

TEST(Notifications, SeedShapedRequestGoesToTheRegisteredAddress) {
  auto serve = serve_with_smtp();
  auto email = itest::unique_name("seeduser") + "@example.com";
  json creds{{"email", email}, {"password", "correct horse"}};
  auto user = serve.call("POST", "/auth/register", creds.dump()).json()["id"].get<std::string>();
  auto token = serve.call("POST", "/auth/token", creds.dump()).json()["access_token"].get<std::string>();
  const std::string subject = "Overdue " + itest::unique_name("s");
  // Exactly the seed's NotificationRequestEvent: no event_id, no email.
  json request{{"user_id", user}, {"task_id", nullptr}, {"type", "task_overdue"}, {"title", subject}, {"message", "It is overdue."},
               {"channels", {"in_app", "email"}}};
  kafka::Producer producer(itest::kafka_settings());
  ASSERT_TRUE(producer.publish_event(serve.topic("notification.request"), request, user));
  ASSERT_TRUE(itest::wait_until([&] { return mails_with(subject).size() == 1; }, 60s)) << serve.log();
  EXPECT_NE(mails_with(subject)[0].find("To: " + email), std::string::npos);
  ASSERT_TRUE(itest::wait_until([&] {
    auto items = serve.call("GET", "/notifications", {}, token).json()["items"];
    return items.size() == 1 && items[0]["channels"][1]["status"] == "sent";
  }, 30s));
  EXPECT_EQ(serve.stop(), 0);
}
