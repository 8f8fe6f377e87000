"""SQL of the dispatcher beyond a delivery's transitions (services.common.deliveries):
a delivery's state as a stale message sees it, and disabling a failing webhook."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class DeliveryState:
    status: str
    attempt_count: int
    lease_until: datetime | None
    now: datetime


async def delivery_state(pool: asyncpg.Pool, delivery_id: uuid.UUID) -> DeliveryState | None:
    row = await pool.fetchrow(
        "SELECT status, attempt_count, lease_until, now() AS now FROM deliveries WHERE id = $1",
        delivery_id,
    )
    return None if row is None else DeliveryState(**dict(row))


async def disable_webhook(pool: asyncpg.Pool, webhook_id: uuid.UUID, reason: str) -> None:
    await pool.execute(
        """
        UPDATE webhook_registrations
        SET disabled = true, disabled_reason = $2, updated_at = now()
        WHERE id = $1 AND NOT disabled
        """,
        webhook_id,
        reason,
    )
