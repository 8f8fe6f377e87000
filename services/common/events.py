"""Events: the only writer of the `events` table, and its reads for the fan-out.

Accepting an event records it together with the outbox row that gets it fanned out
(docs/events.md). The types the system records itself are in system_events; an event
as the API shows it, in event_details."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from . import ordering, outbox
from .idempotency import Held, KeyedTable, claim_key
from .messages import FANOUT_QUEUE, FanoutMessage, fanout_payload_sql

# The columns a producer's source rows give `insert_from` / `accept_from`: one event each.
SOURCE_COLUMNS = (
    "event_id, event_type_id, user_id, payload, idempotency_key, request_id, created_at, "
    "ordering_key"
)


def insert_from(source: str, *, fanned_out: bool | str = False, test: bool = False) -> str:
    """SQL inserting an event per row of `source` (SOURCE_COLUMNS). `fanned_out`: its
    deliveries are made by the same statement (an upload's one), so none is left to make;
    or SQL, a boolean over the row saying so of each. `test`: sent to one webhook because
    someone asked (POST /webhook/{webhook_id}/test). An event with an ordering key takes
    its place in that key's order (ordering.NEXT_SEQ); rows are taken in a fixed order, so
    that statements numbering several keys lock them in the same order."""
    if isinstance(fanned_out, str):
        fanned_out_at = f"CASE WHEN {fanned_out} THEN created_at END"
    else:
        fanned_out_at = "created_at" if fanned_out else "NULL::timestamptz"
    return f"""
        INSERT INTO events (id, event_type_id, user_id, payload, idempotency_key,
                            request_id, fanned_out_at, created_at, test, ordering_key,
                            ordering_seq)
        SELECT event_id, event_type_id, user_id, payload, idempotency_key, request_id,
               {fanned_out_at}, created_at, {str(test).lower()}, ordering_key,
               {ordering.NEXT_SEQ}
        FROM (SELECT * FROM {source} ORDER BY user_id, ordering_key, created_at) AS numbered
    """


# A source row `s` whose Idempotency-Key no event holds. An expired key was released
# (KEYED_EVENTS.release) by the claim that runs this, under the key's lock.
UNHELD = """
    (s.idempotency_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM events h
        WHERE h.user_id = s.user_id AND h.idempotency_key = s.idempotency_key))
"""


def accept_from(source: str, name: str = "accepted", trace_context: str = "NULL::jsonb") -> str:
    """CTEs for a statement's WITH list: `name` inserts an event per row of `source`
    (SOURCE_COLUMNS; a row whose Idempotency-Key is held is skipped: claim the key first,
    see `accept`) returning `id` and `payload`; `{name}_fanout` inserts each one's fan-out
    message into the outbox, returning `outbox_id` and `event_id`. `trace_context` (SQL,
    jsonb) is the W3C context the relay publishes those messages in."""
    fanout_select = (
        f"SELECT '{FANOUT_QUEUE}', {fanout_payload_sql('id')}, request_id, {trace_context}"
        f" FROM {name}"
    )
    return f"""
        {name} AS (
            {insert_from(f"(SELECT * FROM {source} s WHERE {UNHELD}) AS {name}_unheld")}
            RETURNING id, payload, request_id
        ), {name}_outbox AS ({outbox.insert_from(fanout_select)}
        ), {name}_fanout AS (
            SELECT id AS outbox_id, (payload->>'event_id')::uuid AS event_id
            FROM {name}_outbox
        )
    """


@dataclass(frozen=True)
class NewEvent:
    """An event to accept. `event_type` is the type's name on the wire."""

    id: uuid.UUID
    event_type_id: uuid.UUID
    event_type: str
    user_id: int
    payload: dict[str, Any]
    idempotency_key: str | None
    request_id: str | None
    created_at: datetime
    # The W3C context of the span that accepted it: the relay's publish joins that trace.
    trace_context: dict[str, str] | None = None
    # Its deliveries go one at a time, in acceptance order, with those of the same key.
    ordering_key: str | None = None


@dataclass(frozen=True)
class AcceptedEvent:
    """A durable event. `replayed`: an earlier request with this Idempotency-Key accepted
    it (and nothing was written now). `outbox_id` is the row of its fan-out message when
    this call wrote one: publish `fanout` and delete the row (or let the relay publish)."""

    id: uuid.UUID
    event_type: str
    user_id: int
    created_at: datetime
    replayed: bool
    outbox_id: int | None
    request_id: str | None

    @property
    def fanout(self) -> FanoutMessage:
        return FanoutMessage(self.id, self.request_id)


@dataclass(frozen=True)
class IdempotencyConflict:
    """The Idempotency-Key already holds another event (other type or payload): a 422."""

    key: str
    event_id: uuid.UUID

    @property
    def message(self) -> str:
        return (
            f"Idempotency-Key {self.key!r} was already used for event {self.event_id} with "
            "a different event type or payload; send a new key for a new event"
        )


ACCEPT = f"""
    WITH source AS (
        SELECT $1::uuid AS event_id, $2::uuid AS event_type_id, $3::bigint AS user_id,
               $4::jsonb AS payload, $5::text AS idempotency_key, $6::text AS request_id,
               $7::timestamptz AS created_at, $9::text AS ordering_key
    ), {accept_from("source", trace_context="$8::jsonb")}
    SELECT outbox_id FROM accepted_fanout
"""


def fanouts_of(source: str, where: str) -> str:
    """SQL (for outbox.insert_from): the fan-out message of each row of `source` (an event
    accepted by the same statement, with event_id, request_id and trace_context) where
    `where` holds, in that row's trace."""
    return (
        f"SELECT '{FANOUT_QUEUE}', {fanout_payload_sql('event_id')}, request_id, trace_context"
        f" FROM {source} WHERE {where}"
    )


