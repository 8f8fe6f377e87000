"""SQL of the registration service: its reads, event types' writes, and the transactions around
webhooks' writes (services.common.webhooks) and deliveries' (services.common.deliveries)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.common import deliveries, webhooks
from services.common.delivery_records import DELIVERY_COLUMNS, RECOVERABLE_STATUSES
from services.common.webhooks import WebhookUpdate

from .pagination import Cursor

EVENT_TYPE_COLUMNS = "id, name, description, schema, archived, created_at, updated_at"


async def list_event_types(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        f"SELECT {EVENT_TYPE_COLUMNS} FROM event_types ORDER BY created_at, name"
    )
    return rows


async def get_event_type(pool: asyncpg.Pool, event_type_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        f"SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE id = $1", event_type_id
    )
    return row


async def insert_event_type(
    pool: asyncpg.Pool, name: str, description: str, schema: dict[str, Any] | None
) -> asyncpg.Record | None:
    """The new type; None if the name is taken (its wire name is the name itself)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"""
        INSERT INTO event_types (name, description, event_name, schema)
        VALUES ($1, $2, $1, $3)
        ON CONFLICT DO NOTHING
        RETURNING {EVENT_TYPE_COLUMNS}
        """,
        name,
        description,
        schema,
    )
    return row


async def update_event_type(
    pool: asyncpg.Pool, event_type_id: uuid.UUID, changes: dict[str, Any]
) -> asyncpg.Record | None:
    """Set the given columns (description, schema, archived); None if there is no such type."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"""
        UPDATE event_types
        SET description = CASE WHEN $2 THEN $3 ELSE description END,
            schema = CASE WHEN $4 THEN $5::jsonb ELSE schema END,
            archived = CASE WHEN $6 THEN $7 ELSE archived END,
            updated_at = now()
        WHERE id = $1
        RETURNING {EVENT_TYPE_COLUMNS}
        """,
        event_type_id,
        "description" in changes,
        changes.get("description"),
        "schema" in changes,
        changes.get("schema"),
        "archived" in changes,
        changes.get("archived"),
    )
    return row


# --- management ---------------------------------------------------------------------------------
# Deleted webhooks (deleted_at set) and their deliveries are invisible to every query below.

WEBHOOK_COLUMNS = """
    w.id, w.user_id, w.event_type_id, w.url, w.disabled, w.disabled_reason,
    w.filter, w.retry_schedule, w.timeout_seconds, w.signature_scheme, w.max_concurrency,
    w.rate_limit_per_second,
    w.created_at, w.updated_at, c.custom_headers, c.custom_payload, c.auth,
    c.tls_client_certificate, c.tls_ca,
    ARRAY(SELECT s.event_type_id FROM webhook_event_types s
          WHERE s.webhook_id = w.id ORDER BY s.position) AS event_type_ids
"""


async def get_webhook(
    conn: asyncpg.Pool | asyncpg.Connection, webhook_id: uuid.UUID
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        SELECT {WEBHOOK_COLUMNS}
        FROM webhook_registrations w JOIN webhook_configurations c ON c.webhook_id = w.id
        WHERE w.id = $1 AND w.deleted_at IS NULL
        """,
        webhook_id,
    )
    return row


async def webhook_owner(pool: asyncpg.Pool, webhook_id: uuid.UUID) -> int | None:
    """The user of a webhook that is not deleted; None if there is none."""
    owner: int | None = await pool.fetchval(
        "SELECT user_id FROM webhook_registrations WHERE id = $1 AND deleted_at IS NULL",
        webhook_id,
    )
    return owner


async def webhook_type_ids(pool: asyncpg.Pool, webhook_id: uuid.UUID) -> list[uuid.UUID]:
    """The event types a webhook subscribes to, in order."""
    rows = await pool.fetch(
        "SELECT event_type_id FROM webhook_event_types WHERE webhook_id = $1 ORDER BY position",
        webhook_id,
    )
    return [row["event_type_id"] for row in rows]


