#include "kafka/consumer_runner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "kafka/impl/batch_policy.hpp"
#include "kafka/impl/consumer_client.hpp"

namespace taskstream::kafka {

void BatchContext::dead_letter(std::size_t index, std::string reason, std::string error_class, std::string detail) {
  dead_letters_.push_back({index, std::move(reason), std::move(error_class), std::move(detail)});
}

std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds initial, std::chrono::milliseconds max,
                                        double jitter_unit) {
  const int exp = std::clamp(attempt - 2, 0, 30);
  const double base = std::min<double>(static_cast<double>(initial.count()) * std::ldexp(1.0, exp), static_cast<double>(max.count()));
  const double jittered = base * (0.75 + 0.5 * std::clamp(jitter_unit, 0.0, 1.0));
  return std::chrono::milliseconds(static_cast<std::int64_t>(jittered));
}

namespace {

using Clock = std::chrono::steady_clock;

/// A healthy close (a synchronous commit and a LeaveGroup) takes well under a second.
constexpr std::chrono::seconds kCloseTimeout{5};

}  // namespace

/// The poll thread and the worker thread around one HandOff: the poll thread drives the
/// client (impl::ConsumerClient, whose owner this is) and hands batches over; the worker
/// runs them through the policy (impl::BatchPolicy).
struct ConsumerRunner::Impl final : impl::ConsumerClient::Owner {
  Impl(const config::Settings& s, ConsumerOptions o, BatchHandler h) : settings(s), opt(std::move(o)), handler(std::move(h)) {
    if (opt.max_attempts < 1) opt.max_attempts = 1;
    if (opt.max_batch < 1) opt.max_batch = 1;
  }

  config::Settings settings;
  ConsumerOptions opt;
  BatchHandler handler;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> abort_retries{false};  // cuts backoff sleeps short (stop, revoke)
  std::atomic<bool> running{false};
  std::atomic<std::uint64_t> batches{0};
  impl::PartitionFigures figures;
  impl::BatchPolicy policy{opt, handler, figures, stop_requested, abort_retries};
  impl::ConsumerClient client{opt, stop_requested, *this};
  // Declared after the client: its messages go before its handle.
  impl::HandOff handoff;
  // Poll thread only: messages the poll returned while a batch was in hand, and
  // opt.prepare of exactly those (empty when not made or stale).
  std::vector<Message> carry;
  std::any carry_prepared;
  std::size_t carry_prepared_size = 0;
  std::thread poll_thread;
  std::thread worker_thread;

  // ---- poll thread -------------------------------------------------------------------

  void poll_loop() {
    while (!stop_requested.load()) {
      client.replace_if_wedged();
      std::vector<Message> next = std::move(carry);
      std::any prepared;
      if (carry_prepared.has_value() && carry_prepared_size == next.size()) prepared = std::move(carry_prepared);
      clear_carry();
      if (!prepared.has_value()) client.gather(next);  // a prepared batch goes as it is
      if (next.empty()) continue;
      run_batch(std::move(next), std::move(prepared));
    }
  }

  void clear_carry() {
    carry.clear();
    carry_prepared.reset();
    carry_prepared_size = 0;
  }

  /// With a prepare hook: gathers the next batch while the worker handles this one, and
  /// prepares it.
  void prefetch() {
    if (!opt.prepare || carry_prepared.has_value()) return;
    client.gather(carry);
    if (carry.empty() || stop_requested.load()) return;
    carry_prepared = opt.prepare(std::span<const Message>(carry.data(), carry.size()));
    carry_prepared_size = carry.size();
  }

