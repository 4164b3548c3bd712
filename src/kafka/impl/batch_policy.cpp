#include "kafka/impl/batch_policy.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "events/events.hpp"
#include "util/logging.hpp"

namespace taskstream::kafka::impl {
namespace {

using Clock = std::chrono::steady_clock;

/// The log fields of a consumed message: its event id and trace.
util::LogScope message_scope(const Message& m) {
  return util::LogScope(
      {.request_id = {}, .event_id = m.header("event_id").value_or(""), .traceparent = m.header("traceparent").value_or("")});
}

DeadLetterInfo info_for(const Message& m, std::string reason, std::string error_class, std::string detail, int attempts,
                        std::string first, std::string last) {
  DeadLetterInfo info;
  info.reason = std::move(reason);
  info.error_class = std::move(error_class);
  info.detail = std::move(detail);
  info.source_topic = std::string(m.topic());
  info.source_partition = m.partition();
  info.source_offset = m.offset();
  info.attempts = attempts;
  info.first_failure = std::move(first);
  info.last_failure = std::move(last);
  return info;
}

}  // namespace

// ---- HandOff --------------------------------------------------------------------------

void HandOff::open() {
  std::lock_guard lock(mutex_);
  stage_ = Stage::idle;
}

void HandOff::hand(std::vector<Message> batch, std::any prepared) {
  {
    std::lock_guard lock(mutex_);
    batch_ = std::move(batch);
    prepared_ = std::move(prepared);
    stage_ = Stage::handed;
  }
  cv_.notify_all();
}

bool HandOff::busy() const {
  std::lock_guard lock(mutex_);
  return stage_ == Stage::handed;
}

bool HandOff::wait_done(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return stage_ != Stage::handed; });
}

std::vector<Message> HandOff::settle() {
  std::vector<Message> batch;
  std::lock_guard lock(mutex_);
  if (stage_ != Stage::completed && stage_ != Stage::abandoned) return batch;
  if (stage_ == Stage::completed) batch = std::move(batch_);
  batch_.clear();
  prepared_.reset();
  stage_ = Stage::idle;
  return batch;
}

void HandOff::close() {
  {
    std::lock_guard lock(mutex_);
    stage_ = Stage::closed;
  }
  cv_.notify_all();
}

bool HandOff::take(std::span<const Message>& batch, const std::any*& prepared) {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return stage_ == Stage::closed || stage_ == Stage::handed; });
  if (stage_ == Stage::closed) return false;
  batch = std::span<const Message>(batch_.data(), batch_.size());  // stays put until finish()
  prepared = prepared_.has_value() ? &prepared_ : nullptr;
  return true;
}

void HandOff::finish(bool completed) {
  {
    std::lock_guard lock(mutex_);
    stage_ = completed ? Stage::completed : Stage::abandoned;
  }
  cv_.notify_all();
}

// ---- PartitionFigures -----------------------------------------------------------------

void PartitionFigures::set_lags(const std::map<std::pair<std::string, std::int32_t>, std::int64_t>& lags) {
  std::lock_guard lock(mutex_);
  for (auto& [key, f] : figures_) f.lag.reset();
  for (const auto& [key, lag] : lags) figures_[key].lag = lag;
}

std::vector<PartitionStats> PartitionFigures::snapshot() const {
  std::vector<PartitionStats> out;
  std::lock_guard lock(mutex_);
  out.reserve(figures_.size());
  for (const auto& [key, f] : figures_) out.push_back({key.first, key.second, f.processed, f.dead_lettered, f.retried, f.lag});
  return out;
}

// ---- BatchPolicy ----------------------------------------------------------------------

struct BatchPolicy::Tried {
  enum class Outcome {
    handled,    ///< the handler returned; `dead_letters` are those it asked for
    permanent,  ///< NonRetriableError
    exhausted,  ///< every attempt failed
    cut_short,  ///< a stop or revoke ended the wait before the next attempt
  };
  Outcome outcome = Outcome::cut_short;
  int attempts = 0;  ///< the number of the last attempt
  std::vector<BatchContext::Entry> dead_letters;
  std::string error;          ///< the last failure's what()
  std::string reason;         ///< NonRetriableError::reason()
  std::string first_failure;  ///< RFC 3339, when the first attempt failed
  std::string last_failure;   ///< RFC 3339, when the last one did
};

BatchPolicy::BatchPolicy(const ConsumerOptions& options, const BatchHandler& handler, PartitionFigures& figures,
                         const std::atomic<bool>& stopping, const std::atomic<bool>& abort_retries)
    : opt_(options), handler_(handler), figures_(figures), stopping_(stopping), abort_retries_(abort_retries) {}

BatchPolicy::~BatchPolicy() = default;

