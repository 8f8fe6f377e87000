"""SQL of the registration service (a delivery's transitions are services.common.deliveries)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from services.common import deliveries
from services.common.deliveries import DELIVERY_COLUMNS

from .pagination import Cursor
from .validation import NewWebhook, WebhookUpdate

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


async def insert_webhook(pool: asyncpg.Pool, new: NewWebhook, secret: str) -> dict[str, Any]:
    """Registration and configuration in one statement (so one transaction, one round trip)."""
    registration = await pool.fetchrow(
        """
        WITH registration AS (
            INSERT INTO webhook_registrations
                (user_id, event_type_id, url, secret, filter, retry_schedule, timeout_seconds,
                 signature_scheme, max_concurrency)
            VALUES ($1, $2, $3, $4, $7, $8, $9, $10, $11)
            RETURNING id, user_id, event_type_id, url, filter, retry_schedule,
                      timeout_seconds, signature_scheme, max_concurrency, created_at, updated_at
        ), configuration AS (
            INSERT INTO webhook_configurations (webhook_id, custom_headers, custom_payload)
            SELECT id, $5, $6 FROM registration
        )
        SELECT * FROM registration
        """,
        new.user_id,
        new.event_type_id,
        new.url,
        secret,
        new.custom_headers,
        new.custom_payload,
        new.filter,
        new.retry_schedule,
        new.timeout_seconds,
        new.signature_scheme,
        new.max_concurrency,
    )
    return {
        **dict(registration),
        "custom_headers": new.custom_headers,
        "custom_payload": new.custom_payload,
    }


# --- management ---------------------------------------------------------------------------------
# Deleted webhooks (deleted_at set) and their deliveries are invisible to every query below.

WEBHOOK_COLUMNS = """
    w.id, w.user_id, w.event_type_id, w.url, w.disabled, w.disabled_reason,
    w.filter, w.retry_schedule, w.timeout_seconds, w.signature_scheme, w.max_concurrency,
    w.created_at, w.updated_at, c.custom_headers, c.custom_payload
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


async def list_webhooks(
    pool: asyncpg.Pool, user_id: int, after: Cursor | None, limit: int
) -> list[asyncpg.Record]:
    """Newest first; one row more than `limit` tells that another page follows."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""
        SELECT {WEBHOOK_COLUMNS}
        FROM webhook_registrations w JOIN webhook_configurations c ON c.webhook_id = w.id
        WHERE w.user_id = $1 AND w.deleted_at IS NULL
          AND ($2::timestamptz IS NULL OR (w.created_at, w.id) < ($2, $3::uuid))
        ORDER BY w.created_at DESC, w.id DESC
        LIMIT $4
        """,
        user_id,
        after and after.created_at,
        after and after.id,
        limit + 1,
    )
    return rows


async def update_webhook(
    pool: asyncpg.Pool, webhook_id: uuid.UUID, update: WebhookUpdate
) -> asyncpg.Record | None:
    """Registration and configuration in one transaction; None if there is no such webhook."""
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchval(
            """
            UPDATE webhook_registrations
            SET url = coalesce($2, url),
                disabled = coalesce($3, disabled),
                disabled_reason = CASE
                    WHEN $3::boolean IS NULL THEN disabled_reason
                    WHEN $3::boolean THEN 'disabled by user'
                    ELSE NULL END,
                -- Re-enabling starts the endpoint's health afresh.
                failing_since = CASE
                    WHEN $3::boolean = false AND disabled THEN NULL
                    ELSE failing_since END,
                -- Sent (even as null, the default) or left as they are.
                filter = CASE WHEN $4 THEN $5::jsonb ELSE filter END,
                retry_schedule = CASE WHEN $6 THEN $7::integer[] ELSE retry_schedule END,
                timeout_seconds = CASE WHEN $8 THEN $9::integer ELSE timeout_seconds END,
                max_concurrency = CASE WHEN $10 THEN $11::integer ELSE max_concurrency END,
                updated_at = now()
            WHERE id = $1 AND deleted_at IS NULL
            RETURNING id
            """,
            webhook_id,
            update.url,
            update.disabled,
            "filter" in update.options,
            update.options.get("filter"),
            "retry_schedule" in update.options,
            update.options.get("retry_schedule"),
            "timeout_seconds" in update.options,
            update.options.get("timeout_seconds"),
            "max_concurrency" in update.options,
            update.options.get("max_concurrency"),
        )
        if found is None:
            return None
        if update.custom_headers is not None or update.custom_payload is not None:
            await conn.execute(
                """
                UPDATE webhook_configurations
                SET custom_headers = coalesce($2, custom_headers),
                    custom_payload = coalesce($3, custom_payload),
                    updated_at = now()
                WHERE webhook_id = $1
                """,
                webhook_id,
                update.custom_headers,
                update.custom_payload,
            )
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
        await conn.execute(
            "UPDATE webhook_registrations SET deleted_at = now(), updated_at = now() WHERE id = $1",
            webhook_id,
        )
        await deliveries.cancel_for_webhook(conn, webhook_id)
    result: asyncpg.Record = webhook
    return result


async def rotate_secret(
    pool: asyncpg.Pool,
    webhook_id: uuid.UUID,
    new_secret: str,
    grace_seconds: int,
    scheme: str | None = None,
) -> asyncpg.Record | None:
    """The current secret becomes the previous one for the grace period, replacing any older;
    with `scheme`, the webhook signs in that scheme from now on (the new secret's)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        """
        UPDATE webhook_registrations
        SET previous_secret = secret,
            previous_secret_expires_at = now() + make_interval(secs => $3),
            secret = $2,
            signature_scheme = coalesce($4, signature_scheme),
            updated_at = now()
        WHERE id = $1 AND deleted_at IS NULL
        RETURNING id, secret, signature_scheme, previous_secret_expires_at
        """,
        webhook_id,
        new_secret,
        float(grace_seconds),
        scheme,
    )
    return row


async def list_deliveries(
    pool: asyncpg.Pool,
    webhook_id: uuid.UUID,
    status: str | None,
    after: Cursor | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Newest first; one row more than `limit` tells that another page follows."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""
        SELECT {DELIVERY_COLUMNS}
        FROM deliveries d
        WHERE d.webhook_id = $1
          AND ($2::text IS NULL OR d.status = $2)
          AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4::uuid))
        ORDER BY d.created_at DESC, d.id DESC
        LIMIT $5
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


async def list_attempts(pool: asyncpg.Pool, delivery_id: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        """
        SELECT attempt, status_code, error, duration_ms, response_body, created_at
        FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt, id
        """,
        delivery_id,
    )
    return rows
