"""Consume one quorum queue: each message in a task of its own, acknowledged together with
the others settled at the same moment, drained when the service stops."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from .broker import BROKER_ERRORS, QUORUM, Broker
from .messages import MalformedMessage

log = structlog.get_logger(__name__)

Decoded = TypeVar("Decoded")


class Outcome(enum.Enum):
    """What a handler asks for its message: acknowledged (done), or handed back."""

    ACK = "ack"
    REQUEUE = "requeue"


class Acks:
    """The acknowledgements of one channel, sent once a loop turn: a run of settled messages
    from the oldest unsettled one is one `multiple` ack, any other settled message its own.

    An ack goes only after its handler recorded the outcome, as before; it merely shares
    a frame. Lost with the channel, the broker redelivers and the consumer's own checks
    (the dispatcher's claim, the fan-out's once-per-webhook insert) absorb the copy.
    """

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        # Delivery tag -> settled, in the order the broker handed them out (tags ascend).
        self.unsettled: dict[int, bool] = {}
        self.settled: list[int] = []
        self.flushing: asyncio.Task[None] | None = None

    def received(self, tag: int) -> None:
        self.unsettled[tag] = False

    def forget(self, tag: int) -> None:
        """A message nacked: settled at the broker, it no longer holds a run back."""
        self.unsettled.pop(tag, None)

    def ack(self, tag: int) -> None:
        self.unsettled[tag] = True
        self.settled.append(tag)
        if self.flushing is None:
            self.flushing = asyncio.create_task(self.flush())

    async def flush(self) -> None:
        try:
            await asyncio.sleep(0)  # the acks of this moment gather first
            settled, self.settled = self.settled, []
            run_end = None
            for tag, done in self.unsettled.items():
                if not done:
                    break
                run_end = tag
            singles = [tag for tag in settled if run_end is None or tag > run_end]
            for tag in settled:
                del self.unsettled[tag]
            if run_end is not None:
                await self.channel.basic_ack(run_end, multiple=True)
            for tag in singles:
                await self.channel.basic_ack(tag)
        except Exception as exc:  # aiormq's own errors too, on a channel that closed
            # The channel died: the broker redelivers what was not acknowledged.
            log.warning("ack_failed", error=repr(exc))
        finally:
            self.flushing = None
            if self.settled:
                self.flushing = asyncio.create_task(self.flush())


class Consumer(Generic[Decoded]):
    """Starts consuming once the broker is connected; `stop` ends intake first, then waits
    up to the grace period for the messages in flight and cancels the rest (unacked, so
    the broker hands them out again).

    Each message is decoded first; one that is not ours is logged and acked, so an old
    or foreign message never wedges the queue. `handle` gets the message and its decoding
    and answers ACK or REQUEUE (after backing off, if it wants a pause)."""

    def __init__(
        self,
        broker: Broker,
        queue: str,
        prefetch: int,
        decode: Callable[[AbstractIncomingMessage], Decoded],
        handle: Callable[[AbstractIncomingMessage, Decoded], Awaitable[Outcome]],
    ) -> None:
        self.broker = broker
        self.queue = queue
        self.prefetch = prefetch
        self.decode = decode
        self.handle = handle
        self.tasks: set[asyncio.Task[Any]] = set()
        # One per channel: a reconnect brings a new channel, whose tags start again.
        self.acks: weakref.WeakKeyDictionary[Any, Acks] = weakref.WeakKeyDictionary()
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
        """Handles the message in a task of ours. aiormq runs this callback in a task of
        its own and cancels it when the channel closes: a delivery cancelled there, its
        request sent and its outcome not yet recorded, would be sent again once the broker
        redelivered the message and the lease ran out. Ours finishes and records; its ack
        fails with the channel, and the consumer's own checks turn the copy away.

        A message cancelled mid-way (shutdown) stays unsettled, so that no run of acks
        covers it: the broker hands it out again."""
        task = asyncio.create_task(self.settle(message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        await asyncio.shield(task)

    async def settle(self, message: AbstractIncomingMessage) -> None:
        acks = self.acks.get(message.channel)
        if acks is None:
            acks = self.acks[message.channel] = Acks(message.channel)
        tag = message.delivery_tag
        assert tag is not None  # consumed with acknowledgements
        acks.received(tag)
        try:
            decoded = self.decode(message)
        except MalformedMessage as exc:
            log.warning("message_dropped", reason=str(exc), message_id=message.message_id)
            outcome = Outcome.ACK
        else:
            outcome = await self.handle(message, decoded)
        if outcome is Outcome.ACK:
            acks.ack(tag)
        else:
            await self.requeue(message)
            acks.forget(tag)

    async def requeue(self, message: AbstractIncomingMessage) -> None:
        try:
            await message.nack(requeue=True)
        except BROKER_ERRORS as exc:
            log.warning("nack_failed", error=repr(exc))

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
        for acks in list(self.acks.values()):
            if acks.flushing is not None:
                with contextlib.suppress(Exception):
                    await acks.flushing
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starter
