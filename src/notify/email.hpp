#pragma once
// Email notifications: the message format (pure, unit-tested) and an SMTP sender over libcurl.
//
// The sender sits behind the EmailSender interface so logic that decides *what* to send can
// be tested with a fake, and so an SMS provider can follow the same shape. libcurl stays in
// email.cpp: this header does not include curl.h.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/settings.hpp"

namespace taskstream::notify {

/// One plain-text email to one recipient. Addresses are "user@domain" or
/// "Display Name <user@domain>" (the display name may be UTF-8).
struct Email {
  std::string from;        ///< empty: SmtpSender uses SMTP_FROM
  std::string to;
  std::string subject;     ///< UTF-8
  std::string body;        ///< UTF-8 text; LF, CR or CRLF line ends
  std::string message_id;  ///< without <>, e.g. "<event_id>@taskstream"; must hold one '@'.
                           ///< Derive it from the request so a retried send keeps the same id.
};

/// The RFC 5322 message for `email`, CRLF line ends, dated `date` (in UTC, "+0000").
/// Subject and non-ASCII display names are RFC 2047 encoded words when they are not plain
/// ASCII; long header lines are folded. The body is quoted-printable UTF-8 text, so the
/// message is 7-bit clean and every line is short on any SMTP server. Lines starting with
/// "." are NOT dot-stuffed here: libcurl does that for SMTP uploads, and doing it twice
/// would change the text.
/// Throws std::invalid_argument for a CR, LF or NUL in a header value (header injection),
/// an address that is not user@domain, a missing or malformed message id, or text that is
/// not valid UTF-8. Pure; thread-safe.
std::string format_message(const Email& email, std::chrono::system_clock::time_point date);

enum class SendOutcome {
  sent,               ///< the server accepted the message (250 after DATA)
  transient_failure,  ///< worth retrying later: no connection, timeout, 4xx reply
  permanent_failure,  ///< retrying will not help: 5xx reply (bad recipient, auth refused),
                      ///< a message that cannot be formatted, a TLS/config problem
};
std::string_view to_string(SendOutcome outcome);

struct SendResult {
  SendOutcome outcome;
  std::string detail;  ///< one line for logs and the notification record; never holds a password
};

/// Sends one email. Implementations say whether send() blocks and whether it is thread-safe.
class EmailSender {
 public:
  virtual ~EmailSender() = default;
  /// Reports every failure in the result; does not throw for delivery or input problems.
  virtual SendResult send(const Email& email) = 0;
};

/// SMTP over libcurl to SMTP_HOST:SMTP_PORT, with STARTTLS required when SMTP_STARTTLS, and
/// AUTH when SMTP_USERNAME is set. It does not look at EMAIL_NOTIFICATIONS_ENABLED: whether
/// to send at all is the caller's decision.
///
/// Lifecycle: build once from the settings (copied; no connection is made) and keep it.
/// Thread-safety: send() may be called from several threads at once; each call uses its own
/// connection.
/// Blocking: send() blocks for the whole SMTP dialogue, up to `total_timeout`; call it from a
/// worker thread, never from one that serves requests. A server that stops answering is given
/// up on after half of `total_timeout` without progress.
/// Note: a timeout after the message was handed over but before the final reply counts as
/// transient, so a retry may deliver a second copy with the same Message-ID.
class SmtpSender final : public EmailSender {
 public:
  explicit SmtpSender(const config::Settings& settings,
                      std::chrono::milliseconds connect_timeout = std::chrono::seconds(5),
                      std::chrono::milliseconds total_timeout = std::chrono::seconds(20));

  SendResult send(const Email& email) override;

 private:
  std::string host_;
  std::uint16_t port_;
  std::string username_;
  std::string password_;  // secret: kept out of every detail and log
  std::string default_from_;
  bool starttls_;
  std::chrono::milliseconds connect_timeout_;
  std::chrono::milliseconds total_timeout_;
};

}  // namespace taskstream::notify
