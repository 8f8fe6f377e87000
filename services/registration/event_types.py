"""Event types: GET /event_type, from a cache in the process (they change only with a migration)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from services.common.api.edge import query_of, respond

from . import db, views
from .keys import EVENT_TYPES
from .validation import EventTypeQuery

TTL_SECONDS = 10.0


@dataclass(frozen=True)
class EventType:
    id: uuid.UUID
    name: str
    description: str


class EventTypes:
    """All event types, read again at most every TTL_SECONDS."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._types: list[EventType] = []
        self._read_at = float("-inf")

    async def all(self) -> list[EventType]:
        if time.monotonic() - self._read_at > TTL_SECONDS:
            rows = await db.list_event_types(self.pool, None)
            self._types = [EventType(r["id"], r["name"], r["description"]) for r in rows]
            self._read_at = time.monotonic()
        return self._types

    async def exists(self, event_type_id: uuid.UUID) -> bool:
        if any(t.id == event_type_id for t in await self.all()):
            return True
        # Added since the last read: ask the database rather than wait for the TTL.
        return await db.event_type_exists(self.pool, event_type_id)


async def list_event_types(request: web.Request) -> web.Response:
    """GET /event_type, optionally only the one named `name`."""
    name = query_of(request, EventTypeQuery).name
    types = await request.app[EVENT_TYPES].all()
    return respond([view(t) for t in types if name is None or t.name == name])


def view(event_type: EventType) -> views.EventType:
    return views.EventType(
        id=event_type.id, name=event_type.name, description=event_type.description
    )
