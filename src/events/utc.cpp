#include <cstdio>
#include <ctime>

#include "events/events.hpp"

namespace taskstream::events {
namespace {

int digits(std::string_view s, std::size_t pos, std::size_t n) {
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}

}  // namespace

std::optional<std::int64_t> to_unix_millis(std::string_view s) {
  if (!is_rfc3339(s)) return std::nullopt;
  // is_rfc3339 checked the shape: YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  std::tm tm{};
  tm.tm_year = digits(s, 0, 4) - 1900;
  tm.tm_mon = digits(s, 5, 2) - 1;
  tm.tm_mday = digits(s, 8, 2);
  tm.tm_hour = digits(s, 11, 2);
  tm.tm_min = digits(s, 14, 2);
  tm.tm_sec = std::min(digits(s, 17, 2), 59);  // a leap second counts as :59
  std::size_t pos = 19;
  int millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int scale = 100;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (scale > 0) millis += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
  }
  std::time_t t = timegm(&tm);
  if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int offset = digits(s, pos + 1, 2) * 3600 + digits(s, pos + 4, 2) * 60;
    t += s[pos] == '+' ? -offset : offset;
  }
  return static_cast<std::int64_t>(t) * 1000 + millis;
}

std::optional<std::string> to_utc_millis(std::string_view s) {
  const auto ms = to_unix_millis(s);
  if (!ms) return std::nullopt;
  // Floor division: an instant before 1970 has a negative count and positive millis.
  const std::int64_t secs = *ms >= 0 ? *ms / 1000 : -((-*ms + 999) / 1000);
  const std::time_t t = static_cast<std::time_t>(secs);
  const int millis = static_cast<int>(*ms - secs * 1000);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                utc.tm_min, utc.tm_sec, millis);
  return std::string(buf);
}

}  // namespace taskstream::events
