-- Events (SPEC §8): any event type, one stored event fanned out to every subscribed
-- webhook, payload filters, per-webhook delivery settings, operational event types.
-- depends: 0004.security 0005.delivery-hot-updates

-- Event types ------------------------------------------------------------------------------

ALTER TABLE event_types
    ADD COLUMN schema jsonb CHECK (schema IS NULL OR jsonb_typeof(schema) = 'object'),
    ADD COLUMN archived boolean NOT NULL DEFAULT false;

-- The name is the `type` on the wire, so the database keeps it wire-safe and equal to
-- event_name. The original design's seeded type is the one exception ("upload file" is
-- sent as upload.completed), by id so that its curl keeps working verbatim. A check here
-- rather than only in the API: every writer (API, seeds, a hand-run SQL fix) obeys it.
ALTER TABLE event_types ADD CONSTRAINT event_types_name_format CHECK (
    id = '21f8e1f7-4142-42f9-ac30-74961702b2eb'
    OR (name ~ '^[A-Za-z0-9_.-]{1,100}$' AND event_name = name)
);

-- The operational events the system publishes itself; the API never accepts them from
-- users (services know them by these ids).
INSERT INTO event_types (id, name, description, event_name, schema) VALUES
(
    'df5dcfec-ebaa-4857-8d35-862fa06d165d', 'webhook.disabled',
    'A webhook was disabled automatically: it answered 410 Gone or kept failing too long',
    'webhook.disabled',
    '{
       "$schema": "https://json-schema.org/draft/2020-12/schema",
       "type": "object",
       "required": ["webhook_id", "url", "reason", "disabled_at"],
       "properties": {
         "webhook_id": {"type": "string", "format": "uuid"},
         "url": {"type": "string", "format": "uri"},
         "reason": {"type": "string"},
         "disabled_at": {"type": "string", "format": "date-time"}
       }
     }'::jsonb
),
(
    'e338f936-18a7-4637-bcef-499b12cd9225', 'delivery.failed',
    'A delivery used up its retry schedule without success',
    'delivery.failed',
    '{
       "$schema": "https://json-schema.org/draft/2020-12/schema",
       "type": "object",
       "required": ["delivery_id", "webhook_id", "event_type", "attempts", "last_error"],
       "properties": {
         "delivery_id": {"type": "string", "format": "uuid"},
         "webhook_id": {"type": "string", "format": "uuid"},
         "event_type": {"type": "string"},
         "attempts": {"type": "integer", "minimum": 1},
         "last_error": {"type": ["string", "null"]}
       }
     }'::jsonb
);

-- Events -----------------------------------------------------------------------------------

CREATE TABLE events (
    id uuid PRIMARY KEY,
    event_type_id uuid NOT NULL REFERENCES event_types (id),
    user_id bigint NOT NULL CHECK (user_id > 0),
    payload jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    -- As for uploads: 1 to 255 printable ASCII characters, one live key per user.
    idempotency_key text CHECK (idempotency_key IS NULL OR idempotency_key ~ '^[\x20-\x7e]{1,255}$'),
    request_id text,
    -- NULL until every delivery of the event exists: the fan-out worker's resumable marker.
    fanned_out_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX events_idempotency_idx ON events (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- The fan-out worker (and its recovery after a crash) picks up events oldest first.
CREATE INDEX events_unfanned_idx ON events (created_at) WHERE fanned_out_at IS NULL;
-- The pruner walks events by age.
CREATE INDEX events_created_idx ON events (created_at);

-- Deliveries -------------------------------------------------------------------------------

-- NULL for deliveries made before this migration. ON DELETE SET NULL, as for upload_id:
-- a delivery stores its own copy of the event (event_type, event_time, event_data), so
-- the pruner may delete an old event and its deliveries in separate batches, in either
-- order, and a delivery kept longer only loses the link.
ALTER TABLE deliveries ADD COLUMN event_id uuid REFERENCES events (id) ON DELETE SET NULL;
-- One delivery per event and webhook: a fan-out re-run after a crash inserts with
-- ON CONFLICT DO NOTHING and never makes a second one. It also serves "the deliveries of
-- event E" and the SET NULL above.
CREATE UNIQUE INDEX deliveries_event_webhook_idx ON deliveries (event_id, webhook_id)
    WHERE event_id IS NOT NULL;

-- Webhooks ---------------------------------------------------------------------------------

-- filter: NULL matches every event (services/common/filters.py checks the rest).
-- retry_schedule / timeout_seconds: NULL means RETRY_SCHEDULE / DELIVERY_TIMEOUT_SECONDS.
ALTER TABLE webhook_registrations
    ADD COLUMN filter jsonb CHECK (filter IS NULL OR jsonb_typeof(filter) = 'object'),
    ADD COLUMN retry_schedule integer[] CHECK (
        retry_schedule IS NULL OR (
            cardinality(retry_schedule) <= 20
            AND coalesce(array_ndims(retry_schedule), 1) = 1
            AND array_position(retry_schedule, NULL) IS NULL
            AND 1 <= ALL (retry_schedule)
            AND 604800 >= ALL (retry_schedule)
        )
    ),
    ADD COLUMN timeout_seconds integer CHECK (timeout_seconds BETWEEN 1 AND 60);

-- Fan-out: the live webhooks of user U for event type T, in id order so that a large
-- fan-out can walk them in keyset batches.
CREATE INDEX webhook_registrations_subscribers_idx
    ON webhook_registrations (user_id, event_type_id, id) WHERE deleted_at IS NULL;
