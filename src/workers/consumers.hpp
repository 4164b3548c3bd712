#pragma once
// The consumers a process runs (`serve` runs all by default, `worker --consumers ...` a
// chosen few), each a ConsumerRunner in its own group.
//
// Lifecycle: construct, start(), stop() (all at once, then the email dispatcher). Not thread-safe: the
// owner starts and stops; stats() may be read from any thread.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "kafka/consumer_runner.hpp"
#include "notify/email.hpp"
#include "storage/store.hpp"
#include "workers/email_dispatcher.hpp"

namespace taskstream::workers {

/// Names a process can be asked to run.
inline const std::vector<std::string> kConsumerNames{"audit", "notification"};

/// "all" → every name, "none" or "" → none, else a comma list; throws std::invalid_argument
/// naming an unknown consumer.
std::vector<std::string> parse_consumer_list(const std::string& list);

class Consumers final {
 public:
  /// `setup` (may be null) adjusts each consumer's options before its runner is built (the
  /// app sets the process's dead-letter producer there). `dead_letters` (may be null: one of
  /// its own) is the email dispatcher's DLQ producer; it must be closed only after stop().
  Consumers(const config::Settings& settings, storage::Store& store, std::vector<std::string> names, const kafka::ConsumerSetup& setup = {},
            std::shared_ptr<kafka::Producer> dead_letters = {});
  ~Consumers();
  void start();
  /// Stops every consumer at once (each close is bounded; with the broker gone they would
  /// otherwise add up), each by its own stop_deadline and by `until`.
  void stop(std::chrono::steady_clock::time_point until = std::chrono::steady_clock::time_point::max());
  struct Entry {
    std::string name, group;
    std::unique_ptr<kafka::ConsumerRunner> runner;
  };
  const std::vector<Entry>& entries() const noexcept { return entries_; }
  /// Null unless the notification consumer runs here.
  const EmailDispatcher* email_dispatcher() const noexcept { return dispatcher_.get(); }

 private:
  std::unique_ptr<notify::EmailSender> email_;
  std::unique_ptr<EmailDispatcher> dispatcher_;  ///< runs where the notification consumer runs
  std::vector<Entry> entries_;
};

}  // namespace taskstream::workers
