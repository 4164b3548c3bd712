#pragma once
// Reading an email as our SMTP sender writes it (src/notify/email.cpp; RFC 5322 with RFC 2047
// encoded words and quoted-printable bodies): shared by the unit tests of the message format
// and the integration tests that read what the SMTP server received.

#include <gtest/gtest.h>

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace taskstream::test {

struct MailMessage {
  std::vector<std::pair<std::string, std::string>> headers;  ///< unfolded, in order
  std::map<std::string, std::string> by_name;                ///< the first of each name
  std::string body;                                          ///< raw, still encoded
};

inline std::vector<std::string> split_crlf_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  for (std::size_t end; (end = text.find("\r\n", pos)) != std::string::npos; pos = end + 2)
    lines.push_back(text.substr(pos, end - pos));
  if (pos < text.size()) lines.push_back(text.substr(pos));
  return lines;
}

/// Headers and body of `msg`; a message without CRLF CRLF after its headers fails the test.
inline MailMessage parse_mail(const std::string& msg) {
  MailMessage p;
  auto sep = msg.find("\r\n\r\n");
  EXPECT_NE(sep, std::string::npos) << "no CRLF CRLF between headers and body";
  if (sep == std::string::npos) return p;
  for (const auto& line : split_crlf_lines(msg.substr(0, sep + 2))) {
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      if (!p.headers.empty()) p.headers.back().second += line;  // unfolding: remove the CRLF only
      continue;
    }
    auto colon = line.find(':');
    p.headers.emplace_back(line.substr(0, colon), colon + 2 <= line.size() ? line.substr(colon + 2) : std::string());
  }
  for (const auto& [k, v] : p.headers) p.by_name.try_emplace(k, v);
  p.body = msg.substr(sep + 4);
  return p;
}

inline std::string base64_decode(const std::string& in) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    buffer = (buffer << 6) | static_cast<unsigned>(kAlphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

/// RFC 2047: the decoded text of a header made only of B encoded words (whitespace between
/// adjacent encoded words is dropped). Fails the test on an unterminated or over-long word.
inline std::string decode_words(const std::string& value) {
  std::string out;
  std::size_t pos = 0;
  while ((pos = value.find("=?UTF-8?B?", pos)) != std::string::npos) {
    auto end = value.find("?=", pos + 10);
    EXPECT_NE(end, std::string::npos) << value;
    if (end == std::string::npos) break;
    EXPECT_LE(end + 2 - pos, 75u) << "encoded word too long";
    out += base64_decode(value.substr(pos + 10, end - pos - 10));
    pos = end + 2;
  }
  return out;
}

/// A quoted-printable body decoded (soft line breaks removed).
inline std::string qp_decode(const std::string& body) {
  std::string out;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '=') {
      out += body[i];
    } else if (body.compare(i + 1, 2, "\r\n") == 0) {
      i += 2;  // soft line break
    } else {
      out += static_cast<char>(std::stoi(body.substr(i + 1, 2), nullptr, 16));
      i += 2;
    }
  }
  return out;
}

}  // namespace taskstream::test
