"""services/dispatcher/endpoints.py: the per-endpoint concurrency gate."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from services.dispatcher.endpoints import EndpointGate, EndpointLimits


async def test_a_fast_endpoint_serves_its_burst_in_order_without_parking() -> None:
    gate, endpoint = EndpointGate(2, max_wait_seconds=1.0), uuid.uuid4()
    gate.note_hold(endpoint, 0.01)  # it answers in 10 ms
    assert await gate.reserve(endpoint)
    assert await gate.reserve(endpoint)
    # Each waiter expects n * 10 ms / 2 slots: fifty wait rather than park for a second.
    waiting = [asyncio.create_task(gate.reserve(endpoint)) for _ in range(50)]
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in waiting)
    for task in waiting:
        gate.release(endpoint, 0.01)
        assert await task is True  # the longest waiter gets the slot
    gate.release(endpoint, 0.01)
    gate.release(endpoint, 0.01)
    assert gate.load == {} and gate.waiters == {}


async def test_a_slow_endpoint_parks_its_messages_at_once() -> None:
    gate, endpoint, other = EndpointGate(2, max_wait_seconds=1.0), uuid.uuid4(), uuid.uuid4()
    gate.note_hold(endpoint, 10.0)  # hanging until the timeout
    assert await gate.reserve(endpoint)
    assert await gate.reserve(endpoint)
    # A slot would come in 5 s: waiting would only hold a place in the prefetch window.
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await gate.reserve(endpoint) is False
    assert loop.time() - started < 0.05
    assert await gate.reserve(other)  # other endpoints are not affected
    assert gate.waiters == {}


async def test_an_endpoint_not_yet_heard_from_is_judged_by_its_first_delivery_out() -> None:
    gate, endpoint = EndpointGate(1, max_wait_seconds=0.05), uuid.uuid4()
    assert await gate.reserve(endpoint)
    # Just sent: its first burst may wait (as if each delivery took UNHEARD_MIN_HOLD_SECONDS).
    first = asyncio.create_task(gate.reserve(endpoint))
    await asyncio.sleep(0)
    assert first.done() is False and len(gate.waiters[endpoint]) == 1
    # No slot within the wait: the waiter gives up (to be parked) and is forgotten.
    assert await first is False
    assert gate.waiters == {} and gate.load == {endpoint: 1}
    # Out for a second with no answer yet (hanging?): the next parks at once.
    gate.first_out[endpoint] = time.monotonic() - 1.0
    assert await gate.reserve(endpoint) is False
    # Handed a slot, then cancelled (shutdown): the slot is not lost.
    gate.first_out[endpoint] = time.monotonic()
    waiter = asyncio.create_task(gate.reserve(endpoint))
    await asyncio.sleep(0)
    gate.release(endpoint)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.load == {} and gate.first_out == {}


async def test_a_new_endpoints_burst_waits_for_it_rather_than_parking() -> None:
    gate, endpoint = EndpointGate(2, max_wait_seconds=1.0), uuid.uuid4()
    assert await gate.reserve(endpoint) and await gate.reserve(endpoint)
    # 2 slots, 1 s of wait, at least 10 ms a delivery: up to 200 wait for the first answer.
    waiting = [asyncio.create_task(gate.reserve(endpoint)) for _ in range(201)]
    await asyncio.sleep(0)
    assert sum(task.done() for task in waiting) == 1
    assert await waiting[-1] is False
    gate.release(endpoint, 0.002)  # the first answer: now its average decides
    assert await waiting[0] is True
    assert endpoint not in gate.first_out
    for task in waiting[1:-1]:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_a_granted_slot_is_held_inside_and_released_with_its_hold_timed() -> None:
    gate, endpoint = EndpointGate(1, max_wait_seconds=0.05), uuid.uuid4()
    async with gate.slot(endpoint) as granted:
        assert granted is True
        assert gate.load == {endpoint: 1}
    assert gate.load == {}
    assert endpoint in gate.hold_seconds


async def test_a_full_endpoint_grants_no_slot_and_holds_nothing_for_it() -> None:
    gate, endpoint = EndpointGate(1, max_wait_seconds=0.05), uuid.uuid4()
    async with gate.slot(endpoint) as first:
        assert first
        async with gate.slot(endpoint) as second:
            assert second is False  # no slot came within the wait: the caller parks
            assert gate.load == {endpoint: 1}
        assert gate.load == {endpoint: 1}  # leaving without a slot gives none back
    assert gate.load == {}


async def test_an_error_inside_the_slot_still_releases_it() -> None:
    gate, endpoint = EndpointGate(1, max_wait_seconds=0.05), uuid.uuid4()
    with pytest.raises(OSError):
        async with gate.slot(endpoint) as granted:
            assert granted
            raise OSError("database down")
    assert gate.load == {}


async def test_a_webhooks_own_limit_replaces_the_default() -> None:
    gate, endpoint = EndpointGate(1, max_wait_seconds=0.05), uuid.uuid4()
    assert [await gate.reserve(endpoint, 3) for _ in range(3)] == [True] * 3
    gate.note_hold(endpoint, 10.0)
    assert await gate.reserve(endpoint, 3) is False
    assert gate.load == {endpoint: 3}


async def test_limits_are_looked_up_once_per_webhook_and_cached() -> None:
    asked: list[list[uuid.UUID]] = []
    capped, unset = uuid.uuid4(), uuid.uuid4()

    async def lookup(ids: list[uuid.UUID]) -> list[int | None]:
        asked.append(ids)
        return [5 if webhook_id == capped else None for webhook_id in ids]

    limits = EndpointLimits(32, lookup)
    # Many messages of two webhooks at one moment: one query, one entry per webhook.
    found = await asyncio.gather(*(limits.of(w) for w in [capped, unset] * 50))
    assert found == [5, 32] * 50
    assert [sorted(ids) for ids in asked] == [sorted([capped, unset])]
    assert await limits.of(capped) == 5 and len(asked) == 1


async def test_a_freed_slot_passes_over_a_waiter_cancelled_meanwhile() -> None:
    gate, endpoint = EndpointGate(1, max_wait_seconds=1.0), uuid.uuid4()
    gate.note_hold(endpoint, 0.01)
    assert await gate.reserve(endpoint)
    gone = asyncio.create_task(gate.reserve(endpoint))
    stays = asyncio.create_task(gate.reserve(endpoint))
    await asyncio.sleep(0)
    gone.cancel()  # its wait ends now; its task runs on later
    gate.release(endpoint, 0.01)
    assert await stays is True
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert gate.load == {endpoint: 1} and gate.waiters == {}
    gate.release(endpoint, 0.01)
    assert gate.load == {}
