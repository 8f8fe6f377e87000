"""SQL of the dispatcher: claim a delivery, record an attempt, find stalled deliveries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.common.db import columns

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


@dataclass(frozen=True)
class ClaimRequest:
    delivery_id: uuid.UUID
    attempt: int


async def claim_many(
    pool: asyncpg.Pool, requests: list[ClaimRequest], lease_seconds: float
) -> list[ClaimedDelivery | None]:
    """Take the lease of each (delivery, attempt); None where it is not due, done, or held.

    Only lease_until changes (no index covers it), so the update can stay heap-only.
    The delivery ids must be distinct: one statement updates a row at most once.
    """
    rows = await pool.fetch(
        """
        UPDATE deliveries d
        SET lease_until = now() + make_interval(secs => $3)
        FROM unnest($1::uuid[], $2::int[]) AS m(id, attempt),
             webhook_registrations w
             JOIN webhook_configurations c ON c.webhook_id = w.id
        WHERE d.id = m.id AND w.id = d.webhook_id
          AND d.status = 'pending' AND d.attempt_count = m.attempt - 1
          AND (d.lease_until IS NULL OR d.lease_until < now())
        RETURNING d.id, m.attempt, d.webhook_id, d.event_type, d.event_time, d.event_data,
                  d.request_id, w.url, w.secret, w.previous_secret,
                  (w.previous_secret_expires_at > now()) AS previous_valid,
                  w.disabled, w.deleted_at IS NOT NULL AS deleted, w.failing_since,
                  d.schedule_offset, c.custom_headers, c.custom_payload
        """,
        [request.delivery_id for request in requests],
        [request.attempt for request in requests],
        lease_seconds + LEASE_MARGIN_SECONDS,
    )
    claimed = {row["id"]: claimed_delivery(row) for row in rows}
    return [claimed.get(request.delivery_id) for request in requests]


def claimed_delivery(row: asyncpg.Record) -> ClaimedDelivery:
    secrets = [row["secret"]]
    if row["previous_secret"] and row["previous_valid"]:
        secrets.append(row["previous_secret"])
    return ClaimedDelivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        attempt=row["attempt"],
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


@dataclass(frozen=True)
class AttemptRecord:
    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    attempt: int
    status: str
    retry_in_seconds: float | None
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int


async def record_attempts(pool: asyncpg.Pool, records: list[AttemptRecord]) -> list[bool]:
    """Each attempt, its error-log row and its delivery's new state, and each endpoint's
    health, in one statement; False for an attempt whose delivery had moved on.

    An endpoint starts failing continuously when all of its attempts here failed, and
    is healthy again after any success. The delivery ids must be distinct.
    """
    rows = await pool.fetch(
        """
        WITH m AS (
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[],
                                 $5::float8[], $6::int[], $7::text[], $8::text[], $9::int[])
                AS m(delivery_id, webhook_id, attempt, status, retry_in, status_code,
                     error, response_body, duration_ms)
        ), updated AS (
            UPDATE deliveries d
            SET status = m.status, attempt_count = m.attempt, lease_until = NULL,
                last_error = m.error, next_retry_at = now() + make_interval(secs => m.retry_in),
                updated_at = now()
            FROM m
            WHERE d.id = m.delivery_id AND d.attempt_count = m.attempt - 1
            RETURNING d.id, d.next_retry_at, m.webhook_id, m.attempt, m.status_code,
                      m.error, m.response_body, m.duration_ms
        ), attempt_rows AS (
            INSERT INTO delivery_attempts
                (delivery_id, attempt, status_code, response_body, error, duration_ms)
            SELECT id, attempt, status_code, response_body, error, duration_ms FROM updated
        ), error_rows AS (
            INSERT INTO error_log (delivery_id, error_message, retry_count, next_retry_time)
            SELECT id, error, attempt, next_retry_at FROM updated WHERE error IS NOT NULL
        ), health AS (
            UPDATE webhook_registrations w
            SET failing_since = CASE WHEN h.failed THEN now() END
            FROM (SELECT webhook_id, bool_and(error IS NOT NULL) AS failed
                  FROM updated GROUP BY webhook_id) h
            WHERE w.id = h.webhook_id AND (w.failing_since IS NULL) = h.failed
        )
        SELECT id FROM updated
        """,
        *columns(records),  # in AttemptRecord's field order
    )
    recorded = {row["id"] for row in rows}
    return [record.delivery_id in recorded for record in records]


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
