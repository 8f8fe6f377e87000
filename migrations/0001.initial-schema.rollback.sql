DROP TABLE IF EXISTS error_log;
DROP TABLE IF EXISTS delivery_attempts;
DROP TABLE IF EXISTS deliveries;
DROP TABLE IF EXISTS outbox;
DROP TABLE IF EXISTS uploads;
DROP TABLE IF EXISTS webhook_configurations;
DROP TABLE IF EXISTS webhook_registrations;
DROP TABLE IF EXISTS event_types;
