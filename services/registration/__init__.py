"""Registration service: event types, webhook registrations and their configuration."""
