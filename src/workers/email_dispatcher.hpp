#pragma once
// The email queue's sender. The notification consumer only records a notification (email
// channel `pending`) and wakes the dispatcher; the dispatcher claims due emails from the
// store, sends them over SMTP and records the outcome. So SMTP being slow or down never
// holds up a Kafka partition or the consumer's poll loop: the consumer keeps committing, and
// the queue in the database is what waits.
//
// A transient failure (no connection, timeout, 4xx) reschedules the email with exponential
// backoff and jitter (EMAIL_RETRY_INITIAL_MS doubling up to EMAIL_RETRY_MAX_MS). After
// EMAIL_MAX_ATTEMPTS the request goes to `notification.request.dlq` (headers naming the
// source partition and offset, attempts, first and last failure) and the channel says
// `failed`. A permanent failure (5xx) is `failed` at once.
//
// At most one email per request: a claim is a lease (attempts + 1, due again only after
// `lease`), taken in one transaction, so two instances never send the same email. The window
// that cannot be closed: a process that dies after the SMTP server accepted the message and
// before `sent` was committed leaves the email pending; when the lease ends it is sent again
// (with the same Message-ID, `<event_id>@taskstream`, so a receiving system can drop the
// copy). That window is one SMTP reply plus one small UPDATE wide.
//
// Lifecycle: construct, start(), stop() (idempotent; lets the email in hand finish).
// Thread-safety: wake() and stats() from any thread; start/stop from the owner.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "config/settings.hpp"
#include "kafka/dead_letter.hpp"
#include "kafka/producer.hpp"
#include "notify/email.hpp"
#include "storage/roles.hpp"

namespace taskstream::workers {

struct EmailDispatcherOptions {
  /// Longer than the sender's total timeout, so a live sender's lease never runs out.
  std::chrono::milliseconds lease{60'000};
  /// How often the queue is looked at when nobody wakes the dispatcher (other instances'
  /// emails, retries falling due).
  std::chrono::milliseconds poll_interval{500};
  /// Where dead letters go: the process's one DLQ producer (kafka/dead_letter.hpp), which
  /// must be closed only after stop(). Null: the dispatcher builds its own at start.
  std::shared_ptr<kafka::Producer> dead_letter_producer;
};

struct EmailDispatcherStats {
  std::uint64_t sent = 0, failed = 0, retries = 0, dead_lettered = 0;
};

class EmailDispatcher final {
 public:
  /// `queue` (claims), `notifications` (the channel's outcome), `users` (the address when
  /// the request has none) and `sender` must outlive the dispatcher.
  EmailDispatcher(const config::Settings& settings, storage::EmailQueueStore& queue, storage::NotificationStore& notifications,
                  storage::UserStore& users, notify::EmailSender& sender,
                  EmailDispatcherOptions options = {});
  ~EmailDispatcher();
  EmailDispatcher(const EmailDispatcher&) = delete;
  EmailDispatcher& operator=(const EmailDispatcher&) = delete;

  void start();
  void stop();
  /// Look at the queue now (a new pending email was just committed).
  void wake();
  EmailDispatcherStats stats() const noexcept;

 private:
  void loop();
  /// Claims and handles one email; false when none was due.
  bool dispatch_one();
  void handle(const storage::EmailClaim& claim);
  /// Sends the request behind `n` to its DLQ and waits for the ack; false if it failed.
  bool dead_letter(const storage::Notification& n, const storage::EmailClaim& claim, const std::string& detail);

  config::Settings settings_;
  storage::EmailQueueStore& queue_;
  storage::NotificationStore& notifications_;
  storage::UserStore& users_;
  notify::EmailSender& sender_;
  EmailDispatcherOptions options_;
  std::shared_ptr<kafka::Producer> dlq_;
  bool own_dlq_ = false;  ///< dlq_ was built here (no options_.dead_letter_producer)

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool woken_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> sent_{0}, failed_{0}, retries_{0}, dead_lettered_{0};
};

}  // namespace taskstream::workers
