"""SQL of the fan-outs that POST /event makes itself, for every event accepted together.

One query for their subscribers, then one statement for all of them: events without an
Idempotency-Key are accepted by the statement that makes their deliveries
(accept_and_fan_out); an event with one, accepted alone, has its deliveries made after
(create_deliveries). db.py holds the worker's, one event at a time; docs/events.md."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.common import deliveries, events, outbox
from services.common.db import field_arrays
from services.common.messages import MAX_DELIVERIES_PER_MESSAGE, DeliveryBatch

from . import db

# The webhooks of one user for one event type.
Subscription = tuple[int, uuid.UUID]
# Outbox rows' ids and the messages they hold (each announcing up to 64 deliveries).
Announced = list[tuple[int, DeliveryBatch]]


def subscription(event: events.NewEvent) -> Subscription:
    return event.user_id, event.event_type_id


@dataclass(frozen=True)
class Subscribed:
    """A subscriber and when it was registered: an event accepted before that is not its."""

    created_at: datetime
    webhook: db.Subscriber


async def subscribers(
    pool: asyncpg.Pool, batch: Sequence[events.NewEvent], limit: int
) -> dict[Subscription, list[Subscribed]]:
    """For each (user, type) of the batch, its first `limit` live webhooks (by id) that
    existed when the latest of its events was accepted; an earlier event takes those
    created at or before its own acceptance."""
    latest: dict[Subscription, datetime] = {}
    for event in batch:
        key = subscription(event)
        latest[key] = max(event.created_at, latest.get(key, event.created_at))
    rows = await pool.fetch(
        f"""
        SELECT a.user_id, a.event_type_id, w.id, w.disabled, w.filter, w.updated_at,
               w.created_at
        FROM unnest($1::bigint[], $2::uuid[], $3::timestamptz[])
            AS a(user_id, event_type_id, accepted_by)
        CROSS JOIN LATERAL (
            SELECT w.id, w.disabled, w.filter, w.updated_at, w.created_at
            FROM {db.SUBSCRIBED}
            WHERE s.user_id = a.user_id AND s.event_type_id = a.event_type_id
              AND w.created_at <= a.accepted_by
            ORDER BY s.webhook_id LIMIT $4
        ) w
        """,
        [user_id for user_id, _ in latest],
        [type_id for _, type_id in latest],
        list(latest.values()),
        limit,
    )
    found: dict[Subscription, list[Subscribed]] = {key: [] for key in latest}
    for row in rows:
        webhook = db.Subscriber(row["id"], row["disabled"], row["filter"], row["updated_at"])
        found[row["user_id"], row["event_type_id"]].append(Subscribed(row["created_at"], webhook))
    return found


async def create_deliveries(
    pool: asyncpg.Pool,
    fanned_out: Sequence[events.NewEvent],
    batch: Sequence[tuple[uuid.UUID, db.FanoutDelivery]],
) -> dict[uuid.UUID, Announced]:
    """One statement: the deliveries of `batch` (event id, delivery), each made once per
    event and webhook; the outbox rows of those just made pending, in their event's trace;
    and every event of `fanned_out` marked fanned out. Each event's new outbox rows."""
    rows = await pool.fetch(
        CREATE_DELIVERIES,
        *field_arrays(
            fanned_out,
            *("id", "event_type", "created_at", "payload", "request_id", "trace_context"),
            "ordering_key",
        ),
        [event_id for event_id, _ in batch],
        [delivery.delivery_id for _, delivery in batch],
        [delivery.webhook_id for _, delivery in batch],
        [delivery.disabled for _, delivery in batch],
        [delivery.message for _, delivery in batch],
    )
    return announced_by_event(rows, fanned_out, batch)


# --- the outbox part: a DeliveryBatch per type for the deliveries just made pending -------


def announce_pending(created: str, source: str) -> str:
    """SQL (for a WITH list) announcing the deliveries of `created` (id, status) made
    pending: per event type, one outbox row (a DeliveryBatch) per 64 of them, from their
    `source` rows (delivery_id, event_type, message, request_id, trace_context). Several
    events' deliveries share a row; each entry keeps its own request's trace."""
    pending = (
        f"SELECT s.event_type, s.message, s.request_id, s.trace_context,"
        f" (row_number() OVER (PARTITION BY s.event_type) - 1)"
        f" / {MAX_DELIVERIES_PER_MESSAGE} AS chunk"
        f" FROM {created} c JOIN {source} s ON s.delivery_id = c.id WHERE c.status = 'pending'"
    )
    return outbox.insert_from(
        f"SELECT event_type, {DeliveryBatch.payload_sql('event_type', 'message')},"
        " (array_agg(request_id))[1], (array_agg(trace_context))[1]"
        f" FROM ({pending}) AS pending GROUP BY event_type, chunk"
    )


def announced_by_event(
    rows: list[asyncpg.Record],
    fanned_out: Sequence[events.NewEvent],
    batch: Sequence[tuple[uuid.UUID, db.FanoutDelivery]],
) -> dict[uuid.UUID, Announced]:
    """The outbox rows (id, payload) of announce_pending: for each event, the messages
    announcing its deliveries (shared with other events of the batch)."""
    event_of = {delivery.delivery_id: event_id for event_id, delivery in batch}
    announced: dict[uuid.UUID, Announced] = {event.id: [] for event in fanned_out}
    for row in rows:
        message = DeliveryBatch.from_payload(row["payload"], str(row["payload"]["type"]))
        for event_id in {event_of[delivery.delivery_id] for delivery in message.events}:
            announced[event_id].append((row["id"], message))
    return announced