# Of this user's events (the owner of the key, $1).
KEYED_EVENTS = KeyedTable(
    table="events",
    owner="user_id",
    holder="""
        SELECT e.id, e.event_type_id, t.event_name AS event_type, e.payload, e.request_id,
               e.created_at
        FROM events e JOIN event_types t ON t.id = e.event_type_id
        WHERE e.user_id = $1 AND e.idempotency_key = $2
          AND e.created_at > now() - make_interval(secs => $3)
    """,
)


async def accept(conn: asyncpg.Connection, event: NewEvent) -> AcceptedEvent | IdempotencyConflict:
    """Record `event` and its fan-out message in one statement (one round trip).

    With an Idempotency-Key (scoped to the user, live for 24 h, as for uploads): the
    event that already holds it answers instead, `replayed`, if its type and payload are
    the same, else an IdempotencyConflict; nothing is written (idempotency.claim_key).
    Raises IdempotencyContention if the key kept changing hands.
    """
    params = (
        event.id,
        event.event_type_id,
        event.user_id,
        event.payload,
        event.idempotency_key,
        event.request_id,
        event.created_at,
        event.trace_context,
        event.ordering_key,
    )
    if event.idempotency_key is None:
        return accepted(event, await conn.fetchval(ACCEPT, *params))
    key = event.idempotency_key

    async def insert() -> int | None:
        outbox_id: int | None = await conn.fetchval(ACCEPT, *params)
        return outbox_id

    async with conn.transaction():
        claimed = await claim_key(conn, KEYED_EVENTS, event.user_id, key, insert)
    if isinstance(claimed, Held):
        return replay(event, key, claimed.row)
    return accepted(event, claimed)


def accepted(event: NewEvent, outbox_id: int | None) -> AcceptedEvent:
    return AcceptedEvent(
        event.id,
        event.event_type,
        event.user_id,
        event.created_at,
        False,
        outbox_id,
        event.request_id,
    )


def replay(
    event: NewEvent, key: str, holder: asyncpg.Record
) -> AcceptedEvent | IdempotencyConflict:
    if holder["event_type_id"] != event.event_type_id or holder["payload"] != event.payload:
        return IdempotencyConflict(key, holder["id"])
    return AcceptedEvent(
        holder["id"],
        holder["event_type"],
        event.user_id,
        holder["created_at"],
        True,
        None,
        holder["request_id"],
    )


@dataclass(frozen=True)
class EventToFanOut:
    """What the fan-out worker needs of an event."""

    id: uuid.UUID
    event_type_id: uuid.UUID
    event_type: str
    user_id: int
    payload: dict[str, Any]
    request_id: str | None
    created_at: datetime
    fanned_out_at: datetime | None
    ordering_key: str | None = None
    ordering_seq: int | None = None


async def to_fan_out(pool: asyncpg.Pool, event_id: uuid.UUID) -> EventToFanOut | None:
    row = await pool.fetchrow(
        """
        SELECT e.id, e.event_type_id, t.event_name AS event_type, e.user_id, e.payload,
               e.request_id, e.created_at, e.fanned_out_at, e.ordering_key, e.ordering_seq
        FROM events e JOIN event_types t ON t.id = e.event_type_id
        WHERE e.id = $1
        """,
        event_id,
    )
    return None if row is None else EventToFanOut(**dict(row))


def mark_fanned_out(event_ids: str, created_ats: str, last: str = "true") -> str:
    """SQL (for a WITH list) setting `fanned_out_at` of the events `event_ids` (an array)
    when `last` (a boolean expression). The range of `created_ats`, an array of their
    times, names their days: each is found by the primary key of its day's partition,
    however many events that day holds."""
    return f"""
        UPDATE events SET fanned_out_at = now()
        WHERE id = ANY ({event_ids})
          AND created_at BETWEEN (SELECT min(t) FROM unnest({created_ats}) AS t)
                             AND (SELECT max(t) FROM unnest({created_ats}) AS t)
          AND {last} AND fanned_out_at IS NULL
    """


async def not_fanned_out(
    pool: asyncpg.Pool, older_than_seconds: float, limit: int
) -> list[FanoutMessage]:
    """Events still without all their deliveries long after acceptance: their fan-out
    message was lost (or its worker keeps dying); asked for again by the sweep."""
    rows = await pool.fetch(
        """
        SELECT id, request_id FROM events
        WHERE fanned_out_at IS NULL AND created_at < now() - make_interval(secs => $1)
        ORDER BY created_at LIMIT $2
        """,
        older_than_seconds,
        limit,
    )
    return [FanoutMessage(row["id"], row["request_id"]) for row in rows]


# --- prune (retention) ---------------------------------------------------------------------


async def prune_batch(pool: asyncpg.Pool, cutoff: datetime, batch_size: int) -> tuple[int, int]:
    """Delete events older than `cutoff` whose deliveries all exist and none is pending;
    (examined, deleted). Deliveries kept longer only lose the link (event_id NULL)."""
    no_pending = """
        fanned_out_at IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM deliveries d
                        WHERE d.event_id = e.id AND d.created_at = e.created_at
                          AND d.status = 'pending')
    """
    async with pool.acquire() as conn, conn.transaction():
        ids = [
            row["id"]
            for row in await conn.fetch(
                f"""
                SELECT e.id FROM events e WHERE e.created_at < $1 AND {no_pending}
                ORDER BY e.created_at LIMIT $2
                FOR UPDATE OF e SKIP LOCKED
                """,
                cutoff,
                batch_size,
            )
        ]
        if not ids:
            return 0, 0
        status = await conn.execute(
            f"DELETE FROM events e WHERE e.id = ANY($1) AND {no_pending}", ids
        )
    return len(ids), int(status.rsplit(" ", 1)[-1])
