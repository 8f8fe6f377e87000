-- Idempotent uploads and retention pruning.
-- depends: 0001.initial-schema

-- Idempotency-Key: 1 to 255 printable ASCII characters, validated by the upload
-- service too. The existing unique index (webhook_id, idempotency_key) keeps one
-- live key per webhook; a key older than 24 h is released by setting it to NULL
-- on the old upload when the key is used again (services/upload/db.py).
ALTER TABLE uploads ADD CONSTRAINT uploads_idempotency_key_format
    CHECK (idempotency_key IS NULL OR idempotency_key ~ '^[\x20-\x7e]{1,255}$');

-- Deleting an upload sets deliveries.upload_id to NULL, and the pruner asks
-- whether an upload still has a pending delivery: both look deliveries up by upload.
CREATE INDEX deliveries_upload_idx ON deliveries (upload_id);

-- The pruner walks finished deliveries by their last activity, oldest first.
CREATE INDEX deliveries_finished_idx ON deliveries (updated_at) WHERE status <> 'pending';
