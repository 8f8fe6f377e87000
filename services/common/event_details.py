"""Events as the API reads them: one with its deliveries (GET /event/{event_id}), and a
user's, newest first, with their deliveries counted by status (GET /event)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class StoredEvent:
    """An event as GET /event/{event_id} shows it; `deliveries` are [{id, webhook_id,
    status}] (deleted webhooks' left out), oldest first."""

    id: uuid.UUID
    event_type: str
    user_id: int
    payload: dict[str, Any]
    created_at: datetime
    fanned_out_at: datetime | None
    test: bool
    deliveries: list[dict[str, str]]


async def get_event(pool: asyncpg.Pool, event_id: uuid.UUID) -> StoredEvent | None:
    """The event with its deliveries (one round trip); None if unknown."""
    row = await pool.fetchrow(
        """
        SELECT e.id, t.event_name AS event_type, e.user_id, e.payload, e.created_at,
               e.fanned_out_at, e.test,
               coalesce((
                   SELECT jsonb_agg(jsonb_build_object(
                              'id', d.id, 'webhook_id', d.webhook_id, 'status', d.status)
                          ORDER BY d.created_at, d.id)
                   FROM deliveries d
                   JOIN webhook_registrations w ON w.id = d.webhook_id AND w.deleted_at IS NULL
                   -- An event's deliveries are created at its time: one day partition.
                   WHERE d.event_id = e.id AND d.created_at = e.created_at
               ), '[]'::jsonb) AS deliveries
        FROM events e JOIN event_types t ON t.id = e.event_type_id
        WHERE e.id = $1
        """,
        event_id,
    )
    return None if row is None else StoredEvent(**dict(row))


@dataclass(frozen=True)
class EventQuery:
    """Which of a user's events, and which page: those after the cursor (`after_created_at`,
    `after_id`), newest first."""

    user_id: int
    event_type: str | None
    since: datetime | None
    until: datetime | None
    after_created_at: datetime | None
    after_id: uuid.UUID | None
    limit: int


async def list_events(pool: asyncpg.Pool, query: EventQuery) -> list[asyncpg.Record]:
    """A page of the user's events, newest first, each with its deliveries counted by status
    (those to deleted webhooks as well: they are `cancelled`)."""
    rows: list[asyncpg.Record] = await pool.fetch(
        """
        SELECT e.id, t.event_name AS event_type, e.user_id, e.created_at, e.test,
               jsonb_build_object(
                   'pending', count(d.id) FILTER (WHERE d.status = 'pending'),
                   'succeeded', count(d.id) FILTER (WHERE d.status = 'succeeded'),
                   'failed', count(d.id) FILTER (WHERE d.status = 'failed'),
                   'not_attempted', count(d.id) FILTER (WHERE d.status = 'not_attempted'),
                   'cancelled', count(d.id) FILTER (WHERE d.status = 'cancelled')
               ) AS deliveries
        FROM (
            SELECT e.* FROM events e
            WHERE e.user_id = $1
              AND ($2::text IS NULL
                   OR e.event_type_id = (SELECT id FROM event_types WHERE name = $2))
              AND ($3::timestamptz IS NULL OR e.created_at >= $3)
              AND ($4::timestamptz IS NULL OR e.created_at < $4)
              AND ($5::timestamptz IS NULL OR (e.created_at, e.id) < ($5, $6::uuid))
            ORDER BY e.created_at DESC, e.id DESC
            LIMIT $7
        ) e
        JOIN event_types t ON t.id = e.event_type_id
        -- An event's deliveries are created at its time: one day partition each.
        LEFT JOIN deliveries d ON d.event_id = e.id AND d.created_at = e.created_at
        GROUP BY e.id, t.event_name, e.user_id, e.created_at, e.test
        ORDER BY e.created_at DESC, e.id DESC
        """,
        query.user_id,
        query.event_type,
        query.since,
        query.until,
        query.after_created_at,
        query.after_id,
        query.limit,
    )
    return rows
