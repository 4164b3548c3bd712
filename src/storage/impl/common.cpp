#include "storage/impl/common.hpp"

#include <algorithm>
#include <array>
#include <regex>
#include <unordered_set>

#include "events/events.hpp"

namespace taskstream::storage::impl {

namespace {

[[noreturn]] void malformed() {
  throw StorageError("malformed cursor: pass back the next_cursor of a previous page unchanged", false);
}

}  // namespace

std::string encode_cursor(const Task& last) {
  std::string out = last.created_at;
  out += '~';
  out += last.id;
  return out;
}

CursorKey decode_cursor(std::string_view cursor) {
  // Exactly kCursorPattern (the OpenAPI says so too): any string of that form is a position
  // in the keyset order, whether or not a task sits there, and nothing else is a cursor.
  static const std::regex pattern{std::string(kCursorPattern)};
  if (cursor.size() > 128 || !std::regex_match(cursor.begin(), cursor.end(), pattern)) malformed();
  const auto tilde = cursor.find('~');
  return CursorKey{std::string(cursor.substr(0, tilde)), std::string(cursor.substr(tilde + 1))};
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

namespace {
constexpr std::string_view kSeqToken = "\"seq\":9223372036854775807";
}  // namespace

PrebuiltEvents prebuild_events(const EventFactory& events, const Task* before, const Task* after) {
  PrebuiltEvents pre;
  pre.records = events(before, after, PrebuiltEvents::kSeqPlaceholder);
  pre.seq_at.reserve(pre.records.size());
  for (const auto& r : pre.records) {
    // The token can only be the top-level member: inside a JSON string its quotes would be
    // escaped. Exactly one occurrence, or the factory is not one this knows.
    const auto at = r.payload.find(kSeqToken);
    if (at == std::string::npos || r.payload.find(kSeqToken, at + 1) != std::string::npos) return pre;
    pre.seq_at.push_back(at + kSeqToken.size() - 19);
  }
  pre.ok = true;
  return pre;
}

std::vector<OutboxRecord> stamp_seq(const PrebuiltEvents& pre, std::int64_t seq) {
  std::vector<OutboxRecord> out = pre.records;
  const auto digits = std::to_string(seq);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].payload.replace(pre.seq_at[i], 19, digits);
    if (out[i].seq == PrebuiltEvents::kSeqPlaceholder) out[i].seq = seq;
  }
  return out;
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
