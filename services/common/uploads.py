"""Uploads: the only writer of the `uploads` table.

The upload service composes `insert_from` into the statement that records an upload with
its event and delivery, or claims an Idempotency-Key with `claim_idempotency_key`;
retention deletes old uploads with `prune_batch`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from .idempotency import Held, KeyedTable, claim_key


def insert_from(source: str) -> str:
    """SQL inserting an upload (without Idempotency-Key) per row of `source`: upload_id,
    webhook_id, filename, stored_path, size, sha256, content_type, request_id, created_at."""
    return f"""
        INSERT INTO uploads (id, webhook_id, filename, stored_path, size, sha256,
                             content_type, request_id, created_at)
        SELECT upload_id, webhook_id, filename, stored_path, size, sha256, content_type,
               request_id, created_at
        FROM {source}
    """


@dataclass(frozen=True)
class ExistingUpload:
    """The upload that already holds an Idempotency-Key: enough to answer its response again."""

    upload_id: uuid.UUID
    webhook_id: uuid.UUID
    filename: str
    size: int
    sha256: str
    content_type: str


INSERT_UPLOAD = """
    INSERT INTO uploads (id, webhook_id, filename, stored_path, size, sha256,
                         content_type, idempotency_key, request_id, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""


# Of this webhook's uploads (the owner of the key, $1).
KEYED_UPLOADS = KeyedTable(
    table="uploads",
    owner="webhook_id",
    holder="""
        SELECT id AS upload_id, webhook_id, filename, size, sha256, content_type
        FROM uploads
        WHERE webhook_id = $1 AND idempotency_key = $2
          AND created_at > now() - make_interval(secs => $3)
    """,
)
CLAIM_UPLOAD = (
    INSERT_UPLOAD
    + """
    ON CONFLICT (webhook_id, idempotency_key) WHERE idempotency_key IS NOT NULL
    DO NOTHING RETURNING true
"""
)


async def claim_idempotency_key(
    conn: asyncpg.Connection, webhook_id: uuid.UUID, key: str, upload_row: tuple[Any, ...]
) -> ExistingUpload | None:
    """Insert the upload holding `key` (`upload_row`, INSERT_UPLOAD's parameters); or
    return the live upload of this webhook that already holds it (idempotency.claim_key)."""

    async def insert() -> bool | None:
        inserted: bool | None = await conn.fetchval(CLAIM_UPLOAD, *upload_row)
        return inserted

    claimed = await claim_key(conn, KEYED_UPLOADS, webhook_id, key, insert)
    return ExistingUpload(**dict(claimed.row)) if isinstance(claimed, Held) else None


async def prune_batch(
    pool: asyncpg.Pool, cutoff: datetime, batch_size: int
) -> tuple[int, list[uuid.UUID]]:
    """Delete uploads older than `cutoff` without a pending delivery; (examined, deleted ids).

    Their deliveries, if kept, lose only the link (`upload_id` becomes NULL): the
    event they deliver is stored with them.
    """
    async with pool.acquire() as conn, conn.transaction():
        ids = [
            row["id"]
            for row in await conn.fetch(
                """
                SELECT u.id FROM uploads u
                WHERE u.created_at < $1
                  AND NOT EXISTS (SELECT 1 FROM deliveries d
                                  WHERE d.upload_id = u.id AND d.status = 'pending')
                ORDER BY u.created_at LIMIT $2
                FOR UPDATE OF u SKIP LOCKED
                """,
                cutoff,
                batch_size,
            )
        ]
        if not ids:
            return 0, []
        deleted = await conn.fetch(
            """
            DELETE FROM uploads u WHERE u.id = ANY($1)
              AND NOT EXISTS (SELECT 1 FROM deliveries d
                              WHERE d.upload_id = u.id AND d.status = 'pending')
            RETURNING u.id
            """,
            ids,
        )
    return len(ids), [row["id"] for row in deleted]
