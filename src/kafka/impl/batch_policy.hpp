#pragma once
// Private: the batch policy of a ConsumerRunner (kafka/consumer_runner.hpp), apart from the
// librdkafka client (consumer_client.hpp):
//
// - HandOff: the one batch in hand between the poll thread and the worker thread, as a
//   stage with explicit transitions.
// - BatchPolicy: what the worker does with a batch: one attempt loop (retries with backoff,
//   outages waited out, NonRetriableError not retried), used for the whole batch and, when
//   that keeps failing, for each message alone (isolation); then the DLQ, waiting for its
//   acknowledgements. The guarantees are stated in consumer_runner.hpp.
// - PartitionFigures: the per-partition counters and lags for /metrics.
//
// Threading and blocking: each class says it below.

#include <any>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "kafka/consumer_runner.hpp"
#include "kafka/dead_letter.hpp"
#include "kafka/producer.hpp"

namespace taskstream::kafka::impl {

/// The batch in hand. Transitions:
///   idle ──hand (poll)──▶ handed ──finish (worker)──▶ completed | abandoned ──settle (poll)──▶ idle
///   any ──close (stop, once the poll thread is gone)──▶ closed ──open (start)──▶ idle
/// The worker only reads the batch, and only while it is handed; the poll thread changes it
/// only while it is not. Thread-safe; take() and wait_done() block, the rest does not.
class HandOff final {
 public:
  enum class Stage {
    idle,       ///< no batch: the poll thread gathers the next one
    handed,     ///< the worker is handling the batch
    completed,  ///< every message handled or dead-lettered: its offsets are to be stored
    abandoned,  ///< cut short (stop or revoke): nothing of it is stored
    closed,     ///< the runner stopped: the worker returns
  };

  void open();
  /// Poll thread: idle → handed.
  void hand(std::vector<Message> batch, std::any prepared);
  /// True while the worker handles a batch.
  bool busy() const;
  /// Poll thread: waits up to `timeout` for the worker to finish the batch; true when it is
  /// no longer handed.
  bool wait_done(std::chrono::milliseconds timeout);
  /// Poll thread (or a revoke): completed | abandoned → idle. Returns the batch when it was
  /// completed (its offsets to store), nothing otherwise (nothing finished, or abandoned).
  std::vector<Message> settle();
  void close();

  /// Worker: waits for a batch; false once closed. The span and `prepared` (null when none
  /// was made) stay valid until finish().
  bool take(std::span<const Message>& batch, const std::any*& prepared);
  /// Worker: handed → completed (true) or abandoned (false).
  void finish(bool completed);

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  Stage stage_ = Stage::idle;
  std::vector<Message> batch_;
  std::any prepared_;  ///< ConsumerOptions::prepare of batch_, or empty
};

/// Per-partition figures for /metrics: counters from the worker, lags from the statistics
/// callback. Thread-safe (one mutex); nothing blocks.
class PartitionFigures final {
 public:
  struct Counts {
    std::uint64_t processed = 0, dead_lettered = 0, retried = 0;
    std::optional<std::int64_t> lag;
  };
  using Field = std::uint64_t Counts::*;

  /// Adds 1 to `field` of each message's partition (all of msgs, or those `pick` keeps).
  template <typename Pick>
  void count(std::span<const Message> msgs, Field field, Pick pick) {
    std::lock_guard lock(mutex_);
    std::string_view last_topic;
    std::int32_t last_partition = -1;
    Counts* f = nullptr;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
      if (!pick(i)) continue;
      const auto& m = msgs[i];
      if (!f || m.partition() != last_partition || m.topic() != last_topic) {
        f = &figures_[{std::string(m.topic()), m.partition()}];
        last_topic = m.topic();
        last_partition = m.partition();
      }
      ++(f->*field);
    }
  }
  void count_all(std::span<const Message> msgs, Field field) {
    count(msgs, field, [](std::size_t) { return true; });
  }
  /// Replaces every partition's lag: those not in `lags` are no longer assigned here.
  void set_lags(const std::map<std::pair<std::string, std::int32_t>, std::int64_t>& lags);
  std::vector<PartitionStats> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::int32_t>, Counts> figures_;
};

/// Handles the batches the worker takes. Worker thread only, except open_dlq/close_dlq
/// (start and stop, while the worker waits) and the counters (any thread).
/// Blocking: handle() runs the handler, sleeps through backoffs and outages and waits for
/// the DLQ's acknowledgements; `abort_retries` cuts the waits short.
class BatchPolicy final {
 public:
  /// Everything given must outlive the policy. `stopping`: a stop was requested (what
  /// BatchContext::stopping tells a handler); `abort_retries`: cut retries short (stop, revoke).
  BatchPolicy(const ConsumerOptions& options, const BatchHandler& handler, PartitionFigures& figures,
              const std::atomic<bool>& stopping, const std::atomic<bool>& abort_retries);
  ~BatchPolicy();
  BatchPolicy(const BatchPolicy&) = delete;
  BatchPolicy& operator=(const BatchPolicy&) = delete;

  /// Takes ConsumerOptions::dead_letter_producer, or builds a producer of its own when none
  /// is given. Throws KafkaException on a bad configuration.
  void open_dlq(const config::Settings& settings);
  /// Lets go of the DLQ producer: one of its own is flushed first (up to `deadline`); the
  /// shared one is left to its owner. Nothing of this runner's is in flight by then either
  /// way: handle() waits for each dead letter's acknowledgement.
  void close_dlq(std::chrono::milliseconds deadline);

  /// Handles a batch: true when every message was handled or dead-lettered, false when it
  /// was abandoned (stop or revoke during retries): then nothing of it is stored.
  /// `prepared`: ConsumerOptions::prepare of this batch, or null.
  bool handle(std::span<const Message> msgs, const std::any* prepared);

  std::atomic<std::uint64_t> processed{0}, dead_lettered{0}, retries{0}, outage_retries{0};

 private:
  /// A failed message on its way to the DLQ.
  struct Failure {
    std::size_t index;
    DeadLetterInfo info;
  };
  /// How trying a batch (or one message) ended.
  struct Tried;
  Tried attempt(std::span<const Message> msgs, const std::any* prepared, bool whole_batch);
  bool isolate(std::span<const Message> msgs);
  /// The dead letter of a message whose attempts failed (permanent or retries exhausted).
  static DeadLetterInfo failed_info(const Message& m, const Tried& tried);
  bool deliver(std::span<const Message> msgs, std::vector<Failure> failures);
  /// Counts and logs the messages `handled` keeps as handled.
  template <typename Pick>
  void handled(std::span<const Message> msgs, Pick pick);
  bool backoff(int attempt);
  bool is_outage(const std::exception& e) const { return opt_.is_outage && opt_.is_outage(e); }
  bool wait_out_outage(std::size_t messages, const std::exception& e);
  void outage_over();
  /// Sleeps until `until`; false when abort_retries cut it short.
  bool sleep_until(std::chrono::steady_clock::time_point until) const;

  const ConsumerOptions& opt_;
  const BatchHandler& handler_;
  PartitionFigures& figures_;
  const std::atomic<bool>& stopping_;
  const std::atomic<bool>& abort_retries_;
  std::shared_ptr<Producer> dlq_;
  bool own_dlq_ = false;  ///< dlq_ was built here (no ConsumerOptions::dead_letter_producer)
  std::mt19937_64 rng_{std::random_device{}()};
  // The outage in progress: attempts so far and when it was last logged.
  int outage_attempts_ = 0;
  std::chrono::steady_clock::time_point outage_logged_{};
};

}  // namespace taskstream::kafka::impl
