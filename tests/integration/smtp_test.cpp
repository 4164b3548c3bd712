// SmtpSender against a real SMTP server: the one `scripts/smtp start` runs (aiosmtpd), which
// keeps every message as an .eml file. Port: env SMTP_TEST_PORT (default 2525); mail dir:
// env TASKSTREAM_SMTP_MAILDIR (default <source>/var/smtp/mail). A missing server fails the
// tests, never skips them. Its test hooks (reject*/tempfail* recipients, AUTH user
// SMTP_TEST_USER / SMTP_TEST_PASSWORD) are described in scripts/smtp_server.py.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "notify/email.hpp"
#include "test_env.hpp"
#include "../support/mail.hpp"

namespace fs = std::filesystem;
namespace config = taskstream::config;
namespace itest = taskstream::itest;
using taskstream::notify::Email;
using taskstream::notify::SendOutcome;
using taskstream::notify::SmtpSender;
using namespace std::chrono_literals;

namespace {

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

int smtp_port() { return std::stoi(env_or("SMTP_TEST_PORT", "2525")); }
fs::path mail_dir() { return env_or("TASKSTREAM_SMTP_MAILDIR", TASKSTREAM_SOURCE_DIR "/var/smtp/mail"); }

bool port_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A loopback port nothing listens on: bound by us for a moment, then released.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Every kept message (finished .eml files only) that contains `needle`.
std::vector<std::string> messages_containing(const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(mail_dir())) {
    const auto name = entry.path().filename().string();
    if (name.starts_with(".") || entry.path().extension() != ".eml") continue;
    std::string text = read_file(entry.path());
    if (text.find(needle) != std::string::npos) found.push_back(std::move(text));
  }
  return found;
}

/// Waits for the first message containing `needle`, then checks no second one arrives.
std::vector<std::string> wait_for_messages(const std::string& needle) {
  itest::wait_until([&] { return !messages_containing(needle).empty(); }, 10s);
  std::this_thread::sleep_for(300ms);
  return messages_containing(needle);
}

using taskstream::test::decode_words;
using taskstream::test::qp_decode;
const auto parse = taskstream::test::parse_mail;


class Smtp : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(port_accepts(smtp_port()))
        << "no SMTP server at 127.0.0.1:" << smtp_port()
        << ": start it with `scripts/smtp start` (SMTP_TEST_PORT selects the port)";
    ASSERT_TRUE(fs::is_directory(mail_dir()))
        << "mail dir " << mail_dir() << " missing: is the server on this port the one of scripts/smtp? "
        << "(TASKSTREAM_SMTP_MAILDIR selects the dir)";
  }

  static config::Settings settings(config::EnvMap extra = {}) {
    config::EnvMap env{{"SMTP_HOST", "127.0.0.1"},
                       {"SMTP_PORT", std::to_string(smtp_port())},
                       {"SMTP_FROM", "taskstream-tests@example.com"}};
    for (auto& [k, v] : extra) env[k] = v;
    return config::Settings::load(env);
  }

  static Email email(const std::string& tag) {
    return Email{"Taskstream Tests <taskstream-tests@example.com>", "Recipient <recipient@example.org>",
                 "taskstream smtp test " + tag, "Hello from the integration test.\n", tag + "@taskstream.test"};
  }
};

}  // namespace

TEST_F(Smtp, DeliversOneMessageWithHeadersAndBody) {
  const std::string tag = itest::unique_name("mail");
  Email e = email(tag);
  // Lines starting with "." check that the dots libcurl stuffs are the only ones (the server
  // removes exactly those); the rest check the quoted-printable round trip.
  e.body = "Your task is due.\n.starts with a dot\n.\n..two dots\nGrüße – 🎉, a=b, trailing space \n" +
           std::string(150, 'x') + "\n";
  auto result = SmtpSender(settings()).send(e);
  ASSERT_EQ(result.outcome, SendOutcome::sent) << result.detail;
  EXPECT_NE(result.detail.find("250"), std::string::npos) << result.detail;

  auto found = wait_for_messages(e.subject);
  ASSERT_EQ(found.size(), 1u) << "expected exactly one kept message with subject '" << e.subject << "' in "
                              << mail_dir();
  auto p = parse(found[0]);
  EXPECT_EQ(p.by_name["X-Envelope-From"], "<taskstream-tests@example.com>");
  EXPECT_EQ(p.by_name["X-Envelope-To"], "<recipient@example.org>");
  EXPECT_EQ(p.by_name["From"], "Taskstream Tests <taskstream-tests@example.com>");
  EXPECT_EQ(p.by_name["To"], "Recipient <recipient@example.org>");
  EXPECT_EQ(p.by_name["Subject"], e.subject);
  EXPECT_EQ(p.by_name["Message-ID"], "<" + e.message_id + ">");
  EXPECT_TRUE(p.by_name["Date"].ends_with(" +0000")) << p.by_name["Date"];
  EXPECT_EQ(p.by_name["Content-Type"], "text/plain; charset=UTF-8");
  EXPECT_EQ(qp_decode(p.body), "Your task is due.\r\n.starts with a dot\r\n.\r\n..two dots\r\nGrüße – 🎉, a=b, "
                               "trailing space \r\n" +
                                   std::string(150, 'x') + "\r\n");
}

