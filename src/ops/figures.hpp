#pragma once
// Small figures the console's monitor (ops/monitor.cpp) and its views (ops/views.cpp) share.
// Internal to src/ops. Non-blocking.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

namespace taskstream::ops::figures {

using Clock = std::chrono::system_clock;

inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

inline double seconds_between(std::int64_t a_ms, std::int64_t b_ms) { return static_cast<double>(b_ms - a_ms) / 1000.0; }

/// Seconds as milliseconds with microsecond precision, or null.
inline nlohmann::json ms_or_null(std::optional<double> seconds) {
  return seconds ? nlohmann::json(std::round(*seconds * 1e6) / 1e3) : nlohmann::json(nullptr);
}

inline double rounded(double v, double unit = 1e-3) { return std::round(v / unit) * unit; }

}  // namespace taskstream::ops::figures
