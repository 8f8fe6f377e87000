"""services/common/batch.py: calls made together become one batch; failures reach every caller."""

from __future__ import annotations

import asyncio

from services.common.batch import Batcher


async def test_calls_made_together_share_one_batch_in_order() -> None:
    batches: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0)
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(run, key=lambda item: item)
    assert await asyncio.gather(*(batcher(n) for n in (1, 2, 3))) == [10, 20, 30]
    assert batches == [[1, 2, 3]]
    assert await batcher(4) == 40  # idle: runs alone, at once
    assert batches[-1] == [4]


async def test_the_same_key_never_shares_a_batch() -> None:
    batches: list[list[tuple[str, int]]] = []

    async def run(items: list[tuple[str, int]]) -> list[int]:
        batches.append(items)
        return [n for _, n in items]

    batcher: Batcher[tuple[str, int], int] = Batcher(run, key=lambda item: item[0])
    results = await asyncio.gather(batcher(("a", 1)), batcher(("b", 2)), batcher(("a", 3)))
    assert results == [1, 2, 3]
    assert batches == [[("a", 1), ("b", 2)], [("a", 3)]]


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_runs() -> None:
    async def run(items: list[int]) -> list[int]:
        if 0 in items:
            raise OSError("database gone")
        return items

    batcher: Batcher[int, int] = Batcher(run, key=lambda item: item, max_batch=2)
    results = await asyncio.gather(
        batcher(0), batcher(1), batcher(2), batcher(3), return_exceptions=True
    )
    assert [type(r) for r in results[:2]] == [OSError, OSError]
    assert results[2:] == [2, 3]
    assert batcher.runner is None and batcher.queue == []


async def test_a_cancelled_batcher_cancels_its_waiting_callers() -> None:
    started = asyncio.Event()

    async def run(items: list[int]) -> list[int]:
        started.set()
        await asyncio.sleep(3600)
        return items

    batcher: Batcher[int, int] = Batcher(run, key=lambda item: item)
    callers = [asyncio.create_task(batcher(n)) for n in (1, 1)]
    await started.wait()
    assert batcher.runner is not None
    batcher.runner.cancel()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


async def test_each_caller_of_a_failed_batch_gets_its_own_error() -> None:
    async def run(items: list[int]) -> list[int]:
        raise OSError(111, "connection refused")

    batcher: Batcher[int, int] = Batcher(run, key=lambda item: item)
    first, second = await asyncio.gather(batcher(1), batcher(2), return_exceptions=True)
    assert isinstance(first, OSError) and isinstance(second, OSError)
    assert first is not second
    assert (
        (first.errno, first.strerror)
        == (second.errno, second.strerror)
        == (
            111,
            "connection refused",
        )
    )
