"""SQL of the upload service: the webhook lookup, the upload transaction and the outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.common.messages import UPLOAD_COMPLETED

# How long an Idempotency-Key answers with its first upload (Stripe's 24 hours).
IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600
# Rounds of "release an expired key, insert, else read the holder" before giving up;
# a second round is needed only when a key expires or its holder is pruned meanwhile.
IDEMPOTENCY_ROUNDS = 3


class IdempotencyContention(Exception):
    """The key kept changing hands while this upload tried to claim it."""


class WebhookGone(Exception):
    """The webhook was deleted (or never was this user's) before the upload was recorded."""


@dataclass(frozen=True)
class RecordedUpload:
    delivery_id: uuid.UUID
    outbox_id: int | None
    event: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ExistingUpload:
    """The upload that already holds an Idempotency-Key: enough to answer its response again."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    filename: str
    size: int
    sha256: str
    content_type: str


async def webhook_exists(
    pool: asyncpg.Pool, webhook_id: uuid.UUID, user_id: int | None = None
) -> bool:
    """Whether the webhook can take uploads; with `user_id` (API keys), only that user's."""
    exists: bool = await pool.fetchval(
        """
        SELECT EXISTS (
            SELECT FROM webhook_registrations
            WHERE id = $1 AND deleted_at IS NULL AND ($2::bigint IS NULL OR user_id = $2)
        )
        """,
        webhook_id,
        user_id,
    )
    return exists


async def record_upload(
    pool: asyncpg.Pool,
    *,
    upload_id: uuid.UUID,
    webhook_id: uuid.UUID,
    user_id: int | None,
    filename: str,
    stored_path: str,
    size: int,
    sha256: str,
    content_type: str,
    idempotency_key: str | None,
    request_id: str | None,
    event_data: dict[str, Any],
    created_at: datetime,
) -> RecordedUpload | ExistingUpload:
    """Upload, delivery and (unless the webhook is disabled) outbox event, in one transaction.

    The webhook is looked up inside that transaction, so one deleted since the request
    began is refused (WebhookGone) even when the caller skipped its own lookup. With an
    idempotency key held by an upload of this webhook from the last 24 h, nothing is
    written and that upload is returned instead.
    """
    delivery_id = uuid.uuid4()
    event = {
        "type": UPLOAD_COMPLETED,
        "delivery_id": str(delivery_id),
        "upload_id": str(upload_id),
        "webhook_id": str(webhook_id),
    }
    upload_row = (
        upload_id,
        webhook_id,
        filename,
        stored_path,
        size,
        sha256,
        content_type,
        idempotency_key,
        request_id,
        created_at,
    )
    if idempotency_key is None:
        # The common case in one round trip: a single statement is its own transaction.
        row = await pool.fetchrow(
            RECORD_UPLOAD,
            *upload_row,
            delivery_id,
            UPLOAD_COMPLETED,
            event_data,
            event,
            user_id,
        )
        if not row["recorded"]:
            raise WebhookGone(webhook_id)
        return RecordedUpload(delivery_id, row["outbox_id"], event, created_at)
    async with pool.acquire() as conn, conn.transaction():
        holder = await claim_idempotency_key(conn, webhook_id, idempotency_key, upload_row)
        if holder is not None:
            return holder
        status = await conn.fetchval(
            """
            INSERT INTO deliveries (id, webhook_id, upload_id, event_type, event_time,
                                    event_data, status, next_retry_at, request_id, created_at)
            SELECT $1, id, $3, $4, $5, $6, CASE WHEN disabled THEN 'not_attempted'
                                                ELSE 'pending' END, $5, $7, $5
            FROM webhook_registrations
            WHERE id = $2 AND deleted_at IS NULL AND ($8::bigint IS NULL OR user_id = $8)
            RETURNING status
            """,
            delivery_id,
            webhook_id,
            upload_id,
            UPLOAD_COMPLETED,
            created_at,
            event_data,
            request_id,
            user_id,
        )
        if status is None:
            raise WebhookGone(webhook_id)  # rolls the upload row back
        outbox_id = None
        if status == "pending":
            outbox_id = await conn.fetchval(
                "INSERT INTO outbox (routing_key, payload, request_id) VALUES ($1, $2, $3) "
                "RETURNING id",
                UPLOAD_COMPLETED,
                event,
                request_id,
            )
    return RecordedUpload(delivery_id, outbox_id, event, created_at)


# Deliveries to a disabled webhook are recorded as not_attempted and never published.
RECORD_UPLOAD = """
    WITH target AS (
        SELECT id, disabled FROM webhook_registrations
        WHERE id = $2 AND deleted_at IS NULL AND ($15::bigint IS NULL OR user_id = $15)
    ), upload AS (
        INSERT INTO uploads (id, webhook_id, filename, stored_path, size, sha256,
                             content_type, idempotency_key, request_id, created_at)
        SELECT $1, id, $3, $4, $5, $6, $7, $8, $9, $10 FROM target
        RETURNING id
    ), delivery AS (
        INSERT INTO deliveries (id, webhook_id, upload_id, event_type, event_time,
                                event_data, status, next_retry_at, request_id, created_at)
        SELECT $11, $2, upload.id, $12, $10, $13,
               CASE WHEN target.disabled THEN 'not_attempted' ELSE 'pending' END, $10, $9, $10
        FROM upload, target
        RETURNING status
    ), event AS (
        INSERT INTO outbox (routing_key, payload, request_id)
        SELECT $12, $14, $9 FROM delivery WHERE status = 'pending'
        RETURNING id
    )
    SELECT EXISTS (SELECT FROM delivery) AS recorded, (SELECT id FROM event) AS outbox_id
"""

INSERT_UPLOAD = """
    INSERT INTO uploads (id, webhook_id, filename, stored_path, size, sha256,
                         content_type, idempotency_key, request_id, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""


async def claim_idempotency_key(
    conn: asyncpg.Connection, webhook_id: uuid.UUID, key: str, upload_row: tuple[Any, ...]
) -> ExistingUpload | None:
    """Insert the upload holding `key`; or return the live upload that already holds it.

    The unique index on (webhook_id, idempotency_key) settles races: of concurrent
    requests with one key, one INSERT wins, and the others' ON CONFLICT waits for the
    winner's transaction and then reads its committed row. An index cannot know that
    a key is older than 24 h, so an expired key is released first by clearing it on
    its old upload (row-locked, so two requests cannot both release and both insert).
    The old upload keeps everything else; only its claim on the key ends.
    """
    for _ in range(IDEMPOTENCY_ROUNDS):
        await conn.execute(
            """
            UPDATE uploads SET idempotency_key = NULL
            WHERE webhook_id = $1 AND idempotency_key = $2
              AND created_at <= now() - make_interval(secs => $3)
            """,
            webhook_id,
            key,
            IDEMPOTENCY_WINDOW_SECONDS,
        )
        inserted = await conn.fetchval(
            INSERT_UPLOAD
            + """
            ON CONFLICT (webhook_id, idempotency_key) WHERE idempotency_key IS NOT NULL
            DO NOTHING RETURNING true
            """,
            *upload_row,
        )
        if inserted:
            return None
        row = await conn.fetchrow(
            """
            SELECT id, webhook_id, filename, size, sha256, content_type FROM uploads
            WHERE webhook_id = $1 AND idempotency_key = $2
              AND created_at > now() - make_interval(secs => $3)
            """,
            webhook_id,
            key,
            IDEMPOTENCY_WINDOW_SECONDS,
        )
        if row is not None:
            return ExistingUpload(**dict(row))
        # The holder expired or was pruned between our statements: go round again.
    raise IdempotencyContention(f"Idempotency-Key {key!r} kept changing hands")


async def delete_outbox_rows(pool: asyncpg.Pool | asyncpg.Connection, ids: list[int]) -> None:
    await pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)


async def count_outbox(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM outbox")
    return count
