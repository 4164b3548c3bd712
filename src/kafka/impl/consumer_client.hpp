#pragma once
// Private: the librdkafka side of a ConsumerRunner (kafka/consumer_runner.hpp). One consumer
// handle and what only it knows: the subscription, the poll, pause and resume, the offset
// store, the rebalance callback, librdkafka's statistics (read into a lag per partition), a
// bounded close, and the replacement of a client wedged out of its group. What a revoke does
// with the batch in hand is the owner's business (ConsumerClient::Owner); the batch policy is
// in batch_policy.hpp.
//
// The rebalance and statistics callbacks find this object through the handle's own context
// (impl::callback_owner of librdkafka's opaque, see client.hpp), never through a global.
//
// Threading: one thread at a time drives the client: the poll thread while the runner runs,
// then the thread that stops it (close, destroy). The callbacks, and so every Owner method,
// run inside gather(), poll_once() and close() on that thread. assigned(), rebalances() and
// restarts() may be read from any thread.
// Blocking: gather() up to batch_wait; an assignment with start_at_end up to 15 s (the end
// offsets are read from the brokers); a revoke as long as Owner::on_revoke (the batch in
// hand, up to stop_deadline) plus a synchronous commit; close() up to its deadline, at most
// 5 s. The rest returns at once.

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kafka/consumer_runner.hpp"
#include "kafka/impl/client.hpp"

namespace taskstream::kafka::impl {

/// Lag per (topic, partition) fetched by this member.
using Lags = std::map<std::pair<std::string, std::int32_t>, std::int64_t>;

class ConsumerClient final {
 public:
  using Clock = std::chrono::steady_clock;

  /// What the client tells its owner. Called on the thread that drives the client.
  class Owner {
   public:
    /// Partitions were assigned: the member is in its group.
    virtual void on_assigned() = 0;
    /// A revoke, before its commit: finish the batch in hand (its offsets stored if it was
    /// handled) and drop the messages polled but not handed over.
    virtual void on_revoke() = 0;
    /// The revoke is done: nothing assigned, out of the group.
    virtual void on_revoked() = 0;
    /// A new client replaces this one: drop every message of the old one (nothing is in hand).
    virtual void on_replace() = 0;
    /// The lag of each partition being fetched (every stats_interval; empty on a revoke).
    virtual void on_lags(const Lags& lags) = 0;

   protected:
    ~Owner() = default;
  };

  /// `options` and `stopping` (a stop was requested) must outlive the client.
  ConsumerClient(const ConsumerOptions& options, const std::atomic<bool>& stopping, Owner& owner);
  ConsumerClient(const ConsumerClient&) = delete;
  ConsumerClient& operator=(const ConsumerClient&) = delete;

  /// Builds the librdkafka client from `props` (kept to build a replacement). Throws
  /// KafkaException on a bad configuration.
  void open(Properties props);
  /// Subscribes to the options' topics; the rejoin clock starts now. Throws KafkaException.
  void subscribe();
  /// Polls into `out` until it holds max_batch messages, a poll comes back empty (the first
  /// one waits up to batch_wait) or a stop is requested. Errors are logged, not returned.
  void gather(std::vector<Message>& out);
  /// One poll that does not wait (serves the callbacks and keeps the member alive); a message
  /// it returns is appended to `out`.
  void poll_once(std::vector<Message>& out);
  /// Pauses (or resumes) every assigned partition: paused ones fetch nothing.
  void set_paused(bool pause);
  /// Stores, per partition, the offset after the last of `msgs` (committed every second and
  /// on revoke and close). A partition revoked meanwhile is skipped: its new owner reads it again.
  void store_offsets(std::span<const Message> msgs);
  /// Out of the group for the rejoin wait (ConsumerOptions::rejoin_after, doubling after each
  /// replacement): replaces the client by a new member. Call between batches only.
  void replace_if_wedged();
  /// Closes the consumer (the revoke callback commits; the member leaves its group), served
  /// on this thread until `until`. True when the close finished.
  bool close(Clock::time_point until);
  /// Destroys the handle: without a second close when close() did not finish (that one
  /// would wait without a limit). Every Message of this client must be gone before.
  void destroy() noexcept;

  std::size_t assigned() const noexcept { return assigned_.load(); }
  std::uint64_t rebalances() const noexcept { return rebalances_.load(); }
  std::uint64_t restarts() const noexcept { return restarts_.load(); }

 private:
  Handle make_handle();
  void log_consumer_error(const rd_kafka_message_t* m) const;
  void resolve_ends(rd_kafka_t* handle, rd_kafka_topic_partition_list_t* parts);
  void on_rebalance(rd_kafka_t* handle, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
  void on_stats(std::string_view json);
  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque);
  static int stats_cb(rd_kafka_t* rk, char* json, std::size_t len, void* opaque);

  const ConsumerOptions& opt_;
  const std::atomic<bool>& stopping_;
  Owner& owner_;
  Properties props_;
  Handle rk_;
  bool closed_ = false;  ///< the last close() finished
  // Group membership, as the rebalance callback last saw it (the driving thread only).
  bool in_group_ = false;
  Clock::time_point out_of_group_since_{};
  // Out of the group this long → a new client. Doubles after each replacement (a new
  // member's join may itself wait for the old one's session to expire), back to
  // rejoin_after once a member is in.
  std::chrono::milliseconds rejoin_wait_{};
  std::atomic<std::size_t> assigned_{0};
  std::atomic<std::uint64_t> rebalances_{0}, restarts_{0};
};

}  // namespace taskstream::kafka::impl
