"""SQL of the fan-out worker: an event's subscribers, and their deliveries batch by batch.

Subscribers come in keyset batches; one statement per batch makes their deliveries, the
outbox rows announcing them, and (for the last batch) marks the event fanned out. Each
row's SQL comes from its owner (services.common events, deliveries, outbox)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.common import deliveries, events, outbox
from services.common.db import columns
from services.common.messages import MAX_DELIVERIES_PER_MESSAGE, DeliveryBatch

# The live webhooks subscribed to an event type (s), in webhook id order: one range of the
# index on (user_id, event_type_id, webhook_id) per user and type, whatever the number of
# types each webhook has.
SUBSCRIBED = """
    webhook_event_types s
    JOIN webhook_registrations w ON w.id = s.webhook_id AND w.deleted_at IS NULL
"""


@dataclass(frozen=True)
class Subscriber:
    """A webhook registered for an event's type by the event's user."""

    id: uuid.UUID
    disabled: bool
    filter: dict[str, Any] | None
    updated_at: datetime


async def subscribers(
    pool: asyncpg.Pool, event: events.EventToFanOut, after: uuid.UUID | None, limit: int
) -> list[Subscriber]:
    """The next `limit` live webhooks (by id, after `after`) of the event's user for its
    type that existed when the event was accepted."""
    rows = await pool.fetch(
        f"""
        SELECT w.id, w.disabled, w.filter, w.updated_at
        FROM {SUBSCRIBED}
        WHERE s.user_id = $1 AND s.event_type_id = $2 AND w.created_at <= $3
          AND ($4::uuid IS NULL OR s.webhook_id > $4)
        ORDER BY s.webhook_id LIMIT $5
        """,
        event.user_id,
        event.event_type_id,
        event.created_at,
        after,
        limit,
    )
    return [Subscriber(**dict(row)) for row in rows]


@dataclass(frozen=True)
class FanoutDelivery:
    """A delivery the fan-out creates, unless the event already has one to that webhook."""

    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    disabled: bool
    message: dict[str, str]  # its DeliveryEvent's item() in the announcing DeliveryBatch


async def create_fanout_deliveries(
    pool: asyncpg.Pool,
    event: events.EventToFanOut,
    batch: list[FanoutDelivery],
    last: bool,
    trace_context: dict[str, str] | None = None,
) -> list[tuple[int, DeliveryBatch]]:
    """One statement: the batch's deliveries (skipping those a crashed run made), the
    outbox rows announcing those just made pending, MAX_DELIVERIES_PER_MESSAGE a row (with
    the fan-out's `trace_context`, for the relay), and, for the `last` batch, the event
    marked fanned out. Each new outbox row's id and message."""
    rows = await pool.fetch(
        FANOUT_BATCH,
        *(columns(batch) if batch else [[], [], [], []]),
        event.id,
        event.event_type,
        event.created_at,
        event.payload,
        event.request_id,
        last,
        trace_context,
        event.ordering_key,
        event.ordering_seq,
    )
    return [
        (row["id"], DeliveryBatch.from_payload(row["payload"], event.event_type)) for row in rows
    ]


FANOUT_BATCH = f"""
    WITH source AS (
        SELECT m.delivery_id, m.webhook_id, NULL::uuid AS upload_id, $5::uuid AS event_id,
               $6::text AS event_type, $7::timestamptz AS event_time, $8::jsonb AS event_data,
               m.disabled, $9::text AS request_id, m.message, $12::text AS ordering_key,
               $13::bigint AS ordering_seq
        FROM unnest($1::uuid[], $2::uuid[], $3::bool[], $4::jsonb[])
            AS m(delivery_id, webhook_id, disabled, message)
    ), created AS ({deliveries.create_from("source", once_per_event=True)}
        RETURNING id, status
    ), pending AS (
        SELECT s.message, (row_number() OVER () - 1) / {MAX_DELIVERIES_PER_MESSAGE} AS chunk
        FROM created c JOIN source s ON s.delivery_id = c.id WHERE c.status = 'pending'
    ), announced AS ({
    outbox.insert_from(
        f"SELECT $6, {DeliveryBatch.payload_sql('$6::text', 'message')}, $9, $11::jsonb"
        " FROM pending GROUP BY chunk"
    )
}), done AS ({events.mark_fanned_out("ARRAY[$5::uuid]", "ARRAY[$7::timestamptz]", "$10::bool")})
    SELECT id, payload FROM announced
"""
