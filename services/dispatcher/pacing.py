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
from .metrics import RATE_LIMITED, RATE_STARTS_MISSED

# A start reserved under a rate limit this near is waited for in place, a later one parked.
RATE_WAIT_IN_PLACE_SECONDS = 0.25
RATE_EARLY_RETURN_MS = 200
# A reserved start missed by more than this is reserved again (at most this share of a
# second's starts may come late into the next second).
RATE_LATE_TOLERANCE_MS = 20


class Pacer:
    def __init__(
        self, pool: asyncpg.Pool, park: Callable[[DeliveryMessage], Awaitable[None]]
    ) -> None:
        self.pool = pool
        self.park = park
        # Each webhook's rate_limit_per_second; 0: none.
        self.rates = EndpointLimits(0, lambda ids: db.limits_of(pool, ids, "rate_limit_per_second"))

    async def reserve(self, msg: DeliveryMessage, webhook_id: uuid.UUID) -> int | None:
        """The start this attempt may make under its webhook's rate limit (epoch ms; 0:
        any time), reserved; None if it is far and the message was parked until then.
        Reserved before the claim, so that a parked message holds no lease."""
        if msg.rate_slot_ms:  # back from the park, a little early, with its start reserved
            return msg.rate_slot_ms
        per_second = await self.rates.of(webhook_id)
        if not per_second:
            return 0
        wait = await endpoint_rates.reserve_start(self.pool, webhook_id, per_second)
        start = now_ms() + int(wait * 1000)
        if wait <= RATE_WAIT_IN_PLACE_SECONDS:
            return start
        RATE_LIMITED.inc()
        # Back a moment before its start, to wait for it here: the delay queues bring a
        # message back some milliseconds late, and by various amounts.
        due = start - RATE_EARLY_RETURN_MS
        await self.park(replace(msg, due_at_ms=due, webhook_id=webhook_id, rate_slot_ms=start))
        return None

    async def started(self, msg: DeliveryMessage, webhook_id: uuid.UUID, start_ms: int) -> bool:
        """Wait for the reserved start, just before the request (after the claim, whose
        batches would otherwise send starts together): True to send now, False if the
        message was parked. A start missed by more than RATE_LATE_TOLERANCE_MS (back late
        from the park, or woken late on a busy machine) is reserved again: starts missed
        together would otherwise all go at once, over the limit."""
        while start_ms:
            if start_ms > now_ms():
                await asyncio.sleep((start_ms - now_ms()) / 1000)
            if now_ms() - start_ms <= RATE_LATE_TOLERANCE_MS:
                return True
            RATE_STARTS_MISSED.inc()
            reserved = await self.reserve(replace(msg, rate_slot_ms=0), webhook_id)
            if reserved is None:
                return False
            start_ms = reserved
        return True