void BatchPolicy::open_dlq(const config::Settings& settings) {
  own_dlq_ = !opt_.dead_letter_producer;
  if (!own_dlq_) {
    dlq_ = opt_.dead_letter_producer;
    return;
  }
  auto po = dead_letter_producer_options();
  po.client_id = opt_.client_id + "-dlq";
  dlq_ = std::make_shared<Producer>(settings, po);
}

void BatchPolicy::close_dlq(std::chrono::milliseconds deadline) {
  if (!dlq_) return;
  if (own_dlq_) dlq_->flush(deadline);
  dlq_.reset();
}

/// The attempt loop, for a whole batch and for one message alone: up to max_attempts
/// attempts with backoff between them; an attempt that failed on an outage is no message's
/// fault and is made again once it is over.
BatchPolicy::Tried BatchPolicy::attempt(std::span<const Message> msgs, const std::any* prepared, bool whole_batch) {
  Tried tried;
  BatchContext ctx(&stopping_);
  ctx.set_prepared(prepared);  // not changed while the worker holds the batch
  const auto failed = [&](const std::exception& e) {
    tried.error = e.what();
    tried.last_failure = events::now_rfc3339();
    if (tried.first_failure.empty()) tried.first_failure = tried.last_failure;
  };
  for (int attempt = 1; attempt <= opt_.max_attempts; ++attempt) {
    tried.attempts = attempt;
    ctx.clear();
    try {
      handler_(msgs, ctx);
      outage_over();
      tried.outcome = Tried::Outcome::handled;
      tried.dead_letters = ctx.dead_letters_;
      return tried;
    } catch (const NonRetriableError& e) {
      failed(e);
      tried.reason = e.reason();
      tried.outcome = Tried::Outcome::permanent;
      return tried;
    } catch (const std::exception& e) {
      if (is_outage(e)) {  // no message's fault: the same attempt again once it is back
        if (!wait_out_outage(msgs.size(), e)) return {};
        --attempt;
        continue;
      }
      failed(e);
      if (whole_batch)
        spdlog::warn("consumer {}: batch of {} failed (attempt {}/{}): {}", opt_.group_id, msgs.size(), attempt, opt_.max_attempts, e.what());
      if (attempt < opt_.max_attempts) {
        retries++;
        figures_.count_all(msgs, &PartitionFigures::Counts::retried);
        if (!backoff(attempt + 1)) return {};
      }
    }
  }
  tried.outcome = Tried::Outcome::exhausted;
  return tried;
}

DeadLetterInfo BatchPolicy::failed_info(const Message& m, const Tried& tried) {
  if (tried.outcome == Tried::Outcome::permanent)
    return info_for(m, tried.reason, "permanent", tried.error, tried.attempts, tried.first_failure, tried.last_failure);
  return info_for(m, "handler_error", "retries_exhausted", tried.error, tried.attempts, tried.first_failure, tried.last_failure);
}

bool BatchPolicy::handle(std::span<const Message> msgs, const std::any* prepared) {
  const auto tried = attempt(msgs, prepared, true);
  switch (tried.outcome) {
    case Tried::Outcome::cut_short: return false;
    case Tried::Outcome::handled: {
      std::vector<Failure> failures;
      for (const auto& e : tried.dead_letters)
        failures.push_back({e.index, info_for(msgs[e.index], e.reason, e.error_class, e.detail, tried.attempts, events::now_rfc3339(),
                                              events::now_rfc3339())});
      if (!deliver(msgs, failures)) return false;
      processed += msgs.size() - failures.size();
      std::vector<bool> failed;
      if (!failures.empty()) {
        failed.assign(msgs.size(), false);
        for (const auto& f : failures) failed[f.index] = true;
      }
      handled(msgs, [&](std::size_t i) { return failed.empty() || !failed[i]; });
      return true;
    }
    case Tried::Outcome::exhausted:
      if (msgs.size() == 1) return deliver(msgs, {{0, failed_info(msgs[0], tried)}});
      break;
    case Tried::Outcome::permanent: break;
  }
  return isolate(msgs);
}

/// One message at a time, to let the good ones through and dead-letter the poison ones.
bool BatchPolicy::isolate(std::span<const Message> msgs) {
  std::vector<Failure> failures;
  std::size_t handled_count = 0;
  std::vector<bool> handled_flags(msgs.size(), false);
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    const auto tried = attempt(msgs.subspan(i, 1), nullptr, false);
    switch (tried.outcome) {
      case Tried::Outcome::cut_short: return false;
      case Tried::Outcome::handled:
        if (tried.dead_letters.empty()) {
          ++handled_count;
          handled_flags[i] = true;
        }
        for (const auto& e : tried.dead_letters)
          failures.push_back(
              {i, info_for(msgs[i], e.reason, e.error_class, e.detail, tried.attempts, events::now_rfc3339(), events::now_rfc3339())});
        break;
      case Tried::Outcome::permanent:
      case Tried::Outcome::exhausted: failures.push_back({i, failed_info(msgs[i], tried)}); break;
    }
  }
  if (!deliver(msgs, failures)) return false;
  processed += handled_count;
  handled(msgs, [&](std::size_t i) { return static_cast<bool>(handled_flags[i]); });
  return true;
}