def delivery_rows(first: int) -> str:
    """SQL: the batch's deliveries, from five arrays from parameter `first` on, as rows
    `m` of (event_id, delivery_id, webhook_id, disabled, message)."""
    arrays = ", ".join(
        f"${first + n}::{kind}[]"
        for n, kind in enumerate(("uuid", "uuid", "uuid", "bool", "jsonb"))
    )
    return f"unnest({arrays}) AS m(event_id, delivery_id, webhook_id, disabled, message)"


def made_and_announced(source: str, *, once_per_event: bool) -> str:
    """CTEs (for a WITH list): `created`, a delivery per row of `source`
    (delivery_records.SOURCE_COLUMNS), and `announced`, the outbox rows announcing those
    made pending (announce_pending)."""
    return f"""created AS ({deliveries.create_from(source, once_per_event=once_per_event)}
        RETURNING id, status
    ), announced AS ({announce_pending("created", source)})"""


CREATE_DELIVERIES = f"""
    WITH event AS (
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::jsonb[],
                             $5::text[], $6::jsonb[], $7::text[])
            AS e(event_id, event_type, event_time, event_data, request_id, trace_context,
                 ordering_key)
    ), source AS (
        SELECT m.delivery_id, m.webhook_id, NULL::uuid AS upload_id, e.event_id,
               e.event_type, e.event_time, e.event_data, m.disabled, e.request_id,
               e.trace_context, m.message, e.ordering_key,
               -- The number its acceptance gave a keyed event, by the whole primary key
               -- (its day's partition alone); none to look up for the rest.
               CASE WHEN e.ordering_key IS NULL THEN NULL::bigint ELSE (
                   SELECT ev.ordering_seq FROM events ev
                   WHERE ev.id = e.event_id AND ev.created_at = e.event_time) END
                   AS ordering_seq
        FROM {delivery_rows(8)}
        JOIN event e USING (event_id)
    ), {made_and_announced("source", once_per_event=True)}, done AS ({
    events.mark_fanned_out("$1::uuid[]", "$3::timestamptz[]")
})
    SELECT id, payload FROM announced
"""


# --- accepted and fanned out at once (POST /event without an Idempotency-Key) -------------

# A small fan-out, or None: more webhooks than the request fans out (the worker's).
Plan = list[db.FanoutDelivery] | None


@dataclass(frozen=True)
class AcceptedHere:
    """An event accepted by accept_and_fan_out. `announced`: the outbox rows announcing
    its deliveries, made by the same statement (it was born fanned out); None if it has
    a fan-out message in the outbox instead (`event.outbox_id`), for the worker."""

    event: events.AcceptedEvent
    announced: Announced | None


async def accept_and_fan_out(
    pool: asyncpg.Pool, batch: Sequence[tuple[events.NewEvent, Plan]]
) -> list[AcceptedHere]:
    """One statement and one commit for events without an Idempotency-Key that arrived
    together: each event, and either its deliveries (those its plan names) with the
    outbox rows announcing them, the event born fanned out, or (no plan) the outbox row
    of its fan-out message. If one row is refused (its data), none is recorded."""
    accepted = [event for event, _ in batch]
    made = [(event.id, delivery) for event, plan in batch for delivery in plan or ()]
    rows = await pool.fetch(
        ACCEPT_AND_FAN_OUT,
        *field_arrays(
            accepted,
            *("id", "event_type_id", "user_id", "payload", "request_id", "created_at"),
            *("trace_context", "ordering_key", "event_type"),
        ),
        [plan is not None for _, plan in batch],
        [event_id for event_id, _ in made],
        [delivery.delivery_id for _, delivery in made],
        [delivery.webhook_id for _, delivery in made],
        [delivery.disabled for _, delivery in made],
        [delivery.message for _, delivery in made],
    )
    fanouts = {
        uuid.UUID(row["payload"]["event_id"]): row["id"] for row in rows if not row["announcing"]
    }
    born = [event for event, plan in batch if plan is not None]
    announced = announced_by_event([row for row in rows if row["announcing"]], born, made)
    return [
        AcceptedHere(events.accepted(event, fanouts.get(event.id)), announced.get(event.id))
        for event in accepted
    ]


ACCEPT_AND_FAN_OUT = f"""
    WITH event AS (
        SELECT e.*, NULL::text AS idempotency_key
        FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::jsonb[], $5::text[],
                    $6::timestamptz[], $7::jsonb[], $8::text[], $9::text[], $10::bool[])
            AS e(event_id, event_type_id, user_id, payload, request_id, created_at,
                 trace_context, ordering_key, event_type, born_fanned_out)
    ), accepted AS ({events.insert_from("event", fanned_out="born_fanned_out")}
        RETURNING id, ordering_seq
    ), fanout AS ({outbox.insert_from(events.fanouts_of("event", "NOT born_fanned_out"))}
    ), source AS (
        -- A keyed event's deliveries take the number its acceptance just gave it.
        SELECT m.delivery_id, m.webhook_id, NULL::uuid AS upload_id, e.event_id,
               e.event_type, e.created_at AS event_time, e.payload AS event_data,
               m.disabled, e.request_id, e.trace_context, m.message, e.ordering_key,
               a.ordering_seq
        FROM {delivery_rows(11)}
        JOIN event e USING (event_id) JOIN accepted a ON a.id = m.event_id
    ), {made_and_announced("source", once_per_event=False)}
    SELECT id, payload, true AS announcing FROM announced
    UNION ALL SELECT id, payload, false FROM fanout
"""
