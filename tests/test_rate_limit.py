"""rate_limit_per_second (SPEC §17): across dispatcher replicas together, no more requests a
second start to a webhook than its limit; the rest wait, neither failed nor counted as
attempts, and an endpoint without a limit is not slowed by one with it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from harness.procstack import ProcessStack, process_stack
from harness.receiver import Receiver
from harness.stack import Stack
from tests.test_security import call

LIMIT = 50
DELIVERIES = 1000
# A second window may hold one start more than the limit at each of its edges.
MOST_IN_A_SECOND = 55


def most_in_one_second(times: list[float]) -> int:
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


async def upload_many(stack: ProcessStack, webhook_id: str, count: int) -> list[float]:
    """`count` uploads, 20 at a time; when each was accepted (time.monotonic())."""
    accepted: list[float] = []

    async def one() -> None:
        status, answer = await stack.upload(webhook_id)
        assert status == 200, answer
        accepted.append(time.monotonic())

    for start in range(0, count, 20):
        await asyncio.gather(*(one() for _ in range(min(20, count - start))))
    return accepted


async def latencies(stack: ProcessStack, receiver: Receiver, webhook_id: str) -> list[float]:
    """Upload-to-arrival seconds of 100 deliveries made one every 50 ms."""
    sent = {}
    base = len(receiver.received)
    for _ in range(100):
        at = time.monotonic()
        status, answer = await stack.upload(webhook_id)
        assert status == 200, answer
        sent[answer["data"]["upload_id"]] = at
        await asyncio.sleep(0.05)
    received = await receiver.wait_for(base + 100, timeout=60)
    return [r.at - sent[r.json()["data"]["upload_id"]] for r in received[base:]]


async def recorded(stack: ProcessStack, webhook_id: str) -> dict[str, int]:
    """The webhook's deliveries by status once none is pending (the last request arrived
    a moment before its outcome was recorded), or after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        statuses = await stack.delivery_statuses(webhook_id)
        if "pending" not in statuses or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.1)


def p99(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.99) - 1]


async def test_a_rate_limit_holds_across_two_replicas(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    limited, unlimited = await Receiver().start(), await Receiver().start()
    try:
        async with process_stack(database_url, amqp_url, tmp_path, replicas=2) as stack:
            other = await stack.register(unlimited.url)
            alone = await latencies(stack, unlimited, other["id"])

            webhook = await stack.register(limited.url, rate_limit_per_second=LIMIT)
            assert webhook["rate_limit_per_second"] == LIMIT
            # Its backlog: DELIVERIES at LIMIT a second, about 20 s to drain. The other
            # endpoint's latencies are measured while it drains, once the uploads are in
            # (while they arrive, the upload service's queue would be measured too).
            await upload_many(stack, webhook["id"], DELIVERIES)
            beside = await latencies(stack, unlimited, other["id"])
            received = await limited.wait_for(DELIVERIES, timeout=DELIVERIES / LIMIT + 30)
            statuses = await recorded(stack, webhook["id"])
            attempts = await stack.pool.fetchval(
                "SELECT count(*) FROM delivery_attempts a JOIN deliveries d "
                "ON d.id = a.delivery_id WHERE d.webhook_id = $1::uuid",
                webhook["id"],
            )
    finally:
        await limited.stop()
        await unlimited.stop()

    assert len({r.headers["webhook-id"] for r in received}) == DELIVERIES
    assert most_in_one_second([r.at for r in received]) <= MOST_IN_A_SECOND
    assert statuses == {"succeeded": DELIVERIES} and attempts == DELIVERIES
    assert p99(beside) <= 2 * max(p99(alone), 0.05), (p99(alone), p99(beside))


async def test_a_rate_limit_is_set_changed_and_removed(stack: Stack) -> None:
    webhook = await stack.register("https://example.com/hook")
    assert webhook["rate_limit_per_second"] is None
    path = f"/webhook/{webhook['id']}"
    status, envelope, _ = await call(stack, "PATCH", path, None, {"rate_limit_per_second": 20})
    assert status == 200 and envelope["data"]["rate_limit_per_second"] == 20
    for bad in (0, 10001, 1.5, "5"):
        status, envelope, _ = await call(stack, "PATCH", path, None, {"rate_limit_per_second": bad})
        assert status == 400 and "rate_limit_per_second" in envelope["message"], envelope
    status, envelope, _ = await call(stack, "PATCH", path, None, {"rate_limit_per_second": None})
    assert status == 200 and envelope["data"]["rate_limit_per_second"] is None
