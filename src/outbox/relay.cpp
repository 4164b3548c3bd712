#include "outbox/relay.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <unordered_map>

#include <fmt/format.h>

#include "events/events.hpp"
#include "kafka/message.hpp"

namespace taskstream::outbox {
namespace {

/// One ordered stream: a user's events on one topic.
std::string stream_of(const std::string& topic, const std::string& key) {
  std::string s;
  s.reserve(topic.size() + 1 + key.size());
  s.append(topic).push_back('\0');
  s.append(key);
  return s;
}

}  // namespace

/// The delivery reports of the rows in flight, from the producer's thread. Shared with the
/// callbacks, which may outlive a stop() that gave up waiting for them.
struct Relay::Window {
  std::mutex mutex;
  std::condition_variable cv;
  std::size_t pending = 0;              ///< produced, not reported yet
  std::size_t notify_at = 0;            ///< the relay waits for pending <= notify_at
  std::vector<std::int64_t> delivered;  ///< reported delivered, not yet handed to the marker
  std::uint64_t delivered_total = 0;
  std::vector<std::int64_t> failed;  ///< reported failed since the last settle
  std::string first_error;
  std::size_t in_flight_at_failure = 0;  ///< rows unreported at the first failure since the last settle
  /// Per stream (a user's events on one topic) with rows in flight or a failure since the
  /// last settle: the first row that failed and the last one delivered. A failed stream's
  /// later rows are held back; a delivery past a failed row would break the order. Reports
  /// of one partition can arrive out of row order (after a fatal error the queued rows fail
  /// before the reply to the request in flight), so the rows' ids are compared, not the
  /// reports' order. A stream without a failure is dropped once all its rows are reported,
  /// so the map stays as small as what is in flight.
  struct Stream {
    std::int64_t first_failed = INT64_MAX;
    std::int64_t last_delivered = 0;
    std::size_t pending = 0;
  };
  std::unordered_map<std::string, Stream> streams;
};

kafka::ProducerOptions relay_producer_options() {
  kafka::ProducerOptions o;
  o.delivery_timeout = std::chrono::milliseconds(0);  // never: the relay decides when to give up (stall_timeout)
  o.gapless = true;
  return o;
}

Relay::Relay(storage::OutboxStore& store, kafka::Producer& producer, RelayOptions options)
    : store_(store), producer_(producer), options_(options) {}

Relay::~Relay() { stop(); }

void Relay::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  give_up_ns_ = INT64_MAX;
  if (!marker_.joinable()) {
    marker_stop_ = false;
    marker_ = std::thread([this] { marker_run(); });
  }
  thread_ = std::thread([this] { run(); });
}

bool Relay::mark_now(const std::vector<std::int64_t>& ids) {
  try {
    store_.mark_published(ids);
    published_ += ids.size();
    return true;
  } catch (const std::exception& e) {
    // They are in Kafka; left unmarked, they are sent again and deduplicated by event_id.
    spdlog::warn("outbox relay: marking {} rows published: {}", ids.size(), e.what());
    return false;
  }
}

void Relay::mark_later(std::vector<std::int64_t> ids) {
  if (!marker_.joinable()) {  // drain() without start(): mark here
    mark_now(ids);
    std::lock_guard lock(mark_mutex_);
    for (auto id : ids) held_.erase(id);
    return;
  }
  {
    std::lock_guard lock(mark_mutex_);
    to_mark_.insert(to_mark_.end(), ids.begin(), ids.end());
  }
  mark_cv_.notify_all();
}

void Relay::marker_run() {
  std::unique_lock lock(mark_mutex_);
  while (true) {
    mark_cv_.wait(lock, [&] { return marker_stop_ || !to_mark_.empty(); });
    if (to_mark_.empty()) return;  // stopping, nothing left
    std::vector<std::int64_t> ids;
    ids.swap(to_mark_);  // everything delivered meanwhile, in one write
    lock.unlock();
    const bool ok = mark_now(ids);
    lock.lock();
    for (auto id : ids) held_.erase(id);
    mark_cv_.notify_all();
    if (!ok) {
      // Do not spin on a failing database: the rows wait in the outbox meanwhile.
      mark_cv_.wait_for(lock, options_.retry_backoff, [&] { return marker_stop_; });
    }
  }
}

void Relay::wait_marked() {
  std::unique_lock lock(mark_mutex_);
  while (!held_.empty() && std::chrono::steady_clock::now() < give_up())
    mark_cv_.wait_for(lock, std::chrono::milliseconds(100));
}

void Relay::wake() noexcept {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  cv_.notify_one();
}

std::chrono::steady_clock::time_point Relay::give_up() const noexcept {
  return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(give_up_ns_.load()));
}

