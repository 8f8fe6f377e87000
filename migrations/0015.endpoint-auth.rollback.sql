ALTER TABLE webhook_configurations
    DROP COLUMN auth,
    DROP COLUMN tls_client_certificate,
    DROP COLUMN tls_ca;
