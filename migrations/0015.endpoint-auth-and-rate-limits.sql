-- Endpoint authentication (SPEC section 17), NULL where not set:
-- auth: how the dispatcher authenticates to the endpoint, e.g. {"type": "basic",
--   "username": "…", "password": "fernet:…"};
-- tls_client_certificate: {"certificate": PEM, "private_key": "fernet:…", "subject",
--   "expires_at"}, the certificate the dispatcher presents to the https endpoint;
-- tls_ca: PEM, a CA the dispatcher trusts for the endpoint besides the system's.
-- Secret parts (password, client_secret, private_key) are stored as SECRETS_KEY encrypts
-- them (services/common/endpoint_auth.py).
-- depends: 0010.deliveries-claim-room
ALTER TABLE webhook_configurations
    ADD COLUMN auth jsonb,
    ADD COLUMN tls_client_certificate jsonb,
    ADD COLUMN tls_ca text;

-- At most this many requests a second start to the webhook, across every dispatcher
-- replica (NULL: no limit). endpoint_rates holds, per limited webhook, the earliest time
-- the next request may start: each request reserves its start by moving it on by
-- 1/rate_limit_per_second in one row-locked UPDATE (services/common/endpoint_rates.py).
ALTER TABLE webhook_registrations ADD COLUMN rate_limit_per_second integer
    CHECK (rate_limit_per_second BETWEEN 1 AND 10000);
CREATE TABLE endpoint_rates (
    webhook_id uuid PRIMARY KEY REFERENCES webhook_registrations (id) ON DELETE CASCADE,
    next_start timestamptz NOT NULL
);
