"""Revoked API keys leave every service's key cache at once, through PostgreSQL LISTEN/NOTIFY.

`revoke-api-key` sends NOTIFY on REVOCATION_CHANNEL (payload: the key's hash) in the
transaction that revokes the key, so services hear it the moment it commits. Each service
listens on a connection of its own (not the pool's) and drops that key from its cache.

A notification sent while the listening connection is down is lost, so the cache cannot
trust itself then: when the connection drops it is emptied and its entries live only
DEGRADED_TTL_SECONDS; once LISTEN is back it is emptied again (for what was revoked in
between) and entries live AUTH_CACHE_SECONDS again. A connection that dies silently is
found by a heartbeat query every HEARTBEAT_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import asyncpg
import structlog
from aiohttp import web

from .cache import TtlCache
from .db import CONNECT_TIMEOUT_SECONDS, DATABASE_ERRORS

log = structlog.get_logger(__name__)

REVOCATION_CHANNEL = "api_key_revoked"
# Shown in pg_stat_activity, so an operator (or a test) can find the listening connection.
LISTENER_APPLICATION_NAME = "webhooks-key-revocations"
# Below the 1 s within which a revoked key must be refused (SPEC section 12).
DEGRADED_TTL_SECONDS = 0.5
HEARTBEAT_SECONDS = 2.0
RECONNECT_FIRST_SECONDS = 0.1
RECONNECT_CAP_SECONDS = 2.0

K = TypeVar("K")
V = TypeVar("V")


class RevocableCache(TtlCache[K, V]):
    """A TtlCache that forgets a key on notice, and keeps entries only briefly while
    notices may be missed (before the first LISTEN, and whenever its connection is down)."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(min(ttl_seconds, DEGRADED_TTL_SECONDS), clock)
        self.full_ttl = ttl_seconds
        self.listening = False
        # Bumped by every invalidation: a lookup that started before one must not put back
        # what was true before it (a key revoked while its lookup was in flight).
        self.generation = 0

    def put_if_unchanged(self, key: K, value: V, generation: int) -> None:
        if generation == self.generation:
            self.put(key, value)

    def revoke(self, key: K) -> None:
        self.generation += 1
        self.discard(key)

    def set_listening(self, listening: bool) -> None:
        self.generation += 1
        self.entries.clear()
        self.listening = listening
        self.ttl = self.full_ttl if listening else min(self.full_ttl, DEGRADED_TTL_SECONDS)


async def notify_revoked(conn: asyncpg.Connection, key_hash: str) -> None:
    """Tell every listening service; delivered when the caller's transaction commits."""
    await conn.execute("SELECT pg_notify($1, $2)", REVOCATION_CHANNEL, key_hash)


class RevocationListener:
    """Keeps one LISTEN connection up and applies its notifications to `cache`."""

    def __init__(self, database_url: str, cache: RevocableCache[str, Any]) -> None:
        self.database_url = database_url
        self.cache = cache

    async def run(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while True:
            try:
                await self.listen()
                delay = RECONNECT_FIRST_SECONDS
                log.warning("revocation_listener_lost", retry_in_s=delay)
            except DATABASE_ERRORS as exc:
                log.warning("revocation_listener_down", error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_CAP_SECONDS)

    async def listen(self) -> None:
        """LISTEN until the connection is lost (returns) or a statement fails (raises)."""
        conn = await asyncpg.connect(
            self.database_url,
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={"application_name": LISTENER_APPLICATION_NAME},
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(REVOCATION_CHANNEL, self.on_notification)
            self.cache.set_listening(True)
            log.info("revocation_listener_up")
            while not lost.is_set():
                await conn.fetchval("SELECT 1", timeout=HEARTBEAT_SECONDS)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), HEARTBEAT_SECONDS)
        finally:
            self.cache.set_listening(False)
            conn.terminate()

    def on_notification(
        self, _conn: asyncpg.Connection, _pid: int, _channel: str, key_hash: str
    ) -> None:
        self.cache.revoke(key_hash)


def revocation_listener_ctx(
    database_url: str, cache: RevocableCache[str, Any]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(RevocationListener(database_url, cache).run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
