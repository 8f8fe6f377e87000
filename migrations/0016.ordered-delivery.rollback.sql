DROP INDEX IF EXISTS events_ordering_unfanned_idx;
DROP INDEX IF EXISTS deliveries_waiting_idx;
DROP INDEX IF EXISTS deliveries_ordering_idx;
DROP FUNCTION IF EXISTS ordering_next_seq(bigint, text);
DROP TABLE IF EXISTS ordering_keys;
ALTER TABLE deliveries
    DROP COLUMN waiting_for,
    DROP COLUMN ordering_seq,
    DROP COLUMN ordering_key;
ALTER TABLE events
    DROP COLUMN ordering_seq,
    DROP COLUMN ordering_key;
