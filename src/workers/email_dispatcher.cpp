#include "workers/email_dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <random>

#include "events/events.hpp"
#include "kafka/consumer_runner.hpp"
#include "kafka/dead_letter.hpp"

namespace taskstream::workers {
namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

events::NotificationRequest request_of(const storage::Notification& n) {
  events::NotificationRequest r;
  r.event_id = n.event_id;
  r.user_id = n.user_id;
  r.task_id = n.task_id;
  r.type = n.type;
  r.title = n.title;
  r.message = n.message;
  r.email = n.email;
  r.channels.clear();
  for (const auto& c : n.channels) r.channels.push_back(c.channel);
  return r;
}

}  // namespace

EmailDispatcher::EmailDispatcher(const config::Settings& settings, storage::EmailQueueStore& queue,
                                 storage::NotificationStore& notifications, storage::UserStore& users,
                                 notify::EmailSender& sender, EmailDispatcherOptions options)
    : settings_(settings), queue_(queue), notifications_(notifications), users_(users), sender_(sender), options_(options) {}

EmailDispatcher::~EmailDispatcher() { stop(); }

void EmailDispatcher::start() {
  if (thread_.joinable()) return;
  own_dlq_ = settings_.kafka_enabled && !options_.dead_letter_producer;
  if (own_dlq_) {
    auto po = kafka::dead_letter_producer_options();
    po.client_id = "taskstream-email-dlq";
    dlq_ = std::make_shared<kafka::Producer>(settings_, po);
  } else if (settings_.kafka_enabled) {
    dlq_ = options_.dead_letter_producer;
  }
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void EmailDispatcher::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (dlq_ && own_dlq_) dlq_->close(std::chrono::seconds(5));  // the shared one is its owner's to close
  dlq_.reset();
}

void EmailDispatcher::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  cv_.notify_all();
}

EmailDispatcherStats EmailDispatcher::stats() const noexcept {
  return {sent_.load(), failed_.load(), retries_.load(), dead_lettered_.load()};
}

void EmailDispatcher::loop() {
  while (!stop_.load()) {
    bool busy = false;
    try {
      busy = dispatch_one();
    } catch (const std::exception& e) {
      // The database is away: the claimed email (if any) is retried when its lease ends.
      spdlog::warn("email dispatcher: {}", e.what());
    }
    if (busy) continue;
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, options_.poll_interval, [&] { return woken_ || stop_.load(); });
    woken_ = false;
  }
}

bool EmailDispatcher::dispatch_one() {
  // One at a time: a claim is a short transaction and a send is a network round trip, so
  // claiming more would only leave leases hanging when the process stops.
  auto claims = queue_.claim_due_emails(now_ms(), options_.lease.count(), 1);
  if (claims.empty()) return false;
  handle(claims.front());
  return true;
}

void EmailDispatcher::handle(const storage::EmailClaim& claim) {
  const auto n = notifications_.get_notification(claim.notification_id);
  if (!n) return;
  const auto* channel = storage::find_channel(*n, "email");
  if (!channel || channel->status != "pending") return;

  std::string to = n->email.value_or("");
  if (to.empty()) {
    if (auto user = users_.find_user(n->user_id)) to = user->email;
  }
  if (to.empty()) {
    notifications_.set_channel_status(n->id, "email", "failed", "no email address: the request has none and the user is unknown",
                              events::now_rfc3339());
    failed_++;
    return;
  }
  notify::Email mail{settings_.smtp_from, to, n->title, n->message, n->event_id + "@taskstream"};
  const auto result = sender_.send(mail);
  const auto now = events::now_rfc3339();
  switch (result.outcome) {
    case notify::SendOutcome::sent:
      notifications_.set_channel_status(n->id, "email", "sent", "", now);
      sent_++;
      spdlog::info("notification {}: email sent to {} (attempt {})", n->id, to, claim.attempts);
      return;
    case notify::SendOutcome::permanent_failure:
      notifications_.set_channel_status(n->id, "email", "failed", result.detail, now);
      failed_++;
      spdlog::warn("notification {}: email failed for good: {}", n->id, result.detail);
      return;
    case notify::SendOutcome::transient_failure:
      break;
  }
  if (claim.attempts >= settings_.email_max_attempts) {
    const auto detail = "retries exhausted after " + std::to_string(claim.attempts) + " attempts: " + result.detail;
    if (!dead_letter(*n, claim, result.detail)) {
      // Nothing is lost: the email stays pending and this step comes round again.
      queue_.retry_email_later(n->id, now_ms() + settings_.email_retry_max_ms, "dead-lettering failed; " + detail, now);
      return;
    }
    notifications_.set_channel_status(n->id, "email", "failed", detail, now);
    failed_++;
    spdlog::warn("notification {}: email failed: {}", n->id, detail);
    return;
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto delay = kafka::backoff_delay(claim.attempts + 1, std::chrono::milliseconds(settings_.email_retry_initial_ms),
                                          std::chrono::milliseconds(settings_.email_retry_max_ms), unit(rng));
  queue_.retry_email_later(n->id, now_ms() + delay.count(),
                           "attempt " + std::to_string(claim.attempts) + " failed, retrying in " +
                               std::to_string(delay.count()) + " ms: " + result.detail,
                           now);
  retries_++;
  spdlog::warn("notification {}: email attempt {}/{} failed, retrying in {} ms: {}", n->id, claim.attempts,
               settings_.email_max_attempts, delay.count(), result.detail);
}

bool EmailDispatcher::dead_letter(const storage::Notification& n, const storage::EmailClaim& claim, const std::string& detail) {
  if (!dlq_) return true;  // Kafka disabled: the row saying `failed` is the whole record
  kafka::DeadLetterInfo info;
  info.reason = "email_failed";
  info.error_class = "retries_exhausted";
  info.detail = detail;
  info.source_topic = n.source_topic.empty() ? settings_.kafka_topic_notification_request : n.source_topic;
  info.source_partition = n.source_partition;
  info.source_offset = n.source_offset;
  info.attempts = claim.attempts;
  info.last_failure = events::now_rfc3339();
  info.first_failure = claim.first_failure.value_or(info.last_failure);
  kafka::OutgoingMessage msg;
  msg.topic = kafka::dlq_topic(info.source_topic);
  msg.key = n.user_id;
  msg.payload = events::serialize(request_of(n));
  msg.headers = kafka::build_dlq_headers(info, {});
  auto delivery = dlq_->send(std::move(msg));
  if (delivery.wait_for(std::chrono::seconds(30)) != std::future_status::ready) return false;
  const auto r = delivery.get();
  if (!r.ok()) {
    spdlog::error("notification {}: DLQ delivery failed: {}", n.id, r.error.to_string());
    return false;
  }
  dead_lettered_++;
  return true;
}

}  // namespace taskstream::workers