  void run_batch(std::vector<Message> msgs, std::any prepared) {
    handoff.hand(std::move(msgs), std::move(prepared));
    const auto started = Clock::now();
    prefetch();
    bool paused = false;
    for (;;) {
      const auto wait = paused ? std::chrono::milliseconds(100)
                               : std::max(std::chrono::milliseconds(1),
                                          opt.pause_after - std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started));
      if (handoff.wait_done(wait)) break;
      if (stop_requested.load()) abort_retries = true;
      if (!paused && Clock::now() - started >= opt.pause_after) {
        client.set_paused(true);
        paused = true;
        spdlog::debug("consumer {}: handler busy for {} ms, partitions paused", opt.group_id, opt.pause_after.count());
      }
      if (paused) client.poll_once(carry);  // keeps the member alive and serves rebalances; paused partitions fetch nothing
    }
    settle();
    if (paused) client.set_paused(false);
    batches++;
  }

  /// Stores the offsets of a completed batch, once. Called by the poll thread after the
  /// worker finished, or from the revoke callback.
  void settle() {
    const auto done = handoff.settle();
    if (done.empty()) return;
    if (opt.before_store_offsets) opt.before_store_offsets(std::span<const Message>(done.data(), done.size()));
    client.store_offsets(done);
  }

  // ---- client callbacks (on the thread that drives the client) -------------------------

  void on_assigned() override { abort_retries = stop_requested.load(); }

  void on_revoke() override {
    // Let the batch in hand finish, with its retries cut short, so what it handled is
    // committed before another member takes over.
    if (handoff.busy()) {
      abort_retries = true;
      handoff.wait_done(opt.stop_deadline);
    }
    settle();
    clear_carry();  // the next owner reads them from the committed offset
  }

  void on_revoked() override {
    if (!stop_requested.load()) abort_retries = false;
  }

  void on_replace() override { clear_carry(); }

  void on_lags(const impl::Lags& lags) override { figures.set_lags(lags); }

  // ---- worker thread -----------------------------------------------------------------

  void worker_loop() {
    std::span<const Message> batch;
    const std::any* prepared = nullptr;
    while (handoff.take(batch, prepared)) {
      bool completed = false;
      try {
        completed = policy.handle(batch, prepared);
      } catch (const std::exception& e) {
        spdlog::error("consumer {}: batch abandoned: {}", opt.group_id, e.what());
      }
      handoff.finish(completed);
    }
  }
};

ConsumerRunner::ConsumerRunner(const config::Settings& settings, ConsumerOptions options, BatchHandler handler)
    : impl_(std::make_unique<Impl>(settings, std::move(options), std::move(handler))) {}

ConsumerRunner::~ConsumerRunner() { stop(); }

void ConsumerRunner::start() {
  auto& d = *impl_;
  if (d.running) return;
  if (!d.settings.kafka_enabled) {
    spdlog::info("Kafka disabled, consumer {} not started", d.opt.group_id);
    return;
  }
  const auto bootstrap = resolve_bootstrap(d.settings);
  ConsumerProperties cp{d.opt.group_id, d.opt.client_id, d.opt.extra};
  auto props = consumer_properties(d.settings, bootstrap, cp);
  if (d.opt.stats_interval.count() > 0) props.insert(props.begin(), {"statistics.interval.ms", std::to_string(d.opt.stats_interval.count())});
  d.client.open(std::move(props));
  d.policy.open_dlq(d.settings);
  d.client.subscribe();
  d.stop_requested = false;
  d.abort_retries = false;
  d.handoff.open();
  d.running = true;
  d.worker_thread = std::thread([&d] { d.worker_loop(); });
  d.poll_thread = std::thread([&d] { d.poll_loop(); });
}

void ConsumerRunner::stop() {
  if (impl_) stop(Clock::now() + impl_->opt.stop_deadline);
}

void ConsumerRunner::stop(Clock::time_point until) {
  if (!impl_ || !impl_->running.exchange(false)) return;
  auto& d = *impl_;
  const auto deadline = std::min(until, Clock::now() + d.opt.stop_deadline);
  d.stop_requested = true;
  d.abort_retries = true;
  d.poll_thread.join();  // returns after the batch in hand finished (retries cut short)
  // Messages fetched but not handled are dropped (their offsets were not stored, so the
  // next member reads them again); they must go before the handle does.
  d.clear_carry();
  // Close commits what was stored (through the revoke callback) and leaves the group. It
  // runs on a queue served here, bounded: rd_kafka_consumer_close waits without a limit, and a
  // client wedged out of its group (librdkafka#5430, a broker fenced on resume) kept a
  // stopping `serve` past its deadline. A close cut short leaves offsets uncommitted; the
  // next member reads those messages again and the handlers absorb the copies.
  d.client.close(std::min(deadline, Clock::now() + kCloseTimeout));
  d.handoff.close();
  d.worker_thread.join();
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  d.policy.close_dlq(std::max(left, std::chrono::milliseconds(100)));
  d.client.destroy();
}

bool ConsumerRunner::running() const noexcept { return impl_->running.load(); }
std::size_t ConsumerRunner::assigned_partitions() const noexcept { return impl_->client.assigned(); }

ConsumerStats ConsumerRunner::stats() const noexcept {
  const auto& d = *impl_;
  return {d.policy.processed.load(), d.policy.dead_lettered.load(), d.policy.retries.load(),  d.batches.load(),
          d.client.rebalances(),     d.client.restarts(),           d.policy.outage_retries.load()};
}

std::vector<PartitionStats> ConsumerRunner::partition_stats() const { return impl_->figures.snapshot(); }

const std::string& ConsumerRunner::group_id() const noexcept { return impl_->opt.group_id; }

}  // namespace taskstream::kafka
