// The notification consumer with the real broker and the real SMTP server: one row per
// request with per-channel status, one email with the right To/From/Subject/body, none
// again for a redelivered request, seed-shaped requests accepted; the notification routes;
// an SMTP outage that other requests do not wait for; an email out of attempts dead-lettered.

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "events/events.hpp"
#include "kafka/admin.hpp"
#include "kafka/producer.hpp"
#include "kafka/redrive.hpp"
#include "kafka/tail.hpp"
#include "publish.hpp"
#include "serve_process.hpp"
#include "smtp_env.hpp"

using namespace taskstream;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using itest::mails_with;

itest::ServeProcess serve_with_smtp() {
  return itest::ServeProcess(std::map<std::string, std::string>{
      {"SMTP_HOST", "127.0.0.1"}, {"SMTP_PORT", itest::shared_smtp_port()}, {"SMTP_FROM", "tasks@taskstream.test"}});
}

/// Quiescence: the notification group of `serve` has committed every request on its topic
/// (so a second copy, had it been sent, was handled), read from the cluster.
bool notifications_quiet(const itest::ServeProcess& serve) {
  try {
    for (const auto& [partition, lag] : kafka::Admin(itest::kafka_settings())
                                             .consumer_lag(serve.env().at("KAFKA_CONSUMER_GROUP_NOTIFICATION"), serve.topic("notification.request")))
      if (lag != 0) return false;
    return true;
  } catch (const std::exception&) {
    return false;
  }
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
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(itest::publish_event(producer, serve.topic("notification.request"), request, user));

  json items;
  ASSERT_TRUE(itest::wait_until([&] {
    items = serve.call("GET", "/notifications", {}, token).json()["items"];
    return items.size() == 1 && items[0]["channels"][1]["status"] != "pending";
  }, 60s)) << items.dump() << serve.log();
  ASSERT_TRUE(itest::wait_until([&] { return notifications_quiet(serve); }, 60s)) << "both copies consumed";
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

// What the web page's notifications panel reads: unread_count (all unread, whatever the
// limit), each row's event_id (the request's, which a WebSocket notification frame carries
// too), and POST /notifications/read-all, which touches only the caller's.
TEST(Notifications, UnreadCountEventIdAndReadAll) {
  itest::ServeProcess serve;
  auto [alice, alice_token] = serve.new_user("readall");
  auto [bob, bob_token] = serve.new_user("readall-other");
  kafka::Producer producer(itest::kafka_settings());
  auto in_app = [](const std::string& user, const std::string& title) {
    return json{{"event_id", events::new_event_id()}, {"user_id", user}, {"task_id", nullptr}, {"type", "info"},
                {"title", title}, {"message", "in-app only"}, {"channels", {"in_app"}}};
  };
  std::set<std::string> alice_events;
  for (int i = 0; i < 3; ++i) {
    auto r = in_app(alice, "for alice " + std::to_string(i));
    alice_events.insert(r["event_id"].get<std::string>());
    ASSERT_TRUE(itest::publish_event(producer, serve.topic("notification.request"), r, alice));
  }
  const auto bobs = in_app(bob, "for bob");
  ASSERT_TRUE(itest::publish_event(producer, serve.topic("notification.request"), bobs, bob));

  json list;
  ASSERT_TRUE(itest::wait_until([&] {
    list = serve.call("GET", "/notifications", {}, alice_token).json();
    return list["items"].size() == 3 && serve.call("GET", "/notifications", {}, bob_token).json()["items"].size() == 1;
  }, 60s)) << list.dump() << serve.log();
  EXPECT_EQ(list["unread_count"], 3) << list.dump();
  std::set<std::string> listed_events;
  for (const auto& n : list["items"]) listed_events.insert(n["event_id"].get<std::string>());
  EXPECT_EQ(listed_events, alice_events) << "each row carries the event_id of its request";
  auto limited = serve.call("GET", "/notifications?limit=1", {}, alice_token).json();
  EXPECT_EQ(limited["items"].size(), 1u);
  EXPECT_EQ(limited["unread_count"], 3) << "not limited by limit";

  const std::string first = list["items"][0]["id"];
  ASSERT_EQ(serve.call("POST", "/notifications/" + first + "/read", {}, alice_token).status, 200);
  const std::string first_read_at = serve.call("GET", "/notifications", {}, alice_token).json()["items"][0]["read_at"];
  EXPECT_EQ(serve.call("GET", "/notifications?unread=true", {}, alice_token).json()["unread_count"], 2);

  auto unauthenticated = serve.call("POST", "/notifications/read-all");
  EXPECT_EQ(unauthenticated.status, 401) << unauthenticated.body;
  EXPECT_EQ(serve.call("POST", "/notifications/read-all", {}, "not-a-token").status, 401);
  EXPECT_EQ(serve.call("GET", "/notifications").status, 401);

  // A body is not needed; one that is sent, even one that is not JSON, is ignored.
  auto marked = serve.call("POST", "/notifications/read-all", "{not json", alice_token);
  ASSERT_EQ(marked.status, 200) << marked.body;
  EXPECT_EQ(marked.json(), (json{{"marked", 2}}));
  list = serve.call("GET", "/notifications", {}, alice_token).json();
  EXPECT_EQ(list["unread_count"], 0);
  ASSERT_EQ(list["items"].size(), 3u);
  for (const auto& n : list["items"]) {
    EXPECT_EQ(n["read"], true) << n.dump();
    EXPECT_TRUE(events::is_rfc3339(n["read_at"].get<std::string>())) << n.dump();
    if (n["id"] == first) EXPECT_EQ(n["read_at"], first_read_at) << "one read before keeps its read_at";
  }
  auto unread = serve.call("GET", "/notifications?unread=true", {}, alice_token).json();
  EXPECT_TRUE(unread["items"].empty()) << unread.dump();
  EXPECT_EQ(unread["unread_count"], 0);

  auto again = serve.call("POST", "/notifications/read-all", {}, alice_token);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json(), (json{{"marked", 0}}));

  // Bob's is untouched.
  auto bob_list = serve.call("GET", "/notifications", {}, bob_token).json();
  EXPECT_EQ(bob_list["unread_count"], 1);
  ASSERT_EQ(bob_list["items"].size(), 1u);
  EXPECT_EQ(bob_list["items"][0]["read"], false);
  EXPECT_EQ(bob_list["items"][0]["event_id"], bobs["event_id"]);
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
  ASSERT_TRUE(itest::publish_event(producer, serve.topic("notification.request"), request, user));
  ASSERT_TRUE(itest::wait_until([&] { return mails_with(subject).size() == 1; }, 60s)) << serve.log();
  EXPECT_NE(mails_with(subject)[0].find("To: " + email), std::string::npos);
  ASSERT_TRUE(itest::wait_until([&] {
    auto items = serve.call("GET", "/notifications", {}, token).json()["items"];
    return items.size() == 1 && items[0]["channels"][1]["status"] == "sent";
  }, 30s));
  EXPECT_EQ(serve.stop(), 0);
}

