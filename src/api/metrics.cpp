#include "api/metrics.hpp"

#include <fmt/format.h>

namespace taskstream::api {

void Metrics::observe_request(const std::string& method, const std::string& route, int status, std::chrono::nanoseconds elapsed) {
  const double secs = std::chrono::duration<double>(elapsed).count();
  std::lock_guard lock(mutex_);
  requests_[{method, route, status}]++;
  auto& h = latency_[{method, route}];
  for (std::size_t i = 0; i < kBuckets.size(); ++i)
    if (secs <= kBuckets[i]) h.buckets[i]++;
  h.count++;
  h.sum += secs;
}

void Metrics::add_gauge(std::string name, std::string help, std::string type, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  gauges_.push_back({std::move(name), std::move(help), std::move(type), std::move(read)});
}

std::string Metrics::render() const {
  std::string out;
  std::vector<Gauge> gauges;
  {
    std::lock_guard lock(mutex_);
    out += "# HELP http_requests_total HTTP requests by method, route and status.\n# TYPE http_requests_total counter\n";
    for (const auto& [k, v] : requests_)
      out += fmt::format("http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n", std::get<0>(k), std::get<1>(k), std::get<2>(k), v);
    out += "# HELP http_request_duration_seconds HTTP request latency by method and route.\n# TYPE http_request_duration_seconds histogram\n";
    for (const auto& [k, h] : latency_) {
      for (std::size_t i = 0; i < kBuckets.size(); ++i)
        out += fmt::format("http_request_duration_seconds_bucket{{method=\"{}\",route=\"{}\",le=\"{}\"}} {}\n", k.first, k.second, kBuckets[i], h.buckets[i]);
      out += fmt::format("http_request_duration_seconds_bucket{{method=\"{}\",route=\"{}\",le=\"+Inf\"}} {}\n", k.first, k.second, h.count);
      out += fmt::format("http_request_duration_seconds_sum{{method=\"{}\",route=\"{}\"}} {}\n", k.first, k.second, h.sum);
      out += fmt::format("http_request_duration_seconds_count{{method=\"{}\",route=\"{}\"}} {}\n", k.first, k.second, h.count);
    }
    gauges = gauges_;
  }
  // Readers may block briefly (a DB count): outside the lock.
  for (const auto& g : gauges) {
    double v = 0;
    try {
      v = g.read();
    } catch (...) {
      continue;
    }
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", g.name, g.help, g.name, g.type, g.name, v);
  }
  return out;
}

}  // namespace taskstream::api
