#include "notify/email.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace taskstream::notify {

namespace {

// RFC 5322 2.1.1: lines SHOULD stay within 78 characters and MUST stay within 998.
constexpr std::size_t kFoldAt = 78;
constexpr std::size_t kMaxLine = 998;
// RFC 2047 2: an encoded word is at most 75 characters, and a line holding one at most 76.
constexpr std::size_t kMaxEncodedWord = 75;
constexpr std::size_t kMaxEncodedLine = 76;
// RFC 2045 6.7: quoted-printable lines are at most 76 characters, a soft break "=" included.
constexpr std::size_t kQpLine = 76;

std::string_view trim(std::string_view s) {
  const auto ws = " \t";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// The one defence against header injection: a CR or LF would end the header early and let
// the value add headers (Bcc:) or a body of its own.
void check_header_value(std::string_view field, std::string_view value) {
  for (char c : value) {
    if (c == '\r' || c == '\n') throw std::invalid_argument(fmt::format("{}: line break in a header value", field));
    if (c == '\0') throw std::invalid_argument(fmt::format("{}: NUL byte in a header value", field));
  }
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      len = 2;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
    } else {
      return false;
    }
    cp = c & (0x7F >> len);  // the lead byte's payload bits
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past Unicode are not UTF-8 either.
    static constexpr std::array<std::uint32_t, 5> kMin{0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

void check_utf8(std::string_view field, std::string_view s) {
  if (!valid_utf8(s)) throw std::invalid_argument(fmt::format("{}: not valid UTF-8", field));
}

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 0x20 && c <= 0x7E) || c == '\t'; });
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// RFC 2047 "B" encoded words separated by spaces (the folding points). Chunks end on UTF-8
// character boundaries, because a decoder may decode each word on its own. The first word
// is shorter so that it fits on the header's first line behind "Name: ".
std::string encoded_words(std::string_view text, std::size_t header_name_size) {
  constexpr std::size_t kOverhead = std::string_view("=?UTF-8?B?").size() + 2;  // + "?="
  auto bytes_for = [](std::size_t word_len) { return (word_len - kOverhead) / 4 * 3; };
  std::size_t budget = bytes_for(std::min(kMaxEncodedWord, kMaxEncodedLine - (header_name_size + 2)));
  std::string out;
  while (!text.empty()) {
    std::size_t n = std::min(budget, text.size());
    while (n < text.size() && n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    if (!out.empty()) out += ' ';
    out += "=?UTF-8?B?" + base64(text.substr(0, n)) + "?=";
    text.remove_prefix(n);
    budget = bytes_for(kMaxEncodedWord);
  }
  return out;
}

// "Name: value" folded (RFC 5322 2.2.3) by putting CRLF before whitespace, so unfolding gives
// back the value exactly. Breaks only where a line gets a non-blank character after it: a
// line of nothing but whitespace is not allowed.
std::string fold_header(std::string_view name, std::string_view value) {
  std::string line = fmt::format("{}: {}", name, value);
  const std::size_t first_allowed = name.size() + 2;  // not before the value starts
  const std::size_t last_text = line.find_last_not_of(" \t");
  auto breakable = [&](std::size_t i) {
    return i > first_allowed && i < last_text && (line[i] == ' ' || line[i] == '\t') && line[i - 1] != ' ' &&
           line[i - 1] != '\t';
  };
  std::string out;
  std::size_t start = 0;
  while (line.size() - start > kFoldAt) {
    // The last break that keeps this line within kFoldAt, else the first one after it.
    std::size_t cut = std::string::npos;
    for (std::size_t i = start + 1; i < line.size(); ++i) {
      if (!breakable(i)) continue;
      if (i - start <= kFoldAt || cut == std::string::npos) cut = i;
      if (i - start > kFoldAt) break;
    }
    if (cut == std::string::npos) break;
    out.append(line, start, cut - start).append("\r\n");
    start = cut;
  }
  out.append(line, start).append("\r\n");
  for (std::size_t pos = 0, end; pos < out.size(); pos = end + 2) {
    end = out.find("\r\n", pos);
    if (end - pos > kMaxLine) throw std::invalid_argument(fmt::format("{}: header line too long to fold", name));
  }
  return out;
}

// An unstructured value (Subject): verbatim when it is plain ASCII that cannot be mistaken for
// encoded words and can be folded within the hard line limit; otherwise encoded words.
std::string unstructured_value(std::string_view name, std::string_view value) {
  bool plain = printable_ascii(value) && value.find("=?") == std::string_view::npos;
  for (std::size_t pos = 0; plain && pos < value.size();) {
    std::size_t end = std::min(value.find_first_of(" \t", pos), value.size());
    plain = end - pos <= kMaxLine - name.size() - 4;
    pos = end + 1;
  }
  return plain ? std::string(value) : encoded_words(value, name.size());
}

bool is_atext(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

struct Mailbox {
  std::string display;  // decoded text, may be empty
  std::string address;  // user@domain
};

// Accepts "user@domain" and "Display Name <user@domain>" (display name optionally quoted).
// Quoted local parts, groups and address lists are not supported: one plain mailbox only.
Mailbox parse_mailbox(std::string_view field, std::string_view raw) {
  check_header_value(field, raw);
  std::string_view value = trim(raw);
  Mailbox box;
  std::string_view address = value;
  if (!value.empty() && value.back() == '>') {
    auto lt = value.rfind('<');
    if (lt == std::string_view::npos) throw std::invalid_argument(fmt::format("{}: '>' without '<'", field));
    address = value.substr(lt + 1, value.size() - lt - 2);
    std::string_view display = trim(value.substr(0, lt));
    if (display.size() >= 2 && display.front() == '"' && display.back() == '"') {
      display = display.substr(1, display.size() - 2);
      for (std::size_t i = 0; i < display.size(); ++i) {
        if (display[i] == '\\' && i + 1 < display.size()) ++i;
        box.display += display[i];
      }
    } else {
      box.display = display;
    }
    check_utf8(field, box.display);
  }
  auto at = address.find('@');
  bool ok = !address.empty() && address.size() <= 254 && at != 0 && at != std::string_view::npos &&
            at + 1 < address.size() && address.find('@', at + 1) == std::string_view::npos &&
            std::all_of(address.begin(), address.end(), [](char c) {
              return c > 0x20 && c < 0x7F && std::string_view("<>()[]\\,;:\"").find(c) == std::string_view::npos;
            });
  if (!ok) throw std::invalid_argument(fmt::format("{}: '{}' is not an address of the form user@domain", field, address));
  box.address = address;
  return box;
}

std::string render_mailbox(std::string_view field, const Mailbox& box) {
  if (box.display.empty()) return box.address;
  std::string phrase;
  if (!printable_ascii(box.display) || box.display.find('\t') != std::string::npos) {
    phrase = encoded_words(box.display, field.size());
  } else if (std::all_of(box.display.begin(), box.display.end(), [](char c) { return c == ' ' || is_atext(c); }) &&
             box.display.find("=?") == std::string::npos) {
    phrase = box.display;
  } else {
    phrase = "\"";
    for (char c : box.display) {
      if (c == '"' || c == '\\') phrase += '\\';
      phrase += c;
    }
    phrase += '"';
  }
  return phrase + " <" + box.address + ">";
}

void check_message_id(std::string_view id) {
  auto at = id.find('@');
  bool ok = !id.empty() && id.size() <= 250 && at != 0 && at != std::string_view::npos && at + 1 < id.size() &&
            id.find('@', at + 1) == std::string_view::npos &&
            std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7F && c != '<' && c != '>'; });
  if (!ok) {
    check_header_value("Message-ID", id);
    throw std::invalid_argument("Message-ID: must be left@right without <>, spaces or non-ASCII");
  }
}

