#include "outbox/relay.hpp"

#include <spdlog/spdlog.h>

#include <memory>

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
  thread_ = std::thread([this] { run(); });
}

void Relay::wake() noexcept {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  cv_.notify_one();
}

void Relay::stop() {
  stopping_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
}

RelayStats Relay::stats() const noexcept { return {published_.load(), failed_.load(), batches_.load()}; }

void Relay::run() {
  if (!producer_.enabled()) {
    spdlog::info("outbox relay: Kafka disabled, events stay in the outbox");
    return;
  }
  while (!stopping_) {
    int n = publish_batch(std::chrono::steady_clock::time_point::max());
    if (n > 0) continue;  // more may be waiting
    std::unique_lock lock(mutex_);
    auto wait = n < 0 ? options_.retry_backoff : options_.idle_poll;
    cv_.wait_for(lock, wait, [&] { return woken_ || stopping_.load(); });
    woken_ = false;
  }
}

bool Relay::drain(std::chrono::milliseconds deadline) {
  stop();  // the thread would compete for the same rows
  if (!producer_.enabled()) return true;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    int n = publish_batch(until);
    if (n == 0) return true;
    if (n < 0) std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(options_.retry_backoff, until - std::chrono::steady_clock::now()));
  }
  return false;
}

int Relay::publish_batch(std::chrono::steady_clock::time_point give_up) {
  std::vector<storage::OutboxRecord> rows;
  try {
    rows = store_.fetch_unpublished(options_.batch_size);
  } catch (const std::exception& e) {
    spdlog::warn("outbox relay: reading the outbox: {}", e.what());
    return -1;
  }
  if (rows.empty()) return 0;

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
    std::unique_lock lock(state->mutex);
    state->cv.wait_until(lock, give_up, [&] { return state->pending == 0; });
    delivered = state->delivered;
    failed = state->failed + state->pending;  // not reported by the deadline: retried later
    first_error = state->first_error;
  }
  batches_++;
  if (!delivered.empty()) {
    try {
      store_.mark_published(delivered);
      published_ += delivered.size();
    } catch (const std::exception& e) {
      // They are in Kafka; they will be sent again and deduplicated by event_id.
      spdlog::warn("outbox relay: marking {} rows published: {}", delivered.size(), e.what());
      return -1;
    }
  }
  if (failed > 0) {
    failed_ += failed;
    spdlog::warn("outbox relay: {} of {} events not published, retrying: {}", failed, rows.size(),
                 first_error.empty() ? "no delivery report in time" : first_error);
    return -1;
  }
  return static_cast<int>(rows.size());
}

}  // namespace taskstream::outbox
