DROP TABLE endpoint_rates;
ALTER TABLE webhook_registrations DROP COLUMN rate_limit_per_second;
ALTER TABLE webhook_configurations
    DROP COLUMN auth,
    DROP COLUMN tls_client_certificate,
    DROP COLUMN tls_ca;
