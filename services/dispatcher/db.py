"""SQL of the dispatcher beyond a delivery's transitions (services.common.deliveries):
a delivery's state as a stale message sees it, webhooks' concurrency caps and rate
limits, and disabling a failing webhook (and announcing it: services.common.events)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from services.common import events, webhooks


@dataclass(frozen=True)
class DeliveryState:
    status: str
    attempt_count: int
    lease_until: datetime | None
    now: datetime
    ordering_key: str | None


async def delivery_state(pool: asyncpg.Pool, delivery_id: uuid.UUID) -> DeliveryState | None:
    row = await pool.fetchrow(
        """
        SELECT status, attempt_count, lease_until, now() AS now, ordering_key
        FROM deliveries WHERE id = $1
        """,
        delivery_id,
    )
    return None if row is None else DeliveryState(**dict(row))


# A webhook's own limits, each read for many webhooks at once (endpoints.EndpointLimits).
WebhookLimit = Literal["max_concurrency", "rate_limit_per_second"]


async def limits_of(
    pool: asyncpg.Pool, webhook_ids: list[uuid.UUID], limit: WebhookLimit
) -> list[int | None]:
    """Each webhook's `limit`, in the order asked (None: unset, or no such webhook)."""
    rows = await pool.fetch(
        f"SELECT id, {limit} AS value FROM webhook_registrations WHERE id = ANY($1::uuid[])",
        webhook_ids,
    )
    found = {row["id"]: row["value"] for row in rows}
    return [found.get(webhook_id) for webhook_id in webhook_ids]


async def disable_webhook(
    pool: asyncpg.Pool,
    webhook_id: uuid.UUID,
    reason: str,
    announcement: events.NewEvent | None,
) -> int | None:
    """Disable the webhook; if this call did (it was enabled), record `announcement` (a
    webhook.disabled event) in the same statement. The outbox id of its fan-out message,
    else None."""
    outbox_id: int | None = await pool.fetchval(
        f"""
        WITH {webhooks.disable_from("$1", "$2")}, source AS (
            SELECT $3::uuid AS event_id, $4::uuid AS event_type_id, $5::bigint AS user_id,
                   $6::jsonb AS payload, NULL::text AS idempotency_key, $7::text AS request_id,
                   $8::timestamptz AS created_at, NULL::text AS ordering_key
            FROM disabled WHERE $3::uuid IS NOT NULL
        ), {events.accept_from("source", trace_context="$9::jsonb")}
        SELECT outbox_id FROM accepted_fanout
        """,
        webhook_id,
        reason,
        announcement and announcement.id,
        announcement and announcement.event_type_id,
        announcement and announcement.user_id,
        announcement and announcement.payload,
        announcement and announcement.request_id,
        announcement and announcement.created_at,
        announcement and announcement.trace_context,
    )
    return outbox_id
