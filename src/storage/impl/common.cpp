#include "storage/impl/common.hpp"

#include <algorithm>
#include <array>

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

void keep_identity(const Task& before, Task& after) {
  after.id = before.id;
  after.user_id = before.user_id;
  after.created_at = before.created_at;
}

}  // namespace taskstream::storage::impl
