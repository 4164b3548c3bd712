#pragma once
// The notification consumer (group KAFKA_CONSUMER_GROUP_NOTIFICATION, topic
// notification.request): one notification row per request, delivered per channel.
//
// in_app: the row is the delivery. email: over SMTP, to the request's `email` or else the
// user's registered address, only when EMAIL_NOTIFICATIONS_ENABLED. sms: no provider is
// configured, so `skipped` with the reason.
//
// At most one email per request: the row and its processed-events record commit first
// (email `pending`); a redelivery finds the row and sends only while email is still
// `pending`. The window that cannot be closed: a crash after the SMTP server accepted the
// message and before `sent` was committed sends it again on redelivery (with the same
// Message-ID, so a receiving system can drop the copy). It is one SMTP round trip wide.
//
// A transient failure (SMTP down, timeout, 4xx) throws, so the runner retries the batch with
// backoff; on the runner's last attempt the channel is marked `failed` and the request goes
// to the DLQ. A permanent failure (5xx) is marked `failed` at once.

#include <string>

#include "config/settings.hpp"
#include "kafka/consumer_runner.hpp"
#include "notify/email.hpp"
#include "storage/store.hpp"

namespace taskstream::workers {

/// `sender` must outlive the handler.
kafka::BatchHandler notification_handler(const config::Settings& settings, storage::Store& store, notify::EmailSender& sender,
                                         std::string consumer_group);

}  // namespace taskstream::workers
