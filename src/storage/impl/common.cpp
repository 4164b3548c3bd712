#include "storage/impl/common.hpp"

#include <algorithm>
#include <array>
#include <unordered_set>

#include "events/events.hpp"

namespace taskstream::storage::impl {

namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kSeparator = '\n';

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                   static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (const auto rest = in.size() - i; rest > 0) {
    auto n = static_cast<unsigned char>(in[i]) << 16;
    if (rest == 2) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    if (rest == 2) out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view in) {
  static const auto kValues = [] {
    std::array<int, 256> v{};
    v.fill(-1);
    for (std::size_t i = 0; i < kAlphabet.size(); ++i) v[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int>(i);
    return v;
  }();
  if (in.size() % 4 == 1) return std::nullopt;  // no encoder produces this length
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : in) {
    const int v = kValues[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero, or two spellings would decode to one cursor.
  if ((buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

[[noreturn]] void malformed() {
  throw StorageError("malformed cursor: pass back the next_cursor of a previous page unchanged", false);
}

bool printable(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x20; });
}

}  // namespace

std::string encode_cursor(const Task& last) {
  std::string raw = "1";
  raw += kSeparator;
  raw += last.created_at;
  raw += kSeparator;
  raw += last.id;
  return base64url_encode(raw);
}

CursorKey decode_cursor(std::string_view cursor) {
  if (cursor.empty() || cursor.size() > 512) malformed();
  const auto raw = base64url_decode(cursor);
  if (!raw) malformed();
  const std::string_view text = *raw;
  const auto first = text.find(kSeparator);
  if (first == std::string_view::npos || text.substr(0, first) != "1") malformed();
  const auto second = text.find(kSeparator, first + 1);
  if (second == std::string_view::npos) malformed();
  CursorKey key{std::string(text.substr(first + 1, second - first - 1)), std::string(text.substr(second + 1))};
  if (!printable(key.created_at) || !printable(key.id)) malformed();
  return key;
}

int clamp_page_limit(int limit) noexcept { return std::clamp(limit, 1, 100); }

int clamp_batch_limit(int limit) noexcept { return std::clamp(limit, 1, 10000); }

std::string email_key(std::string_view email) {
  std::string out(email);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

void fill_outbox_defaults(OutboxRecord& record, const std::string& user_id, std::int64_t seq, const std::string& now) {
  if (record.user_id.empty()) record.user_id = user_id;
  if (record.key.empty()) record.key = record.user_id;
  if (record.seq == 0) record.seq = seq;
  if (record.created_at.empty()) record.created_at = now;
  if (record.event_id.empty()) record.event_id = events::new_event_id();
}

std::optional<ChangeResult> plan_update(const std::optional<Task>& before, const std::function<bool(Task&)>& mutate,
                                        std::optional<std::int64_t> expected_version, const std::string& now, Task& after) {
  if (!before) return ChangeResult{ChangeStatus::not_found, std::nullopt, 0};
  if (expected_version && *expected_version != before->version) return ChangeResult{ChangeStatus::version_conflict, before, 0};
  after = *before;
  if (!mutate(after)) return ChangeResult{ChangeStatus::ok, before, 0};
  // mutate may not move a task to another user or rename it.
  after.id = before->id;
  after.user_id = before->user_id;
  after.created_at = before->created_at;
  after.version = before->version + 1;
  after.updated_at = now;
  return std::nullopt;
}

int clamp_notification_limit(int limit) noexcept { return std::clamp(limit, 1, 200); }

void require_event_ids(const std::vector<AuditEntry>& entries) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].event_id.empty()) {
      throw StorageError("record_audit: entry " + std::to_string(i) + " has an empty event_id", false);
    }
  }
}

void require_event_id(const Notification& n) {
  if (n.event_id.empty()) throw StorageError("create_notification: empty event_id", false);
}

std::vector<std::size_t> first_occurrences(const std::vector<AuditEntry>& entries) {
  std::vector<std::size_t> out;
  out.reserve(entries.size());
  std::unordered_set<std::string_view> seen;
  seen.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (seen.insert(entries[i].event_id).second) out.push_back(i);
  }
  return out;
}

