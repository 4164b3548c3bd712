#pragma once
// Producer: idempotent, acks=all, keyed, with headers; deliveries are reported per message.
//
// Lifecycle: construct (connects lazily), produce from any thread, flush(deadline) on stop,
// destroy. A background thread serves delivery reports; callbacks run on it and must be
// quick and must not call flush().
// Thread-safety: every method is thread-safe.
// Blocking: produce() blocks only while the local queue is full (block_when_full), never on
// the network; send(...).get() waits for the broker's acknowledgement.
// KAFKA_ENABLED=false: nothing is sent; every delivery reports DISABLED at once.

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "config/settings.hpp"
#include "kafka/client_config.hpp"
#include "kafka/error.hpp"
#include "kafka/message.hpp"

namespace taskstream::kafka {

struct DeliveryResult {
  Error error;  ///< empty when delivered
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  bool ok() const noexcept { return !error; }
};
using DeliveryCallback = std::function<void(const DeliveryResult&)>;

class Producer final {
 public:
  explicit Producer(const config::Settings& settings, ProducerOptions options = {});
  ~Producer();  ///< close(10 s) unless closed already
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  /// Queues `msg`; `on_delivery` runs exactly once with the outcome. Never throws.
  void produce(OutgoingMessage msg, DeliveryCallback on_delivery);
  /// Queues `msg` and returns a future of its outcome.
  std::future<DeliveryResult> send(OutgoingMessage msg);
  /// Waits until every queued message is delivered or `deadline` passes; true when all were.
  bool flush(std::chrono::milliseconds deadline);
  /// Flushes up to `deadline`, then purges what is left (their callbacks report
  /// _PURGE_QUEUE / _PURGE_INFLIGHT) and stops the poll thread; later produces fail.
  /// Idempotent. Returns true when everything was delivered.
  bool close(std::chrono::milliseconds deadline);
  bool enabled() const noexcept;
  /// After a fatal error the producer refuses everything; the owner builds a new one.
  bool fatal() const noexcept;
  /// Replaces the librdkafka client with a new one built from the same properties. What
  /// the old one still held is purged first: those callbacks report _PURGE_QUEUE or
  /// _PURGE_INFLIGHT (an in-flight message may still have been written: its owner sends
  /// it again and consumers deduplicate by event_id). For a client that stopped
  /// delivering although the cluster is up (librdkafka issue #5430: a partition whose
  /// leader was briefly -1, as when KRaft fences a broker, is never produced to again).
  /// Must not be called from a delivery callback. False when the new client could not
  /// be built (the old one stays).
  bool restart(std::string_view why);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskstream::kafka