// RFC 5322 3.3 date-time, always in UTC; names are fixed English, never the locale's.
std::string format_date(std::chrono::system_clock::time_point tp) {
  using namespace std::chrono;
  static constexpr std::array<std::string_view, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto secs = floor<seconds>(tp);
  auto day = floor<days>(secs);
  year_month_day ymd{day};
  hh_mm_ss hms{secs - day};
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000", kDays[weekday{day}.c_encoding()],
                     static_cast<unsigned>(ymd.day()), kMonths[static_cast<unsigned>(ymd.month()) - 1],
                     static_cast<int>(ymd.year()), hms.hours().count(), hms.minutes().count(),
                     hms.seconds().count());
}

// Quoted-printable (RFC 2045 6.7) with CRLF hard line breaks; any input line end counts.
std::string quoted_printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  std::size_t column = 0;
  auto put = [&](std::string_view token) {
    if (column + token.size() > kQpLine - 1) {  // keep room for the soft break's "="
      out += "=\r\n";
      column = 0;
    }
    out += token;
    column += token.size();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += "\r\n";
      column = 0;
      continue;
    }
    bool line_end = i + 1 == text.size() || text[i + 1] == '\r' || text[i + 1] == '\n';
    auto u = static_cast<unsigned char>(c);
    // Whitespace at a line end would be stripped in transit, so it is encoded there.
    bool literal = (u >= 33 && u <= 126 && c != '=') || ((c == ' ' || c == '\t') && !line_end);
    if (literal) {
      put(std::string_view(&c, 1));
    } else {
      const char enc[3] = {'=', kHex[u >> 4], kHex[u & 15]};
      put(std::string_view(enc, 3));
    }
  }
  if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
  return out;
}

}  // namespace

