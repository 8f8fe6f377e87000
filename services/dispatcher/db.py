"""SQL of the dispatcher: claim a delivery, record an attempt, find stalled deliveries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

# Held while an attempt is under way; another copy of the message waits it out.
LEASE_MARGIN_SECONDS = 10.0
SWEEP_LOCK_KEY = 0x5EB400C  # advisory lock: one sweeper at a time across replicas


@dataclass(frozen=True)
class ClaimedDelivery:
    id: uuid.UUID
    webhook_id: uuid.UUID
    attempt: int
    event_type: str
    event_time: datetime
    event_data: dict[str, Any]
    request_id: str | None
    url: str
    secrets: list[str]
    custom_headers: dict[str, str]
    custom_payload: dict[str, Any]
    disabled: bool
    deleted: bool
    schedule_offset: int
    failing_since: datetime | None


@dataclass(frozen=True)
class DeliveryState:
    status: str
    attempt_count: int
    lease_until: datetime | None
    now: datetime


async def claim(
    pool: asyncpg.Pool, delivery_id: uuid.UUID, attempt: int, lease_seconds: float
) -> ClaimedDelivery | None:
    """Take the lease for `attempt`; None if it is not due, done, or someone else holds it.

    Only lease_until changes (no index covers it), so the update can stay heap-only.
    """
    row = await pool.fetchrow(
        """
        UPDATE deliveries d
        SET lease_until = now() + make_interval(secs => $3)
        FROM webhook_registrations w
        JOIN webhook_configurations c ON c.webhook_id = w.id
        WHERE d.id = $1 AND w.id = d.webhook_id
          AND d.status = 'pending' AND d.attempt_count = $2 - 1
          AND (d.lease_until IS NULL OR d.lease_until < now())
        RETURNING d.id, d.webhook_id, d.event_type, d.event_time, d.event_data, d.request_id,
                  w.url, w.secret, w.previous_secret,
                  (w.previous_secret_expires_at > now()) AS previous_valid,
                  w.disabled, w.deleted_at IS NOT NULL AS deleted, w.failing_since,
                  d.schedule_offset, c.custom_headers, c.custom_payload
        """,
        delivery_id,
        attempt,
        lease_seconds + LEASE_MARGIN_SECONDS,
    )
    if row is None:
        return None
    secrets = [row["secret"]]
    if row["previous_secret"] and row["previous_valid"]:
        secrets.append(row["previous_secret"])
    return ClaimedDelivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        attempt=attempt,
        event_type=row["event_type"],
        event_time=row["event_time"],
        event_data=row["event_data"],
        request_id=row["request_id"],
        url=row["url"],
        secrets=secrets,
        custom_headers=row["custom_headers"],
        custom_payload=row["custom_payload"],
        disabled=row["disabled"],
        deleted=row["deleted"],
        schedule_offset=row["schedule_offset"],
        failing_since=row["failing_since"],
    )


async def release_lease(pool: asyncpg.Pool, delivery_id: uuid.UUID) -> None:
    await pool.execute(
        "UPDATE deliveries SET lease_until = NULL WHERE id = $1 AND status = 'pending'",
        delivery_id,
    )


async def delivery_state(pool: asyncpg.Pool, delivery_id: uuid.UUID) -> DeliveryState | None:
    row = await pool.fetchrow(
        "SELECT status, attempt_count, lease_until, now() AS now FROM deliveries WHERE id = $1",
        delivery_id,
    )
    return None if row is None else DeliveryState(**dict(row))


async def record_attempt(
    pool: asyncpg.Pool,
    *,
    delivery_id: uuid.UUID,
    webhook_id: uuid.UUID,
    attempt: int,
    status: str,
    retry_in_seconds: float | None,
    status_code: int | None,
    error: str | None,
    response_body: str | None,
    duration_ms: int,
) -> bool:
    """The attempt, its error-log row, the delivery's new state and the endpoint's health
    (when it started failing continuously), in one statement."""
    recorded: bool = await pool.fetchval(
        """
        WITH updated AS (
            UPDATE deliveries
            SET status = $2, attempt_count = $3, lease_until = NULL, last_error = $6,
                next_retry_at = now() + make_interval(secs => $4), updated_at = now()
            WHERE id = $1 AND attempt_count = $3 - 1
            RETURNING id, next_retry_at
        ), attempt_row AS (
            INSERT INTO delivery_attempts
                (delivery_id, attempt, status_code, response_body, error, duration_ms)
            SELECT id, $3, $5, $7, $6, $8 FROM updated
        ), error_row AS (
            INSERT INTO error_log (delivery_id, error_message, retry_count, next_retry_time)
            SELECT id, $6, $3, next_retry_at FROM updated WHERE $6::text IS NOT NULL
        ), health AS (
            UPDATE webhook_registrations
            SET failing_since = CASE WHEN $6::text IS NULL THEN NULL ELSE now() END
            WHERE id = $9 AND EXISTS (SELECT 1 FROM updated)
              AND (failing_since IS NULL) = ($6::text IS NOT NULL)
        )
        SELECT count(*) > 0 FROM updated
        """,
        delivery_id,
        status,
        attempt,
        retry_in_seconds,
        status_code,
        error,
        response_body,
        duration_ms,
        webhook_id,
    )
    return recorded


async def finish_without_attempt(pool: asyncpg.Pool, delivery_id: uuid.UUID, status: str) -> None:
    """A delivery whose webhook was disabled (not_attempted) or deleted (cancelled)."""
    await pool.execute(
        """
        UPDATE deliveries SET status = $2, lease_until = NULL, next_retry_at = NULL,
                              updated_at = now()
        WHERE id = $1
        """,
        delivery_id,
        status,
    )


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


async def stalled_deliveries(
    pool: asyncpg.Pool, overdue_seconds: float, limit: int = 500
) -> list[tuple[uuid.UUID, int, str | None, uuid.UUID]]:
    """Pending deliveries long past due and unleased: their message was lost in a crash."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SWEEP_LOCK_KEY):
            return []
        rows = await conn.fetch(
            """
            SELECT id, attempt_count + 1 AS attempt, request_id, webhook_id FROM deliveries
            WHERE status = 'pending'
              AND next_retry_at < now() - make_interval(secs => $1)
              AND (lease_until IS NULL OR lease_until < now())
            ORDER BY next_retry_at LIMIT $2
            """,
            overdue_seconds,
            limit,
        )
        # Pushed forward so the next sweep does not publish them again at once.
        await conn.execute(
            "UPDATE deliveries SET next_retry_at = now() WHERE id = ANY($1::uuid[])",
            [row["id"] for row in rows],
        )
    return [(row["id"], row["attempt"], row["request_id"], row["webhook_id"]) for row in rows]