TEST_F(Smtp, Utf8SubjectAndDefaultFromArriveIntact) {
  const std::string tag = itest::unique_name("utf8");
  Email e = email(tag);
  e.from.clear();  // SMTP_FROM then
  e.subject = "Erinnerung: „Steuererklärung“ ist fällig " + tag;
  auto result = SmtpSender(settings()).send(e);
  ASSERT_EQ(result.outcome, SendOutcome::sent) << result.detail;

  auto found = wait_for_messages("<" + e.message_id + ">");
  ASSERT_EQ(found.size(), 1u);
  auto p = parse(found[0]);
  EXPECT_EQ(p.by_name["X-Envelope-From"], "<taskstream-tests@example.com>");
  EXPECT_EQ(p.by_name["From"], "taskstream-tests@example.com");
  EXPECT_EQ(decode_words(p.by_name["Subject"]), e.subject);
}

TEST_F(Smtp, NothingListeningIsATransientFailureAndQuick) {
  const int port = free_port();
  auto s = settings({{"SMTP_PORT", std::to_string(port)},
                     {"SMTP_USERNAME", "taskstream"},
                     {"SMTP_PASSWORD", "pw-that-must-not-leak"}});
  auto start = std::chrono::steady_clock::now();
  auto result = SmtpSender(s, 2s, 5s).send(email(itest::unique_name("refused")));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.outcome, SendOutcome::transient_failure) << result.detail;
  EXPECT_LT(took, 2s);
  EXPECT_NE(result.detail.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << result.detail;
  EXPECT_EQ(result.detail.find("pw-that-must-not-leak"), std::string::npos) << result.detail;
}

TEST_F(Smtp, RejectedRecipientIsAPermanentFailure) {
  Email e = email(itest::unique_name("reject"));
  e.to = "reject-" + e.message_id.substr(0, e.message_id.find('@')) + "@example.org";
  auto result = SmtpSender(settings()).send(e);
  EXPECT_EQ(result.outcome, SendOutcome::permanent_failure) << result.detail;
  EXPECT_NE(result.detail.find("550"), std::string::npos) << result.detail;
  EXPECT_TRUE(messages_containing(e.message_id).empty());
}

TEST_F(Smtp, TemporarilyRefusedRecipientIsATransientFailure) {
  Email e = email(itest::unique_name("tempfail"));
  e.to = "tempfail@example.org";
  auto result = SmtpSender(settings()).send(e);
  EXPECT_EQ(result.outcome, SendOutcome::transient_failure) << result.detail;
  EXPECT_NE(result.detail.find("451"), std::string::npos) << result.detail;
  EXPECT_TRUE(messages_containing(e.message_id).empty());
}

TEST_F(Smtp, AuthenticatesAndAWrongPasswordIsPermanentAndNotShown) {
  const std::string user = env_or("SMTP_TEST_USER", "taskstream");
  const std::string good = env_or("SMTP_TEST_PASSWORD", "taskstream-smtp");
  Email ok = email(itest::unique_name("auth"));
  auto sent = SmtpSender(settings({{"SMTP_USERNAME", user}, {"SMTP_PASSWORD", good}})).send(ok);
  EXPECT_EQ(sent.outcome, SendOutcome::sent) << sent.detail;
  EXPECT_EQ(wait_for_messages(ok.subject).size(), 1u);

  const std::string bad = "wrong-" + itest::unique_name("pw");
  Email refused = email(itest::unique_name("badauth"));
  auto result = SmtpSender(settings({{"SMTP_USERNAME", user}, {"SMTP_PASSWORD", bad}})).send(refused);
  EXPECT_EQ(result.outcome, SendOutcome::permanent_failure) << result.detail;
  EXPECT_NE(result.detail.find("535"), std::string::npos) << result.detail;
  EXPECT_EQ(result.detail.find(bad), std::string::npos) << result.detail;
  EXPECT_TRUE(messages_containing(refused.message_id).empty());
}

TEST_F(Smtp, InvalidMessageIsAPermanentFailureWithoutSending) {
  Email e = email(itest::unique_name("invalid"));
  e.subject += "\r\nBcc: victim@example.com";
  auto result = SmtpSender(settings()).send(e);
  EXPECT_EQ(result.outcome, SendOutcome::permanent_failure) << result.detail;
  EXPECT_NE(result.detail.find("Subject"), std::string::npos) << result.detail;
  EXPECT_TRUE(messages_containing(e.message_id).empty());
}