/// Counts the messages `pick` keeps as handled and, at debug level, logs one line for each
/// with its event id and traceparent, so a request's trace can be followed into the consumers.
template <typename Pick>
void BatchPolicy::handled(std::span<const Message> msgs, Pick pick) {
  figures_.count(msgs, &PartitionFigures::Counts::processed, pick);
  if (!spdlog::should_log(spdlog::level::debug)) return;
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    if (!pick(i)) continue;
    const auto& m = msgs[i];
    const auto scope = message_scope(m);
    spdlog::debug("consumer {}: handled {} {}[{}]@{}", opt_.group_id, m.header("event_type").value_or("message"), m.topic(), m.partition(),
                  m.offset());
  }
}

/// Sends the failures to their DLQs and waits for every acknowledgement, retrying while
/// Kafka is unavailable; false when cut short.
bool BatchPolicy::deliver(std::span<const Message> msgs, std::vector<Failure> failures) {
  int attempt = 1;
  while (!failures.empty()) {
    std::vector<std::pair<std::size_t, std::future<DeliveryResult>>> pending;
    // One line per batch at warning level (a flood of poison must not flood the log);
    // each message at debug.
    std::map<std::string, int> reasons;
    for (std::size_t k = 0; k < failures.size(); ++k) {
      const auto& info = failures[k].info;
      reasons[info.reason]++;
      if (spdlog::should_log(spdlog::level::debug)) {
        const auto scope = message_scope(msgs[failures[k].index]);
        spdlog::debug("consumer {}: dead-lettering {}[{}]@{}: {} ({})", opt_.group_id, info.source_topic, info.source_partition,
                      info.source_offset, info.reason, info.detail);
      }
      pending.emplace_back(k, dlq_->send(build_dead_letter(msgs[failures[k].index], info)));
    }
    std::string summary;
    for (const auto& [reason, n] : reasons) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + reason;
    const auto& first = failures[0].info;
    spdlog::warn("consumer {}: dead-lettering {} message(s): {}; first: {}[{}]@{}: {}", opt_.group_id, failures.size(), summary,
                 first.source_topic, first.source_partition, first.source_offset, first.detail);
    std::vector<Failure> again;
    for (auto& [k, fut] : pending) {
      auto r = fut.get();
      if (r.ok()) {
        dead_lettered++;
        figures_.count_all(msgs.subspan(failures[k].index, 1), &PartitionFigures::Counts::dead_lettered);
      } else {
        spdlog::error("consumer {}: DLQ delivery failed: {}", opt_.group_id, r.error.to_string());
        again.push_back(std::move(failures[k]));
      }
    }
    failures = std::move(again);
    if (!failures.empty() && !backoff(++attempt)) return false;
  }
  return true;
}

bool BatchPolicy::sleep_until(Clock::time_point until) const {
  while (Clock::now() < until) {
    if (abort_retries_.load()) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(20), until - Clock::now()));
  }
  return !abort_retries_.load();
}

/// Sleeps before attempt `attempt`; false when the sleep was cut short (stop or revoke).
bool BatchPolicy::backoff(int attempt) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return sleep_until(Clock::now() + backoff_delay(attempt, opt_.backoff_initial, opt_.backoff_max, unit(rng_)));
}

/// After an attempt failed on an outage: logs (at its start, then every 30 s), waits,
/// and says whether to try again (false: stop or revoke cut the wait short).
bool BatchPolicy::wait_out_outage(std::size_t messages, const std::exception& e) {
  ++outage_retries;
  const auto now = Clock::now();
  if (outage_attempts_++ == 0 || now - outage_logged_ >= std::chrono::seconds(30)) {
    outage_logged_ = now;
    spdlog::warn("consumer {}: holding a batch of {} (partitions paused, no offset stored) until a dependency is back: {}", opt_.group_id,
                 messages, e.what());
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return sleep_until(now + backoff_delay(std::min(outage_attempts_ + 1, 30), opt_.backoff_initial,
                                         std::min<std::chrono::milliseconds>(opt_.backoff_max, std::chrono::seconds(1)), unit(rng_)));
}

void BatchPolicy::outage_over() {
  if (outage_attempts_ > 0) spdlog::info("consumer {}: going on after {} attempt(s) held by an outage", opt_.group_id, outage_attempts_);
  outage_attempts_ = 0;
}

}  // namespace taskstream::kafka::impl