namespace {

json email_request(const std::string& user, const std::string& subject, const std::string& to) {
  return json{{"event_id", events::new_event_id()}, {"user_id", user}, {"task_id", nullptr}, {"type", "deadline_reminder"},
              {"title", subject}, {"message", "Body of " + subject}, {"channels", {"in_app", "email"}}, {"email", to}};
}

json channel_of(const json& notification, const std::string& name) {
  for (const auto& c : notification["channels"])
    if (c["channel"] == name) return c;
  return json();
}

}  // namespace

TEST(Notifications, SmtpDownThirtySecondsThenBackSendsTheEmailOnceAndNothingStalls) {
  const auto smtp_port = itest::free_port();  // nothing listens there yet: connection refused
  auto serve = itest::ServeProcess(std::map<std::string, std::string>{
      {"SMTP_HOST", "127.0.0.1"}, {"SMTP_PORT", std::to_string(smtp_port)}, {"SMTP_FROM", "tasks@taskstream.test"},
      {"EMAIL_RETRY_INITIAL_MS", "1000"}, {"EMAIL_RETRY_MAX_MS", "4000"}, {"EMAIL_MAX_ATTEMPTS", "40"}});
  auto [user, token] = serve.new_user("outage");
  const std::string subject = "During the outage " + itest::unique_name("s");
  kafka::Producer producer(itest::kafka_settings());
  const auto down_since = std::chrono::steady_clock::now();
  ASSERT_TRUE(itest::publish_event(producer, serve.topic("notification.request"), email_request(user, subject, "outage@example.com"), user));

  // While the email waits: five more requests for the same user (so the same partition, right
  // behind it) and a task change for the audit consumer all go through at once.
  for (int i = 0; i < 5; ++i) {
    json r{{"event_id", events::new_event_id()}, {"user_id", user}, {"type", "info"}, {"title", "meanwhile " + std::to_string(i)},
           {"message", "in-app only"}, {"channels", {"in_app"}}};
    ASSERT_TRUE(itest::publish_event(producer, serve.topic("notification.request"), r, user));
  }
  auto created = serve.call("POST", "/tasks", json{{"title", "audited during the outage"}}.dump(), token);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string task_id = created.json()["id"];
  json items;
  ASSERT_TRUE(itest::wait_until([&] {
    items = serve.call("GET", "/notifications?limit=50", {}, token).json()["items"];
    return items.size() == 6 && serve.call("GET", "/tasks/" + task_id + "/history", {}, token).json()["items"].size() == 1;
  }, 15s)) << items.dump() << serve.log();
  EXPECT_LT(std::chrono::steady_clock::now() - down_since, 20s) << "the other requests waited for the email";
  // The first attempt fails (connection refused) and says so; until it has run, detail is
  // null (the rows above can be there before the dispatcher's first try).
  json email;
  EXPECT_TRUE(itest::wait_until([&] {
    const auto list = serve.call("GET", "/notifications?limit=50", {}, token).json();  // named: see below
    for (const auto& n : list["items"])
      if (n["title"] == subject) email = channel_of(n, "email");
    return email.is_object() && email["detail"].is_string();
  }, 15s)) << email.dump();
  EXPECT_EQ(email["status"], "pending") << email.dump();
  EXPECT_NE(email.value("detail", std::string()).find("retrying"), std::string::npos) << email.dump();

  std::this_thread::sleep_until(down_since + 30s);
  itest::PrivateSmtpServer smtp(smtp_port, (std::filesystem::temp_directory_path() / itest::unique_name("mail")).string());
  ASSERT_TRUE(itest::wait_until([&] {
    const auto list = serve.call("GET", "/notifications?limit=50", {}, token).json();  // named: a range-for over a temporary's member dangles
    for (const auto& n : list["items"])
      if (n["title"] == subject) return channel_of(n, "email")["status"] == "sent";
    return false;
  }, 30s)) << serve.log();
  // Quiescence, not a pause: every request consumed, and the email row is `sent` (the
  // dispatcher takes only pending rows), so no second copy can still be on its way.
  ASSERT_TRUE(itest::wait_until([&] { return notifications_quiet(serve); }, 60s));
  const auto mails = mails_with(subject, smtp.mail_dir());
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_NE(mails[0].find("To: outage@example.com"), std::string::npos) << mails[0];
  EXPECT_EQ(serve.stop(), 0);
}