void Relay::stop() {
  stopping_ = true;
  give_up_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();  // a wait for reports ends
  wake();
  if (thread_.joinable()) thread_.join();
  if (marker_.joinable()) {
    {
      std::lock_guard lock(mark_mutex_);
      marker_stop_ = true;  // the marker still writes what it was handed
    }
    mark_cv_.notify_all();
    marker_.join();
  }
  std::lock_guard lock(mark_mutex_);
  held_.clear();  // rows still in flight are sent again at the next start
}

RelayStats Relay::stats() const noexcept {
  RelayStats st;
  st.published = published_.load();
  st.failed = failed_.load();
  st.batches = batches_.load();
  st.producer_restarts = restarts_.load();
  st.fatal_errors = fatal_.load();
  st.held_back = held_back_.load();
  st.order_violations = order_violations_.load();
  st.in_flight_at_failure = in_flight_at_failure_.load();
  st.holds_lease = holds_lease_.load();
  std::lock_guard lock(error_mutex_);
  st.last_error = last_error_;
  st.last_error_at = last_error_at_;
  return st;
}

void Relay::note_error(std::string what) {
  auto now = events::now_rfc3339();
  std::lock_guard lock(error_mutex_);
  last_error_ = std::move(what);
  last_error_at_ = std::move(now);
}

void Relay::run() {
  if (!producer_.enabled()) {
    spdlog::info("outbox relay: Kafka disabled, events stay in the outbox");
    if (draining_) drained_ = true;
    return;
  }
  // Reports of an earlier run that gave up waiting for them land in the old window.
  window_ = std::make_shared<Window>();
  delivered_seen_ = 0;
  held_back_ids_.clear();
  if (!marker_.joinable()) {  // drain() without start(): nothing is being marked
    std::lock_guard lock(mark_mutex_);
    held_.clear();
  }
  while (!stopping_) {
    const int n = step();
    if (draining_) {
      if (n == 0) {
        bool held;
        {
          std::lock_guard lock(mark_mutex_);
          held = !held_.empty();
        }
        if (held) {  // delivered; once marked (or freed by a failed mark) look again
          wait_marked();
          if (std::chrono::steady_clock::now() >= give_up()) break;
          continue;
        }
        drained_ = true;
        break;
      }
      if (std::chrono::steady_clock::now() >= give_up()) break;
      if (n < 0) std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(options_.retry_backoff, give_up() - std::chrono::steady_clock::now()));
      continue;
    }
    if (n > 0) continue;  // more may be waiting
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, n < 0 ? options_.retry_backoff : options_.idle_poll, [&] { return woken_ || stopping_.load() || draining_.load(); });
    woken_ = false;
  }
  // Stopping, or the drain's deadline passed: what was delivered is marked; rows not
  // reported yet stay unpublished and go out again at the next start (same event_id).
  collect();
  std::size_t unreported;
  {
    std::lock_guard lock(window_->mutex);
    unreported = window_->pending + window_->failed.size();
  }
  if (unreported + held_back_ids_.size() > 0) failed_ += unreported + held_back_ids_.size();
}

bool Relay::drain(std::chrono::milliseconds deadline) {
  // The running thread finishes the batches in flight (bounded by the deadline) and then
  // publishes what is left; it is the only one touching the outbox, so nothing is sent twice.
  give_up_ns_ = (std::chrono::steady_clock::now() + deadline).time_since_epoch().count();
  drained_ = false;
  draining_ = true;
  wake();
  if (!thread_.joinable()) run();  // never started: drain on this thread
  else thread_.join();
  draining_ = false;
  return drained_;
}

void Relay::collect() {
  std::vector<std::int64_t> ids;
  {
    std::lock_guard lock(window_->mutex);
    ids.swap(window_->delivered);
  }
  if (!ids.empty()) mark_later(std::move(ids));
}

