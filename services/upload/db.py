"""SQL of the upload service: the webhook lookup, the upload transaction and the outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.common.messages import UPLOAD_COMPLETED


@dataclass(frozen=True)
class WebhookTarget:
    id: uuid.UUID
    disabled: bool


@dataclass(frozen=True)
class RecordedUpload:
    delivery_id: uuid.UUID
    outbox_id: int | None
    event: dict[str, Any]
    created_at: datetime


async def find_webhook(pool: asyncpg.Pool, webhook_id: uuid.UUID) -> WebhookTarget | None:
    row = await pool.fetchrow(
        "SELECT id, disabled FROM webhook_registrations WHERE id = $1 AND deleted_at IS NULL",
        webhook_id,
    )
    return None if row is None else WebhookTarget(id=row["id"], disabled=row["disabled"])


async def record_upload(
    pool: asyncpg.Pool,
    *,
    upload_id: uuid.UUID,
    webhook: WebhookTarget,
    filename: str,
    stored_path: str,
    size: int,
    sha256: str,
    content_type: str,
    request_id: str | None,
    event_data: dict[str, Any],
    created_at: datetime,
) -> RecordedUpload:
    """Upload, delivery and (unless the webhook is disabled) outbox event, in one transaction."""
    delivery_id = uuid.uuid4()
    event = {
        "type": UPLOAD_COMPLETED,
        "delivery_id": str(delivery_id),
        "upload_id": str(upload_id),
        "webhook_id": str(webhook.id),
    }
    status = "not_attempted" if webhook.disabled else "pending"
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            INSERT INTO uploads (id, webhook_id, filename, stored_path, size, sha256,
                                 content_type, request_id, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            upload_id,
            webhook.id,
            filename,
            stored_path,
            size,
            sha256,
            content_type,
            request_id,
            created_at,
        )
        await conn.execute(
            """
            INSERT INTO deliveries (id, webhook_id, upload_id, event_type, event_time,
                                    event_data, status, next_retry_at, request_id, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $5, $8, $5)
            """,
            delivery_id,
            webhook.id,
            upload_id,
            UPLOAD_COMPLETED,
            created_at,
            event_data,
            status,
            request_id,
        )
        outbox_id = None
        if not webhook.disabled:
            outbox_id = await conn.fetchval(
                "INSERT INTO outbox (routing_key, payload, request_id) VALUES ($1, $2, $3) "
                "RETURNING id",
                UPLOAD_COMPLETED,
                event,
                request_id,
            )
    return RecordedUpload(delivery_id, outbox_id, event, created_at)


async def delete_outbox_rows(pool: asyncpg.Pool | asyncpg.Connection, ids: list[int]) -> None:
    await pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)


async def count_outbox(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM outbox")
    return count