TEST(Notifications, EmailOutOfAttemptsIsDeadLetteredAndTheRowSaysFailed) {
  auto serve = itest::ServeProcess(std::map<std::string, std::string>{
      {"SMTP_HOST", "127.0.0.1"}, {"SMTP_PORT", itest::shared_smtp_port()}, {"SMTP_FROM", "tasks@taskstream.test"},
      {"EMAIL_RETRY_INITIAL_MS", "100"}, {"EMAIL_RETRY_MAX_MS", "200"}, {"EMAIL_MAX_ATTEMPTS", "3"}});
  auto [user, token] = serve.new_user("tempfail");
  const std::string subject = "Never accepted " + itest::unique_name("s");
  const auto request = email_request(user, subject, "tempfail-always@example.com");  // the server answers 451
  kafka::Producer producer(itest::kafka_settings());
  ASSERT_TRUE(itest::publish_event(producer, serve.topic("notification.request"), request, user));
  json email;
  ASSERT_TRUE(itest::wait_until([&] {
    auto items = serve.call("GET", "/notifications", {}, token).json()["items"];
    if (items.size() != 1) return false;
    email = channel_of(items[0], "email");
    return email["status"] == "failed";
  }, 30s)) << email.dump() << serve.log();
  EXPECT_NE(email["detail"].get<std::string>().find("retries exhausted after 3 attempts"), std::string::npos) << email.dump();

  std::vector<std::map<std::string, std::string>> headers;
  std::string payload;
  std::atomic<bool> stop{false};
  kafka::tail(itest::kafka_settings(), serve.topic("notification.request") + ".dlq",
              {.from_beginning = true, .max_messages = 1, .idle_timeout = 20s},
              [&](const kafka::Message& m) {
                payload = std::string(m.payload());
                headers.emplace_back();
                for (const auto& [k, v] : m.headers()) headers.back()[std::string(k)] = std::string(v);
                return true;
              },
              stop);
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0]["dlq.reason"], "email_failed");
  EXPECT_EQ(headers[0]["dlq.error_class"], "retries_exhausted");
  EXPECT_EQ(headers[0]["dlq.attempts"], "3");
  EXPECT_EQ(headers[0]["dlq.source_topic"], serve.topic("notification.request"));
  EXPECT_EQ(headers[0]["dlq.source_offset"], "0");
  EXPECT_FALSE(headers[0]["dlq.first_failure"].empty());
  EXPECT_EQ(json::parse(payload)["event_id"], request["event_id"]);
  EXPECT_EQ(json::parse(payload)["title"], subject);
  EXPECT_EQ(serve.stop(), 0);
}

