"""SQL of the upload service: the webhook lookup, the upload transaction and the outbox.

The delivery an upload creates is written by services.common.deliveries, whose SQL the
upload's statement composes (one statement, one round trip, for a whole batch).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import asyncpg

from services.common import deliveries
from services.common.db import columns
from services.common.messages import UPLOAD_COMPLETED, DeliveryEvent

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
    event: DeliveryEvent
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


@dataclass(frozen=True)
class NewUpload:
    """An upload to record, with its delivery and event."""

    upload_id: uuid.UUID
    webhook_id: uuid.UUID
    user_id: int | None
    filename: str
    stored_path: str
    size: int
    sha256: str
    content_type: str
    request_id: str | None
    created_at: datetime
    delivery_id: uuid.UUID
    event_data: dict[str, Any]
    # The request's W3C trace context, kept in the outbox for the relay's publish.
    trace_context: dict[str, str] | None = None

    @cached_property
    def event(self) -> DeliveryEvent:
        """The message that asks the dispatcher for the delivery's first attempt."""
        return DeliveryEvent.upload_completed(
            self.delivery_id, self.upload_id, self.webhook_id, self.request_id
        )

    def delivery(self) -> deliveries.NewDelivery:
        return deliveries.NewDelivery(
            id=self.delivery_id,
            webhook_id=self.webhook_id,
            upload_id=self.upload_id,
            event_type=UPLOAD_COMPLETED,
            event_time=self.created_at,
            event_data=self.event_data,
            request_id=self.request_id,
        )

    def recorded(self, outbox_id: int | None) -> RecordedUpload:
        return RecordedUpload(self.delivery_id, outbox_id, self.event, self.created_at)


async def record_uploads(
    pool: asyncpg.Pool, uploads: list[NewUpload]
) -> list[RecordedUpload | None]:
    """Each upload with its delivery and (unless the webhook is disabled) outbox event,
    all in one statement, so one commit serves every upload that arrived together.

    The webhook is looked up in that statement, so one deleted since the request began
    is refused (None) even when the caller skipped its own lookup.
    """
    rows = await pool.fetch(
        RECORD_UPLOADS,
        *columns(uploads),  # in NewUpload's field order
        [upload.event.payload() for upload in uploads],
        UPLOAD_COMPLETED,
    )
    outbox_ids = {row["delivery_id"]: row["outbox_id"] for row in rows}
    return [
        upload.recorded(outbox_ids[upload.delivery_id])
        if upload.delivery_id in outbox_ids
        else None
        for upload in uploads
    ]


# The webhook's `disabled` decides the delivery's first status (see deliveries.create_from);
# a delivery to a disabled webhook gets no outbox event, so it is never published.
RECORD_UPLOADS = f"""
    WITH target AS (
        SELECT m.*, w.disabled, $15::text AS event_type, m.created_at AS event_time
        FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[],
                    $6::bigint[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                    $11::uuid[], $12::jsonb[], $13::jsonb[], $14::jsonb[])
            AS m(upload_id, webhook_id, user_id, filename, stored_path, size, sha256,
                 content_type, request_id, created_at, delivery_id, event_data,
                 trace_context, event)
        JOIN webhook_registrations w ON w.id = m.webhook_id
        WHERE w.deleted_at IS NULL AND (m.user_id IS NULL OR w.user_id = m.user_id)
    ), upload AS (
        INSERT INTO uploads (id, webhook_id, filename, stored_path, size, sha256,
                             content_type, request_id, created_at)
        SELECT upload_id, webhook_id, filename, stored_path, size, sha256, content_type,
               request_id, created_at
        FROM target
    ), delivery AS ({deliveries.create_from("target")}
    ), event AS (
        INSERT INTO outbox (routing_key, payload, request_id, trace_context)
        SELECT $15, event, request_id, trace_context FROM target WHERE NOT disabled
        RETURNING id, (payload->>'delivery_id')::uuid AS delivery_id
    )
    SELECT t.delivery_id, e.id AS outbox_id
    FROM target t LEFT JOIN event e ON e.delivery_id = t.delivery_id
"""


async def record_upload_with_key(
    pool: asyncpg.Pool, upload: NewUpload, idempotency_key: str
) -> RecordedUpload | ExistingUpload:
    """Record `upload` as the holder of `idempotency_key`, or return the upload of this
    webhook from the last 24 h that already holds it (and write nothing).

    Raises WebhookGone, writing nothing, if the webhook was deleted meanwhile.
    """
    upload_row = (
        upload.upload_id,
        upload.webhook_id,
        upload.filename,
        upload.stored_path,
        upload.size,
        upload.sha256,
        upload.content_type,
        idempotency_key,
        upload.request_id,
        upload.created_at,
    )
    async with pool.acquire() as conn, conn.transaction():
        holder = await claim_idempotency_key(conn, upload.webhook_id, idempotency_key, upload_row)
        if holder is not None:
            return holder
        status = await deliveries.create(conn, upload.delivery(), upload.user_id)
        if status is None:
            raise WebhookGone(upload.webhook_id)  # rolls the upload row back
        outbox_id = None
        if status == "pending":
            outbox_id = await conn.fetchval(
                "INSERT INTO outbox (routing_key, payload, request_id, trace_context) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                UPLOAD_COMPLETED,
                upload.event.payload(),
                upload.request_id,
                upload.trace_context,
            )
    return upload.recorded(outbox_id)


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
