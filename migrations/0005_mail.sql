-- Mail delivery health and short-lived mail (issue 7).
-- expires_at: when what the message carries (an access code) stops being valid;
--             such a message is retried promptly and dropped, not sent, after it.
-- dropped_at: set (with failed_at) when a message was dropped because it expired;
--             last_error then says why.
-- last_error_at: when the last delivery error happened (kept after a later success,
--             so the admin can see the mail server's recent trouble).
ALTER TABLE mail_queue ADD COLUMN expires_at INTEGER;
ALTER TABLE mail_queue ADD COLUMN dropped_at INTEGER;
ALTER TABLE mail_queue ADD COLUMN last_error_at INTEGER;
CREATE INDEX mail_queue_last_error ON mail_queue(last_error_at) WHERE last_error_at IS NOT NULL;