// An operator fixes the mail server and sends the dead-lettered request back
// (`taskstream dlq redrive`): the failed email goes out, once; sending the same request back
// again, or a copy that is not a redrive, sends nothing more.
TEST(Notifications, RedrivenFailedEmailIsSentOnceTheServerIsBack) {
  const auto smtp_port = itest::free_port();  // nothing listens there yet: connection refused
  auto serve = itest::ServeProcess(std::map<std::string, std::string>{
      {"SMTP_HOST", "127.0.0.1"}, {"SMTP_PORT", std::to_string(smtp_port)}, {"SMTP_FROM", "tasks@taskstream.test"},
      {"EMAIL_RETRY_INITIAL_MS", "100"}, {"EMAIL_RETRY_MAX_MS", "200"}, {"EMAIL_MAX_ATTEMPTS", "2"}});
  auto [user, token] = serve.new_user("redrive");
  const std::string subject = "Sent after a redrive " + itest::unique_name("s");
  const auto request = email_request(user, subject, "redriven@example.com");
  const auto topic = serve.topic("notification.request");
  const auto s = itest::kafka_settings();
  kafka::Producer producer(s);
  ASSERT_TRUE(itest::publish_event(producer, topic, request, user));
  auto email_status = [&] {
    const auto items = serve.call("GET", "/notifications", {}, token).json()["items"];
    return items.size() == 1 ? channel_of(items[0], "email") : json();
  };
  ASSERT_TRUE(itest::wait_until([&] { return email_status()["status"] == "failed"; }, 30s)) << email_status().dump() << serve.log();

  itest::PrivateSmtpServer smtp(smtp_port, (std::filesystem::temp_directory_path() / itest::unique_name("mail")).string());
  kafka::DeadLetterFilter all("");
  kafka::RedriveResult r;
  ASSERT_TRUE(itest::wait_until([&] {  // the email_failed dead letter may still be on its way
    r = kafka::redrive(s, topic, all, /*dry_run=*/false, {}, 2s);
    return r.sent > 0;
  }, 30s));
  EXPECT_EQ(r.sent, 1u);
  json email;
  ASSERT_TRUE(itest::wait_until([&] { return (email = email_status())["status"] == "sent"; }, 30s)) << email.dump() << serve.log();
  EXPECT_EQ(mails_with(subject, smtp.mail_dir()).size(), 1u);

  // A plain copy of the request, and the same dead letter sent back once more by hand (a
  // redrive remembers how far it got, so only a hand-made copy can do that): both change nothing.
  ASSERT_TRUE(itest::publish_event(producer, topic, request, user));
  ASSERT_TRUE(producer.send({topic, user, request.dump(), {{std::string(kafka::kRedrivenFromHeader), topic + ".dlq@0:0"}}, std::nullopt})
                  .get()
                  .ok());
  EXPECT_EQ(kafka::redrive(s, topic, all, false, {}, 2s).sent, 0u) << "nothing new in the DLQ";
  ASSERT_TRUE(itest::wait_until([&] { return notifications_quiet(serve); }, 60s)) << "the two copies consumed";
  EXPECT_EQ(email_status()["status"], "sent");
  const auto mails = mails_with(subject, smtp.mail_dir());
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_NE(mails[0].find("To: redriven@example.com"), std::string::npos) << mails[0];
  EXPECT_EQ(serve.stop(), 0);
}