std::string format_message(const Email& email, std::chrono::system_clock::time_point date) {
  Mailbox from = parse_mailbox("From", email.from);
  Mailbox to = parse_mailbox("To", email.to);
  check_header_value("Subject", email.subject);
  check_utf8("Subject", email.subject);
  check_message_id(email.message_id);
  check_utf8("body", email.body);

  std::string msg;
  msg += "Date: " + format_date(date) + "\r\n";
  msg += fold_header("From", render_mailbox("From", from));
  msg += fold_header("To", render_mailbox("To", to));
  msg += fold_header("Subject", unstructured_value("Subject", email.subject));
  msg += "Message-ID: <" + email.message_id + ">\r\n";
  msg += "MIME-Version: 1.0\r\n";
  msg += "Content-Type: text/plain; charset=UTF-8\r\n";
  msg += "Content-Transfer-Encoding: quoted-printable\r\n";
  msg += "\r\n";
  msg += quoted_printable(email.body);
  return msg;
}

std::string_view to_string(SendOutcome outcome) {
  switch (outcome) {
    case SendOutcome::sent: return "sent";
    case SendOutcome::transient_failure: return "transient_failure";
    case SendOutcome::permanent_failure: return "permanent_failure";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------
// SmtpSender
// ---------------------------------------------------------------------------------------

namespace {

// curl_global_init is not thread-safe and must run once before any easy handle exists.
CURLcode global_init() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return rc;
}

struct Upload {
  std::string_view data;
  std::size_t offset = 0;
};

std::size_t read_upload(char* buffer, std::size_t size, std::size_t nitems, void* userp) {
  auto* up = static_cast<Upload*>(userp);
  std::size_t n = std::min(size * nitems, up->data.size() - up->offset);
  std::memcpy(buffer, up->data.data() + up->offset, n);
  up->offset += n;
  return n;
}

// libcurl hands every SMTP reply line to the header callback. The last failure reply is what
// explains a failed send (a later "221 Bye" to QUIT would not).
struct Replies {
  std::string last;
  std::string last_failure;
};

std::size_t on_reply(char* buffer, std::size_t size, std::size_t nitems, void* userp) {
  auto* r = static_cast<Replies*>(userp);
  std::string_view line(buffer, size * nitems);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (!line.empty()) {
    r->last = line.substr(0, 300);
    if (line.front() == '4' || line.front() == '5') r->last_failure = r->last;
  }
  return size * nitems;
}

long reply_code(std::string_view reply) {
  if (reply.size() < 3 || !std::all_of(reply.begin(), reply.begin() + 3, [](char c) { return c >= '0' && c <= '9'; }))
    return 0;
  return (reply[0] - '0') * 100 + (reply[1] - '0') * 10 + (reply[2] - '0');
}

// The server's word decides when it gave one (RFC 5321 4.2.1: 4yz transient, 5yz permanent).
// Without one, only errors that a retry cannot fix (configuration, TLS trust, refused login)
// are permanent; network trouble and timeouts are transient.
SendOutcome classify(CURLcode rc, long reply) {
  if (reply >= 500 && reply < 600) return SendOutcome::permanent_failure;
  if (reply >= 400 && reply < 500) return SendOutcome::transient_failure;
  switch (rc) {
    case CURLE_LOGIN_DENIED:
    case CURLE_USE_SSL_FAILED:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_FILESIZE_EXCEEDED:
      return SendOutcome::permanent_failure;
    default:
      return SendOutcome::transient_failure;
  }
}

void replace_all(std::string& s, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (auto pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size()))
    s.replace(pos, what.size(), with);
}

}  // namespace

