"""Fault injection: real service processes, outages made by our TCP proxy; lost is always 0."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.procstack import ProcessStack, process_stack
from harness.receiver import Receiver, Reply

CONCURRENCY = 6


@dataclass
class Tally:
    accepted: set[str] = field(default_factory=set)
    refused: collections.Counter[int] = field(default_factory=collections.Counter)

    def received(self, receiver: Receiver) -> collections.Counter[str]:
        return collections.Counter(r.json()["data"]["upload_id"] for r in receiver.received)

    def summary(self, name: str, receiver: Receiver) -> dict[str, int]:
        got = self.received(receiver)
        figures = {
            "accepted": len(self.accepted),
            "refused": sum(self.refused.values()),
            "delivered": len(set(got) & self.accepted),
            "duplicates": sum(count - 1 for count in got.values()),
            "lost": len(self.accepted - set(got)),
        }
        print(f"{name}: {figures}")
        return figures


async def upload_for(stack: ProcessStack, webhook_id: str, seconds: float, tally: Tally) -> None:
    """Upload continuously from CONCURRENCY clients for `seconds`."""
    stop_at = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < stop_at:
            try:
                status, body = await stack.upload(webhook_id)
            except (TimeoutError, OSError) as exc:
                raise AssertionError(f"upload hung or broke: {exc!r}") from exc
            if status == 200:
                tally.accepted.add(body["data"]["upload_id"])
            else:
                tally.refused[status] += 1
                assert status == 503, (status, body)
                assert body["error"] is True
                await asyncio.sleep(0.1)

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))


async def wait_all_delivered(tally: Tally, receiver: Receiver, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while tally.accepted - set(tally.received(receiver)):
        if time.monotonic() > deadline:
            missing = tally.accepted - set(tally.received(receiver))
            raise AssertionError(f"{len(missing)} accepted uploads never delivered")
        await asyncio.sleep(0.2)


async def readiness(stack: ProcessStack, service: str) -> int:
    async with stack.http.get(f"{stack.url(service)}/readyz") as resp:
        return resp.status


async def test_kill_9_of_the_dispatcher_mid_stream_loses_nothing(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    receiver = await Receiver([Reply(200, delay=0.05)]).start()
    tally = Tally()
    try:
        async with process_stack(database_url, amqp_url, tmp_path) as stack:
            webhook = await stack.register(receiver.url)
            uploading = asyncio.create_task(upload_for(stack, webhook["id"], 6.0, tally))
            await receiver.wait_for(20, timeout=30)
            await stack.kill9("dispatcher")
            killed_at = len(receiver.received)
            await asyncio.sleep(1.0)
            await stack.start("dispatcher")
            await uploading
            await wait_all_delivered(tally, receiver)
            figures = tally.summary("kill -9 dispatcher", receiver)
            # Deliveries in flight at the kill are sent again once their lease ends.
            deadline = time.monotonic() + 60
            while (statuses := await stack.delivery_statuses(webhook["id"])).get("pending"):
                assert time.monotonic() < deadline, statuses
                await asyncio.sleep(0.2)
    finally:
        await receiver.stop()
    assert figures["lost"] == 0
    assert figures["accepted"] > killed_at
    assert statuses == {"succeeded": figures["accepted"]}
    # Only deliveries in flight at the kill can arrive twice (prefetch bounds them).
    assert figures["duplicates"] <= 256


async def test_broker_outage_of_8_s_during_uploads(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    receiver = await Receiver().start()
    tally = Tally()
    try:
        async with process_stack(database_url, amqp_url, tmp_path) as stack:
            webhook = await stack.register(receiver.url)
            uploading = asyncio.create_task(upload_for(stack, webhook["id"], 12.0, tally))
            await asyncio.sleep(2.0)
            stack.broker_proxy.cut()
            await asyncio.sleep(1.0)
            assert await readiness(stack, "upload") == 503
            assert await readiness(stack, "dispatcher") == 503
            accepted_before_outage_end = len(tally.accepted)
            await asyncio.sleep(7.0)
            stack.broker_proxy.restore()
            restored_at = time.monotonic()
            await uploading
            await wait_all_delivered(tally, receiver)
            recovery = time.monotonic() - restored_at
            figures = tally.summary("broker outage 8 s", receiver)
            for service in ("upload", "dispatcher"):
                assert await readiness(stack, service) == 200
    finally:
        await receiver.stop()
    print(f"broker outage: all delivered {recovery:.1f} s after the broker came back")
    assert figures["lost"] == 0
    assert figures["refused"] == 0  # the outbox keeps accepting during a broker outage
    assert len(tally.accepted) > accepted_before_outage_end


async def test_database_outage_of_5_s_during_uploads(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    receiver = await Receiver().start()
    tally = Tally()
    try:
        async with process_stack(database_url, amqp_url, tmp_path) as stack:
            webhook = await stack.register(receiver.url)
            uploading = asyncio.create_task(upload_for(stack, webhook["id"], 10.0, tally))
            await asyncio.sleep(2.0)
            stack.database_proxy.cut()
            await asyncio.sleep(1.0)
            assert await readiness(stack, "upload") == 503
            await asyncio.sleep(4.0)
            stack.database_proxy.restore()
            await uploading
            await wait_all_delivered(tally, receiver)
            figures = tally.summary("database outage 5 s", receiver)
            assert await readiness(stack, "upload") == 200
            stored = [p for p in (tmp_path / "uploads").iterdir() if any(p.iterdir())]
    finally:
        await receiver.stop()
    assert figures["lost"] == 0
    assert figures["refused"] > 0  # 503s while PostgreSQL was away, never 500 or a hang
    assert set(tally.refused) == {503}
    # A refused upload leaves no file behind.
    assert {p.name for p in stored} == tally.accepted


async def test_sigterm_with_deliveries_in_flight_to_a_slow_receiver(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    receiver = await Receiver([Reply(200, delay=1.5)]).start()
    tally = Tally()
    try:
        async with process_stack(database_url, amqp_url, tmp_path) as stack:
            webhook = await stack.register(receiver.url)
            await upload_for(stack, webhook["id"], 1.0, tally)
            await receiver.wait_for(5, timeout=20)
            started = time.monotonic()
            code = await stack.terminate("dispatcher")
            stopped_in = time.monotonic() - started
            finished_before_stop = len(receiver.received)
            await stack.start("dispatcher")
            await wait_all_delivered(tally, receiver)
            figures = tally.summary("SIGTERM with in-flight deliveries", receiver)
            drained = [
                line for line in stack.log_lines("dispatcher") if line["event"] == "draining"
            ]
    finally:
        await receiver.stop()
    assert code == 0
    assert stopped_in < 10 + 5  # within SHUTDOWN_GRACE_SECONDS, with room for start-up
    assert drained and drained[0]["in_flight"] >= 1
    assert finished_before_stop >= 5
    assert figures["lost"] == 0
