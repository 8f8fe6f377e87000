-- Growth (SPEC section 18): events, deliveries, delivery_attempts and error_log are
-- partitioned by day (UTC), so that retention drops a day whole instead of deleting its
-- rows one batch at a time (docs/partitions.md). A delivery's attempts and error-log rows
-- live in its delivery's day (delivery_created_at), and a fan-out's deliveries in their
-- event's day (created_at = the event's time), so a day of the four goes together.
--
-- The partitioned tables are built LIKE the old ones, so that every column they have by
-- now comes along, then filled from them. Primary keys include the partition key (PostgreSQL
-- requires it); id lookups still use them by their first column. No foreign key can point
-- at a partitioned table without its partition key: deliveries.event_id and the delivery_id
-- of attempts and errors are kept consistent by their one writer (services/common/
-- deliveries.py) and dropped together by retention.
-- depends: 0015.endpoint-auth-and-rate-limits

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE deliveries RENAME TO deliveries_unpartitioned;
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_unpartitioned;
ALTER TABLE error_log RENAME TO error_log_unpartitioned;

CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (created_at);
CREATE TABLE deliveries (
    LIKE deliveries_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS
) PARTITION BY RANGE (created_at);
CREATE TABLE delivery_attempts (
    LIKE delivery_attempts_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    delivery_created_at timestamptz NOT NULL
) PARTITION BY RANGE (delivery_created_at);
CREATE TABLE error_log (
    LIKE error_log_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    delivery_created_at timestamptz NOT NULL
) PARTITION BY RANGE (delivery_created_at);

-- A row whose day has no partition (one older than the days made below, or a clock far
-- off) lands here rather than being refused; retention deletes from it in batches.
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE TABLE deliveries_default PARTITION OF deliveries DEFAULT WITH (fillfactor = 60);
CREATE TABLE delivery_attempts_default PARTITION OF delivery_attempts DEFAULT;
CREATE TABLE error_log_default PARTITION OF error_log DEFAULT;

-- One partition a day, named <table>_pYYYYMMDD, as services/common/partitions.py makes
-- them: from the oldest row's day (at most 60 days back; older rows go to the default
-- partition) to two days ahead (partitions.DAYS_AHEAD). deliveries keeps the room its
-- claims need (0010).
CREATE FUNCTION pg_temp.day_partitions(parent text, first_day date, last_day date, storage text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    day date;
BEGIN
    FOR day IN SELECT generate_series(first_day, last_day, interval '1 day')::date LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L) %s',
            parent || '_p' || to_char(day, 'YYYYMMDD'), parent,
            day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC', storage
        );
    END LOOP;
END $$;

CREATE TEMPORARY TABLE partition_days ON COMMIT DROP AS
SELECT greatest(
           least(
               (SELECT min(created_at) FROM deliveries_unpartitioned),
               (SELECT min(created_at) FROM events_unpartitioned),
               now()
           ),
           now() - interval '60 days'
       ) AT TIME ZONE 'UTC' AS first_moment,
       (now() + interval '2 days') AT TIME ZONE 'UTC' AS last_moment;

DO $$ BEGIN
    PERFORM pg_temp.day_partitions(t.parent, d.first_moment::date, d.last_moment::date, t.storage)
    FROM partition_days d,
         (VALUES ('events', ''), ('deliveries', 'WITH (fillfactor = 60)'),
                 ('delivery_attempts', ''), ('error_log', '')) AS t(parent, storage);
END $$;

-- An event's deliveries are created at its time (services/common/deliveries.py create_from),
-- which puts them in its day and lets its readers find them in that one partition. A
-- delivery that an earlier version stamped otherwise is brought in line.
UPDATE deliveries_unpartitioned d SET created_at = e.created_at
FROM events_unpartitioned e
WHERE d.event_id = e.id AND d.created_at <> e.created_at;

INSERT INTO events SELECT * FROM events_unpartitioned;
INSERT INTO deliveries SELECT * FROM deliveries_unpartitioned;
INSERT INTO delivery_attempts
    SELECT a.*, d.created_at
    FROM delivery_attempts_unpartitioned a JOIN deliveries_unpartitioned d ON d.id = a.delivery_id;
