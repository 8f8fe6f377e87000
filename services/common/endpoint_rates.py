"""Per-webhook request rates (SPEC §17): the only writer of the endpoint_rates table.

Each request to a webhook with a rate_limit_per_second reserves its start: one row-locked
UPDATE moves the webhook's `next_start` on by 1/limit from max(next_start, now) and hands
the request the start it moved past. Every dispatcher replica reserves in the same row
under PostgreSQL's clock, so starts are at least 1/limit apart across all of them: no
second holds more than `limit` starts (plus one at its edge).
"""

from __future__ import annotations

import uuid

import asyncpg


async def reserve_start(pool: asyncpg.Pool, webhook_id: uuid.UUID, per_second: int) -> float:
    """Reserve the webhook's next start; seconds from now until it (0 or more)."""
    wait: float = await pool.fetchval(
        """
        INSERT INTO endpoint_rates AS r (webhook_id, next_start)
        VALUES ($1, clock_timestamp() + make_interval(secs => 1.0 / $2::float8))
        ON CONFLICT (webhook_id) DO UPDATE
        SET next_start = greatest(r.next_start, clock_timestamp())
                         + make_interval(secs => 1.0 / $2::float8)
        RETURNING greatest(
            extract(epoch FROM next_start - clock_timestamp())::float8 - 1.0 / $2::float8, 0.0)
        """,
        webhook_id,
        per_second,
    )
    return wait
