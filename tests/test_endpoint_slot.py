"""EndpointGate.slot: the one place a delivery takes (and gives back) its endpoint's slot."""

from __future__ import annotations

import uuid

import pytest

from services.dispatcher.endpoints import EndpointGate


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