bool Relay::wait_window(std::size_t target) {
  using Clock = std::chrono::steady_clock;
  if (last_progress_ == Clock::time_point{}) last_progress_ = Clock::now();
  bool restarted = false, fatal_seen = false;
  auto& w = *window_;
  std::unique_lock lock(w.mutex);
  // In slices, so that a stop or drain that moves give_up_ is seen, delivered rows go to
  // the marker while the rest are in flight, and a stall is noticed.
  w.notify_at = target;
  while (w.pending > target) {
    if (Clock::now() >= give_up()) return false;
    w.cv.wait_for(lock, std::chrono::milliseconds(100));
    if (!fatal_seen && w.pending > target && producer_.fatal()) {
      // Gapless: the client stopped rather than skip a failed request and will deliver
      // nothing more; a request it had in flight may never be answered. Replace it now:
      // the purge reports everything it still holds, and nothing new is produced before
      // the settle.
      const auto why = "fatal error: " + (w.first_error.empty() ? std::string("see the log") : w.first_error);
      lock.unlock();
      fatal_seen = true;
      fatal_++;
      if (producer_.restart(why)) restarts_++;
      last_progress_ = Clock::now();
      lock.lock();
      continue;
    }
    if (w.delivered_total > delivered_seen_) {
      delivered_seen_ = w.delivered_total;
      last_progress_ = Clock::now();
    } else if (!restarted && w.pending > target && Clock::now() - last_progress_ >= options_.stall_timeout) {
      // The purge reports every message still held, so the wait ends at once.
      lock.unlock();
      restarted = producer_.restart("nothing delivered for " + std::to_string(options_.stall_timeout.count()) + " ms");
      if (restarted) restarts_++;
      last_progress_ = Clock::now();
      lock.lock();
    }
    if (!w.delivered.empty()) {
      lock.unlock();
      collect();
      lock.lock();
    }
  }
  if (w.delivered_total > delivered_seen_) {
    delivered_seen_ = w.delivered_total;
    last_progress_ = Clock::now();
  }
  return true;
}

int Relay::settle() {
  std::vector<std::int64_t> failed_ids;
  std::string first_error;
  std::size_t violations = 0;
  {
    std::lock_guard lock(window_->mutex);
    failed_ids.swap(window_->failed);
    first_error = std::move(window_->first_error);
    window_->first_error.clear();
    if (window_->in_flight_at_failure > in_flight_at_failure_.load()) in_flight_at_failure_ = window_->in_flight_at_failure;
    window_->in_flight_at_failure = 0;
    for (const auto& [stream, st] : window_->streams)
      if (st.last_delivered > st.first_failed && violations++ == 0)
        spdlog::error("outbox relay: outbox row {} was delivered after row {} of its user and topic failed: per-user order broken",
                      st.last_delivered, st.first_failed);
    window_->streams.clear();  // every report is in: no stream has rows in flight
  }
  if (violations > 0) {
    order_violations_ += violations;
    spdlog::error("outbox relay: {} user stream(s) delivered out of order while in flight", violations);
  }
  collect();
  // Free the failed and held-back rows: the next fetch starts again from the first of them.
  const std::size_t held = held_back_ids_.size();
  {
    std::lock_guard lock(mark_mutex_);
    for (auto id : failed_ids) held_.erase(id);
    for (auto id : held_back_ids_) held_.erase(id);
  }
  held_back_ids_.clear();
  if (producer_.fatal()) {
    // Gapless: the client stopped rather than skip a failed request; everything it held
    // has failed. A new client (new producer id) sends those rows again, in order.
    fatal_++;
    if (producer_.restart("fatal error: " + (first_error.empty() ? std::string("see the log") : first_error))) restarts_++;
  }
  const std::size_t n = failed_ids.size() + held;
  failed_ += n;
  if (first_error.empty()) first_error = "no delivery report in time";
  spdlog::warn("outbox relay: {} events not published ({} held back behind a failed one of their user), retrying: {}", n, held, first_error);
  note_error(std::to_string(n) + " events not published: " + first_error);
  return -1;
}

