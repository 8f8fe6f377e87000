"""The event types the system seeds and records itself, and its operational events' payloads.

`upload.completed` is recorded with each upload; `webhook.disabled` and `delivery.failed`
(the operational events) by the dispatcher, as it disables a webhook or gives up.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from .events import NewEvent
from .timefmt import iso_time

# Seeded by the migrations; services know these types by id.
UPLOAD_EVENT_TYPE_ID = uuid.UUID("21f8e1f7-4142-42f9-ac30-74961702b2eb")
WEBHOOK_DISABLED_TYPE_ID = uuid.UUID("df5dcfec-ebaa-4857-8d35-862fa06d165d")
DELIVERY_FAILED_TYPE_ID = uuid.UUID("e338f936-18a7-4637-bcef-499b12cd9225")
WEBHOOK_DISABLED = "webhook.disabled"
DELIVERY_FAILED = "delivery.failed"
# A delivery of these never causes another operational event (no loops).
OPERATIONAL_EVENT_TYPES = (WEBHOOK_DISABLED, DELIVERY_FAILED)
# Types whose events only the system records: a user's would pass for the system's.
SYSTEM_EVENT_TYPES = frozenset(
    {UPLOAD_EVENT_TYPE_ID, WEBHOOK_DISABLED_TYPE_ID, DELIVERY_FAILED_TYPE_ID}
)


def webhook_disabled(
    webhook_id: uuid.UUID,
    url: str,
    reason: str,
    user_id: int,
    disabled_at: datetime,
    request_id: str | None,
    trace_context: dict[str, str] | None = None,
) -> NewEvent:
    """The operational event announcing that the system disabled a webhook."""
    return NewEvent(
        id=uuid.uuid4(),
        event_type_id=WEBHOOK_DISABLED_TYPE_ID,
        event_type=WEBHOOK_DISABLED,
        user_id=user_id,
        payload={
            "webhook_id": str(webhook_id),
            "url": url,
            "reason": reason,
            "disabled_at": iso_time(disabled_at),
        },
        idempotency_key=None,
        request_id=request_id,
        created_at=disabled_at,
        trace_context=trace_context,
    )


def delivery_failed_source(updated: str, operational_types: str) -> str:
    """SQL selecting (SOURCE_COLUMNS) a `delivery.failed` event for each row of `updated`
    (deliveries just recorded: id, webhook_id, event_type, attempt, status, error,
    request_id) that failed finally, for the webhook's user; a delivery of an operational
    event (its type in the text[] `operational_types`) announces nothing: no loops."""
    return f"""
        SELECT gen_random_uuid() AS event_id,
               '{DELIVERY_FAILED_TYPE_ID}'::uuid AS event_type_id, w.user_id,
               jsonb_build_object('delivery_id', u.id, 'webhook_id', u.webhook_id,
                                  'event_type', u.event_type, 'attempts', u.attempt,
                                  'last_error', u.error) AS payload,
               NULL::text AS idempotency_key, u.request_id, now() AS created_at,
               NULL::text AS ordering_key
        FROM {updated} u JOIN webhook_registrations w ON w.id = u.webhook_id
        WHERE u.status = 'failed' AND u.event_type <> ALL({operational_types}::text[])
    """
