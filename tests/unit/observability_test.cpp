// Log fields (request id, event id, trace) and the Prometheus text of the metrics.

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "http/metrics.hpp"
#include "util/logging.hpp"

using namespace taskstream;

TEST(Logging, TraceIdOfAWellFormedTraceparentOnly) {
  EXPECT_EQ(util::trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(util::trace_id_of(""), "");
  EXPECT_EQ(util::trace_id_of("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"), "") << "upper case is not W3C";
  EXPECT_EQ(util::trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), "") << "all-zero trace id";
  EXPECT_EQ(util::trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b701"), "");
}

TEST(Logging, JsonLinesCarryTheScopeFieldsAndRestoreThemAfter) {
  util::setup_logging("debug", config::LogFormat::json);
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  testing::internal::CaptureStderr();
  {
    util::LogScope outer({.request_id = "r-1"});
    {
      util::LogScope inner({.event_id = "e-1", .traceparent = tp});
      spdlog::info("inner \"quoted\"\nline");
    }
    spdlog::warn("outer");
  }
  spdlog::error("none");
  const auto out = testing::internal::GetCapturedStderr();
  util::setup_logging("info", config::LogFormat::text);
  std::vector<nlohmann::json> lines;
  std::size_t pos = 0;
  while (pos < out.size()) {
    auto nl = out.find('\n', pos);
    lines.push_back(nlohmann::json::parse(out.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_EQ(lines[0]["message"], "inner \"quoted\"\nline");
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["event_id"], "e-1");
  EXPECT_EQ(lines[0]["traceparent"], tp);
  EXPECT_EQ(lines[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(lines[0].contains("request_id")) << "the inner scope replaces the outer one";
  EXPECT_EQ(lines[1]["request_id"], "r-1");
  EXPECT_FALSE(lines[1].contains("event_id"));
  EXPECT_FALSE(lines[2].contains("request_id"));
  EXPECT_TRUE(lines[2]["time"].get<std::string>().ends_with("Z"));
}

TEST(Logging, TextLinesAppendTheFieldsWithoutBreakingTheLine) {
  util::setup_logging("info", config::LogFormat::text);
  testing::internal::CaptureStderr();
  {
    util::LogScope scope({.request_id = "r\n2"});
    spdlog::info("hello");
  }
  const auto out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("hello request_id=r?2\n"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
}

TEST(Metrics, LatencyByRouteAndStatusAndCollectorsAppendTheirFamilies) {
  http::Metrics m;
  m.observe_request("POST", "/tasks", 201, std::chrono::milliseconds(3));
  m.observe_request("POST", "/tasks", 201, std::chrono::milliseconds(30));
  m.observe_request("POST", "/tasks", 400, std::chrono::microseconds(100));
  m.add_collector([](std::string& out) { out += "# TYPE x gauge\nx{group=\"" + util::escape_label("a\"b\\c\nd") + "\"} 1\n"; });
  m.add_collector([](std::string&) { throw std::runtime_error("a failing reader leaves the rest"); });
  const auto text = m.render();
  EXPECT_NE(text.find("http_request_duration_seconds_count{method=\"POST\",route=\"/tasks\",status=\"201\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("http_request_duration_seconds_bucket{method=\"POST\",route=\"/tasks\",status=\"201\",le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("http_request_duration_seconds_bucket{method=\"POST\",route=\"/tasks\",status=\"400\",le=\"0.0005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("x{group=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << text;
}