// An operator retries a failed email from the console (POST /admin/email/{id}/retry) once the
// mail server is back: it goes out once; the same retry again is refused (404: a sent email is
// never reopened), and sending its dead letter back afterwards sends nothing more.
TEST(Notifications, OperatorRetriesAFailedEmailFromTheConsoleAndItIsSentOnce) {
  const auto smtp_port = itest::free_port();  // nothing listens there yet: connection refused
  auto serve = itest::ServeProcess(std::map<std::string, std::string>{
      {"SMTP_HOST", "127.0.0.1"}, {"SMTP_PORT", std::to_string(smtp_port)}, {"SMTP_FROM", "tasks@taskstream.test"},
      {"EMAIL_RETRY_INITIAL_MS", "100"}, {"EMAIL_RETRY_MAX_MS", "200"}, {"EMAIL_MAX_ATTEMPTS", "2"},
      {"ADMIN_EMAILS", "operator@example.com"}});
  json creds{{"email", "operator@example.com"}, {"password", "correct horse battery"}};
  ASSERT_EQ(serve.call("POST", "/auth/register", creds.dump()).status, 201);
  const std::string ops = serve.call("POST", "/auth/token", creds.dump()).json()["access_token"];
  auto [user, token] = serve.new_user("retry");
  const std::string subject = "Sent after a retry " + itest::unique_name("s");
  const auto request = email_request(user, subject, "retried@example.com");
  const auto topic = serve.topic("notification.request");
  kafka::Producer producer(itest::kafka_settings());
  ASSERT_TRUE(itest::publish_event(producer, topic, request, user));
  json queue;
  ASSERT_TRUE(itest::wait_until([&] {
    queue = serve.call("GET", "/admin/email", {}, ops).json();
    return queue["failed"] == 1;
  }, 30s)) << queue.dump() << serve.log();
  ASSERT_EQ(queue["items"].size(), 1u) << queue.dump();
  const json failed = queue["items"][0];
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_EQ(failed["email"], "retried@example.com") << failed.dump();
  const std::string id = failed["notification_id"];

  itest::PrivateSmtpServer smtp(smtp_port, (std::filesystem::temp_directory_path() / itest::unique_name("mail")).string());
  auto retry = serve.call("POST", "/admin/email/" + id + "/retry", {}, ops);
  ASSERT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(retry.json()["status"], "pending");
  EXPECT_EQ(retry.json()["action"]["action"], "email.retry");
  EXPECT_EQ(retry.json()["action"]["actor"], "operator@example.com");
  auto email_status = [&] {
    const auto items = serve.call("GET", "/notifications", {}, token).json()["items"];
    return items.size() == 1 ? channel_of(items[0], "email") : json();
  };
  json email;
  ASSERT_TRUE(itest::wait_until([&] { return (email = email_status())["status"] == "sent"; }, 30s)) << email.dump() << serve.log();
  ASSERT_EQ(mails_with(subject, smtp.mail_dir()).size(), 1u);
  queue = serve.call("GET", "/admin/email", {}, ops).json();
  EXPECT_EQ(queue["failed"], 0) << queue.dump();
  EXPECT_EQ(queue["pending"], 0) << queue.dump();

  auto again = serve.call("POST", "/admin/email/" + id + "/retry", {}, ops);
  EXPECT_EQ(again.status, 404) << again.body;
  EXPECT_EQ(serve.call("POST", "/admin/email/" + id + "/retry", {}, token).status, 403);
  // Its dead letter (retries were exhausted before) sent back now: the row says sent, nothing goes.
  kafka::DeadLetterFilter all("");
  kafka::RedriveResult r;
  ASSERT_TRUE(itest::wait_until([&] {
    r = kafka::redrive(itest::kafka_settings(), topic, all, /*dry_run=*/false, {}, 2s);
    return r.sent > 0;
  }, 30s));
  EXPECT_EQ(r.sent, 1u);
  // Quiescence: the notification group has committed past both requests, the first and the
  // redriven one (ends 2, lag 0 in a sample taken after the redrive), before counting mails.
  ASSERT_TRUE(itest::wait_until([&] {
    const auto groups = serve.call("GET", "/admin/groups", {}, ops).json();
    for (const auto& g : groups["groups"]) {
      if (g["group_id"] != serve.env().at("KAFKA_CONSUMER_GROUP_NOTIFICATION")) continue;
      std::int64_t ends = 0;
      for (const auto& p : g["partitions"])
        if (p["topic"] == topic && p["end"].is_number()) ends += p["end"].get<std::int64_t>();
      return ends == 2 && g["lag"] == 0;
    }
    return false;
  }, 60s)) << serve.call("GET", "/admin/groups", {}, ops).body;
  EXPECT_EQ(email_status()["status"], "sent");
  EXPECT_EQ(mails_with(subject, smtp.mail_dir()).size(), 1u);
  const auto actions = serve.call("GET", "/admin/actions", {}, ops).json()["items"];
  ASSERT_EQ(actions.size(), 1u) << actions.dump();
  EXPECT_EQ(actions[0]["target"], id);
  EXPECT_EQ(actions[0]["outcome"], "ok");
  EXPECT_EQ(serve.stop(), 0);
}
