#pragma once
// Outbox relay: publishes outbox rows to Kafka in id order (so in per-user order) with the
// idempotent producer, and marks a row published only on its delivery report.
//
// Several batches in flight (RelayOptions::max_batches_in_flight): the next batch is
// fetched and produced while the reports of the earlier ones come in, so the producer's
// queue never runs dry between batches. A fetch skips every row the relay holds (produced
// and not reported yet, or delivered and not yet marked: rows are marked published on a
// thread of their own), so nothing in flight is sent twice, and nothing else: a fetch is one
// look at the outbox (OutboxStore::fetch_unpublished_skipping), so a row committed late with
// a lower id than rows already sent (PostgreSQL assigns ids before commit) still goes out
// before any later row of its user, whose rows commit in id order.
//
// Per-user order on each topic (docs/reliability.md, "Per-user order"): rows are produced in
// id order, batch after batch, into one client. Every failed row is sent again, in id order,
// before any later row of its user on that topic:
// - the producer (relay_producer_options) never times a message out and is gapless, so
//   librdkafka retries a partition's messages in order until they are delivered, and an
//   error that would skip a failed request makes the client fatal: every later message of
//   the partition fails too, whichever batch it came in. The relay then replaces the
//   client (Producer::restart);
// - once any row in flight has failed, no further batch is fetched: the relay waits for
//   every report of the batches in flight, frees the failed rows, and the next fetch starts
//   again from the first unpublished row (the failed one), in id order;
// - a row refused at once (produce() reported an error) holds back the later rows of its
//   user on that topic in the batch being produced;
// - a row delivered although an earlier row of its user and topic failed while both were in
//   flight would break the order: such a stream is counted (order_violations, expected 0)
//   and logged as an error.
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
#include <memory>
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
  int batch_size = 5000;  ///< rows per fetch (at most 10,000)
  /// Batches produced and not yet fully reported, at most; the next one is fetched while
  /// the earlier ones are acknowledged. Bounds memory: rows held (in flight, or delivered and
  /// being marked) stay under 2 × max_batches_in_flight × batch_size. 1: one batch at a time.
  int max_batches_in_flight = 3;
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
  std::uint64_t batches = 0;  ///< batches fetched and produced
  std::uint64_t producer_restarts = 0;  ///< stalls and fatal errors that replaced the producer's client
  std::uint64_t fatal_errors = 0;       ///< of those, the client had stopped on a fatal error (gapless)
  /// Rows not produced in a batch because an earlier row of their user and topic had failed.
  std::uint64_t held_back = 0;
  /// User streams (a user's events on one topic) in which a row was delivered although an
  /// earlier row failed while both were in flight. The design makes this impossible; tests
  /// assert 0.
  std::uint64_t order_violations = 0;
  /// The most rows in flight (produced, not reported) when a failure was reported: more
  /// than batch_size means the failure hit several batches in flight.
  std::uint64_t in_flight_at_failure = 0;
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
  struct Window;  ///< the reports of the rows in flight (relay.cpp)
  void run();
  /// One round: settles a window with a failure, or waits for room, or fetches and produces
  /// a batch. Returns the rows produced (or 1 when it only waited), 0 when the outbox had
  /// nothing and nothing is in flight, -1 after a failure (settled: retry after a backoff).
  int step();
  /// Waits until at most `target` rows are unreported or give_up_ passes (false); replaces
  /// a stalled client meanwhile and hands delivered rows to the marker as they come.
  bool wait_window(std::size_t target);
  /// Every report is in and some row failed: frees the failed and held-back rows for the
  /// next fetch, counts violations, replaces a fatal client. Returns -1.
  int settle();
  /// Hands the rows reported delivered to the marker.
  void collect();
  std::chrono::steady_clock::time_point give_up() const noexcept;
  /// mark_published and the published count; false (logged) when the write failed.
  bool mark_now(const std::vector<std::int64_t>& ids);
  /// Hands delivered rows to the marker thread; they stay held until marked.
  void mark_later(std::vector<std::int64_t> ids);
  /// Waits until no row is held (all marked, or failed to be and free to be sent again).
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
  /// Until when the relay waits for reports (steady clock, ns); max while running.
  std::atomic<std::int64_t> give_up_ns_{INT64_MAX};
  std::atomic<std::uint64_t> published_{0}, failed_{0}, batches_{0}, restarts_{0}, fatal_{0}, held_back_{0}, order_violations_{0}, in_flight_at_failure_{0};
  std::atomic<bool> holds_lease_{false};
  mutable std::mutex error_mutex_;
  std::string last_error_, last_error_at_;
  void note_error(std::string what);
  /// Last successful delivery, or the start of waiting when none since (steady clock).
  std::chrono::steady_clock::time_point last_progress_{};
  std::shared_ptr<Window> window_;        ///< shared with the delivery callbacks; new at each run()
  std::vector<std::int64_t> held_back_ids_;  ///< not produced since the last settle (freed by it)
  std::uint64_t delivered_seen_ = 0;        ///< the window's delivered count at the last look

  // The marker: mark_published of delivered rows, off the publishing path. A change made
  // while a batch is being marked goes out in a later batch at once instead of waiting
  // for that write (which queues behind the API's commits).
  std::thread marker_;
  std::mutex mark_mutex_;
  std::condition_variable mark_cv_;
  std::vector<std::int64_t> to_mark_;  ///< delivered, not yet taken by the marker
  /// Fetched and not yet free: in flight, failed or held back until the next settle, or
  /// delivered and not yet marked. Every fetch skips them.
  std::unordered_set<std::int64_t> held_;
  bool marker_stop_ = false;
};

}  // namespace taskstream::outbox
