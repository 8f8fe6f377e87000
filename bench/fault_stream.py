"""A steady stream of requests while a server is stopped, and what arrived of it: the
measure of `make cluster-test` (a RabbitMQ node) and `make pg-failover-test` (the
PostgreSQL primary). An item is accepted when its answer is 2xx; any other answer is
counted apart and the client sends a new item."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.receiver import Received, Receiver

# (status, the accepted item's id) of the n-th request; aiohttp's errors mean no answer.
Send = Callable[[int], Awaitable[tuple[int, str]]]
# The id of the item a delivery carries, as Send names it.
ItemOf = Callable[[Received], str]
CLIENTS = 6


@dataclass
class Tally:
    """The numbers of the last line: accepted (2xx), delivered of those, lost, duplicates
    (extra receipts of one `webhook-id`), recovery (from the stop until the first delivery
    of an item accepted once the stop was over)."""

    accepted: int
    delivered: int
    lost: int
    duplicates: int
    recovery_s: float

    def numbers(self) -> str:
        return (
            f"accepted {self.accepted}, delivered {self.delivered}, lost {self.lost}, "
            f"duplicates {self.duplicates}, recovery {self.recovery_s:.1f} s"
        )


@dataclass
class Stream:
    accepted: dict[str, float] = field(default_factory=dict)  # item id -> accepted at
    refused: collections.Counter[int] = field(default_factory=collections.Counter)
    stop_started: float | None = None
    # When the system had what it needs again: the node stopped (the cluster took over),
    # or the standby promoted.
    stop_done: float | None = None
    half_way: asyncio.Event = field(default_factory=asyncio.Event)

    def finished(self, total: int) -> bool:
        """`total` accepted, and the stream went on for a while once the stop was over."""
        if len(self.accepted) < total or self.stop_done is None:
            return False
        return len(self.accepted_since(self.stop_done)) >= max(10, total // 10)

    def accepted_since(self, at: float) -> set[str]:
        return {item for item, accepted_at in self.accepted.items() if accepted_at >= at}


async def steady_stream(send: Send, stream: Stream, total: int, rate: float) -> None:
    """Send at about `rate` per second until `total` are accepted and the stop is over."""
    next_slot = time.monotonic()
    sent = 0

    async def client() -> None:
        nonlocal next_slot, sent
        while not stream.finished(total):
            next_slot = max(next_slot + 1 / rate, time.monotonic())
            await asyncio.sleep(max(0.0, next_slot - time.monotonic()))
            sent += 1
            try:
                status, item = await send(sent)
            except (TimeoutError, aiohttp.ClientError):
                stream.refused[0] += 1
                continue
            if 200 <= status < 300:
                stream.accepted[item] = time.monotonic()
                if len(stream.accepted) >= total // 2:
                    stream.half_way.set()
            else:
                stream.refused[status] += 1
                await asyncio.sleep(0.1)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


def delivered(receiver: Receiver, item_of: ItemOf) -> collections.Counter[str]:
    return collections.Counter(item_of(received) for received in receiver.received)


async def wait_delivered(
    receiver: Receiver, accepted: set[str], item_of: ItemOf, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while accepted - set(delivered(receiver, item_of)):
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.2)


def recovery_seconds(receiver: Receiver, stream: Stream, item_of: ItemOf) -> float:
    """From the start of the stop until the first delivery of an item accepted after it."""
    assert stream.stop_started is not None and stream.stop_done is not None
    after = stream.accepted_since(stream.stop_done)
    arrivals = [r.at for r in receiver.received if item_of(r) in after]
    return min(arrivals) - stream.stop_started if arrivals else float("inf")


def tally(receiver: Receiver, stream: Stream, item_of: ItemOf) -> dict[str, Any]:
    """A Tally's fields, for the result that extends it."""
    accepted = set(stream.accepted)
    arrived = set(delivered(receiver, item_of))
    return {
        "accepted": len(accepted),
        "delivered": len(accepted & arrived),
        "lost": len(accepted - arrived),
        "duplicates": duplicates(receiver),
        "recovery_s": recovery_seconds(receiver, stream, item_of),
    }


def duplicates(receiver: Receiver) -> int:
    """Extra receipts of one `webhook-id` (one delivery sent more than once)."""
    per_webhook_id = collections.Counter(r.headers.get("webhook-id") for r in receiver.received)
    return sum(count - 1 for count in per_webhook_id.values())
