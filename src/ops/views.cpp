// The console's views (docs/operations.md, "Console"): the JSON of each page, built from the
// latest sample by Monitor::build_views (ops/monitor.hpp). Runs on the monitor's thread.
#include "ops/monitor.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "events/events.hpp"
#include "kafka/dead_letter.hpp"
#include "ops/figures.hpp"
#include "ops/monitor_state.hpp"

namespace taskstream::ops {

using nlohmann::json;
using namespace figures;

std::shared_ptr<const Monitor::Views> Monitor::views() const {
  std::lock_guard lock(mutex_);
  return views_;
}

std::shared_ptr<const Monitor::Views> Monitor::build_views() const {
  auto v = std::make_shared<Views>();
  const json o = build_outbox(), g = build_groups(), t = build_topics(), h = build_http();
  json overview = build_overview(o, g, t, h);
  v->live_frame = std::make_shared<const std::string>(json{{"type", "sample"}, {"overview", overview}}.dump());
  v->overview = overview.dump();
  v->groups = g.dump();
  v->topics = t.dump();
  v->outbox = o.dump();
  v->http = h.dump();
  return v;
}

json Monitor::envelope() const {
  return {{"instance", instance_id_},
          {"sampled_at", latest_->sampled_at.empty() ? json(nullptr) : json(latest_->sampled_at)},
          {"interval_seconds", std::chrono::duration<double>(options_.interval).count()},
          {"window_seconds", options_.window.count()},
          {"kafka_error", latest_->kafka_error.empty() ? json(nullptr) : json(latest_->kafka_error)}};
}

json Monitor::build_groups() const {
  json out = envelope();
  json t = json::array();
  for (const auto& p : history_) t.push_back(p.t_ms);
  json list = json::array();
  const Point* ago = nullptr;  // the sample stuck_after ago, for "no progress"
  for (const auto& p : history_)
    if (p.t_ms <= latest_->t_ms - std::chrono::milliseconds(options_.stuck_after).count()) ago = &p;
  for (const auto& g : latest_->groups) {
    std::int64_t lag = 0;
    json parts = json::array();
    for (const auto& p : g.partitions) {
      lag += p.lag;
      parts.push_back({{"topic", p.topic},
                       {"partition", p.partition},
                       {"committed", p.committed >= 0 ? json(p.committed) : json(nullptr)},
                       {"end", p.end >= 0 ? json(p.end) : json(nullptr)},
                       {"lag", p.lag}});
    }
    json members = json::array();
    for (const auto& m : g.members) {
      json a = json::array();
      for (const auto& [topic, partition] : m.assignment) a.push_back({{"topic", topic}, {"partition", partition}});
      members.push_back({{"member_id", m.member_id}, {"client_id", m.client_id}, {"host", m.host}, {"assignment", std::move(a)}});
    }
    // Lag over the window: the group's total and each partition's, one value per sample
    // (null where the group did not exist yet).
    json total = json::array();
    std::map<std::string, json> per_partition;
    for (const auto& p : g.partitions) per_partition[p.topic + "/" + std::to_string(p.partition)] = json::array();
    for (const auto& pt : history_) {
      auto it = pt.group_lag.find(g.group_id);
      total.push_back(it == pt.group_lag.end() ? json(nullptr) : json(it->second));
      auto pl = pt.partition_lag.find(g.group_id);
      for (auto& [name, series] : per_partition) {
        if (pl == pt.partition_lag.end()) {
          series.push_back(nullptr);
          continue;
        }
        auto v = pl->second.find(name);
        series.push_back(v == pl->second.end() ? json(nullptr) : json(v->second));
      }
    }
    std::string health = "ok", why;
    const bool redrive = g.group_id.starts_with("taskstream-redrive.");
    if (!g.error.empty()) health = "stuck", why = g.error;
    else if (redrive) {
      // A redrive position has no member between runs; its lag is letters not sent back yet.
      if (lag > 0) health = "warn", why = std::to_string(lag) + " dead letter(s) not redriven";
    } else if (lag > 0 && g.members.empty()) health = "stuck", why = "lagging with no member consuming";
    else if (lag > 0) {
      // A busy group always has some lag between its commits (every second): that alone is
      // fine. Attention when it made no progress since the last sample, or its lag grew
      // three samples running; stuck when it made none for stuck_after.
      const auto n = history_.size();
      auto committed_at = [&](std::size_t i) -> std::optional<std::int64_t> {
        auto it = history_[i].group_committed.find(g.group_id);
        return it == history_[i].group_committed.end() ? std::nullopt : std::optional(it->second);
      };
      auto lag_at = [&](std::size_t i) -> std::optional<std::int64_t> {
        auto it = history_[i].group_lag.find(g.group_id);
        return it == history_[i].group_lag.end() ? std::nullopt : std::optional(it->second);
      };
      if (n >= 2 && committed_at(n - 2) && committed_at(n - 1) && *committed_at(n - 2) == *committed_at(n - 1))
        health = "warn", why = "lagging, nothing committed since the last sample";
      else if (n >= 4 && lag_at(n - 4) && lag_at(n - 3) && lag_at(n - 2) && lag_at(n - 1) && *lag_at(n - 4) < *lag_at(n - 3) &&
               *lag_at(n - 3) < *lag_at(n - 2) && *lag_at(n - 2) < *lag_at(n - 1))
        health = "warn", why = "lag growing for three samples";
      if (ago) {
        auto before = ago->group_committed.find(g.group_id);
        auto now = history_.back().group_committed.find(g.group_id);
        auto lag_before = ago->group_lag.find(g.group_id);
        if (before != ago->group_committed.end() && now != history_.back().group_committed.end() && before->second == now->second &&
            lag_before != ago->group_lag.end() && lag_before->second > 0)
          health = "stuck", why = "no offset committed for " + std::to_string(options_.stuck_after.count()) + " s while lagging";
      }
    }
    json series = json::object();
    for (auto& [name, s] : per_partition) series[name] = std::move(s);
    list.push_back({{"group_id", g.group_id},
                    {"state", g.state},
                    {"error", g.error.empty() ? json(nullptr) : json(g.error)},
                    {"health", health},
                    {"health_reason", why.empty() ? json(nullptr) : json(why)},
                    {"lag", lag},
                    {"members", std::move(members)},
                    {"partitions", std::move(parts)},
                    {"history", {{"t", t}, {"lag", std::move(total)}, {"partitions", std::move(series)}}}});
  }
  out["groups"] = std::move(list);
  return out;
}

json Monitor::build_topics() const {
  json out = envelope();
  out["brokers"] = latest_->brokers;
  // This deployment's topics (each has a .dlq twin); the list below is the whole cluster's.
  out["service_topics"] = kafka::service_topic_names(settings_);
  json list = json::array();
  for (const auto& topic : latest_->topics) {
    json parts = json::array();
    std::int64_t messages = 0;
    int under = 0;
    for (const auto& p : topic.partitions) {
      auto e = latest_->ends.find({topic.name, p.id});
      const std::int64_t end = e == latest_->ends.end() ? -1 : e->second;
      if (end > 0) messages += end;
      const bool under_replicated = p.isrs.size() < p.replicas.size();
      under += under_replicated;
      parts.push_back({{"partition", p.id},
                       {"leader", p.leader},
                       {"replicas", p.replicas},
                       {"isr", p.isrs},
                       {"under_replicated", under_replicated},
                       {"offline", p.leader < 0},
                       {"end", end >= 0 ? json(end) : json(nullptr)}});
    }
    // Messages per second between consecutive samples (the first has none).
    json t = json::array(), rate = json::array();
    const Point* prev = nullptr;
    for (const auto& pt : history_) {
      auto now = pt.topic_end.find(topic.name);
      if (prev && now != pt.topic_end.end()) {
        auto before = prev->topic_end.find(topic.name);
        if (before != prev->topic_end.end() && pt.t_ms > prev->t_ms) {
          t.push_back(pt.t_ms);
          rate.push_back(rounded(static_cast<double>(std::max<std::int64_t>(0, now->second - before->second)) / seconds_between(prev->t_ms, pt.t_ms)));
        }
      }
      prev = &pt;
    }
    const double last_rate = rate.empty() ? 0.0 : rate.back().get<double>();
    list.push_back({{"name", topic.name},
                    {"dead_letter", topic.name.ends_with(".dlq")},
                    {"partitions", std::move(parts)},
                    {"under_replicated", under},
                    {"messages", messages},
                    {"messages_per_second", last_rate},
                    {"history", {{"t", std::move(t)}, {"messages_per_second", std::move(rate)}}}});
  }
  out["topics"] = std::move(list);
  return out;
}

json Monitor::build_outbox() const {
  json out = envelope();
  const auto& l = *latest_;
  double age = 0;
  if (l.outbox && l.outbox->oldest_waiting)
    if (auto ms = events::to_unix_millis(*l.outbox->oldest_waiting)) age = std::max(0.0, seconds_between(*ms, l.t_ms));
  out["waiting"] = l.outbox ? json(l.outbox->waiting) : json(nullptr);
  out["oldest_waiting"] = l.outbox && l.outbox->oldest_waiting ? json(*l.outbox->oldest_waiting) : json(nullptr);
  out["oldest_age_seconds"] = rounded(age);
  out["error"] = l.outbox_error.empty() ? json(nullptr) : json(l.outbox_error);
  json relay = nullptr;
  if (l.relay)
    relay = {{"published", l.relay->published},
             {"failed", l.relay->failed},
             {"batches", l.relay->batches},
             {"producer_restarts", l.relay->producer_restarts},
             {"holds_lease", l.relay->holds_lease},
             {"lease_holder", l.relay->holds_lease ? json(instance_id_) : json(nullptr)},
             {"last_error", l.relay->last_error.empty() ? json(nullptr) : json(l.relay->last_error)},
             {"last_error_at", l.relay->last_error_at.empty() ? json(nullptr) : json(l.relay->last_error_at)}};
  out["relay"] = std::move(relay);
  json t = json::array(), waiting = json::array(), rate = json::array();
  const Point* prev = nullptr;
  for (const auto& pt : history_) {
    t.push_back(pt.t_ms);
    waiting.push_back(pt.outbox_waiting ? json(*pt.outbox_waiting) : json(nullptr));
    rate.push_back(prev && pt.t_ms > prev->t_ms
                       ? json(rounded(static_cast<double>(pt.relay_published - std::min(pt.relay_published, prev->relay_published)) /
                                      seconds_between(prev->t_ms, pt.t_ms)))
                       : json(nullptr));
    prev = &pt;
  }
  out["publish_per_second"] = rate.empty() || rate.back().is_null() ? 0.0 : rate.back().get<double>();
  std::string health = "ok", why;
  if (!l.outbox_error.empty()) health = "stuck", why = "the database did not answer";
  else if (age > static_cast<double>(options_.stuck_after.count())) health = "stuck", why = "oldest event waits for " + std::to_string(static_cast<long long>(age)) + " s";
  else if (l.outbox && l.outbox->waiting > 0) health = "warn", why = "events waiting";
  out["health"] = health;
  out["health_reason"] = why.empty() ? json(nullptr) : json(why);
  out["history"] = {{"t", std::move(t)}, {"waiting", std::move(waiting)}, {"publish_per_second", std::move(rate)}};
  return out;
}

json Monitor::build_http() const {
  json out = envelope();
  json routes = json::array();
  const auto& bounds = http::Metrics::bucket_bounds();
  if (!history_.empty()) {
    const auto& first = history_.front();
    const auto& last = history_.back();
    const double span = std::max(1e-3, seconds_between(first.t_ms, last.t_ms));
    for (const auto& [key, now] : last.http) {
      http::Metrics::RouteTotals d = now;
      if (auto before = first.http.find(key); before != first.http.end()) {
        d.count -= before->second.count;
        d.client_errors -= before->second.client_errors;
        d.server_errors -= before->second.server_errors;
        for (std::size_t i = 0; i < d.buckets.size(); ++i) d.buckets[i] -= before->second.buckets[i];
      }
      if (history_.size() > 1 && d.count == 0) continue;  // idle in the window
      routes.push_back({{"method", key.first},
                        {"route", key.second},
                        {"requests", d.count},
                        {"per_second", rounded(static_cast<double>(d.count) / span)},
                        {"client_errors", d.client_errors},
                        {"server_errors", d.server_errors},
                        {"error_rate", d.count ? rounded(static_cast<double>(d.server_errors) / static_cast<double>(d.count), 1e-4) : 0.0},
                        {"p50_ms", ms_or_null(histogram_quantile(0.5, d.buckets, d.count, bounds))},
                        {"p99_ms", ms_or_null(histogram_quantile(0.99, d.buckets, d.count, bounds))}});
    }
    std::sort(routes.begin(), routes.end(), [](const json& a, const json& b) { return a["requests"].get<std::uint64_t>() > b["requests"].get<std::uint64_t>(); });
    out["window_covered_seconds"] = rounded(span, 1);
  }
  // All routes together, per sample: requests per second, p99 and 5xx.
  json t = json::array(), rps = json::array(), p99 = json::array(), errors = json::array();
  const Point* prev = nullptr;
  for (const auto& pt : history_) {
    if (prev && pt.t_ms > prev->t_ms) {
      std::array<std::uint64_t, http::Metrics::kBucketCount> buckets{};
      std::uint64_t count = 0, server_errors = 0;
      for (const auto& [key, now] : pt.http) {
        auto before = prev->http.find(key);
        count += now.count - (before == prev->http.end() ? 0 : before->second.count);
        server_errors += now.server_errors - (before == prev->http.end() ? 0 : before->second.server_errors);
        for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] += now.buckets[i] - (before == prev->http.end() ? 0 : before->second.buckets[i]);
      }
      t.push_back(pt.t_ms);
      rps.push_back(rounded(static_cast<double>(count) / seconds_between(prev->t_ms, pt.t_ms)));
      p99.push_back(ms_or_null(histogram_quantile(0.99, buckets, count, bounds)));
      errors.push_back(server_errors);
    }
    prev = &pt;
  }
  out["routes"] = std::move(routes);
  out["history"] = {{"t", std::move(t)}, {"per_second", std::move(rps)}, {"p99_ms", std::move(p99)}, {"server_errors", std::move(errors)}};
  return out;
}

