// format_message: the RFC 5322 text an email goes out as (headers, encodings, folding,
// header injection). Decodes what it produced, so encoding mistakes show as wrong text.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "notify/email.hpp"
#include "../support/mail.hpp"

using taskstream::notify::Email;
using taskstream::notify::format_message;
using namespace std::chrono;

namespace {

const system_clock::time_point kDate = sys_days{2024y / February / 29} + 13h + 4min + 5s + 678ms;

Email sample() {
  return Email{"Taskstream <taskstream@example.com>", "someone@example.org", "Task due soon", "Hello\nworld\n",
               "evt-1234@taskstream"};
}

using taskstream::test::base64_decode;
using taskstream::test::decode_words;
using taskstream::test::qp_decode;
const auto split_lines = taskstream::test::split_crlf_lines;
const auto parse = taskstream::test::parse_mail;


void expect_rejected(const Email& e, const std::string& fragment) {
  try {
    format_message(e, kDate);
    ADD_FAILURE() << "expected std::invalid_argument mentioning " << fragment;
  } catch (const std::invalid_argument& ex) {
    EXPECT_NE(std::string(ex.what()).find(fragment), std::string::npos) << ex.what();
  }
}

}  // namespace

TEST(EmailMessage, HasEveryHeaderWithCrlfLineEnds) {
  std::string msg = format_message(sample(), kDate);
  for (std::size_t i = 0; i < msg.size(); ++i) {
    if (msg[i] == '\n') {
      EXPECT_TRUE(i > 0 && msg[i - 1] == '\r') << "bare LF at " << i;
    }
    if (msg[i] == '\r') {
      EXPECT_TRUE(i + 1 < msg.size() && msg[i + 1] == '\n') << "bare CR at " << i;
    }
  }
  auto p = parse(msg);
  std::vector<std::string> names;
  for (const auto& h : p.headers) names.push_back(h.first);
  EXPECT_EQ(names, (std::vector<std::string>{"Date", "From", "To", "Subject", "Message-ID", "MIME-Version",
                                             "Content-Type", "Content-Transfer-Encoding"}));
  EXPECT_EQ(p.by_name["From"], "Taskstream <taskstream@example.com>");
  EXPECT_EQ(p.by_name["To"], "someone@example.org");
  EXPECT_EQ(p.by_name["Subject"], "Task due soon");
  EXPECT_EQ(p.by_name["Message-ID"], "<evt-1234@taskstream>");
  EXPECT_EQ(p.by_name["MIME-Version"], "1.0");
  EXPECT_EQ(p.by_name["Content-Type"], "text/plain; charset=UTF-8");
  EXPECT_EQ(p.by_name["Content-Transfer-Encoding"], "quoted-printable");
  EXPECT_EQ(p.body, "Hello\r\nworld\r\n");
}

TEST(EmailMessage, DateIsRfc5322InUtc) {
  EXPECT_EQ(parse(format_message(sample(), kDate)).by_name["Date"], "Thu, 29 Feb 2024 13:04:05 +0000");
  auto early = sys_days{2025y / July / 1} + 0h + 0min + 9s;
  EXPECT_EQ(parse(format_message(sample(), early)).by_name["Date"], "Tue, 01 Jul 2025 00:00:09 +0000");
  auto eve = sys_days{1999y / December / 31} + 23h + 59min + 59s + 999ms;
  EXPECT_EQ(parse(format_message(sample(), eve)).by_name["Date"], "Fri, 31 Dec 1999 23:59:59 +0000");
}

TEST(EmailMessage, Utf8SubjectIsEncodedWords) {
  Email e = sample();
  e.subject = "Erinnerung: Aufgabe fällig – Grüße 🎉";
  std::string msg = format_message(e, kDate);
  std::string head = msg.substr(0, msg.find("\r\n\r\n"));
  for (char c : head) EXPECT_LT(static_cast<unsigned char>(c), 0x80u) << "raw 8-bit byte in the headers";
  auto subject = parse(msg).by_name["Subject"];
  EXPECT_EQ(subject.rfind("=?UTF-8?B?", 0), 0u) << subject;
  EXPECT_EQ(decode_words(subject), e.subject);
}

TEST(EmailMessage, LongUtf8SubjectIsFoldedIntoWholeCharacters) {
  Email e = sample();
  for (int i = 0; i < 100; ++i) e.subject += "ä€";  // 2- and 3-byte characters
  std::string msg = format_message(e, kDate);
  auto lines = split_lines(msg.substr(0, msg.find("\r\n\r\n")));
  int subject_lines = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_LE(lines[i].size(), 76u) << lines[i];
    if (lines[i].starts_with("Subject:") || (subject_lines > 0 && lines[i][0] == ' ')) ++subject_lines;
  }
  EXPECT_GT(subject_lines, 5);
  auto subject = parse(msg).by_name["Subject"];
  EXPECT_EQ(decode_words(subject), e.subject);
  // Each word on its own is whole characters: "ä€" pairs split only between characters.
  for (std::size_t pos = 0; (pos = subject.find("=?UTF-8?B?", pos)) != std::string::npos; pos += 10) {
    auto end = subject.find("?=", pos + 10);
    std::string text = base64_decode(subject.substr(pos + 10, end - pos - 10));
    ASSERT_FALSE(text.empty());
    EXPECT_NE(static_cast<unsigned char>(text.front()) & 0xC0, 0x80) << "word starts mid-character";
  }
}

