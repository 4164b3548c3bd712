#include "http/metrics.hpp"

#include <fmt/format.h>

namespace taskstream::http {

void Metrics::observe_request(const std::string& method, const std::string& route, int status, std::chrono::nanoseconds elapsed) {
  const double secs = std::chrono::duration<double>(elapsed).count();
  std::lock_guard lock(mutex_);
  requests_[{method, route, status}]++;
  auto& h = latency_[{method, route, status}];
  for (std::size_t i = 0; i < kBuckets.size(); ++i)
    if (secs <= kBuckets[i]) h.buckets[i]++;
  h.count++;
  h.sum += secs;
}

std::map<std::pair<std::string, std::string>, Metrics::RouteTotals> Metrics::route_totals() const {
  std::map<std::pair<std::string, std::string>, RouteTotals> out;
  std::lock_guard lock(mutex_);
  for (const auto& [k, h] : latency_) {
    auto& t = out[{std::get<0>(k), std::get<1>(k)}];
    const int status = std::get<2>(k);
    t.count += h.count;
    if (status >= 500) t.server_errors += h.count;
    else if (status >= 400) t.client_errors += h.count;
    for (std::size_t i = 0; i < kBucketCount; ++i) t.buckets[i] += h.buckets[i];
    t.sum += h.sum;
  }
  return out;
}

void Metrics::add_collector(std::function<void(std::string&)> write) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(write));
}

void Metrics::add_gauge(std::string name, std::string help, std::string type, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  gauges_.push_back({std::move(name), std::move(help), std::move(type), std::move(read)});
}

std::string Metrics::render() const {
  std::string out;
  std::vector<Gauge> gauges;
  std::vector<std::function<void(std::string&)>> collectors;
  {
    std::lock_guard lock(mutex_);
    out += "# HELP http_requests_total HTTP requests by method, route and status.\n# TYPE http_requests_total counter\n";
    for (const auto& [k, v] : requests_)
      out += fmt::format("http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n", std::get<0>(k), std::get<1>(k), std::get<2>(k), v);
    out += "# HELP http_request_duration_seconds HTTP request latency by method, route and status.\n# TYPE http_request_duration_seconds histogram\n";
    for (const auto& [k, h] : latency_) {
      const auto& [method, route, status] = k;
      for (std::size_t i = 0; i < kBuckets.size(); ++i)
        out += fmt::format("http_request_duration_seconds_bucket{{method=\"{}\",route=\"{}\",status=\"{}\",le=\"{}\"}} {}\n", method, route, status,
                           kBuckets[i], h.buckets[i]);
      out += fmt::format("http_request_duration_seconds_bucket{{method=\"{}\",route=\"{}\",status=\"{}\",le=\"+Inf\"}} {}\n", method, route, status, h.count);
      out += fmt::format("http_request_duration_seconds_sum{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n", method, route, status, h.sum);
      out += fmt::format("http_request_duration_seconds_count{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n", method, route, status, h.count);
    }
    gauges = gauges_;
    collectors = collectors_;
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
  for (const auto& write : collectors) {
    std::string part;  // a reader that throws adds nothing, not half a family
    try {
      write(part);
    } catch (...) {
      continue;
    }
    out += part;
  }
  return out;
}

}  // namespace taskstream::http
