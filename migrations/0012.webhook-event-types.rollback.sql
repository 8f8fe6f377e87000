-- A webhook keeps its first event type (webhook_registrations.event_type_id); its others go.
ALTER TABLE events DROP COLUMN test;
DROP INDEX events_user_created_idx;
CREATE INDEX webhook_registrations_subscribers_idx
    ON webhook_registrations (user_id, event_type_id, id) WHERE deleted_at IS NULL;
DROP TABLE webhook_event_types;
