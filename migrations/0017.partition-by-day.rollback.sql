-- Back to one table each, with every row kept. The foreign keys partitioning gave up come
-- back; a link to a row that retention dropped in another day is cleared (as ON DELETE
-- SET NULL would have), and attempts or errors left without their delivery go.
ALTER TABLE events RENAME TO events_partitioned;
ALTER TABLE deliveries RENAME TO deliveries_partitioned;
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_partitioned;
ALTER TABLE error_log RENAME TO error_log_partitioned;

CREATE TABLE events (LIKE events_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE TABLE deliveries (LIKE deliveries_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    WITH (fillfactor = 60);
CREATE TABLE delivery_attempts (
    LIKE delivery_attempts_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS
);
CREATE TABLE error_log (LIKE error_log_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS);

INSERT INTO events SELECT * FROM events_partitioned;
INSERT INTO deliveries SELECT * FROM deliveries_partitioned;
INSERT INTO delivery_attempts SELECT * FROM delivery_attempts_partitioned;
INSERT INTO error_log SELECT * FROM error_log_partitioned;
ALTER TABLE delivery_attempts DROP COLUMN delivery_created_at;
ALTER TABLE error_log DROP COLUMN delivery_created_at;

-- Other migrations' indexes on the partitioned tables (0016's) come back on the plain ones.
CREATE TEMPORARY TABLE carried_indexes ON COMMIT DROP AS
SELECT regexp_replace(pg_get_indexdef(x.indexrelid),
                      ' ON (ONLY )?(public\.)?(events|deliveries|delivery_attempts|error_log)_partitioned ',
                      ' ON \2\3 ') AS definition
FROM pg_index x
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
WHERE t.relname IN ('events_partitioned', 'deliveries_partitioned',
                    'delivery_attempts_partitioned', 'error_log_partitioned')
  AND NOT x.indisprimary
  AND i.relname NOT IN ('events_idempotency_idx', 'events_unfanned_idx', 'events_created_idx',
                        'events_user_created_idx', 'deliveries_webhook_idx',
                        'deliveries_pending_idx', 'deliveries_upload_idx',
                        'deliveries_finished_idx', 'deliveries_event_webhook_idx',
                        'delivery_attempts_delivery_idx', 'error_log_delivery_idx');

ALTER SEQUENCE delivery_attempts_id_seq OWNED BY delivery_attempts.id;
ALTER SEQUENCE error_log_id_seq OWNED BY error_log.id;
-- CASCADE: the day partitions go with their parents.
DROP TABLE error_log_partitioned, delivery_attempts_partitioned, deliveries_partitioned,
    events_partitioned CASCADE;
-- Tables a retention run detached and had not dropped yet (it drops them on its next run).
DO $$
DECLARE
    leftover text;
BEGIN
    FOR leftover IN
        SELECT relname FROM pg_class
        WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace
          AND relname ~ '^(events|deliveries|delivery_attempts|error_log)_p[0-9]{8}$'
    LOOP
        EXECUTE format('DROP TABLE %I', leftover);
    END LOOP;
END $$;

ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id);
ALTER TABLE events ADD CONSTRAINT events_event_type_id_fkey
    FOREIGN KEY (event_type_id) REFERENCES event_types (id);
-- Keys claimed under the advisory lock are unique per user within the window; an older
-- holder of the same key was released (set NULL) when it was claimed again.
CREATE UNIQUE INDEX events_idempotency_idx ON events (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_unfanned_idx ON events (created_at) WHERE fanned_out_at IS NULL;
CREATE INDEX events_created_idx ON events (created_at);
CREATE INDEX events_user_created_idx ON events (user_id, created_at DESC, id DESC);

UPDATE deliveries d SET event_id = NULL
WHERE event_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_webhook_id_fkey
    FOREIGN KEY (webhook_id) REFERENCES webhook_registrations (id);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_upload_id_fkey
    FOREIGN KEY (upload_id) REFERENCES uploads (id) ON DELETE SET NULL;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE SET NULL;
CREATE INDEX deliveries_webhook_idx ON deliveries (webhook_id, created_at DESC, id DESC);
CREATE INDEX deliveries_pending_idx ON deliveries (next_retry_at) WHERE status = 'pending';
CREATE INDEX deliveries_upload_idx ON deliveries (upload_id);
CREATE INDEX deliveries_finished_idx ON deliveries (updated_at) WHERE status <> 'pending';
CREATE UNIQUE INDEX deliveries_event_webhook_idx ON deliveries (event_id, webhook_id)
    WHERE event_id IS NOT NULL;

DELETE FROM delivery_attempts a WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id);
DELETE FROM error_log e WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = e.delivery_id);
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_pkey PRIMARY KEY (id);
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_delivery_id_fkey
    FOREIGN KEY (delivery_id) REFERENCES deliveries (id) ON DELETE CASCADE;
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, attempt);
ALTER TABLE error_log ADD CONSTRAINT error_log_pkey PRIMARY KEY (id);
ALTER TABLE error_log ADD CONSTRAINT error_log_delivery_id_fkey
    FOREIGN KEY (delivery_id) REFERENCES deliveries (id) ON DELETE CASCADE;
CREATE INDEX error_log_delivery_idx ON error_log (delivery_id);

DO $$
DECLARE
    definition text;
BEGIN
    FOR definition IN SELECT c.definition FROM carried_indexes c LOOP
        EXECUTE definition;
    END LOOP;
END $$;
