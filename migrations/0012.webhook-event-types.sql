-- Endpoints (SPEC section 14): a webhook subscribes to several event types, the user's
-- events are listed newest first, and a test event is marked as one.
-- depends: 0010.deliveries-claim-room

-- A webhook's event types, in the order given (`position`). webhook_registrations keeps
-- `event_type_id` as the first of them, for the original clients; services/common/
-- webhooks.py writes both. `user_id` is the webhook's (it never changes), so that the
-- fan-out finds the subscribers of (user, type) in one range of the index below, whatever
-- the number of types per webhook.
CREATE TABLE webhook_event_types (
    webhook_id uuid NOT NULL REFERENCES webhook_registrations (id) ON DELETE CASCADE,
    event_type_id uuid NOT NULL REFERENCES event_types (id),
    user_id bigint NOT NULL,
    position smallint NOT NULL CHECK (position BETWEEN 0 AND 99),
    PRIMARY KEY (webhook_id, event_type_id)
);
CREATE INDEX webhook_event_types_subscribers_idx
    ON webhook_event_types (user_id, event_type_id, webhook_id);
-- A deleted webhook has none (its row goes when it is deleted): the index holds live
-- webhooks only, as the partial index it replaces did.
INSERT INTO webhook_event_types (webhook_id, event_type_id, user_id, position)
    SELECT id, event_type_id, user_id, 0 FROM webhook_registrations WHERE deleted_at IS NULL;
-- The fan-out reads the subscriptions above instead.
DROP INDEX webhook_registrations_subscribers_idx;

-- GET /event: a user's events, newest first, page by page.
CREATE INDEX events_user_created_idx ON events (user_id, created_at DESC, id DESC);
-- POST /webhook/{webhook_id}/test: an event sent to one webhook because someone asked.
ALTER TABLE events ADD COLUMN test boolean NOT NULL DEFAULT false;
