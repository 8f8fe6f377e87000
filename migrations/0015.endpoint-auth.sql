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
