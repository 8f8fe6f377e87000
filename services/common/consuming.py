"""Consume one quorum queue: each message in a task of its own, drained when the service stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from .broker import QUORUM, Broker
from .messages import MalformedMessage

log = structlog.get_logger(__name__)

Decoded = TypeVar("Decoded")


class Consumer(Generic[Decoded]):
    """Starts consuming once the broker is connected; `stop` ends intake first, then waits
    up to the grace period for the messages in flight and cancels the rest (unacked, so
    the broker hands them out again).

    Each message is decoded first; one that is not ours is logged and acked, so an old
    or foreign message never wedges the queue. `handle` gets the message and its decoding
    and acks or hands it back itself."""

    def __init__(
        self,
        broker: Broker,
        queue: str,
        prefetch: int,
        decode: Callable[[AbstractIncomingMessage], Decoded],
        handle: Callable[[AbstractIncomingMessage, Decoded], Awaitable[None]],
    ) -> None:
        self.broker = broker
        self.queue = queue
        self.prefetch = prefetch
        self.decode = decode
        self.handle = handle
        self.tasks: set[asyncio.Task[Any]] = set()
        self._starter: asyncio.Task[tuple[AbstractQueue, str]] | None = None

    def start(self) -> None:
        self._starter = asyncio.create_task(self._consume())

    async def _consume(self) -> tuple[AbstractQueue, str]:
        channel = await self.broker.open_channel()
        # Prefetch bounds the messages in flight; each is handled in its own task.
        await channel.set_qos(prefetch_count=self.prefetch)
        queue = await channel.declare_queue(self.queue, durable=True, arguments=QUORUM)
        tag = await queue.consume(self.on_message)
        log.info("consuming", queue=self.queue, prefetch=self.prefetch)
        return queue, tag

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            try:
                decoded = self.decode(message)
            except MalformedMessage as exc:
                log.warning("message_dropped", reason=str(exc), message_id=message.message_id)
                await message.ack()
                return
            await self.handle(message, decoded)
        finally:
            if task is not None:
                self.tasks.discard(task)

    async def stop(self, grace_seconds: float) -> None:
        starter = self._starter
        if starter is None:
            return
        if starter.done() and starter.exception() is None:
            queue, tag = starter.result()
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        else:
            starter.cancel()
        if self.tasks:
            log.info("draining", queue=self.queue, in_flight=len(self.tasks), grace_s=grace_seconds)
            _, still = await asyncio.wait(set(self.tasks), timeout=grace_seconds)
            for task in still:
                task.cancel()
            if still:
                log.warning("drain_incomplete", queue=self.queue, requeued=len(still))
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starter