namespace {

/// Parses exactly `n` decimal digits at `pos`, advancing it.
bool digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) noexcept {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += n;
  return true;
}

bool expect(std::string_view s, std::size_t& pos, std::string_view chars) noexcept {
  if (pos >= s.size() || chars.find(s[pos]) == std::string_view::npos) return false;
  ++pos;
  return true;
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

}  // namespace

std::optional<std::int64_t> rfc3339_nanos(std::string_view s) noexcept {
  std::size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(s, pos, 4, year) || !expect(s, pos, "-") || !digits(s, pos, 2, month) || !expect(s, pos, "-") ||
      !digits(s, pos, 2, day) || !expect(s, pos, "Tt ") || !digits(s, pos, 2, hour) || !expect(s, pos, ":") ||
      !digits(s, pos, 2, minute) || !expect(s, pos, ":") || !digits(s, pos, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  std::int64_t nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const auto start = pos;
    std::int64_t scale = 100'000'000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      nanos += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  std::int64_t offset_minutes = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z' || s[pos] == 'z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      const int sign = s[pos] == '-' ? -1 : 1;
      ++pos;
      int oh = 0, om = 0;
      if (!digits(s, pos, 2, oh) || !expect(s, pos, ":") || !digits(s, pos, 2, om) || oh > 23 || om > 59) {
        return std::nullopt;
      }
      offset_minutes = sign * (oh * 60 + om);
    } else {
      return std::nullopt;
    }
  }
  if (pos != s.size()) return std::nullopt;
  const auto days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const auto seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return seconds * 1'000'000'000 + nanos;
}

std::vector<AuditEntry> order_history(std::vector<AuditEntry> rows) {
  // A comparator "by seq when both have one, else by time" is not transitive when the two
  // kinds mix, so sorting with it is undefined. Instead: each kind is sorted on its own
  // (by seq; by time) and the two runs are merged by time. Every pair with seqs keeps seq
  // order, every pair without keeps time order, and the result is deterministic.
  struct Key {
    bool unparsable;
    std::int64_t nanos;
    std::size_t recorded;  // position in `rows`: recorded order
    auto operator<=>(const Key&) const = default;
  };
  std::vector<Key> keys(rows.size());
  std::vector<std::size_t> with_seq, without_seq;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto nanos = rfc3339_nanos(rows[i].occurred_at);
    keys[i] = Key{!nanos, nanos.value_or(0), i};
    (rows[i].seq ? with_seq : without_seq).push_back(i);
  }
  std::sort(with_seq.begin(), with_seq.end(), [&](std::size_t a, std::size_t b) {
    return std::pair(*rows[a].seq, keys[a]) < std::pair(*rows[b].seq, keys[b]);
  });
  std::sort(without_seq.begin(), without_seq.end(), [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });
  std::vector<AuditEntry> out;
  out.reserve(rows.size());
  std::size_t i = 0, j = 0;
  while (i < with_seq.size() || j < without_seq.size()) {
    const bool take_unsequenced =
        i == with_seq.size() || (j < without_seq.size() && keys[without_seq[j]] < keys[with_seq[i]]);
    out.push_back(std::move(rows[take_unsequenced ? without_seq[j++] : with_seq[i++]]));
  }
  return out;
}

Notification normalized(const Notification& n, const std::string& now) {
  Notification out = n;
  if (out.created_at.empty()) out.created_at = now;
  out.channels.clear();
  for (const auto& c : n.channels) {
    const bool repeated = std::any_of(out.channels.begin(), out.channels.end(),
                                      [&](const ChannelStatus& seen) { return seen.channel == c.channel; });
    if (repeated) continue;
    out.channels.push_back(c);
    if (out.channels.back().updated_at.empty()) out.channels.back().updated_at = out.created_at;
  }
  if (out.read && !out.read_at) out.read_at = out.created_at;
  out.read = out.read_at.has_value();
  return out;
}

}  // namespace taskstream::storage::impl
