"""Test helpers for events: event types and webhooks written straight to the database (for
numbers the API would take long to make), and events accepted and published as the
POST /event route does (tests/test_events_api.py drives the route itself)."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.common import events, outbox
from services.common.broker import Broker


def fresh_user_id() -> int:
    """A user no other test touches: the session's database is shared."""
    return uuid.uuid4().int % 10**12 + 10**9


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


async def create_event_type(pool: asyncpg.Pool, name: str | None = None) -> tuple[uuid.UUID, str]:
    name = name or f"test.{uuid.uuid4().hex[:10]}"
    type_id: uuid.UUID = await pool.fetchval(
        "INSERT INTO event_types (name, description, event_name) VALUES ($1, 'test', $1)"
        " RETURNING id",
        name,
    )
    return type_id, name


async def insert_webhooks(
    pool: asyncpg.Pool,
    count: int,
    user_id: int,
    event_type_id: uuid.UUID,
    url: str,
    secret: str,
    **columns: Any,
) -> list[uuid.UUID]:
    """`count` webhooks with one secret; `columns` sets filter, disabled, retry_schedule,
    timeout_seconds."""
    ids: list[uuid.UUID] = [
        row["id"]
        for row in await pool.fetch(
            """
            INSERT INTO webhook_registrations (user_id, event_type_id, url, secret)
            SELECT $1, $2, $3, $4 FROM generate_series(1, $5) RETURNING id
            """,
            user_id,
            event_type_id,
            url,
            secret,
            count,
        )
    ]
    await pool.execute(
        "INSERT INTO webhook_configurations (webhook_id) SELECT unnest($1::uuid[])", ids
    )
    await pool.execute(
        "INSERT INTO webhook_event_types (webhook_id, event_type_id, user_id, position)"
        " SELECT unnest($1::uuid[]), $2, $3, 0",
        ids,
        event_type_id,
        user_id,
    )
    for column, value in columns.items():
        await pool.execute(
            f"UPDATE webhook_registrations SET {column} = $2 WHERE id = ANY($1)", ids, value
        )
    return ids


def new_event(
    event_type_id: uuid.UUID,
    event_type: str,
    user_id: int,
    payload: dict[str, Any],
    idempotency_key: str | None = None,
) -> events.NewEvent:
    return events.NewEvent(
        id=uuid.uuid4(),
        event_type_id=event_type_id,
        event_type=event_type,
        user_id=user_id,
        payload=payload,
        idempotency_key=idempotency_key,
        request_id=None,
        created_at=datetime.now(UTC),
    )


async def publish(pool: asyncpg.Pool, broker: Broker | None, event: events.NewEvent) -> uuid.UUID:
    """Accept `event`, then (with a broker) publish its fan-out message as the route
    will; without one the outbox relay publishes it."""
    async with pool.acquire() as conn:
        accepted = await events.accept(conn, event)
    assert isinstance(accepted, events.AcceptedEvent)
    if broker is not None and accepted.outbox_id is not None:
        await broker.request_fanout(accepted.fanout)
        await outbox.delete(pool, [accepted.outbox_id])
    return accepted.id
