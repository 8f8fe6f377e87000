"""An event with its deliveries, as GET /event/{event_id} shows it."""

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
    deliveries: list[dict[str, str]]


async def get_event(pool: asyncpg.Pool, event_id: uuid.UUID) -> StoredEvent | None:
    """The event with its deliveries (one round trip); None if unknown."""
    row = await pool.fetchrow(
        """
        SELECT e.id, t.event_name AS event_type, e.user_id, e.payload, e.created_at,
               e.fanned_out_at,
               coalesce((
                   SELECT jsonb_agg(jsonb_build_object(
                              'id', d.id, 'webhook_id', d.webhook_id, 'status', d.status)
                          ORDER BY d.created_at, d.id)
                   FROM deliveries d
                   JOIN webhook_registrations w ON w.id = d.webhook_id AND w.deleted_at IS NULL
                   WHERE d.event_id = e.id
               ), '[]'::jsonb) AS deliveries
        FROM events e JOIN event_types t ON t.id = e.event_type_id
        WHERE e.id = $1
        """,
        event_id,
    )
    return None if row is None else StoredEvent(**dict(row))
