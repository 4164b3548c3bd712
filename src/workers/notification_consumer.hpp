#pragma once
// The notification consumer (group KAFKA_CONSUMER_GROUP_NOTIFICATION, topic
// notification.request): one notification row per request, delivered per channel.
//
// in_app: the row is the delivery. email: over SMTP, to the request's `email` or else the
// user's registered address, only when EMAIL_NOTIFICATIONS_ENABLED. sms: no provider is
// configured, so `skipped` with the reason.
//
// Email goes through the email queue: the row commits with the email channel `pending`
// (together with the processed-events record, so a redelivery changes nothing) and the
// EmailDispatcher sends it, retries it and records the outcome. SMTP trouble therefore never
// stalls a partition; see email_dispatcher.hpp for the at-most-once window.

#include <string>

#include "config/settings.hpp"
#include "kafka/consumer_runner.hpp"
#include "storage/roles.hpp"
#include "workers/email_dispatcher.hpp"

namespace taskstream::workers {

/// `dispatcher` (may be null: emails then wait for another instance's dispatcher) is woken
/// after a batch that queued an email; it must outlive the handler.
kafka::BatchHandler notification_handler(const config::Settings& settings, storage::NotificationStore& store,
                                         storage::EmailQueueStore& email_queue, EmailDispatcher* dispatcher,
                                         std::string consumer_group);

}  // namespace taskstream::workers