int Relay::step() {
  auto& w = *window_;
  collect();
  const auto batch = static_cast<std::size_t>(std::clamp(options_.batch_size, 1, 10000));
  const auto in_flight = static_cast<std::size_t>(std::max(options_.max_batches_in_flight, 1));
  bool failure;
  std::size_t pending;
  {
    std::lock_guard lock(w.mutex);
    failure = !w.failed.empty();
    pending = w.pending;
  }
  // A row in flight failed: fetch nothing more until every report is in, then start again
  // from the first unpublished row.
  if (failure || !held_back_ids_.empty()) {
    if (!wait_window(0)) return 1;  // stopping or past the drain's deadline
    return settle();
  }
  // No room for another batch: wait for the reports of the earliest.
  if (pending > (in_flight - 1) * batch) {
    wait_window((in_flight - 1) * batch);
    return 1;
  }

  std::vector<storage::OutboxRecord> rows;
  try {
    // Another instance publishes while it holds the lease; this one waits its turn (it
    // reports "nothing to do", so drain ends at once: the holder drains the outbox).
    const bool holds = store_.hold_relay_lease();
    holds_lease_ = holds;
    if (holds) {
      std::unique_lock lock(mark_mutex_);
      // The marker lags: wait for it rather than hold ever more rows.
      if (held_.size() >= 2 * in_flight * batch) {
        mark_cv_.wait_for(lock, std::chrono::milliseconds(100));
        return 1;
      }
      // Past the rows in flight and those delivered but still being marked (unpublished in
      // the database). Under the lock, so a mark that commits meanwhile frees its rows only
      // after the fetch: such a row is either not fetched or still skipped.
      rows = store_.fetch_unpublished_skipping(static_cast<int>(batch), held_);
      for (const auto& r : rows) held_.insert(r.id);
    }
  } catch (const std::exception& e) {
    spdlog::warn("outbox relay: reading the outbox: {}", e.what());
    note_error(std::string("reading the outbox: ") + e.what());
    if (pending > 0) wait_window(0);  // settle what is in flight before backing off
    return -1;
  }
  if (rows.empty()) {
    if (pending == 0) {
      last_progress_ = {};  // idle is not a stall
      return 0;
    }
    wait_window(0);  // nothing new: what is in flight finishes, then look again
    return 1;
  }

  batches_++;
  if (last_progress_ == std::chrono::steady_clock::time_point{}) last_progress_ = std::chrono::steady_clock::now();
  auto window = window_;
  for (auto& r : rows) {
    auto stream = stream_of(r.topic, r.key);
    {
      std::lock_guard lock(w.mutex);
      auto& st = w.streams[stream];
      // A row of this stream failed (refused at once, or already reported): sending this
      // one now would put it before that row's retry. It waits for the next fetch.
      if (st.first_failed < r.id) {
        held_back_ids_.push_back(r.id);
        held_back_++;
        continue;
      }
      ++st.pending;
      ++w.pending;
    }
    auto headers = kafka::event_headers({.event_id = r.event_id,
                                         .event_type = r.event_type,
                                         .schema = r.data_schema,
                                         .subject = r.subject,
                                         .time = r.created_at,
                                         .partition_key = r.key,
                                         .traceparent = r.traceparent});
    kafka::OutgoingMessage msg{std::move(r.topic), std::move(r.key), std::move(r.payload), std::move(headers), std::nullopt};
    producer_.produce(std::move(msg), [window, id = r.id, stream = std::move(stream)](const kafka::DeliveryResult& d) {
      auto& w = *window;
      std::lock_guard lock(w.mutex);
      auto it = w.streams.find(stream);
      if (it == w.streams.end()) it = w.streams.emplace(stream, Window::Stream{}).first;  // not after a settle: defensive
      auto& st = it->second;
      if (d.ok()) {
        w.delivered.push_back(id);
        ++w.delivered_total;
        st.last_delivered = std::max(st.last_delivered, id);
      } else {
        if (w.failed.empty()) {
          w.first_error = d.error.to_string();
          w.in_flight_at_failure = w.pending;  // this row included
        }
        w.failed.push_back(id);
        st.first_failed = std::min(st.first_failed, id);
      }
      if (st.pending > 0) --st.pending;
      if (st.pending == 0 && st.first_failed == INT64_MAX) w.streams.erase(it);
      if (w.pending > 0) --w.pending;
      // Wake the relay when what it waits for happened, on a failure, and now and then to
      // hand the delivered rows to the marker: not at every report.
      if (w.pending <= w.notify_at || !d.ok() || w.delivered.size() % 1024 == 0) w.cv.notify_all();
    });
  }
  return static_cast<int>(rows.size());
}

void Relay::register_metrics(util::MetricsRegistry& metrics) {
  metrics.add_collector([this](std::string& out) {
    const auto st = store_.outbox_stats();
    double age = 0;
    if (st.oldest_waiting)
      if (auto ms = events::to_unix_millis(*st.oldest_waiting))
        age = std::max(0.0, static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    std::chrono::system_clock::now().time_since_epoch()).count() - *ms) / 1000.0);
    out += fmt::format(
        "# HELP outbox_events_waiting Events in the outbox not yet published.\n# TYPE outbox_events_waiting gauge\noutbox_events_waiting {}\n"
        "# HELP outbox_oldest_event_age_seconds Age of the oldest event waiting in the outbox (0 when none waits).\n"
        "# TYPE outbox_oldest_event_age_seconds gauge\noutbox_oldest_event_age_seconds {:.3f}\n",
        st.waiting, age);
  });
  metrics.add_gauge("outbox_events_published_total", "Events the relay published.", "counter",
                    [this] { return static_cast<double>(stats().published); });
  metrics.add_gauge("outbox_events_failed_total", "Event deliveries that failed and were retried.", "counter",
                    [this] { return static_cast<double>(stats().failed); });
  metrics.add_gauge("kafka_producer_restarts_total", "Times the relay replaced a producer client that stopped delivering or failed fatally.", "counter",
                    [this] { return static_cast<double>(stats().producer_restarts); });
  metrics.add_gauge("outbox_order_violations_total",
                    "User streams delivered out of order in a batch (a row delivered after an earlier one of its user failed); always 0 by design.",
                    "counter", [this] { return static_cast<double>(stats().order_violations); });
}

}  // namespace taskstream::outbox
