-- The whole schema: the original design's three tables plus uploads, outbox,
-- deliveries, delivery attempts and the error log.

CREATE TABLE event_types (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE,
    description text NOT NULL,
    event_name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The original design's id, so its README curl works verbatim.
INSERT INTO event_types (id, name, description, event_name)
VALUES ('21f8e1f7-4142-42f9-ac30-74961702b2eb', 'upload file',
        'Event type for file upload operations', 'upload.completed');

CREATE TABLE webhook_registrations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id bigint NOT NULL CHECK (user_id > 0),
    event_type_id uuid NOT NULL REFERENCES event_types (id),
    url text NOT NULL CHECK (length(url) <= 2048),
    secret text NOT NULL,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    disabled boolean NOT NULL DEFAULT false,
    disabled_reason text,
    failing_since timestamptz,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_registrations_user_idx ON webhook_registrations (user_id, created_at, id);

CREATE TABLE webhook_configurations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id uuid NOT NULL UNIQUE REFERENCES webhook_registrations (id) ON DELETE CASCADE,
    custom_headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    custom_payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE uploads (
    id uuid PRIMARY KEY,
    webhook_id uuid NOT NULL REFERENCES webhook_registrations (id),
    filename text NOT NULL,
    stored_path text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL,
    content_type text NOT NULL,
    idempotency_key text,
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uploads_created_idx ON uploads (created_at);
CREATE UNIQUE INDEX uploads_idempotency_idx ON uploads (webhook_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Events not yet confirmed by the broker; the relay publishes and deletes them.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    routing_key text NOT NULL,
    payload jsonb NOT NULL,
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id uuid PRIMARY KEY,
    webhook_id uuid NOT NULL REFERENCES webhook_registrations (id),
    upload_id uuid REFERENCES uploads (id) ON DELETE SET NULL,
    event_type text NOT NULL,
    event_time timestamptz NOT NULL,
    event_data jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'succeeded', 'failed', 'not_attempted', 'cancelled')),
    attempt_count integer NOT NULL DEFAULT 0,
    next_retry_at timestamptz,
    lease_until timestamptz,
    last_error text,
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_webhook_idx ON deliveries (webhook_id, created_at DESC, id DESC);
CREATE INDEX deliveries_pending_idx ON deliveries (next_retry_at) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
    id bigserial PRIMARY KEY,
    delivery_id uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    status_code integer,
    response_body text,
    error text,
    duration_ms integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, attempt);

-- As in the original design: one row per failed attempt.
CREATE TABLE error_log (
    id bigserial PRIMARY KEY,
    delivery_id uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    error_message text NOT NULL,
    retry_count integer NOT NULL,
    next_retry_time timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX error_log_delivery_idx ON error_log (delivery_id);
