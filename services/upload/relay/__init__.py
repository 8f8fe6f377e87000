"""Relay: publish what ingest and fan-out recorded, and delete the outbox rows once confirmed."""
