"""Event types, cached in the process: they change only with a migration."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import asyncpg

from . import db

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
