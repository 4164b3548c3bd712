#include "workers/notification_consumer.hpp"

#include <spdlog/spdlog.h>

#include "workers/event_batch.hpp"

namespace taskstream::workers {
namespace {

/// Thrown for a failure worth retrying; the runner backs off and retries the batch.
class TransientDeliveryError final : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

storage::Notification to_row(const events::NotificationRequest& r, const config::Settings& s, const std::string& now) {
  storage::Notification n;
  n.id = events::new_event_id();
  n.user_id = r.user_id;
  n.task_id = r.task_id;
  n.type = r.type;
  n.title = r.title;
  n.message = r.message;
  n.email = r.email;
  n.event_id = r.event_id;
  n.created_at = now;
  for (const auto& ch : r.channels) {
    storage::ChannelStatus c{ch, "pending", "", now};
    if (ch == "in_app") c.status = "sent";
    else if (ch == "sms") {
      c.status = "skipped";
      c.detail = "no SMS provider configured";
    } else if (ch == "email" && !s.email_notifications_enabled) {
      c.status = "skipped";
      c.detail = "EMAIL_NOTIFICATIONS_ENABLED=false";
    }
    n.channels.push_back(std::move(c));
  }
  return n;
}

const storage::ChannelStatus* channel(const storage::Notification& n, std::string_view name) {
  for (const auto& c : n.channels)
    if (c.channel == name) return &c;
  return nullptr;
}

}  // namespace

kafka::BatchHandler notification_handler(const config::Settings& settings, storage::Store& store, notify::EmailSender& sender,
                                         std::string consumer_group) {
  return [&settings, &store, &sender, group = std::move(consumer_group)](std::span<const kafka::Message> batch, kafka::BatchContext& ctx) {
    std::size_t index = 0;
    for_each_event(batch, ctx, events::parse_notification_request, [&](const kafka::Message& m, events::NotificationRequest r) {
      index = static_cast<std::size_t>(&m - batch.data());
      const auto now = events::now_rfc3339();
      auto [n, created] = store.create_notification(group, to_row(r, settings, now));
      const auto* email = channel(n, "email");
      if (!email || email->status != "pending") return;  // nothing to send, or sent already

      std::string to = n.email.value_or("");
      if (to.empty()) {
        if (auto user = store.find_user(n.user_id)) to = user->email;
      }
      if (to.empty()) {
        store.set_channel_status(n.id, "email", "failed", "no email address: the request has none and the user is unknown", now);
        return;
      }
      notify::Email mail{settings.smtp_from, to, n.title, n.message, n.event_id + "@taskstream"};
      auto result = sender.send(mail);
      switch (result.outcome) {
        case notify::SendOutcome::sent:
          store.set_channel_status(n.id, "email", "sent", "", events::now_rfc3339());
          spdlog::info("notification {}: email sent to {}", n.id, to);
          return;
        case notify::SendOutcome::permanent_failure:
          store.set_channel_status(n.id, "email", "failed", result.detail, events::now_rfc3339());
          spdlog::warn("notification {}: email failed for good: {}", n.id, result.detail);
          return;
        case notify::SendOutcome::transient_failure:
          if (ctx.last_attempt()) {
            store.set_channel_status(n.id, "email", "failed", "retries exhausted: " + result.detail, events::now_rfc3339());
            ctx.dead_letter(index, "email_failed", "retries_exhausted", result.detail);
            return;
          }
          throw TransientDeliveryError("email to " + to + ": " + result.detail);
      }
    });
  };
}

}  // namespace taskstream::workers
