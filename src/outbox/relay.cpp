#include "outbox/relay.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

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
};

}  // namespace

Relay::Relay(storage::Store& store, kafka::Producer& producer, RelayOptions options)
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
  RelayStats st{published_.load(), failed_.load(), batches_.load(), restarts_.load(), holds_lease_.load(), {}, {}};
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
  for (auto& r : rows) {
    kafka::OutgoingMessage msg{std::move(r.topic), std::move(r.key), std::move(r.payload),
                               kafka::event_headers(r.event_id, r.event_type, r.traceparent), std::nullopt};
    producer_.produce(std::move(msg), [state, id = r.id](const kafka::DeliveryResult& d) {
      std::lock_guard lock(state->mutex);
      if (d.ok()) state->delivered.push_back(id);
      else if (state->failed++ == 0) state->first_error = d.error.to_string();
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
  }
  batches_++;
  if (!delivered.empty()) mark_later(std::move(delivered));
  if (failed > 0) {
    failed_ += failed;
    if (first_error.empty()) first_error = "no delivery report in time";
    spdlog::warn("outbox relay: {} of {} events not published, retrying: {}", failed, rows.size(), first_error);
    note_error(std::to_string(failed) + " of " + std::to_string(rows.size()) + " events not published: " + first_error);
    return -1;
  }
  return static_cast<int>(rows.size());
}

}  // namespace taskstream::outbox