async def list_webhooks(
    pool: asyncpg.Pool,
    user_id: int,
    event_type_id: uuid.UUID | None,
    after: Cursor | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Newest first (with `event_type_id`, those subscribed to it); one row more than
    `limit` tells that another page follows."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""
        SELECT {WEBHOOK_COLUMNS}
        FROM webhook_registrations w JOIN webhook_configurations c ON c.webhook_id = w.id
        WHERE w.user_id = $1 AND w.deleted_at IS NULL
          AND ($2::timestamptz IS NULL OR (w.created_at, w.id) < ($2, $3::uuid))
          AND ($5::uuid IS NULL OR EXISTS (
              SELECT 1 FROM webhook_event_types s
              WHERE s.webhook_id = w.id AND s.event_type_id = $5))
        ORDER BY w.created_at DESC, w.id DESC
        LIMIT $4
        """,
        user_id,
        after and after.created_at,
        after and after.id,
        limit + 1,
        event_type_id,
    )
    return rows


async def update_webhook(
    pool: asyncpg.Pool, webhook_id: uuid.UUID, update: WebhookUpdate
) -> asyncpg.Record | None:
    """The webhook as changed; None if there is no such webhook."""
    async with pool.acquire() as conn, conn.transaction():
        if not await webhooks.update_webhook(conn, webhook_id, update):
            return None
        return await get_webhook(conn, webhook_id)


async def delete_webhook(pool: asyncpg.Pool, webhook_id: uuid.UUID) -> asyncpg.Record | None:
    """Soft delete; its pending deliveries are cancelled (the dispatcher re-checks too)."""
    async with pool.acquire() as conn, conn.transaction():
        webhook = await conn.fetchrow(
            f"""
            SELECT {WEBHOOK_COLUMNS}
            FROM webhook_registrations w JOIN webhook_configurations c ON c.webhook_id = w.id
            WHERE w.id = $1 AND w.deleted_at IS NULL
            FOR UPDATE OF w
            """,
            webhook_id,
        )
        if webhook is None:
            return None
        await webhooks.mark_deleted(conn, webhook_id)
        await deliveries.cancel_for_webhook(conn, webhook_id)
    result: asyncpg.Record = webhook
    return result


async def list_deliveries(
    pool: asyncpg.Pool,
    webhook_id: uuid.UUID,
    status: str | None,
    after: Cursor | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Newest first; one row more than `limit` tells that another page follows.

    The page is chosen from deliveries_webhook_idx alone (it holds the status), then its
    rows are read: a status that few deliveries have is looked for without reading every
    delivery of the webhook (at 10 million rows, 300 ms became a few; bench/big_tables.py).
    """
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""
        WITH page AS (
            SELECT id, created_at FROM deliveries
            WHERE webhook_id = $1
              AND ($2::text IS NULL OR status = $2)
              AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT $5
        )
        SELECT {DELIVERY_COLUMNS}
        FROM page p JOIN deliveries d ON d.id = p.id AND d.created_at = p.created_at
        ORDER BY d.created_at DESC, d.id DESC
        """,
        webhook_id,
        status,
        after and after.created_at,
        after and after.id,
        limit + 1,
    )
    return rows


async def get_delivery(pool: asyncpg.Pool, delivery_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        f"""
        SELECT {DELIVERY_COLUMNS}, w.disabled, w.user_id
        FROM deliveries d JOIN webhook_registrations w ON w.id = d.webhook_id
        WHERE d.id = $1 AND w.deleted_at IS NULL
        """,
        delivery_id,
    )
    return row


async def list_attempts(
    pool: asyncpg.Pool, delivery_id: uuid.UUID, delivery_created_at: datetime
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        """
        SELECT attempt, status_code, error, duration_ms, response_body, created_at
        FROM delivery_attempts
        -- The delivery's time finds the one partition that holds its attempts.
        WHERE delivery_id = $1 AND delivery_created_at = $2
        ORDER BY attempt, id
        """,
        delivery_id,
        delivery_created_at,
    )
    return rows


async def count_recoverable(
    pool: asyncpg.Pool, webhook_id: uuid.UUID, since: datetime
) -> tuple[int, datetime]:
    """How many deliveries a recover from `since` restarts, and the time that bounds it."""
    row = await pool.fetchrow(
        """
        SELECT count(*) AS n, now() AS until FROM deliveries
        WHERE webhook_id = $1 AND status = ANY($2::text[]) AND created_at >= $3
          AND created_at <= now()
        """,
        webhook_id,
        RECOVERABLE_STATUSES,
        since,
    )
    assert row is not None
    return int(row["n"]), row["until"]
