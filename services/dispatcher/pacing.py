"""Rate limits per webhook (SPEC section 17): an attempt's start reserved under the
webhook's rate_limit_per_second (services/common/endpoint_rates.py, shared by every
replica) and waited for, here if it is near, else parked until then: not failed and not
counted as an attempt."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

import asyncpg

from services.common import endpoint_rates
from services.common.messages import DeliveryMessage, now_ms

from . import db
from .endpoints import EndpointLimits
from .metrics import RATE_LIMITED

# A start reserved under a rate limit this near is waited for in place, a later one parked.
RATE_WAIT_IN_PLACE_SECONDS = 0.25
RATE_EARLY_RETURN_MS = 200


class Pacer:
    def __init__(
        self, pool: asyncpg.Pool, park: Callable[[DeliveryMessage], Awaitable[None]]
    ) -> None:
        self.pool = pool
        self.park = park
        # Each webhook's rate_limit_per_second; 0: none.
        self.rates = EndpointLimits(0, lambda ids: db.limits_of(pool, ids, "rate_limit_per_second"))

    async def held_back(self, msg: DeliveryMessage, webhook_id: uuid.UUID) -> bool:
        """Reserve this attempt's start and wait for it: True if it was parked. One
        endpoint's wait holds at most RATE_WAIT_IN_PLACE_SECONDS worth of its requests in
        the prefetch window."""
        if msg.rate_slot_ms:  # back from the park, a little early, with its start reserved
            await asyncio.sleep(max(msg.rate_slot_ms - now_ms(), 0) / 1000)
            return False
        per_second = await self.rates.of(webhook_id)
        if not per_second:
            return False
        wait = await endpoint_rates.reserve_start(self.pool, webhook_id, per_second)
        if wait <= RATE_WAIT_IN_PLACE_SECONDS:
            if wait > 0:
                await asyncio.sleep(wait)
            return False
        RATE_LIMITED.inc()
        # Back a moment before its start, to wait for it here: the delay queues bring a
        # message back some milliseconds late, and by various amounts.
        start = now_ms() + int(wait * 1000)
        due = start - RATE_EARLY_RETURN_MS
        await self.park(replace(msg, due_at_ms=due, webhook_id=webhook_id, rate_slot_ms=start))
        return True
