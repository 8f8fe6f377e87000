"""The event type of a POST /event, by name or id, trusted for a few seconds once read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

from services.common.api.shapes import EventRequest
from services.common.cache import TtlCache
from services.common.db import DB_POOL
from services.common.web import NotFound

from ..keys import EVENT_TYPES

# How long a type's schema and archived flag are trusted before they are read again.
EVENT_TYPE_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class EventTypeForEvents:
    """What accepting an event needs of its type: `event_name` is its `type` on the wire."""

    id: uuid.UUID
    name: str
    event_name: str
    schema: dict[str, Any] | None
    archived: bool


async def find_event_type(
    pool: asyncpg.Pool, name: str | None, event_type_id: uuid.UUID | None
) -> EventTypeForEvents | None:
    """The type of this name, or else of this id; None if there is none."""
    row = await pool.fetchrow(
        """
        SELECT id, name, event_name, schema, archived FROM event_types
        WHERE ($1::text IS NOT NULL AND name = $1) OR ($1::text IS NULL AND id = $2)
        """,
        name,
        event_type_id,
    )
    return None if row is None else EventTypeForEvents(**dict(row))


EventTypeKey = tuple[str | None, uuid.UUID | None]
EventTypeCache = TtlCache[EventTypeKey, EventTypeForEvents]


def new_event_type_cache() -> EventTypeCache:
    return TtlCache(EVENT_TYPE_CACHE_SECONDS)


async def event_type_of(app: web.Application, request: EventRequest) -> EventTypeForEvents:
    """The event's type; a miss is looked up at once, so a type created a moment ago works."""
    key = (request.event_type, None if request.event_type is not None else request.event_type_id)
    found, event_type = app[EVENT_TYPES].get(key)
    if not found or event_type is None:
        event_type = await find_event_type(app[DB_POOL], *key)
        if event_type is None:
            given = f"event_type {request.event_type!r}" if key[0] else f"event_type_id {key[1]}"
            raise NotFound(f"{given} does not exist (GET /event_type lists them)")
        app[EVENT_TYPES].put(key, event_type)
    return event_type