INSERT INTO error_log
    SELECT e.*, d.created_at
    FROM error_log_unpartitioned e JOIN deliveries_unpartitioned d ON d.id = e.delivery_id;

-- Indexes that other migrations added to the old tables (0016's, and any later one's
-- applied before this) are made again on the new ones, under their names; those below are
-- this migration's own.
CREATE TEMPORARY TABLE carried_indexes ON COMMIT DROP AS
SELECT regexp_replace(pg_get_indexdef(x.indexrelid),
                      ' ON (public\.)?(events|deliveries|delivery_attempts|error_log)_unpartitioned ',
                      ' ON \1\2 ') AS definition
FROM pg_index x
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
WHERE t.relname IN ('events_unpartitioned', 'deliveries_unpartitioned',
                    'delivery_attempts_unpartitioned', 'error_log_unpartitioned')
  AND NOT x.indisprimary
  AND i.relname NOT IN ('events_idempotency_idx', 'events_unfanned_idx', 'events_created_idx',
                        'events_user_created_idx', 'deliveries_webhook_idx',
                        'deliveries_pending_idx', 'deliveries_upload_idx',
                        'deliveries_finished_idx', 'deliveries_event_webhook_idx',
                        'delivery_attempts_delivery_idx', 'error_log_delivery_idx');

-- The bigserial sequences go with the new tables rather than with the old ones dropped here.
ALTER SEQUENCE delivery_attempts_id_seq OWNED BY delivery_attempts.id;
ALTER SEQUENCE error_log_id_seq OWNED BY error_log.id;
DROP TABLE error_log_unpartitioned, delivery_attempts_unpartitioned, deliveries_unpartitioned,
    events_unpartitioned;

-- Keys and indexes, built once the rows are in (the same names as before).
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id, created_at);
ALTER TABLE events ADD CONSTRAINT events_event_type_id_fkey
    FOREIGN KEY (event_type_id) REFERENCES event_types (id);
-- Not unique any more: no index can keep a key unique across partitions. A claim of a key
-- holds an advisory lock on it instead (services/common/idempotency.py).
CREATE INDEX events_idempotency_idx ON events (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_unfanned_idx ON events (created_at) WHERE fanned_out_at IS NULL;
CREATE INDEX events_created_idx ON events (created_at);
CREATE INDEX events_user_created_idx ON events (user_id, created_at DESC, id DESC);

ALTER TABLE deliveries ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id, created_at);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_webhook_id_fkey
    FOREIGN KEY (webhook_id) REFERENCES webhook_registrations (id);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_upload_id_fkey
    FOREIGN KEY (upload_id) REFERENCES uploads (id) ON DELETE SET NULL;
-- With status and attempt_count, the stats route (GET /webhook/{id}/stats) counts a
-- webhook's hours from the index alone (bench: --only big-tables).
CREATE INDEX deliveries_webhook_idx ON deliveries (webhook_id, created_at DESC, id DESC)
    INCLUDE (status, attempt_count);
CREATE INDEX deliveries_pending_idx ON deliveries (next_retry_at) WHERE status = 'pending';
CREATE INDEX deliveries_upload_idx ON deliveries (upload_id);
CREATE INDEX deliveries_finished_idx ON deliveries (updated_at) WHERE status <> 'pending';
-- One delivery per event and webhook, as before: every delivery of an event has the
-- event's time as its created_at, so adding it (PostgreSQL requires it) changes nothing.
CREATE UNIQUE INDEX deliveries_event_webhook_idx ON deliveries (event_id, webhook_id, created_at)
    WHERE event_id IS NOT NULL;

ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_pkey
    PRIMARY KEY (id, delivery_created_at);
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, attempt);
ALTER TABLE error_log ADD CONSTRAINT error_log_pkey PRIMARY KEY (id, delivery_created_at);
CREATE INDEX error_log_delivery_idx ON error_log (delivery_id);

DO $$
DECLARE
    definition text;
BEGIN
    FOR definition IN SELECT c.definition FROM carried_indexes c LOOP
        EXECUTE definition;
    END LOOP;
END $$;
