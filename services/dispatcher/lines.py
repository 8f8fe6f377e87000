"""Keyed deliveries' lines (SPEC section 16): one that has an earlier delivery of its key
ahead waits behind it without a message, and each keyed delivery's end publishes what
waits behind it. The rule itself and why it holds: services/common/ordering.py."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

import asyncpg
import structlog

from services.common import deliveries, waiting
from services.common.batch import Batcher
from services.common.broker import Broker
from services.common.delivery_records import ClaimedDelivery, StalledDelivery
from services.common.messages import DeliveryMessage, now_ms

from .persist import persist

log = structlog.get_logger()

# A keyed delivery whose key has an earlier event still making its deliveries looks again
# after this long (that takes a fan-out's time: rare, and short).
BEHIND_FANOUT_DELAY_MS = 500


class Lines:
    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        park: Callable[[DeliveryMessage], Awaitable[None]],
    ) -> None:
        self.pool = pool
        self.broker = broker
        self.park = park
        self.waiting: Batcher[uuid.UUID, list[StalledDelivery]] = Batcher(
            self.waiting_batch, key=lambda delivery_id: delivery_id
        )

    async def waiting_batch(self, ended: list[uuid.UUID]) -> list[list[StalledDelivery]]:
        """The deliveries waiting behind any of `ended`, found in one statement; the first
        caller publishes them all."""
        found = await waiting.waiting_behind(self.pool, ended)
        return [found] + [[] for _ in ended[1:]]

    async def publish_next(self, delivery: ClaimedDelivery) -> None:
        """A keyed delivery has ended (its end is committed): publish the next of its key,
        which waits behind it. A crash before this leaves that one to the sweep
        (common/waiting.stranded)."""
        if delivery.ordering_key is None:
            return
        for behind in await persist(lambda: self.waiting(delivery.id)):
            msg = DeliveryMessage(
                behind.id, behind.attempt, 0, behind.request_id, behind.webhook_id
            )
            await persist(functools.partial(self.broker.send_to_dispatch, msg))

    async def wait(self, msg: DeliveryMessage) -> None:
        """A keyed delivery with an earlier one of its key ahead: it waits behind that one
        without a message (the ack), and its end publishes it. If that one has ended
        meanwhile, the message comes back a moment later to be claimed (not at once: a
        claim that keeps failing must not spin)."""
        place = await deliveries.wait_behind(self.pool, msg.delivery_id, msg.attempt)
        if place.waiting_for is not None:
            log.info("delivery_waiting", waiting_for=str(place.waiting_for))
        elif place.behind_fanout:
            await self.park(replace(msg, due_at_ms=now_ms() + BEHIND_FANOUT_DELAY_MS))
        elif place.at_head:
            await self.park(replace(msg, due_at_ms=now_ms()))