SmtpSender::SmtpSender(const config::Settings& settings, std::chrono::milliseconds connect_timeout,
                       std::chrono::milliseconds total_timeout)
    : host_(settings.smtp_host),
      port_(settings.smtp_port),
      username_(settings.smtp_username),
      password_(settings.smtp_password),
      default_from_(settings.smtp_from),
      starttls_(settings.smtp_starttls),
      connect_timeout_(connect_timeout),
      total_timeout_(total_timeout) {}

SendResult SmtpSender::send(const Email& input) {
  const bool ipv6_literal = host_.find(':') != std::string::npos && !host_.starts_with('[');
  const std::string url = fmt::format("smtp://{}{}{}:{}", ipv6_literal ? "[" : "", host_, ipv6_literal ? "]" : "", port_);
  auto result = [&](SendOutcome outcome, std::string detail) {
    replace_all(detail, password_, config::kMasked);
    return SendResult{outcome, std::move(detail)};
  };

  Email email = input;
  if (email.from.empty()) email.from = default_from_;
  std::string message;
  std::string mail_from;
  std::string rcpt_to;
  try {
    message = format_message(email, std::chrono::system_clock::now());
    mail_from = "<" + parse_mailbox("From", email.from).address + ">";
    rcpt_to = "<" + parse_mailbox("To", email.to).address + ">";
  } catch (const std::invalid_argument& e) {
    return result(SendOutcome::permanent_failure, fmt::format("not sent, the message is invalid: {}", e.what()));
  }

  if (CURLcode rc = global_init(); rc != CURLE_OK)
    return result(SendOutcome::transient_failure, fmt::format("libcurl init failed: {}", curl_easy_strerror(rc)));
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> rcpt(curl_slist_append(nullptr, rcpt_to.c_str()),
                                                                   &curl_slist_free_all);
  if (!curl || !rcpt) return result(SendOutcome::transient_failure, "libcurl: out of memory");

  // Without progress for this long the server is taken to be stalled: also bounds the wait
  // for each SMTP reply, which libcurl would otherwise allow 120 s.
  const long stall_s = std::max<long>(1, static_cast<long>(total_timeout_.count() / 2000));
  Upload upload{message};
  Replies replies;
  char errbuf[CURL_ERROR_SIZE] = {};
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // signals would hit whichever thread; timeouts need none
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  if (starttls_) curl_easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  if (!username_.empty()) {
    curl_easy_setopt(h, CURLOPT_USERNAME, username_.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, password_.c_str());
  }
  curl_easy_setopt(h, CURLOPT_MAIL_FROM, mail_from.c_str());
  curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(h, CURLOPT_READFUNCTION, &read_upload);
  curl_easy_setopt(h, CURLOPT_READDATA, &upload);
  curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_reply);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &replies);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout_.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(total_timeout_.count()));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall_s);
  curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, stall_s);

  const CURLcode rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);

  if (rc == CURLE_OK) return result(SendOutcome::sent, fmt::format("{} accepted it: {}", url, replies.last));

  // libcurl keeps the code of the last reply it read; 0 means the server never replied.
  std::string detail = fmt::format("{}: {}", url, curl_easy_strerror(rc));
  if (errbuf[0] != '\0' && std::string_view(errbuf) != curl_easy_strerror(rc)) detail += fmt::format(" ({})", errbuf);
  if (code >= 400 && reply_code(replies.last_failure) == code) detail += fmt::format("; server said: {}", replies.last_failure);
  return result(classify(rc, code), std::move(detail));
}

}  // namespace taskstream::notify
