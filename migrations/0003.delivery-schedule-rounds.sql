-- Management: a redeliver or recover restarts a delivery's retry schedule.
-- depends: 0002.idempotency-and-retention

-- Attempts made before the current schedule round began; the retry delay after
-- attempt n is RETRY_SCHEDULE[n - schedule_offset - 1].
ALTER TABLE deliveries ADD COLUMN schedule_offset integer NOT NULL DEFAULT 0;
