"""services/dispatcher/places.py: places in all, and a share of them for the unsent."""

from __future__ import annotations

import asyncio

import pytest

from services.dispatcher.places import UNSENT_SHARE, Places


async def test_only_a_share_of_the_places_may_be_held_before_sending() -> None:
    places = Places(2 * UNSENT_SHARE)
    first, second = await places.take(), await places.take()
    third = asyncio.create_task(places.take())
    await asyncio.sleep(0)
    assert not third.done()  # two unsent: the share is full, though places in all are free
    first.sending()
    place = await asyncio.wait_for(third, 1)
    # Sending deliveries hold only their place in all: up to 2 * UNSENT_SHARE of them.
    second.sending()
    place.sending()
    for _ in range(2 * UNSENT_SHARE - 3):
        (await asyncio.wait_for(places.take(), 1)).sending()
    last = asyncio.create_task(places.take())
    await asyncio.sleep(0)
    assert not last.done()  # every place in all is taken
    first.leave()
    assert (await asyncio.wait_for(last, 1)).unsent


async def test_leaving_gives_back_each_part_once() -> None:
    places = Places(UNSENT_SHARE)
    place = await places.take()
    place.sending()
    place.leave()
    place.sending()  # again: nothing more is given back
    assert places.total._value == UNSENT_SHARE and places.unsent._value == 1


async def test_a_take_cancelled_while_waiting_for_the_unsent_share_holds_nothing() -> None:
    places = Places(UNSENT_SHARE)
    held = await places.take()
    waiting = asyncio.create_task(places.take())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    held.leave()
    assert places.total._value == UNSENT_SHARE and places.unsent._value == 1
