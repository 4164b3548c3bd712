#pragma once
// ConsumerRunner: one consumer-group member that hands batches of messages to a handler.
//
// Guarantees: an offset is stored (and later committed) only after every message before it
// on its partition was handled or dead-lettered, so a crash redelivers, never skips.
// Stored offsets are committed every second, and synchronously on revoke and on stop.
// A new group starts from the earliest offset.
//
// Failure handling: a handler that throws is retried with exponential backoff and jitter;
// NonRetriableError skips the retries. When a batch keeps failing, its messages are handled
// one by one to find the poison ones; those that still fail go to `<topic>.dlq` (with
// BatchContext::dead_letter a handler sends one there directly). The runner then goes on.
// A dead letter counts as handled only once the DLQ acknowledged it. The dead letters go
// through ConsumerOptions::dead_letter_producer, the process's one, when it is given.
// An outage (ConsumerOptions::is_outage: the database is down, full or read-only) is no
// message's fault: the batch is tried again (backoff up to 1 s) until it succeeds, the
// runner stops or its partitions are revoked, never isolated or dead-lettered, and its
// partitions stay paused meanwhile: nothing is taken and no offset stored until it is back.
//
// Slow handlers: the handler runs on a worker thread; while it is busy the poll thread
// pauses the assigned partitions and keeps polling, so the member stays in the group
// (max.poll.interval.ms) and rebalances are served.
//
// Wedged client: out of the group for rejoin_after, the member replaces its librdkafka
// client (nothing is in hand then; offsets not committed are read again and deduplicated).
//
// Lifecycle: construct, start(), stop() (or destroy). stop() lets the batch in hand finish
// (retries are cut short), commits, leaves the group, bounded by stop_deadline.
// Thread-safety: start/stop from one owning thread; stats() from any thread.
// The handler is called from one thread at a time (the worker).
// Blocking: start() builds the clients without waiting for the network; stop() waits for
// the batch in hand and the close, bounded by stop_deadline.
//
// Inside (kafka/impl/): consumer_client.hpp holds the librdkafka side (poll, pause, offsets,
// rebalances, lag, close, replacement), batch_policy.hpp what is done with a batch (attempts,
// isolation, DLQ) and the hand-off between the poll thread and the worker.

#include <any>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "kafka/client_config.hpp"
#include "kafka/dead_letter.hpp"
#include "kafka/message.hpp"

namespace taskstream::kafka {

/// A handler error that retrying cannot fix: the message goes to the DLQ at once.
class NonRetriableError : public std::runtime_error {
 public:
  NonRetriableError(std::string reason, const std::string& what) : std::runtime_error(what), reason_(std::move(reason)) {}
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string reason_;
};

class Producer;

namespace impl {
class BatchPolicy;
}

/// Given to the handler with each batch (on the worker thread; not to be kept after the
/// handler returns).
class BatchContext final {
 public:
  /// Sends batch[index] to the DLQ instead of treating it as handled; the rest of the
  /// batch counts as handled when the handler returns normally.
  void dead_letter(std::size_t index, std::string reason, std::string error_class, std::string detail);
  /// True when the runner is stopping: a long handler may cut its work short by throwing.
  bool stopping() const noexcept { return stopping_ && stopping_->load(); }
  /// What ConsumerOptions::prepare made of this very batch ahead of time, or null (no
  /// prepare hook, a batch gathered without it, or a handler called on a single message
  /// while the runner isolates a failure).
  template <typename T>
  const T* prepared() const noexcept {
    return prepared_ ? std::any_cast<T>(prepared_) : nullptr;
  }

 private:
  friend class impl::BatchPolicy;  // makes it, reads the dead letters (kafka/impl/batch_policy.hpp)
  struct Entry {
    std::size_t index;
    std::string reason, error_class, detail;
  };
  explicit BatchContext(const std::atomic<bool>* stopping) : stopping_(stopping) {}
  void clear() { dead_letters_.clear(); }
  void set_prepared(const std::any* prepared) noexcept { prepared_ = prepared && prepared->has_value() ? prepared : nullptr; }

