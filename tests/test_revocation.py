"""A revoked API key is refused within 1 s by every service that takes keys (SPEC section 12).

The services that authenticate requests are registration and upload; the dispatcher serves
only health and metrics on its own port and authenticates nothing, so there is nothing
there to refuse. The key cache stays on (AUTH_CACHE_SECONDS=5, the default): only the
LISTEN/NOTIFY invalidation, or its fallback while the listener is down, makes 1 s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import asyncpg
import pytest

from harness.receiver import Receiver
from harness.stack import UPLOAD_EVENT_TYPE_ID, Stack, StackOptions
from services.common.api_keys import hash_api_key
from services.common.revocation import (
    LISTENER_APPLICATION_NAME,
    RevocableCache,
    RevocationListener,
    notify_revoked,
)
from services.registration.commands import revoke_api_key
from tests.test_security import create_key, new_user_id, registration_command

CACHED = StackOptions(auth_mode="api_key", auth_cache_seconds=5.0)
REFUSED_WITHIN_SECONDS = 1.0
LISTENERS = 2  # registration and upload


async def listener_pids(pool: asyncpg.Pool) -> set[int]:
    rows = await pool.fetch(
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = $1",
        LISTENER_APPLICATION_NAME,
    )
    return {row["pid"] for row in rows}


async def wait_for_listeners(pool: asyncpg.Pool, other_than: set[int] = frozenset()) -> set[int]:
    """The listening connections' pids, once both services have one (not in `other_than`)."""
    deadline = time.monotonic() + 20
    while True:
        pids = await listener_pids(pool) - other_than
        if len(pids) == LISTENERS:
            # LISTEN follows the connect: let it run.
            await asyncio.sleep(0.2)
            return pids
        assert time.monotonic() < deadline, pids
        await asyncio.sleep(0.05)


class Services:
    """One authenticated request to each service, straight to its own port."""

    def __init__(self, stack: Stack, webhook_id: str) -> None:
        self.stack = stack
        self.webhook_id = webhook_id

    async def statuses(self, key: str) -> dict[str, int]:
        headers = {"Authorization": f"Bearer {key}"}
        http: aiohttp.ClientSession = self.stack.http
        async with http.get(f"{self.stack.registration_url}/webhook", headers=headers) as resp:
            registration = resp.status
        form = aiohttp.FormData()
        form.add_field("file", b"x", filename="x.txt", content_type="text/plain")
        url = f"{self.stack.upload_url}/upload_file/webhook_id/{self.webhook_id}"
        async with http.post(url, data=form, headers=headers) as resp:
            upload = resp.status
        return {"registration": registration, "upload": upload}

    async def refused_within(self, key: str, since: float) -> dict[str, float]:
        """Seconds from `since` until each service answered 401 (polled until 1 s has passed)."""
        refused: dict[str, float] = {}
        while len(refused) < 2:
            for service, status in (await self.statuses(key)).items():
                if status == 401:
                    refused.setdefault(service, time.monotonic() - since)
            if time.monotonic() - since > REFUSED_WITHIN_SECONDS:
                break
            await asyncio.sleep(0.02)
        return refused


async def user_with_webhook(stack: Stack, receiver: Receiver) -> tuple[str, Services]:
    key = create_key(stack.database_url, new_user_id())
    body = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "url": receiver.url}
    async with stack.http.post(
        f"{stack.gateway_url}/webhook/register",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        webhook: dict[str, Any] = (await resp.json())["data"]
    services = Services(stack, webhook["id"])
    # Both services now hold the key in their cache.
    assert await services.statuses(key) == {"registration": 200, "upload": 200}
    return key, services


@pytest.mark.parametrize("stack_options", [CACHED])
async def test_revoked_key_is_refused_by_every_service_within_a_second(
    stack: Stack, receiver: Receiver
) -> None:
    await wait_for_listeners(stack.pool)
    key, services = await user_with_webhook(stack, receiver)

    result = registration_command("revoke-api-key", key, database_url=stack.database_url)
    returned = time.monotonic()
    assert result.returncode == 0, result.stderr
    refused = await services.refused_within(key, returned)
    assert set(refused) == {"registration", "upload"}, refused
    assert max(refused.values()) <= REFUSED_WITHIN_SECONDS, refused


@pytest.mark.parametrize("stack_options", [CACHED])
async def test_revocation_missed_while_the_listener_reconnects_is_still_refused(
    stack: Stack, receiver: Receiver
) -> None:
    before = await wait_for_listeners(stack.pool)
    key, services = await user_with_webhook(stack, receiver)

    # The listening connections die; the key is revoked before they can LISTEN again, so
    # its notification reaches no one: the cache's fallback has to refuse it.
    await stack.pool.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", before)
    async with stack.pool.acquire() as conn:
        await revoke_api_key(conn, key)
    returned = time.monotonic()
    refused = await services.refused_within(key, returned)
    assert set(refused) == {"registration", "upload"}, refused
    assert max(refused.values()) <= REFUSED_WITHIN_SECONDS, refused

    # Listening again, on new connections: notifications work as before.
    await wait_for_listeners(stack.pool, other_than=before)
    key, services = await user_with_webhook(stack, receiver)
    async with stack.pool.acquire() as conn:
        await revoke_api_key(conn, key)
    returned = time.monotonic()
    refused = await services.refused_within(key, returned)
    assert max(refused.values(), default=99.0) <= REFUSED_WITHIN_SECONDS, refused
    assert set(refused) == {"registration", "upload"}, refused


async def test_a_notification_evicts_only_that_key_from_a_listening_cache(
    database_url: str,
) -> None:
    """The mechanism alone: a cache with a long TTL forgets a key the moment it is notified."""
    cache: RevocableCache[str, int] = RevocableCache(60.0)
    task = asyncio.create_task(RevocationListener(database_url, cache).run())
    try:
        deadline = time.monotonic() + 10
        while not cache.listening:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert cache.ttl == 60.0
        cache.put(hash_api_key("whk_a"), 1)
        cache.put(hash_api_key("whk_b"), 2)
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                await notify_revoked(conn, hash_api_key("whk_a"))
                await asyncio.sleep(0.2)
                # Not before the revocation commits.
                assert cache.get(hash_api_key("whk_a")) == (True, 1)
        finally:
            await conn.close()
        deadline = time.monotonic() + REFUSED_WITHIN_SECONDS
        while cache.get(hash_api_key("whk_a"))[0]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert cache.get(hash_api_key("whk_b")) == (True, 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert cache.listening is False and cache.entries == {}


def test_a_cache_without_its_listener_keeps_entries_only_briefly() -> None:
    now = [0.0]
    cache: RevocableCache[str, int] = RevocableCache(5.0, clock=lambda: now[0])
    cache.put("k", 1)
    now[0] += 0.6
    assert cache.get("k") == (False, None)  # not listening yet: 0.5 s at most
    cache.set_listening(True)
    cache.put("k", 1)
    now[0] += 4.0
    assert cache.get("k") == (True, 1)
    cache.set_listening(False)  # the connection dropped: what was cached may be stale
    assert cache.get("k") == (False, None)
    # A lookup that began before an invalidation does not put back what it read.
    cache.set_listening(True)
    generation = cache.generation
    cache.revoke("k")
    cache.put_if_unchanged("k", 1, generation)
    assert cache.get("k") == (False, None)
