#include "reminders/scheduler.hpp"

#include <spdlog/spdlog.h>

#include "events/cloudevents.hpp"
#include "events/events.hpp"

namespace taskstream::reminders {
namespace {

std::string utc_millis(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::system_clock::to_time_t(t);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

Scheduler::Scheduler(const config::Settings& settings, storage::ReminderStore& store, storage::OutboxStore& outbox,
                     std::function<void()> on_emitted, std::chrono::milliseconds interval)
    : settings_(settings), store_(store), outbox_(outbox), on_emitted_(std::move(on_emitted)), interval_(interval) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    auto next_prune = std::chrono::steady_clock::now();
    while (!stopping_) {
      lock.unlock();
      try {
        run_once();
        passes_.fetch_add(1, std::memory_order_relaxed);
      } catch (const std::exception& e) {
        spdlog::warn("reminders: {}", e.what());
      }
      if (std::chrono::steady_clock::now() >= next_prune) {
        // Outbox retention: published rows older than OUTBOX_RETENTION_HOURS go (a resume
        // from before them then answers recovered:false). Every 10 minutes is plenty.
        next_prune = std::chrono::steady_clock::now() + std::chrono::minutes(10);
        try {
          const auto cutoff = utc_millis(std::chrono::system_clock::now() - std::chrono::hours(settings_.outbox_retention_hours));
          if (auto n = outbox_.prune_outbox(cutoff)) spdlog::info("outbox: pruned {} published row(s) before {}", n, cutoff);
        } catch (const std::exception& e) {
          spdlog::warn("outbox pruning: {}", e.what());
        }
      }
      lock.lock();
      cv_.wait_for(lock, interval_, [&] { return stopping_; });
    }
  });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int Scheduler::run_once() {
  const auto now_tp = std::chrono::system_clock::now();
  const auto now = utc_millis(now_tp);
  const auto soon = utc_millis(now_tp + std::chrono::seconds(settings_.reminder_lead_seconds));
  int emitted = 0;
  for (const auto& [kind, until] : {std::pair<std::string, std::string>{"deadline_reminder", soon}, {"task_overdue", now}}) {
    for (const auto& task : store_.tasks_due_without_reminder(kind, until, 500)) {
      std::vector<storage::OutboxRecord> records;
      // A task first seen already overdue gets the overdue notice only; its "due soon"
      // reminder is recorded as spent without a message.
      if (!(kind == "deadline_reminder" && task.due_at && *task.due_at <= now)) {
        events::NotificationRequest r;
        r.event_id = events::new_event_id();
        r.user_id = task.user_id;
        r.task_id = task.id;
        r.type = kind;
        r.title = (kind == "task_overdue" ? "Overdue: " : "Due soon: ") + task.title;
        r.message = "\"" + task.title + "\" " + (kind == "task_overdue" ? "was due at " : "is due at ") + task.due_at.value_or("") + ".";
        r.channels = {"in_app", "email"};
        storage::OutboxRecord rec;
        rec.topic = settings_.kafka_topic_notification_request;
        rec.key = task.user_id;
        rec.payload = events::serialize(r);
        rec.event_id = r.event_id;
        rec.event_type = kind;
        rec.subject = task.id;
        rec.data_schema = events::current_schema("notification-request");
        records.push_back(std::move(rec));
      }
      if (store_.record_reminder(task, kind, records) && !records.empty()) ++emitted;
    }
  }
  if (emitted > 0) {
    spdlog::info("reminders: {} emitted", emitted);
    if (on_emitted_) on_emitted_();
  }
  return emitted;
}

void Scheduler::register_metrics(util::MetricsRegistry& metrics) {
  metrics.add_gauge("reminder_scheduler_passes_total", "Passes of the deadline-reminder scheduler that completed.", "counter",
                    [this] { return static_cast<double>(passes()); });
}

}  // namespace taskstream::reminders
