#include "kafka/producer.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "kafka/impl/client.hpp"

namespace taskstream::kafka {

struct Producer::Impl {
  Properties props;
  // The client. Swapped by restart() under the unique lock; every other use holds the
  // shared lock (the poll thread does not: restart stops it first).
  mutable std::shared_mutex mutex;
  impl::Handle handle;
  std::thread poller;
  std::atomic<bool> poller_stop{false};
  std::atomic<bool> stopping{false};
  std::mutex restart_mutex;  // one restart (or close) at a time
  bool enabled = true;
  bool block_when_full = true;

  impl::Handle make() const {
    return impl::make_client(RD_KAFKA_PRODUCER, props, [](rd_kafka_conf_t* conf) { rd_kafka_conf_set_dr_msg_cb(conf, &Impl::on_delivery); });
  }
  void start_poller() {
    poller_stop = false;
    poller = std::thread([this, rk = handle.get()] {
      while (!poller_stop.load(std::memory_order_relaxed)) rd_kafka_poll(rk, 100);
    });
  }
  void stop_poller() {
    poller_stop = true;
    if (poller.joinable()) poller.join();
  }
  /// Messages queued or in flight.
  std::size_t in_flight() const noexcept {
    std::shared_lock lock(mutex);
    return static_cast<std::size_t>(rd_kafka_outq_len(handle.get()));
  }
  /// Purges what `rk` still holds and serves the callbacks that reports, so that every
  /// message's callback runs exactly once and nothing leaks.
  static void purge_all(rd_kafka_t* rk) {
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    do rd_kafka_poll(rk, 10);
    while (rd_kafka_outq_len(rk) > 0 && std::chrono::steady_clock::now() < until);
  }

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    std::unique_ptr<DeliveryCallback> cb(static_cast<DeliveryCallback*>(m->_private));
    if (!cb || !*cb) return;
    DeliveryResult r;
    if (m->err) {
      r.error = impl::make_error(m->err, "delivery to " + std::string(rd_kafka_topic_name(m->rkt)));
    } else {
      r.partition = m->partition;
      r.offset = m->offset;
    }
    try {
      (*cb)(r);
    } catch (const std::exception& e) {
      spdlog::error("delivery callback threw: {}", e.what());
    }
  }
};


Producer::Producer(const config::Settings& settings, ProducerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->enabled = settings.kafka_enabled;
  impl_->block_when_full = options.block_when_full;
  if (!impl_->enabled) return;
  impl_->props = producer_properties(settings, resolve_bootstrap(settings), options);
  impl_->handle = impl_->make();
  impl_->start_poller();
}

Producer::~Producer() { close(std::chrono::seconds(10)); }

bool Producer::close(std::chrono::milliseconds deadline) {
  if (!impl_->enabled || impl_->stopping.exchange(true)) return true;
  std::lock_guard restart_lock(impl_->restart_mutex);
  std::shared_lock lock(impl_->mutex);
  // New produces are refused from here on; flush serves the delivery reports itself.
  const bool delivered = rd_kafka_flush(impl_->handle.get(), static_cast<int>(deadline.count())) == RD_KAFKA_RESP_ERR_NO_ERROR;
  if (!delivered) spdlog::warn("producer closed with {} message(s) undelivered", rd_kafka_outq_len(impl_->handle.get()));
  impl_->stop_poller();
  // What is left is purged so that its callbacks run and nothing leaks; the owners (the
  // outbox) keep those events for the next attempt.
  Impl::purge_all(impl_->handle.get());
  return delivered;
}

bool Producer::restart(std::string_view why) {
  if (!impl_->enabled || impl_->stopping.load()) return false;
  std::lock_guard restart_lock(impl_->restart_mutex);
  if (impl_->stopping.load()) return false;
  impl::Handle fresh;
  try {
    fresh = impl_->make();
  } catch (const std::exception& e) {
    spdlog::error("producer: restart failed, keeping the current client: {}", e.what());
    return false;
  }
  const std::size_t held = impl_->in_flight();
  spdlog::warn("producer: replacing the Kafka client ({}); {} message(s) it holds are purged and sent again", why, held);
  impl_->stop_poller();
  // Unblocks a produce() waiting on a full queue, so that the unique lock can be taken.
  rd_kafka_purge(impl_->handle.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  impl::Handle old;
  {
    std::unique_lock lock(impl_->mutex);
    old = std::exchange(impl_->handle, std::move(fresh));
  }
  impl_->start_poller();
  Impl::purge_all(old.get());
  old.reset();
  return true;
}

void Producer::produce(OutgoingMessage msg, DeliveryCallback on_delivery) {
  auto fail = [&](Error e) {
    if (on_delivery) {
      DeliveryResult r;
      r.error = std::move(e);
      on_delivery(r);
    }
  };
  if (!impl_->enabled) return fail(Error(errc::disabled, "KAFKA_ENABLED=false: not published", false, false));
  if (impl_->stopping.load()) return fail(Error(errc::closed, "producer is closed", false, false));
  // A producer in a fatal state refuses the message itself (RD_KAFKA_RESP_ERR__FATAL, below):
  // no separate check (and lock) per message.

  rd_kafka_headers_t* hdrs = nullptr;
  if (!msg.headers.empty()) {
    hdrs = rd_kafka_headers_new(msg.headers.size());
    for (const auto& h : msg.headers)
      rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(), static_cast<ssize_t>(h.value.size()));
  }
  auto* cb = new DeliveryCallback(std::move(on_delivery));
  int flags = RD_KAFKA_MSG_F_COPY | (impl_->block_when_full ? RD_KAFKA_MSG_F_BLOCK : 0);
  std::shared_lock lock(impl_->mutex);
  rd_kafka_resp_err_t err = rd_kafka_producev(
      impl_->handle.get(), RD_KAFKA_V_TOPIC(msg.topic.c_str()),
      RD_KAFKA_V_PARTITION(msg.partition.value_or(RD_KAFKA_PARTITION_UA)), RD_KAFKA_V_MSGFLAGS(flags),
      RD_KAFKA_V_KEY(msg.key.empty() ? nullptr : msg.key.data(), msg.key.size()),
      RD_KAFKA_V_VALUE(msg.payload.data(), msg.payload.size()), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(cb),
      RD_KAFKA_V_END);
  lock.unlock();
  if (err) {
    // On failure the headers and the opaque stay ours.
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    std::unique_ptr<DeliveryCallback> owned(cb);
    DeliveryResult r;
    r.error = err == RD_KAFKA_RESP_ERR__FATAL ? Error(err, "producer is in a fatal state", false, true) : impl::make_error(err, "produce to " + msg.topic);
    if (*owned) (*owned)(r);
  }
}

std::future<DeliveryResult> Producer::send(OutgoingMessage msg) {
  auto promise = std::make_shared<std::promise<DeliveryResult>>();
  auto fut = promise->get_future();
  produce(std::move(msg), [promise](const DeliveryResult& r) { promise->set_value(r); });
  return fut;
}

bool Producer::flush(std::chrono::milliseconds deadline) {
  if (!impl_->enabled) return true;
  // rd_kafka_flush polls too; callbacks may then run on this thread as well as the poller.
  std::shared_lock lock(impl_->mutex);
  return rd_kafka_flush(impl_->handle.get(), static_cast<int>(deadline.count())) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

bool Producer::enabled() const noexcept { return impl_->enabled; }
bool Producer::fatal() const noexcept {
  if (!impl_->enabled) return false;
  std::shared_lock lock(impl_->mutex);
  return rd_kafka_fatal_error(impl_->handle.get(), nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

}  // namespace taskstream::kafka
