-- the email queue. A pending email channel is a queue entry: claim_due_emails leases
-- it (attempts + 1, next_attempt_ms pushed past the lease) and a failed attempt
-- reschedules it, so SMTP trouble never holds up the Kafka consumer. A notification
-- remembers the request's position so an email that runs out of attempts can be
-- dead-lettered with it.
ALTER TABLE notifications ADD COLUMN source_topic TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN source_partition INTEGER NOT NULL DEFAULT -1;
ALTER TABLE notifications ADD COLUMN source_offset INTEGER NOT NULL DEFAULT -1;
ALTER TABLE notification_channels ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notification_channels ADD COLUMN next_attempt_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notification_channels ADD COLUMN first_failure TEXT;
CREATE INDEX notification_emails_due ON notification_channels (next_attempt_ms)
  WHERE channel = 'email' AND status = 'pending';
