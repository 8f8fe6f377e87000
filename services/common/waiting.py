"""Keyed deliveries waiting behind another of their key (SPEC section 16): who waits, read
by whoever ends a delivery and by the sweep. The rule and why it holds: ordering.py; the
write that makes a delivery wait: deliveries.wait_behind."""

from __future__ import annotations

import uuid

import asyncpg

from .db import HeldConnection
from .delivery_records import StalledDelivery

# A delivery still waiting this long after the one ahead ended lost its message.
STRANDED_AFTER_SECONDS = 5.0


async def waiting_behind(
    pool: asyncpg.Pool | HeldConnection, ended: list[uuid.UUID]
) -> list[StalledDelivery]:
    """The deliveries waiting behind those of `ended` (keyed deliveries whose end is
    committed): publish each one's next attempt."""
    rows = await pool.fetch(
        """
        SELECT id, attempt_count + 1 AS attempt, request_id, webhook_id FROM deliveries
        WHERE waiting_for = ANY($1::uuid[]) AND status = 'pending'
        """,
        ended,
    )
    return [StalledDelivery(**dict(row)) for row in rows]


async def stranded(pool: asyncpg.Pool, limit: int = 500) -> list[StalledDelivery]:
    """Deliveries still waiting STRANDED_AFTER_SECONDS after the one ahead ended (or was
    pruned): their message was lost between that end and its publish. Publish each."""
    rows = await pool.fetch(
        """
        SELECT w.id, w.attempt_count + 1 AS attempt, w.request_id, w.webhook_id
        FROM deliveries w
        LEFT JOIN deliveries p ON p.id = w.waiting_for
        WHERE w.waiting_for IS NOT NULL AND w.status = 'pending'
          AND (w.lease_until IS NULL OR w.lease_until < now())
          AND (p.id IS NULL OR (p.status <> 'pending'
                                AND p.updated_at < now() - make_interval(secs => $1)))
        LIMIT $2
        """,
        STRANDED_AFTER_SECONDS,
        limit,
    )
    return [StalledDelivery(**dict(row)) for row in rows]


async def still_pending(pool: asyncpg.Pool, delivery_id: uuid.UUID) -> bool:
    """Whether the delivery ahead has not ended (read after the waiter's write committed)."""
    return bool(
        await pool.fetchval("SELECT status = 'pending' FROM deliveries WHERE id = $1", delivery_id)
    )
