"""Per-endpoint concurrency: how many deliveries one webhook may have in flight (its own
max_concurrency, else the default), and whether a delivery beyond that should wait for a
slot or be parked."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from services.common.batch import Batcher
from services.common.cache import TtlCache

# Weight of the newest delivery in an endpoint's running average of slot hold time.
HOLD_WEIGHT = 0.2
MAX_TRACKED_ENDPOINTS = 10_000
# How long a webhook's max_concurrency is trusted: a PATCH reaches the dispatcher within this.
LIMIT_CACHE_SECONDS = 5.0
# An endpoint not yet heard from counts as holding its slots at least this long, so that
# the first moment of its first burst does not let an unbounded crowd wait for it.
UNHEARD_MIN_HOLD_SECONDS = 0.01


class EndpointLimits:
    """Each webhook's cap: its max_concurrency, else `default`. Read at most every
    LIMIT_CACHE_SECONDS per webhook; the lookups of many webhooks at one moment share one
    query, and many messages of one webhook share its lookup."""

    def __init__(
        self, default: int, lookup: Callable[[list[uuid.UUID]], Awaitable[list[int | None]]]
    ) -> None:
        self.default = default
        self.cache: TtlCache[uuid.UUID, int | None] = TtlCache(LIMIT_CACHE_SECONDS)
        self.lookups: Batcher[uuid.UUID, int | None] = Batcher(lookup, key=lambda w: w)
        self.pending: dict[uuid.UUID, asyncio.Future[int | None]] = {}

    async def of(self, webhook_id: uuid.UUID) -> int:
        found, limit = self.cache.get(webhook_id)
        if not found:
            pending = self.pending.get(webhook_id)
            if pending is None:
                pending = asyncio.ensure_future(self.lookups(webhook_id))
                self.pending[webhook_id] = pending
                pending.add_done_callback(lambda done: self.learnt(webhook_id, done))
            limit = await asyncio.shield(pending)
        return limit or self.default

    def learnt(self, webhook_id: uuid.UUID, done: asyncio.Future[int | None]) -> None:
        del self.pending[webhook_id]
        if not done.cancelled() and done.exception() is None:
            self.cache.put(webhook_id, done.result())


class EndpointGate:
    """At most `limit` deliveries in flight per endpoint; the rest wait or are parked."""

    def __init__(self, limit: int, max_wait_seconds: float) -> None:
        self.limit = limit
        # A delivery waits only if a slot should come sooner than a park would bring it
        # back (`max_wait_seconds`), and never longer than that.
        self.max_wait_seconds = max_wait_seconds
        self.load: dict[uuid.UUID, int] = {}
        self.waiters: dict[uuid.UUID, collections.deque[asyncio.Future[bool]]] = {}
        self.hold_seconds: dict[uuid.UUID, float] = {}  # running averages
        # Endpoints not yet heard from: when their first delivery went out.
        self.first_out: dict[uuid.UUID, float] = {}

    def expected_hold(self, webhook_id: uuid.UUID) -> float:
        """Seconds a delivery holds the endpoint's slot: the running average once it has
        answered; before that, how long its first delivery has been out, a lower bound."""
        held = self.hold_seconds.get(webhook_id)
        if held is not None:
            return held
        out_since = self.first_out.get(webhook_id, time.monotonic())
        return max(time.monotonic() - out_since, UNHEARD_MIN_HOLD_SECONDS)

    async def reserve(self, webhook_id: uuid.UUID, limit: int | None = None) -> bool:
        """A slot of the endpoint's concurrency; wait for one, or give up (and park).

        The wait is worth it when a slot should come free sooner than a park would
        bring the message back: with its slots held `held` seconds on average, the
        endpoint frees one every held / limit, and the n-th waiter expects to wait n
        times that. A fast endpoint's burst is then served in order, not a second
        late; a slow or dead one's messages are parked at once rather than hold places
        in the prefetch window that other endpoints need. Until an endpoint has
        answered once, its slots count as held for as long as its first delivery has been
        out (UNHEARD_MIN_HOLD_SECONDS at least): a new endpoint's first burst waits, while
        the messages of one that hangs are soon parked. `limit` is the webhook's own
        (EndpointLimits), else the gate's default.
        """
        limit = limit or self.limit
        load = self.load.get(webhook_id, 0)
        if load < limit:
            self.load[webhook_id] = load + 1
            if webhook_id not in self.hold_seconds:
                self.first_out.setdefault(webhook_id, time.monotonic())
            return True
        if self.crowded(webhook_id, limit):
            return False
        # True when `release` hands it a slot, False when the wait runs out: a timer
        # rather than asyncio.wait, which costs several times more for each waiter.
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self.waiters.setdefault(webhook_id, collections.deque()).append(waiter)
        timer = loop.call_later(self.max_wait_seconds, self.give_up, webhook_id, waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release(webhook_id)  # handed a slot, then cancelled
            else:
                self.stop_waiting(webhook_id, waiter)
            raise
        finally:
            timer.cancel()

    def give_up(self, webhook_id: uuid.UUID, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            self.stop_waiting(webhook_id, waiter)
            waiter.set_result(False)

    def crowded(self, webhook_id: uuid.UUID, limit: int | None = None) -> bool:
        """Whether a delivery for the endpoint now would be parked rather than wait (see
        `reserve`); the dispatcher asks before it claims, to park without claiming."""
        limit = limit or self.limit
        if self.load.get(webhook_id, 0) < limit:
            return False
        waiting = len(self.waiters.get(webhook_id, ())) + 1
        return waiting * self.expected_hold(webhook_id) / limit > self.max_wait_seconds

    @contextlib.asynccontextmanager
    async def slot(self, webhook_id: uuid.UUID, limit: int | None = None) -> AsyncIterator[bool]:
        """`async with gate.slot(endpoint, limit) as granted`: inside, the endpoint's slot
        is held if `granted` (released, its hold timed, on leaving); else none came soon."""
        if not await self.reserve(webhook_id, limit):
            yield False
            return
        with self.held(webhook_id):
            yield True

    @contextlib.contextmanager
    def held(self, webhook_id: uuid.UUID) -> Iterator[None]:
        """Around the work done with a reserved slot: releases it, timing the hold."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.release(webhook_id, time.monotonic() - started)

    def stop_waiting(self, webhook_id: uuid.UUID, waiter: asyncio.Future[bool]) -> None:
        waiters = self.waiters.get(webhook_id)
        if waiters is None:
            return
        with contextlib.suppress(ValueError):  # already handed a slot, or given up
            waiters.remove(waiter)
        if not waiters:
            del self.waiters[webhook_id]

    def release(self, webhook_id: uuid.UUID, held_seconds: float | None = None) -> None:
        if held_seconds is not None:
            self.note_hold(webhook_id, held_seconds)
        waiters = self.waiters.get(webhook_id)
        while waiters:
            waiter = waiters.popleft()
            if not waiters:
                del self.waiters[webhook_id]
            if not waiter.done():  # one cancelled (stopping) is passed over
                # The slot goes straight to the longest waiter; the load stays the same.
                waiter.set_result(True)
                return
        load = self.load.pop(webhook_id, 1) - 1
        if load > 0:
            self.load[webhook_id] = load
        else:
            self.first_out.pop(webhook_id, None)

    def note_hold(self, webhook_id: uuid.UUID, seconds: float) -> None:
        """Keep a running average of how long a delivery holds the endpoint's slot."""
        average = self.hold_seconds.get(webhook_id)
        self.first_out.pop(webhook_id, None)
        if average is None and len(self.hold_seconds) >= MAX_TRACKED_ENDPOINTS:
            self.hold_seconds.clear()  # bounds memory; an endpoint seen again is learnt again
        self.hold_seconds[webhook_id] = (
            seconds if average is None else average + HOLD_WEIGHT * (seconds - average)
        )