json Monitor::build_overview(const json& o, const json& g, const json& tp, const json& h) const {
  // One picture of REST -> outbox -> relay -> topics -> groups -> effects.
  json out = envelope();
  double rps = 0, err = 0;
  if (!h["history"]["per_second"].empty()) rps = h["history"]["per_second"].back().get<double>();
  std::uint64_t req = 0, e5 = 0;
  for (const auto& r : h["routes"]) {
    // The probes are not traffic: /readyz answers 503 while an instance starts or drains.
    if (r["route"] == "/readyz" || r["route"] == "/healthz") continue;
    req += r["requests"].get<std::uint64_t>();
    e5 += r["server_errors"].get<std::uint64_t>();
  }
  if (req) err = static_cast<double>(e5) / static_cast<double>(req);
  json rest = {{"name", "REST API"}, {"per_second", rps}, {"error_rate", rounded(err, 1e-4)}, {"health", err > 0.01 ? "warn" : "ok"},
               {"health_reason", err > 0.01 ? json("server errors above 1 %") : json(nullptr)}};
  json box_outbox = {{"name", "Outbox"}, {"waiting", o["waiting"]}, {"oldest_age_seconds", o["oldest_age_seconds"]},
                     {"health", o["health"]}, {"health_reason", o["health_reason"]}};
  std::string relay_health = "ok";
  json relay_reason = nullptr;
  if (o["health"] == "stuck") relay_health = "stuck", relay_reason = o["relay"].is_object() ? o["relay"]["last_error"] : json(nullptr);
  json box_relay = {{"name", "Relay"}, {"per_second", o["publish_per_second"]},
                    {"holds_lease", o["relay"].is_object() ? o["relay"]["holds_lease"] : json(nullptr)},
                    {"last_error", o["relay"].is_object() ? o["relay"]["last_error"] : json(nullptr)},
                    {"health", relay_health}, {"health_reason", relay_reason}};
  double topic_rate = 0;
  int under = 0;
  // This deployment's topics only: the cluster may hold others'.
  const auto service_topics = kafka::service_topic_names(settings_);  // once, not per topic
  auto ours = [&](const std::string& name) {
    for (const auto& t : service_topics)
      if (name == t || name == t + ".dlq") return true;
    return false;
  };
  for (const auto& t : tp["topics"]) {
    if (!ours(t["name"].get<std::string>())) continue;
    if (!t["dead_letter"].get<bool>()) topic_rate += t["messages_per_second"].get<double>();
    under += t["under_replicated"].get<int>();
  }
  std::string topics_health = !latest_->kafka_error.empty() ? "stuck" : under > 0 ? "warn" : "ok";
  json topics_reason = !latest_->kafka_error.empty() ? json(latest_->kafka_error)
                       : under > 0                    ? json(std::to_string(under) + " under-replicated partition(s)")
                                                      : json(nullptr);
  json box_topics = {{"name", "Topics"}, {"per_second", rounded(topic_rate)}, {"brokers", tp["brokers"]}, {"under_replicated", under},
                     {"health", topics_health}, {"health_reason", topics_reason}};
  json dlq = json::array();
  for (const auto& t : tp["topics"])
    if (t["dead_letter"].get<bool>() && ours(t["name"].get<std::string>()) && t["messages"].get<std::int64_t>() > 0) dlq.push_back({{"topic", t["name"]}, {"letters", t["messages"]}});
  json box_groups = json::array();
  auto effect = [&](const std::string& id) -> std::string {
    if (id == settings_.kafka_consumer_group_audit) return "audit trail";
    if (id == settings_.kafka_consumer_group_notification) return "notifications and email";
    if (id.starts_with(settings_.kafka_consumer_group_websocket + "-")) return "live updates";
    return "dead-letter redrive";
  };
  for (const auto& grp : g["groups"])
    box_groups.push_back({{"group_id", grp["group_id"]}, {"effect", effect(grp["group_id"].get<std::string>())}, {"state", grp["state"]},
                          {"lag", grp["lag"]}, {"members", grp["members"].size()}, {"health", grp["health"]}, {"health_reason", grp["health_reason"]}});
  // Effects: what the workers did with the events, from their groups' committed progress
  // (one audit row per task event, one notification per request: the workers may run in
  // other processes, so the cluster is the one place that sees them all) and this instance's
  // pushes to its WebSocket clients.
  double audit_rate = 0, notification_rate = 0, live_rate = 0;
  if (history_.size() >= 2) {
    const auto& a = history_[history_.size() - 2];
    const auto& b = history_.back();
    const double dt = seconds_between(a.t_ms, b.t_ms);
    auto progress = [&](const std::string& group) {
      auto x = a.group_committed.find(group), y = b.group_committed.find(group);
      if (x == a.group_committed.end() || y == b.group_committed.end() || dt <= 0) return 0.0;
      return rounded(static_cast<double>(std::max<std::int64_t>(0, y->second - x->second)) / dt);
    };
    audit_rate = progress(settings_.kafka_consumer_group_audit);
    notification_rate = progress(settings_.kafka_consumer_group_notification);
    if (dt > 0) live_rate = rounded(static_cast<double>(b.live_frames - std::min(b.live_frames, a.live_frames)) / dt);
  }
  std::string effects_health = "ok";
  json effects_reason = nullptr;
  for (const auto& grp : g["groups"]) {
    const auto id = grp["group_id"].get<std::string>();
    if (id != settings_.kafka_consumer_group_audit && id != settings_.kafka_consumer_group_notification) continue;
    const auto health = grp["health"].get<std::string>();
    if (health == "stuck" || (health == "warn" && effects_health == "ok")) {
      effects_health = health;
      effects_reason = effect(id) + (grp["health_reason"].is_string() ? ": " + grp["health_reason"].get<std::string>() : "");
    }
  }
  out["effects"] = {{"name", "Effects"},
                    {"audit_per_second", audit_rate},
                    {"notifications_per_second", notification_rate},
                    {"live_updates_per_second", live_rate},
                    {"health", effects_health},
                    {"health_reason", effects_reason}};
  out["rest"] = std::move(rest);
  out["outbox"] = std::move(box_outbox);
  out["relay"] = std::move(box_relay);
  out["topics"] = std::move(box_topics);
  out["groups"] = std::move(box_groups);
  out["dead_letters"] = std::move(dlq);
  return out;
}


}  // namespace taskstream::ops