TEST(EmailMessage, LongAsciiSubjectIsFoldedAtSpaces) {
  Email e = sample();
  for (int i = 0; i < 30; ++i) e.subject += "word" + std::to_string(i) + (i % 3 ? " " : "  ");
  e.subject += "end";
  std::string msg = format_message(e, kDate);
  for (const auto& line : split_lines(msg.substr(0, msg.find("\r\n\r\n")))) {
    EXPECT_LE(line.size(), 78u) << line;
    EXPECT_NE(line.find_first_not_of(" \t"), std::string::npos) << "whitespace-only line";
  }
  EXPECT_EQ(parse(msg).by_name["Subject"], e.subject);  // unfolding gives it back exactly
}

TEST(EmailMessage, AsciiThatLooksEncodedIsEncoded) {
  Email e = sample();
  e.subject = "literal =?UTF-8?B?eA==?= text";
  auto subject = parse(format_message(e, kDate)).by_name["Subject"];
  EXPECT_EQ(decode_words(subject), e.subject);
}

TEST(EmailMessage, DisplayNamesAreQuotedOrEncoded) {
  Email e = sample();
  e.from = "Jörg Müller <joerg@example.com>";
  e.to = "\"Smith, J.\" <j.smith@example.org>";
  auto p = parse(format_message(e, kDate));
  auto from = p.by_name["From"];
  EXPECT_TRUE(from.ends_with(" <joerg@example.com>")) << from;
  EXPECT_EQ(decode_words(from), "Jörg Müller");
  EXPECT_EQ(p.by_name["To"], "\"Smith, J.\" <j.smith@example.org>");
  e.to = "Plain Name <x@y.z>";
  EXPECT_EQ(parse(format_message(e, kDate)).by_name["To"], "Plain Name <x@y.z>");
}

TEST(EmailMessage, HeaderInjectionIsRejected) {
  Email e = sample();
  e.subject = "hi\r\nBcc: victim@example.com";
  expect_rejected(e, "Subject");
  e = sample();
  e.subject = "hi\nBcc: victim@example.com";
  expect_rejected(e, "Subject");
  e = sample();
  e.subject = "hi\rthere";
  expect_rejected(e, "Subject");
  e = sample();
  e.to = "someone@example.org\r\nBcc: victim@example.com";
  expect_rejected(e, "To");
  e = sample();
  e.from = "Evil\n <evil@example.com>";
  expect_rejected(e, "From");
  e = sample();
  e.message_id = "a@b\r\nBcc: victim@example.com";
  expect_rejected(e, "Message-ID");
  e = sample();
  e.subject = std::string("nul\0byte", 8);
  expect_rejected(e, "Subject");
}

TEST(EmailMessage, BadAddressesAndIdsAreRejected) {
  for (std::string bad : {"", "nobody", "@example.com", "user@", "a@b@c", "two words@example.com", "<>",
                          "Name <not-an-address>", "x@y.z>", "x,y@z"}) {
    Email e = sample();
    e.to = bad;
    expect_rejected(e, "To");
  }
  for (std::string bad : {"", "no-at-sign", "<a@b>", "a b@c", "a@b@c", "@b", "ä@b"}) {
    Email e = sample();
    e.message_id = bad;
    expect_rejected(e, "Message-ID");
  }
  Email e = sample();
  e.subject = "bad \xC3\x28 utf8";
  expect_rejected(e, "UTF-8");
  e = sample();
  e.body = "overlong \xC0\xAF";
  expect_rejected(e, "UTF-8");
}

TEST(EmailMessage, BodyIsQuotedPrintableAndNotDotStuffed) {
  Email e = sample();
  std::string long_line(200, 'x');
  e.body = "Grüße, a=b\r\n.hidden line\n.\nold mac\rtrailing space \nlast\ttab\t\n" + long_line + "\n==========";
  std::string body = parse(format_message(e, kDate)).body;
  for (const auto& line : split_lines(body)) {
    EXPECT_LE(line.size(), 76u) << line;
    for (char c : line) EXPECT_LT(static_cast<unsigned char>(c), 0x80u);
    EXPECT_FALSE(line.ends_with(" ") || line.ends_with("\t")) << "trailing whitespace: " << line;
  }
  EXPECT_NE(body.find("Gr=C3=BC=C3=9Fe, a=3Db\r\n"), std::string::npos) << body;
  // libcurl dot-stuffs SMTP uploads itself; a second "." here would reach the reader.
  EXPECT_NE(body.find("\r\n.hidden line\r\n.\r\n"), std::string::npos) << body;
  EXPECT_EQ(qp_decode(body), "Grüße, a=b\r\n.hidden line\r\n.\r\nold mac\r\ntrailing space \r\nlast\ttab\t\r\n" +
                                 long_line + "\r\n==========\r\n");
}

TEST(EmailMessage, EmptyBodyAndSubjectAreAllowed) {
  Email e = sample();
  e.subject.clear();
  e.body.clear();
  std::string msg = format_message(e, kDate);
  EXPECT_TRUE(msg.ends_with("Content-Transfer-Encoding: quoted-printable\r\n\r\n")) << msg;
  EXPECT_EQ(parse(msg).by_name["Subject"], "");
}