  std::vector<Entry> dead_letters_;
  const std::atomic<bool>* stopping_;
  const std::any* prepared_ = nullptr;
};

using BatchHandler = std::function<void(std::span<const Message> batch, BatchContext& ctx)>;

struct ConsumerOptions {
  std::string group_id;
  std::vector<std::string> topics;
  std::string client_id = "taskstream";
  std::size_t max_batch = 500;
  std::chrono::milliseconds batch_wait{100};  ///< how long to gather a batch
  int max_attempts = 5;                       ///< per batch, then per message
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10'000};
  /// A batch in hand longer than this pauses the partitions while the poll goes on.
  std::chrono::milliseconds pause_after{500};
  std::chrono::milliseconds stop_deadline{15'000};
  Properties extra;  ///< extra librdkafka properties (tests, tuning)
  /// Optional pipelining: while the handler works on batch k, the poll thread gathers batch
  /// k+1 and runs `prepare` on it (pure CPU work such as parsing; no effects, and it must not
  /// throw); the handler finds the result in BatchContext::prepared(). Offsets are still
  /// stored only after the handler finished the batch.
  std::function<std::any(std::span<const Message>)> prepare;
  /// Start every newly assigned partition at its current end, resolved before the
  /// partitions count as assigned: once assigned_partitions() > 0, every message produced
  /// afterwards is consumed. (auto.offset.reset=latest alone resolves the end lazily, after
  /// the assignment, so a message produced in between is skipped.)
  bool start_at_end = false;
  /// Out of the group this long (no assignment since a revoke, a lost assignment or the
  /// start): the librdkafka client is replaced by a new member. Covers a client wedged by a
  /// librdkafka bug after a KRaft broker was fenced, while the cluster itself is up; with
  /// the cluster really down a new client costs nothing. The wait doubles after each
  /// replacement (up to 10 min) until a member is in again.
  std::chrono::milliseconds rejoin_after{60'000};
  /// How often librdkafka reports its statistics, from which the lag of each assigned
  /// partition is read (0: no lag figures).
  std::chrono::milliseconds stats_interval{1'000};
  /// True for a handler error that says a dependency is out (see the header comment);
  /// null: none is.
  std::function<bool(const std::exception&)> is_outage;
  /// Test hook (null in production): called on the poll thread with a batch whose every
  /// message was handled or dead-lettered, after the handler and before the batch's offsets
  /// are stored; the poll waits for it. The app layer installs TASKSTREAM_FAILPOINT with it
  /// (src/app/serve.cpp, docs/configuration.md).
  std::function<void(std::span<const Message> batch)> before_store_offsets;
  /// Where dead letters are written: the process's one producer (built with
  /// dead_letter_producer_options), shared by every runner and kept alive by each while it
  /// runs; its owner flushes and closes it after the last runner stopped. Null: the runner
  /// builds a producer of its own at start and drops it at stop (tests, benchmarks).
  std::shared_ptr<Producer> dead_letter_producer;
};

/// Adjusts a consumer's options before its runner is built: how the app layer hands its
/// test hooks to the consumers that others build (workers::Consumers, ws::Hub).
using ConsumerSetup = std::function<void(ConsumerOptions&)>;

struct ConsumerStats {
  std::uint64_t processed = 0;      ///< messages handled (not dead-lettered)
  std::uint64_t dead_lettered = 0;  ///< messages sent to a DLQ
  std::uint64_t retries = 0;        ///< handler attempts beyond the first
  std::uint64_t batches = 0;
  std::uint64_t rebalances = 0;
  std::uint64_t client_restarts = 0;  ///< clients replaced after rejoin_after out of the group
  std::uint64_t outage_retries = 0;   ///< attempts that failed on an outage (batch held, not counted in retries)
};

/// One partition's figures, for /metrics.
struct PartitionStats {
  std::string topic;
  std::int32_t partition = -1;
  std::uint64_t processed = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t retried = 0;  ///< handler attempts beyond the first, per message
  /// End offset (last stable) minus the group's committed offset, as librdkafka last
  /// reported it (every stats_interval); unset while the partition is not assigned here.
  /// Before the group's first commit: end minus the next offset to fetch.
  std::optional<std::int64_t> lag;
};

class ConsumerRunner final {
 public:
  ConsumerRunner(const config::Settings& settings, ConsumerOptions options, BatchHandler handler);
  ~ConsumerRunner();  ///< stop()
  ConsumerRunner(const ConsumerRunner&) = delete;
  ConsumerRunner& operator=(const ConsumerRunner&) = delete;

  /// Subscribes and starts the threads. Throws KafkaException on a bad configuration.
  void start();
  /// Bounded by stop_deadline; idempotent.
  void stop();
  /// Bounded by stop_deadline and by `until`, whichever comes first.
  void stop(std::chrono::steady_clock::time_point until);
  bool running() const noexcept;
  /// Partitions currently assigned to this member.
  std::size_t assigned_partitions() const noexcept;
  ConsumerStats stats() const noexcept;
  /// Every partition this member has handled or holds, by topic and partition.
  std::vector<PartitionStats> partition_stats() const;
  const std::string& group_id() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The delay before attempt `attempt` (2 = first retry): initial·2^(attempt-2), capped, with
/// ±25% jitter so members that failed together do not retry together.
std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds initial, std::chrono::milliseconds max,
                                        double jitter_unit /* 0..1 */);

}  // namespace taskstream::kafka
