#include "workers/notification_consumer.hpp"

#include <spdlog/spdlog.h>

#include "kafka/redrive.hpp"
#include "workers/event_batch.hpp"

namespace taskstream::workers {
namespace {

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

}  // namespace

kafka::BatchHandler notification_handler(const config::Settings& settings, storage::NotificationStore& store,
                                         storage::EmailQueueStore& email_queue, EmailDispatcher* dispatcher,
                                         std::string consumer_group) {
  return [&settings, &store, &email_queue, dispatcher, group = std::move(consumer_group)](std::span<const kafka::Message> batch,
                                                                              kafka::BatchContext& ctx) {
    bool emails = false;
    for_each_event(batch, ctx, events::parse_notification_request, [&](const kafka::Message& m, events::NotificationRequest r) {
      auto row = to_row(r, settings, events::now_rfc3339());
      row.source_topic = std::string(m.topic());
      row.source_partition = m.partition();
      row.source_offset = m.offset();
      auto [n, created] = store.create_notification(group, row);
      const auto* email = storage::find_channel(n, "email");
      if (created && email && email->status == "pending") emails = true;
      // A copy of a request already handled changes nothing, except one an operator sent
      // back from the DLQ (`taskstream dlq redrive`): its failed email gets a new round of
      // attempts. A sent email stays sent.
      if (!created && email && email->status == "failed" && settings.email_notifications_enabled) {
        if (auto from = m.header(kafka::kRedrivenFromHeader)) {
          if (email_queue.rearm_failed_email(n.event_id, "redriven from " + std::string(*from), events::now_rfc3339())) {
            spdlog::info("notification {}: email re-armed by a redrive from {}", n.id, *from);
            emails = true;
          }
        }
      }
    });
    if (emails && dispatcher) dispatcher->wake();
  };
}

}  // namespace taskstream::workers
