-- the email queue (the why: storage/sqlite/migrations/0004_email_queue.sql).
ALTER TABLE notifications ADD COLUMN source_topic text NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN source_partition integer NOT NULL DEFAULT -1;
ALTER TABLE notifications ADD COLUMN source_offset bigint NOT NULL DEFAULT -1;
ALTER TABLE notification_channels ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE notification_channels ADD COLUMN next_attempt_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE notification_channels ADD COLUMN first_failure text;
CREATE INDEX notification_emails_due ON notification_channels (next_attempt_ms)
  WHERE channel = 'email' AND status = 'pending';
