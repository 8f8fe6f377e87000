"""services.common.db.HeldConnection: one connection across a batcher's statements, given
back when idle or after an error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.common.db import HeldConnection


class FakeConnection:
    def __init__(self, pool: FakePool) -> None:
        self.pool = pool
        self.fail_next = False
        self.gate: asyncio.Event | None = None

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionResetError("gone")
        return [(query, args)]


class FakePool:
    def __init__(self) -> None:
        self.acquired: list[FakeConnection] = []
        self.released: list[FakeConnection] = []
        self.pool_fetches = 0

    async def acquire(self) -> FakeConnection:
        conn = FakeConnection(self)
        self.acquired.append(conn)
        return conn

    async def release(self, conn: FakeConnection) -> None:
        self.released.append(conn)

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        self.pool_fetches += 1
        return [(query, args)]

    @property
    def held(self) -> int:
        return len(self.acquired) - len(self.released)


async def until(condition: Any) -> None:
    """Wait (a generous while) for `condition()`: no timing is asserted, only the outcome."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def held(pool: FakePool, idle_seconds: float = 0.05) -> HeldConnection:
    return HeldConnection(pool, idle_seconds=idle_seconds)  # type: ignore[arg-type]


async def test_statements_share_one_connection_given_back_once_idle() -> None:
    pool = FakePool()
    connection = held(pool)
    for n in range(5):
        assert await connection.fetch("SELECT $1", n) == [("SELECT $1", (n,))]
    assert len(pool.acquired) == 1 and pool.held == 1
    await until(lambda: pool.held == 0)
    assert pool.released == pool.acquired
    await connection.fetch("SELECT 1")  # a new one after the idle release
    assert len(pool.acquired) == 2


async def test_an_error_gives_the_connection_back_and_the_next_statement_takes_another() -> None:
    pool = FakePool()
    connection = held(pool, idle_seconds=60)
    await connection.fetch("SELECT 1")
    pool.acquired[0].fail_next = True
    with pytest.raises(ConnectionResetError):
        await connection.fetch("SELECT 2")
    assert pool.released == pool.acquired[:1]
    await connection.fetch("SELECT 3")
    assert len(pool.acquired) == 2 and pool.held == 1


async def test_a_cancelled_statement_gives_the_connection_back() -> None:
    pool = FakePool()
    connection = held(pool, idle_seconds=60)
    await connection.fetch("SELECT 1")
    pool.acquired[0].gate = asyncio.Event()
    task = asyncio.ensure_future(connection.fetch("SELECT 2"))
    await until(lambda: connection.busy)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.held == 0 and not connection.busy


async def test_a_statement_meanwhile_goes_through_the_pool() -> None:
    pool = FakePool()
    connection = held(pool, idle_seconds=60)
    await connection.fetch("SELECT 1")
    gate = pool.acquired[0].gate = asyncio.Event()
    first = asyncio.ensure_future(connection.fetch("SELECT 2"))
    await until(lambda: connection.busy)
    assert await connection.fetch("SELECT 3") == [("SELECT 3", ())]
    assert pool.pool_fetches == 1
    gate.set()
    assert await first == [("SELECT 2", ())]
    assert len(pool.acquired) == 1


async def test_a_long_statement_is_not_given_back_under_it() -> None:
    pool = FakePool()
    connection = held(pool, idle_seconds=0.01)
    await connection.fetch("SELECT 1")
    gate = pool.acquired[0].gate = asyncio.Event()
    slow = asyncio.ensure_future(connection.fetch("SELECT 2"))
    await asyncio.sleep(0.1)  # several idle checks pass while it runs
    assert pool.held == 1
    gate.set()
    await slow
    await until(lambda: pool.held == 0)
