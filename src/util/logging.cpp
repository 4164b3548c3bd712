#include "util/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace taskstream::util {
namespace {

thread_local LogFields t_fields;

bool is_hex(std::string_view s) noexcept {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

/// Formats a record as one JSON object; the message is escaped by nlohmann::json.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto t = system_clock::to_time_t(msg.time);
    std::tm tm{};
    gmtime_r(&t, &tm);
    auto ms = duration_cast<milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    nlohmann::json j{{"time", ts},
                     {"level", spdlog::level::to_string_view(msg.level).data()},
                     {"message", std::string(msg.payload.data(), msg.payload.size())}};
    const auto& f = t_fields;
    if (!f.request_id.empty()) j["request_id"] = f.request_id;
    if (!f.event_id.empty()) j["event_id"] = f.event_id;
    if (!f.traceparent.empty()) {
      j["traceparent"] = f.traceparent;
      if (auto id = trace_id_of(f.traceparent); !id.empty()) j["trace_id"] = id;
    }
    auto s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(s.data(), s.data() + s.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

/// The text pattern, then the fields as key=value.
class TextFormatter final : public spdlog::formatter {
 public:
  TextFormatter() : pattern_("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    pattern_.format(msg, dest);
    const auto& f = t_fields;
    if (f.request_id.empty() && f.event_id.empty() && f.traceparent.empty()) return;
    if (dest.size() > 0 && dest[dest.size() - 1] == '\n') dest.resize(dest.size() - 1);
    auto add = [&](std::string_view key, std::string_view value) {
      if (value.empty()) return;
      dest.push_back(' ');
      dest.append(key.data(), key.data() + key.size());
      dest.push_back('=');
      for (char c : value) dest.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);  // no line breaks from outside
    };
    add("request_id", f.request_id);
    add("event_id", f.event_id);
    add("traceparent", f.traceparent);
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<TextFormatter>(); }

 private:
  spdlog::pattern_formatter pattern_;
};

}  // namespace

void setup_logging(const std::string& level, config::LogFormat format) {
  auto logger = std::make_shared<spdlog::logger>("taskstream", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == config::LogFormat::json) logger->set_formatter(std::make_unique<JsonFormatter>());
  else logger->set_formatter(std::make_unique<TextFormatter>());
  logger->set_level(spdlog::level::from_str(level == "warn" ? "warning" : level));
  spdlog::set_default_logger(logger);
}

LogScope::LogScope(LogFields fields) noexcept : saved_(t_fields) { t_fields = fields; }
LogScope::~LogScope() { t_fields = saved_; }
LogFields current_log_fields() noexcept { return t_fields; }

std::string_view trace_id_of(std::string_view tp) noexcept {
  // version-traceid-parentid-flags: 2 + 1 + 32 + 1 + 16 + 1 + 2
  if (tp.size() < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return {};
  auto id = tp.substr(3, 32);
  if (!is_hex(tp.substr(0, 2)) || !is_hex(id) || !is_hex(tp.substr(36, 16)) || id == "00000000000000000000000000000000") return {};
  return id;
}

}  // namespace taskstream::util
