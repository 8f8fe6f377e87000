ALTER TABLE webhook_registrations DROP COLUMN max_concurrency;
