"""services.common.periodic: work every N seconds, or sooner when woken, until stopped."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from services.common.periodic import Periodic

# Bounds every wait for something that should happen at once: a hang fails, not blocks.
WAIT = 10.0


class Rounds:
    """Work that counts its rounds and lets a test wait for the n-th one."""

    def __init__(self, failing: int = 0) -> None:
        self.count = 0
        self.failing = failing
        self.changed = asyncio.Event()

    async def __call__(self) -> None:
        self.count += 1
        self.changed.set()
        if self.count <= self.failing:
            raise OSError(f"round {self.count} failed")

    async def reach(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while self.count < count:
                self.changed.clear()
                await self.changed.wait()


async def test_immediately_runs_the_first_round_at_start_then_every_interval() -> None:
    rounds = Rounds()
    async with Periodic(rounds, 0.01, "work_failed", immediately=True):
        await rounds.reach(3)
    after_stop = rounds.count
    await asyncio.sleep(0.05)
    assert rounds.count == after_stop  # stopped: no round runs after the context


async def test_without_immediately_the_first_round_waits_for_the_interval_or_a_wake() -> None:
    rounds = Rounds()
    periodic = Periodic(rounds, 3600.0, "work_failed")
    async with periodic:
        await asyncio.sleep(0.05)
        assert rounds.count == 0
        periodic.wake()
        await rounds.reach(1)
        periodic.wake()
        await rounds.reach(2)
    assert rounds.count == 2


async def test_a_failed_round_is_logged_and_the_next_one_runs() -> None:
    rounds = Rounds(failing=2)
    with capture_logs() as logs:
        async with Periodic(rounds, 0.01, "sweep_failed", immediately=True):
            await rounds.reach(3)
    failures = [entry for entry in logs if entry["event"] == "sweep_failed"]
    assert len(failures) == 2
    assert "round 1 failed" in failures[0]["error"]


async def test_stop_cancels_a_round_under_way_and_may_be_called_again() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow_round() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    periodic = Periodic(slow_round, 0.01, "work_failed", immediately=True)
    await periodic.stop()  # never started: nothing to do
    periodic.start()
    await asyncio.wait_for(started.wait(), WAIT)
    await periodic.stop()
    assert cancelled.is_set()
    await periodic.stop()
