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

/// Delivery reports of one batch, collected from the producer's thread.
struct BatchState {
  std::mutex mutex;
  std::condition_variable cv;
  std::size_t pending = 0;
  std::vector<std::int64_t> delivered;
  std::size_t failed = 0;
  std::string first_error;
  /// Per stream (a user's events on one topic): the first row that failed and the last
  /// one delivered in this batch. A failed stream's later rows are held back; a delivery
  /// past a failed row would break the order. Reports of one partition can arrive out of
  /// row order (after a fatal error the queued rows fail before the reply to the request
  /// in flight), so the rows' ids are compared, not the reports' order.
  struct Stream {
    std::int64_t first_failed = INT64_MAX;
    std::int64_t last_delivered = 0;
  };
  std::unordered_map<std::string, Stream> streams;
};

/// One ordered stream: a user's events on one topic.
std::string stream_of(const std::string& topic, const std::string& key) {
  std::string s;
  s.reserve(topic.size() + 1 + key.size());
  s.append(topic).push_back('\0');
  s.append(key);
  return s;
}

}  // namespace

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
    return;
  }
  {
    std::lock_guard lock(mark_mutex_);
    in_hand_.insert(ids.begin(), ids.end());
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
    for (auto id : ids) in_hand_.erase(id);
    mark_cv_.notify_all();
    if (!ok) {
      // Do not spin on a failing database: the rows wait in the outbox meanwhile.
      mark_cv_.wait_for(lock, options_.retry_backoff, [&] { return marker_stop_; });
    }
  }
}

void Relay::wait_marked() {
  std::unique_lock lock(mark_mutex_);
  while (!in_hand_.empty() && std::chrono::steady_clock::now() < give_up())
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
  give_up_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();  // a waiting batch stops waiting
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
  while (!stopping_) {
    const int n = publish_batch();
    if (draining_) {
      if (n == 0) {
        bool in_hand;
        {
          std::lock_guard lock(mark_mutex_);
          in_hand = !in_hand_.empty();
        }
        if (in_hand) {  // delivered; once marked (or freed by a failed mark) look again
          wait_marked();
          if (std::chrono::steady_clock::now() >= give_up()) return;
          continue;
        }
        drained_ = true;
        return;
      }
      if (std::chrono::steady_clock::now() >= give_up()) return;
      if (n < 0) std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(options_.retry_backoff, give_up() - std::chrono::steady_clock::now()));
      continue;
    }
    if (n > 0) continue;  // more may be waiting
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, n < 0 ? options_.retry_backoff : options_.idle_poll, [&] { return woken_ || stopping_.load() || draining_.load(); });
    woken_ = false;
  }
}

