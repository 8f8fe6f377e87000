"""Event types: list, get, create and change them (SPEC §8), read through a cache in the process."""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from services.common.api.edge import parse_path_id, query_of, respond, validated
from services.common.auth import Forbidden, is_admin
from services.common.db import DB_POOL
from services.common.system_events import SYSTEM_EVENT_TYPES
from services.common.web import Conflict, NotFound, read_json_object

from . import db
from .event_type_validation import EventTypeCreate, EventTypeQuery, parse_event_type_patch
from .keys import EVENT_TYPES, SETTINGS
from .views import EventType

log = structlog.get_logger(__name__)

# Another replica's change is seen within this time; this replica's at once.
TTL_SECONDS = 10.0


class EventTypes:
    """All event types, read again at most every TTL_SECONDS or after a change here."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._types: list[EventType] = []
        self._read_at = float("-inf")

    async def all(self) -> list[EventType]:
        if time.monotonic() - self._read_at > TTL_SECONDS:
            rows = await db.list_event_types(self.pool)
            self._types = [EventType.model_validate(dict(row)) for row in rows]
            self._read_at = time.monotonic()
        return self._types

    def invalidate(self) -> None:
        self._read_at = float("-inf")

    async def find(self, event_type_id: uuid.UUID) -> EventType | None:
        for event_type in await self.all():
            if event_type.id == event_type_id:
                return event_type
        # Added since the last read (perhaps by another replica): ask rather than wait.
        row = await db.get_event_type(self.pool, event_type_id)
        return None if row is None else EventType.model_validate(dict(row))


def check_may_manage(request: web.Request) -> None:
    """Event types are global (shared by every user): only an admin key (or anyone with
    AUTH_MODE=none) may create or change them."""
    if not is_admin(request):
        raise Forbidden("only an admin API key may create or change event types")


def event_type_id_of(request: web.Request) -> uuid.UUID:
    return parse_path_id(request.match_info["event_type_id"], "event_type_id")


def event_type_not_found(event_type_id: uuid.UUID) -> NotFound:
    return NotFound(f"event type {event_type_id} does not exist")


async def check_may_change(
    request: web.Request, event_type_id: uuid.UUID, changes: dict[str, Any]
) -> None:
    """The system's own types keep their schema and stay live in every auth mode: its events
    have a fixed shape, and uploads and operational events must never be refused as archived.
    Their description may change, and `archived: false` is allowed (it archives nothing)."""
    if event_type_id not in SYSTEM_EVENT_TYPES:
        return
    if "schema" in changes or changes.get("archived") is True:
        found = await request.app[EVENT_TYPES].find(event_type_id)
        name = found.name if found is not None else str(event_type_id)
        raise Forbidden(
            f"event type {name!r} is the system's own: it cannot be archived and its schema "
            "cannot change (its description can)"
        )


async def list_event_types(request: web.Request) -> web.Response:
    """GET /event_type, optionally only the one named `name`; archived types too."""
    name = query_of(request, EventTypeQuery).name
    types = await request.app[EVENT_TYPES].all()
    return respond([t for t in types if name is None or t.name == name])


async def get_event_type(request: web.Request) -> web.Response:
    event_type_id = event_type_id_of(request)
    found = await request.app[EVENT_TYPES].find(event_type_id)
    if found is None:
        raise event_type_not_found(event_type_id)
    return respond(found)


async def create_event_type(request: web.Request) -> web.Response:
    check_may_manage(request)
    body = await read_json_object(request, request.app[SETTINGS].max_json_bytes)
    new = validated(EventTypeCreate, body)
    row = await db.insert_event_type(
        request.app[DB_POOL], new.name, new.description, new.payload_schema
    )
    if row is None:
        raise Conflict(f"an event type named {new.name!r} already exists")
    request.app[EVENT_TYPES].invalidate()
    log.info("event_type_created", event_type_id=str(row["id"]), name=new.name)
    return respond(EventType.model_validate(dict(row)), "Event type created", status=201)


async def update_event_type(request: web.Request) -> web.Response:
    check_may_manage(request)
    event_type_id = event_type_id_of(request)
    body = await read_json_object(request, request.app[SETTINGS].max_json_bytes)
    changes = parse_event_type_patch(body)
    await check_may_change(request, event_type_id, changes)
    row = await db.update_event_type(request.app[DB_POOL], event_type_id, changes)
    if row is None:
        raise event_type_not_found(event_type_id)
    request.app[EVENT_TYPES].invalidate()
    log.info("event_type_updated", event_type_id=str(event_type_id), fields=sorted(changes))
    return respond(EventType.model_validate(dict(row)), "Event type updated")
