"""SQL of the registration service."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from .validation import NewWebhook


async def list_event_types(pool: asyncpg.Pool, name: str | None) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record]
    if name is None:
        rows = await pool.fetch(
            "SELECT id, name, description FROM event_types ORDER BY created_at, name"
        )
    else:
        rows = await pool.fetch(
            "SELECT id, name, description FROM event_types WHERE name = $1 ORDER BY created_at",
            name,
        )
    return rows


async def event_type_exists(pool: asyncpg.Pool, event_type_id: uuid.UUID) -> bool:
    found = await pool.fetchval("SELECT 1 FROM event_types WHERE id = $1", event_type_id)
    return found is not None


async def insert_webhook(pool: asyncpg.Pool, new: NewWebhook, secret: str) -> dict[str, Any]:
    """Registration and configuration in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        registration = await conn.fetchrow(
            """
            INSERT INTO webhook_registrations (user_id, event_type_id, url, secret)
            VALUES ($1, $2, $3, $4)
            RETURNING id, user_id, event_type_id, url, secret, created_at, updated_at
            """,
            new.user_id,
            new.event_type_id,
            new.url,
            secret,
        )
        await conn.execute(
            """
            INSERT INTO webhook_configurations (webhook_id, custom_headers, custom_payload)
            VALUES ($1, $2, $3)
            """,
            registration["id"],
            new.custom_headers,
            new.custom_payload,
        )
    return {
        **dict(registration),
        "custom_headers": new.custom_headers,
        "custom_payload": new.custom_payload,
    }
