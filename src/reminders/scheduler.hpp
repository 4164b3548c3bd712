#pragma once
// Deadline reminders: every `interval` the scheduler emits, through the outbox, one
// `deadline_reminder` request per (task, due_at) once a not-done task is within
// REMINDER_LEAD_SECONDS of its due_at, and one `task_overdue` once due_at has passed.
// Moving due_at re-arms both (the record is per due_at); completing disarms them (done
// tasks are never picked). The record and the outbox row commit together, and the record's
// primary key makes a reminder go out once even with several instances running.
//
// Lifecycle: start(), stop(). Runs on its own thread; blocking DB calls stay there.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "config/settings.hpp"
#include "storage/roles.hpp"
#include "util/metrics.hpp"

namespace taskstream::reminders {

class Scheduler final {
 public:
  /// `on_emitted` runs after reminders were committed (wakes the outbox relay). `outbox` is
  /// pruned of published rows past OUTBOX_RETENTION_HOURS. Both stores must outlive it.
  Scheduler(const config::Settings& settings, storage::ReminderStore& store, storage::OutboxStore& outbox,
            std::function<void()> on_emitted,
            std::chrono::milliseconds interval = std::chrono::seconds(5));
  ~Scheduler();
  void start();
  void stop();
  /// One pass now (tests, and the loop); returns the reminders emitted.
  int run_once();
  /// Passes of the loop that completed (metric reminder_scheduler_passes_total): a test
  /// waits for two more instead of sleeping through them.
  std::uint64_t passes() const noexcept { return passes_.load(std::memory_order_relaxed); }
  /// Registers reminder_scheduler_passes_total.
  void register_metrics(util::MetricsRegistry& registry);

 private:
  const config::Settings& settings_;
  storage::ReminderStore& store_;
  storage::OutboxStore& outbox_;
  std::function<void()> on_emitted_;
  std::chrono::milliseconds interval_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> passes_{0};
};

}  // namespace taskstream::reminders
