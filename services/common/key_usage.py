"""When each API key was last used, written in the background at most once a minute per key.

Authentication runs on every API request, so it must not write: `seen` only notes the
key in memory, and only if this process has not noted it for MARK_EVERY_SECONDS. The
notes are written a moment later, all in one statement, by a task of their own. The
column is therefore up to a minute behind, which is what the listings promise ("last
used, to the minute").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from aiohttp import web

from .api_keys import record_uses
from .cache import MAX_CACHE_ENTRIES
from .db import DATABASE_ERRORS, DB_POOL

log = structlog.get_logger(__name__)

MARK_EVERY_SECONDS = 60.0
# Uses noted within this time share one write.
WRITE_DELAY_SECONDS = 1.0


class KeyUsage:
    """Notes keys as used (throttled per key) and writes the notes in the background."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.marked: dict[uuid.UUID, float] = {}
        self.pending: dict[uuid.UUID, datetime] = {}
        self.app: web.Application | None = None
        self._writer: asyncio.Task[None] | None = None

    def seen(self, key_id: uuid.UUID) -> None:
        now = self.clock()
        marked = self.marked.get(key_id)
        if marked is not None and now - marked < MARK_EVERY_SECONDS:
            return
        if len(self.marked) >= MAX_CACHE_ENTRIES:
            self.marked.clear()
        self.marked[key_id] = now
        self.pending[key_id] = datetime.now(UTC)
        if self.app is not None and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self.write_soon())

    async def write_soon(self) -> None:
        await asyncio.sleep(WRITE_DELAY_SECONDS)
        await self.write()

    async def write(self) -> None:
        uses, self.pending = list(self.pending.items()), {}
        if not uses or self.app is None:
            return
        try:
            await record_uses(self.app[DB_POOL], uses)
        except asyncio.CancelledError:
            self.pending = dict(uses) | self.pending
            raise
        except DATABASE_ERRORS as exc:
            # Noted again on the key's next request rather than lost for a minute.
            for key_id, _ in uses:
                self.marked.pop(key_id, None)
            log.warning("key_usage_write_failed", keys=len(uses), error=repr(exc))

    async def start(self, app: web.Application) -> None:
        self.app = app

    async def flush(self, _app: web.Application) -> None:
        """On shutdown, while the database pool is still open: write what is noted now."""
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        await self.write()
        self.app = None

    def install(self, app: web.Application) -> None:
        app.on_startup.append(self.start)
        app.on_shutdown.append(self.flush)
