-- The W3C trace context of the request that recorded an event, so that the outbox
-- relay's later publish continues that request's trace (SPEC section 11).
-- depends: 0006.events
ALTER TABLE outbox ADD COLUMN trace_context jsonb;
