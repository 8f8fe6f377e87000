"""The outbox: messages recorded with the rows they announce, kept until the broker confirms.

The only writer of the `outbox` table. A producer composes `insert_from` into the
statement that records its rows, so the message is durable exactly when they are; after
a confirmed publish the row is deleted (`delete`), else the relay
(services/upload/relay/outbox_relay.py) publishes it later. Each row holds
`messages.RecordedMessage.payload()` and its routing key.
"""

from __future__ import annotations

import asyncpg


def insert_from(select: str) -> str:
    """SQL inserting one outbox row per row of `select`, which yields (routing_key,
    payload, request_id, trace_context); returns each row's `id` and `payload`. The trace
    context (W3C, may be NULL) lets the relay publish in the trace that recorded the row."""
    return f"""
        INSERT INTO outbox (routing_key, payload, request_id, trace_context)
        {select}
        RETURNING id, payload
    """


async def insert(
    conn: asyncpg.Connection | asyncpg.Pool,
    routing_key: str,
    payload: dict[str, str],
    request_id: str | None,
    trace_context: dict[str, str] | None = None,
) -> int:
    """One outbox row in the caller's transaction; its id."""
    outbox_id: int = await conn.fetchval(
        insert_from("SELECT $1::text, $2::jsonb, $3::text, $4::jsonb"),
        routing_key,
        payload,
        request_id,
        trace_context,
    )
    return outbox_id


async def take_old(
    conn: asyncpg.Connection, min_age_seconds: float, limit: int
) -> list[asyncpg.Record]:
    """The oldest rows older than `min_age_seconds`, locked for the caller's transaction and
    skipped by any other relay replica (SKIP LOCKED)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT id, routing_key, payload, request_id, trace_context FROM outbox
        WHERE created_at < now() - make_interval(secs => $1)
        ORDER BY id LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,
        min_age_seconds,
        limit,
    )
    return rows


async def delete(conn: asyncpg.Pool | asyncpg.Connection, ids: list[int]) -> None:
    """Rows whose message the broker confirmed."""
    await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)


async def count(pool: asyncpg.Pool) -> int:
    pending: int = await pool.fetchval("SELECT count(*) FROM outbox")
    return pending
