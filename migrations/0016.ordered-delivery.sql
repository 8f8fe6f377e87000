-- Ordered delivery per key (SPEC section 16; docs/deliveries.md says why it holds).
-- An event may carry an ordering_key; ordering_seq is its place among the events of its
-- user with that key, in the order they were accepted: ordering_next_seq takes it from
-- ordering_keys under that row's lock, which is held until the accepting transaction
-- commits, so a later number never becomes visible before an earlier one.
-- Each delivery copies both from its event. waiting_for: the earlier delivery (same
-- webhook and key) this one waits behind, while it waits; the dispatcher sets it and
-- clears it (services/common/ordering.py). Only plain columns and plain indexes are added
-- to deliveries.
-- depends: 0015.endpoint-auth-and-rate-limits
ALTER TABLE events
    ADD COLUMN ordering_key text,
    ADD COLUMN ordering_seq bigint;
ALTER TABLE deliveries
    ADD COLUMN ordering_key text,
    ADD COLUMN ordering_seq bigint,
    ADD COLUMN waiting_for uuid;

CREATE TABLE ordering_keys (
    user_id bigint NOT NULL,
    ordering_key text NOT NULL,
    last_seq bigint NOT NULL,
    PRIMARY KEY (user_id, ordering_key)
);

-- The next number of (user, key). A function, so that the statements that insert events
-- can take one per row inside an INSERT … SELECT.
CREATE FUNCTION ordering_next_seq(p_user_id bigint, p_key text) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ordering_keys AS k (user_id, ordering_key, last_seq)
    VALUES (p_user_id, p_key, 1)
    ON CONFLICT (user_id, ordering_key) DO UPDATE SET last_seq = k.last_seq + 1
    RETURNING last_seq
$$;

-- The earlier deliveries still pending of a (webhook, key): what a delivery waits behind.
CREATE INDEX deliveries_ordering_idx ON deliveries (webhook_id, ordering_key, ordering_seq)
    WHERE status = 'pending' AND ordering_key IS NOT NULL;
-- The deliveries waiting behind one that ends.
CREATE INDEX deliveries_waiting_idx ON deliveries (waiting_for) WHERE waiting_for IS NOT NULL;
-- Earlier events of a (user, key) whose deliveries are not all made yet.
CREATE INDEX events_ordering_unfanned_idx ON events (user_id, ordering_key, ordering_seq)
    WHERE fanned_out_at IS NULL AND ordering_key IS NOT NULL;
