#pragma once
// Outbox relay: publishes outbox rows to Kafka in id order (so in per-user order) with the
// idempotent producer, and marks a row published only on its delivery report.
//
// Per-user order on each topic (docs/reliability.md, "Per-user order"): a batch is produced
// in id order and the next batch waits for this one's reports (not for their
// mark_published: rows are marked on a thread of their own while the next batch goes out,
// and the next fetch skips rows still being marked). Every failed row is sent again, in id
// order, before any later row of its user on that topic:
// - the producer (relay_producer_options) never times a message out and is gapless, so
//   librdkafka retries a partition's messages in order until they are delivered, and an
//   error that would skip a failed request makes the client fatal: every later message of
//   the partition fails too. The relay then replaces the client (Producer::restart);
// - a row refused at once (produce() reported an error) holds back the later rows of its
//   user on that topic for this batch;
// - a row delivered although an earlier row of its user and topic failed in the same batch
//   would break the order: such a stream is counted (order_violations, expected 0) and
//   logged as an error.
// A crash between a delivery and mark_published, or a purge of requests in flight that the
// broker may still have written, republishes those rows with the same event_id; consumers
// apply each event_id once, so each user's events are applied in seq order.
//
// Kafka down: rows stay unpublished and are retried; writes never wait.
// Stalled producer: nothing delivered for stall_timeout while rows wait → the producer's
// client is replaced and the rows not acknowledged are sent again (same event_id).
// Lifecycle: start(); wake() after each commit; drain(deadline) then stop() on shutdown.
// Thread-safety: wake() and stats() from any thread; start/drain/stop from the owner.
// Blocking: the relay runs on its own thread; drain() blocks up to its deadline.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "kafka/producer.hpp"
#include "storage/roles.hpp"
#include "util/metrics.hpp"

namespace taskstream::outbox {

struct RelayOptions {
  int batch_size = 5000;  ///< rows per fetch; each batch waits for its acks, so bigger drains faster
  std::chrono::milliseconds idle_poll{200};     ///< poll interval when nobody wakes the relay
  std::chrono::milliseconds retry_backoff{1000};  ///< after a failed batch or DB error
  /// No message delivered for this long while some wait: the producer's client is
  /// replaced (Producer::restart). Covers a client wedged by a librdkafka bug while the
  /// cluster is up; while the cluster is really down a restart costs nothing.
  std::chrono::milliseconds stall_timeout{30'000};
};

/// The producer the relay needs: no message timeout, gapless (see the header comment).
kafka::ProducerOptions relay_producer_options();

struct RelayStats {
  std::uint64_t published = 0;
  std::uint64_t failed = 0;  ///< delivery failures and held-back rows (retried later)
  std::uint64_t batches = 0;
  std::uint64_t producer_restarts = 0;  ///< stalls and fatal errors that replaced the producer's client
  std::uint64_t fatal_errors = 0;       ///< of those, the client had stopped on a fatal error (gapless)
  /// Rows not produced in a batch because an earlier row of their user and topic was refused.
  std::uint64_t held_back = 0;
  /// User streams (a user's events on one topic) in which a row was delivered although an
  /// earlier row failed in the same batch. The design makes this impossible; tests assert 0.
  std::uint64_t order_violations = 0;
  /// This instance held the relay lease at its last look (PostgreSQL: one instance publishes).
  bool holds_lease = false;
  /// The last failure (delivery or outbox read) and when (RFC 3339 UTC); empty when none yet.
  std::string last_error, last_error_at;
};

class Relay final {
 public:
  Relay(storage::OutboxStore& store, kafka::Producer& producer, RelayOptions options = {});
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  void start();
  /// A change was committed: look at the outbox now rather than at the next poll.
  void wake() noexcept;
  /// Publishes until the outbox is empty or `deadline` passes; true when it emptied.
  bool drain(std::chrono::milliseconds deadline);
  void stop();
  RelayStats stats() const noexcept;
  /// Registers the outbox's metrics: events waiting and the oldest one's age (read from the
  /// store at each scrape), and the relay's counters (docs/operations.md, "Metrics").
  void register_metrics(util::MetricsRegistry& registry);

 private:
  void run();
  /// One batch; returns the rows it found (0: outbox empty), or -1 after a failure. Waits
  /// for the batch's delivery reports until they are in or give_up_ passes.
  int publish_batch();
  std::chrono::steady_clock::time_point give_up() const noexcept;
  /// mark_published and the published count; false (logged) when the write failed.
  bool mark_now(const std::vector<std::int64_t>& ids);
  /// Hands delivered rows to the marker thread; they count as in hand until marked.
  void mark_later(std::vector<std::int64_t> ids);
  /// Waits until every handed row is marked (or failed to be, and is free to be sent again).
  void wait_marked();
  void marker_run();

  storage::OutboxStore& store_;
  kafka::Producer& producer_;
  RelayOptions options_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool woken_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> drained_{false};
  /// Until when a batch waits for its reports (steady clock, ns); max while running.
  std::atomic<std::int64_t> give_up_ns_{INT64_MAX};
  std::atomic<std::uint64_t> published_{0}, failed_{0}, batches_{0}, restarts_{0}, fatal_{0}, held_back_{0}, order_violations_{0};
  std::atomic<bool> holds_lease_{false};
  mutable std::mutex error_mutex_;
  std::string last_error_, last_error_at_;
  void note_error(std::string what);
  /// Last successful delivery, or the start of waiting when none since (steady clock).
  std::chrono::steady_clock::time_point last_progress_{};

  // The marker: mark_published of delivered rows, off the publishing path. A change made
  // while a batch is being marked goes out in the next batch at once instead of waiting
  // for that write (which queues behind the API's commits).
  std::thread marker_;
  std::mutex mark_mutex_;
  std::condition_variable mark_cv_;
  std::vector<std::int64_t> to_mark_;              ///< delivered, not yet taken by the marker
  std::unordered_set<std::int64_t> in_hand_;       ///< delivered, not yet marked (skip on fetch)
  bool marker_stop_ = false;
};

}  // namespace taskstream::outbox
