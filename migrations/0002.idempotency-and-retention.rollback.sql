DROP INDEX IF EXISTS deliveries_finished_idx;
DROP INDEX IF EXISTS deliveries_upload_idx;
ALTER TABLE uploads DROP CONSTRAINT IF EXISTS uploads_idempotency_key_format;