bool Relay::drain(std::chrono::milliseconds deadline) {
  // The running thread finishes the batch in hand (bounded by the deadline) and then
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

int Relay::publish_batch() {
  std::vector<storage::OutboxRecord> rows;
  try {
    // Another instance publishes while it holds the lease; this one waits its turn (it
    // reports "nothing to do", so drain ends at once: the holder drains the outbox).
    const bool holds = store_.hold_relay_lease();
    holds_lease_ = holds;
    if (!holds) return 0;
    // Rows delivered but still being marked are unpublished in the database: fetch past
    // them and leave them out. The copy is taken before the fetch, so a row whose mark
    // commits in between is either not fetched or still in the copy.
    std::unordered_set<std::int64_t> in_hand;
    {
      std::lock_guard lock(mark_mutex_);
      in_hand = in_hand_;
    }
    rows = store_.fetch_unpublished(options_.batch_size + static_cast<int>(in_hand.size()));
    if (!in_hand.empty())
      std::erase_if(rows, [&](const storage::OutboxRecord& r) { return in_hand.count(r.id) > 0; });
    if (rows.size() > static_cast<std::size_t>(options_.batch_size)) rows.resize(static_cast<std::size_t>(options_.batch_size));
  } catch (const std::exception& e) {
    spdlog::warn("outbox relay: reading the outbox: {}", e.what());
    note_error(std::string("reading the outbox: ") + e.what());
    return -1;
  }
  if (rows.empty()) {
    last_progress_ = {};  // idle is not a stall
    return 0;
  }

  auto state = std::make_shared<BatchState>();
  state->pending = rows.size();
  std::size_t held = 0;
  for (auto& r : rows) {
    auto stream = stream_of(r.topic, r.key);
    {
      // A row of this stream was refused (at once, or already reported): sending this one
      // now would put it before that row's retry. It waits for the next batch.
      std::lock_guard lock(state->mutex);
      if (auto it = state->streams.find(stream); it != state->streams.end() && it->second.first_failed < r.id) {
        ++held;
        if (--state->pending == 0) state->cv.notify_all();
        continue;
      }
    }
    kafka::OutgoingMessage msg{std::move(r.topic), std::move(r.key), std::move(r.payload),
                               kafka::event_headers(r.event_id, r.event_type, r.traceparent), std::nullopt};
    producer_.produce(std::move(msg), [state, id = r.id, stream = std::move(stream)](const kafka::DeliveryResult& d) mutable {
      std::lock_guard lock(state->mutex);
      auto& st = state->streams[std::move(stream)];
      if (d.ok()) {
        state->delivered.push_back(id);
        st.last_delivered = std::max(st.last_delivered, id);
      } else {
        if (state->failed++ == 0) state->first_error = d.error.to_string();
        st.first_failed = std::min(st.first_failed, id);
      }
      if (--state->pending == 0) state->cv.notify_all();
    });
  }
  std::vector<std::int64_t> delivered;
  std::size_t failed = 0;
  std::string first_error;
  {
    using Clock = std::chrono::steady_clock;
    if (last_progress_ == Clock::time_point{}) last_progress_ = Clock::now();
    std::size_t seen = 0;
    bool restarted = false;
    std::unique_lock lock(state->mutex);
    // In slices, so that a stop or drain that moves give_up_ is seen.
    while (state->pending > 0 && Clock::now() < give_up()) {
      state->cv.wait_for(lock, std::chrono::milliseconds(100));
      if (state->delivered.size() > seen) {
        seen = state->delivered.size();
        last_progress_ = Clock::now();
      } else if (!restarted && state->pending > 0 && Clock::now() - last_progress_ >= options_.stall_timeout) {
        // The purge reports every message still held, so the wait ends at once.
        lock.unlock();
        restarted = producer_.restart("nothing delivered for " + std::to_string(options_.stall_timeout.count()) + " ms");
        if (restarted) restarts_++;
        last_progress_ = Clock::now();
        lock.lock();
      }
    }
    delivered = state->delivered;
    failed = state->failed + state->pending;  // not reported by the deadline: retried later
    first_error = state->first_error;
    std::size_t violations = 0;
    for (const auto& [stream, st] : state->streams)
      if (st.last_delivered > st.first_failed && violations++ == 0)
        spdlog::error("outbox relay: outbox row {} was delivered after row {} of its user and topic failed: per-user order broken",
                      st.last_delivered, st.first_failed);
    if (violations > 0) {
      order_violations_ += violations;
      spdlog::error("outbox relay: {} user stream(s) delivered out of order in one batch", violations);
    }
  }
  batches_++;
  held_back_ += held;
  if (producer_.fatal()) {
    // Gapless: the client stopped rather than skip a failed request; everything it held
    // has failed. A new client (new producer id) sends those rows again, in order.
    fatal_++;
    if (producer_.restart("fatal error: " + (first_error.empty() ? std::string("see the log") : first_error))) restarts_++;
  }
  if (!delivered.empty()) mark_later(std::move(delivered));
  if (failed + held > 0) {
    failed_ += failed + held;
    if (first_error.empty()) first_error = "no delivery report in time";
    spdlog::warn("outbox relay: {} of {} events not published ({} held back behind a failed one of their user), retrying: {}",
                 failed + held, rows.size(), held, first_error);
    note_error(std::to_string(failed + held) + " of " + std::to_string(rows.size()) + " events not published: " + first_error);
    return -1;
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
