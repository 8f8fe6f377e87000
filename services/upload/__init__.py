"""Upload service: ingest (uploads and POST /event), fan-out of events, and the outbox relay.

- `ingest/`: receives uploads (multipart, storage) and events, and records each with the
  outbox row that announces it;
- `fanout/`: turns an accepted event into one delivery per subscribed webhook, in the
  fan-out worker or in the request that accepted it;
- `relay/`: publishes what was recorded, in the request or later from the outbox, and
  deletes the published rows.

The dispatcher relies on this service for its operational events (webhook.disabled,
delivery.failed): it records each with its fan-out message in the outbox and publishes
that message itself, but this service's relay publishes any it could not, and this
service's fan-out worker makes their deliveries. Its retries do not pass through here.
"""
