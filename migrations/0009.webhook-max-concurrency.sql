-- A webhook's own cap on deliveries in flight to it at once (null: the dispatcher's
-- DISPATCH_PER_ENDPOINT_CONCURRENCY), so that a small endpoint can ask for fewer and a
-- big one for more (SPEC section 13).
-- depends: 0008.admin-keys-and-ed25519
ALTER TABLE webhook_registrations ADD COLUMN max_concurrency integer
    CHECK (max_concurrency BETWEEN 1 AND 1000);
