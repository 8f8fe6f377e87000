"""The RabbitMQ link: robust connection made in the background, topology, confirmed publishes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiohttp import web
from pamqp.common import FieldValue

from .amqp_cluster import connect_cluster
from .backoff import Backoff, retry
from .messages import (
    DEFAULT_EXCHANGE,
    DELAY_BUCKETS_MS,
    DISPATCH_QUEUE,
    EVENTS_EXCHANGE,
    EVERY_EVENT_TYPE,
    FANOUT_QUEUE,
    DeliveryMessage,
    FanoutMessage,
    Outgoing,
    RecordedMessage,
    delay_queue_name,
)
from .settings import redact_url

log = structlog.get_logger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0
QUORUM: dict[str, FieldValue] = {"x-queue-type": "quorum"}
# The first connection is retried forever: a service waits for RabbitMQ, it does not exit.
CONNECT_BACKOFF = Backoff(first=0.5, cap=10.0)
# Basic.Nack answers in a row after which the publishing channel is replaced by a new one:
# after a RabbitMQ failover the channel aio-pika restored was seen to nack every publish
# for about a minute (issue 29), while a fresh channel on the same connection publishes.
NACKS_BEFORE_REOPEN = 5


class BrokerUnavailable(Exception):
    """The broker is not connected (yet, or any more)."""


# What a publish (or an ack) raises when the broker is down, slow or the channel died.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    BrokerUnavailable,
    TimeoutError,
    ConnectionError,
    aio_pika.exceptions.AMQPError,
)


async def declare_topology(channel: AbstractChannel) -> tuple[AbstractExchange, AbstractQueue]:
    """Declare the events exchange, the dispatch, fan-out and delay queues (idempotent).

    The dead-letter queue is the dispatcher's alone, bounded by its settings:
    `dead_letter_arguments`."""
    events = await channel.declare_exchange(
        EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dispatch = await channel.declare_queue(DISPATCH_QUEUE, durable=True, arguments=QUORUM)
    # Every event type's deliveries. A narrower binding on this queue (upload.completed,
    # where one was declared) is harmless: a queue gets a message once however many of
    # its bindings match.
    await dispatch.bind(events, routing_key=EVERY_EVENT_TYPE)
    await channel.declare_queue(FANOUT_QUEUE, durable=True, arguments=QUORUM)
    for bucket_ms in DELAY_BUCKETS_MS:
        await channel.declare_queue(
            delay_queue_name(bucket_ms),
            durable=True,
            arguments={
                **QUORUM,
                "x-message-ttl": bucket_ms,
                "x-dead-letter-exchange": DEFAULT_EXCHANGE,
                "x-dead-letter-routing-key": DISPATCH_QUEUE,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
    return events, dispatch


def dead_letter_arguments(max_length: int, max_age_seconds: int) -> dict[str, FieldValue]:
    """The dead-letter queue's bound; quorum queues take all of these from RabbitMQ 3.10 on.

    Past `max_length` messages the oldest is dropped (`drop-head`): never the newest, and
    never a publisher refused or blocked. With `max_age_seconds` (0: no age limit) older
    messages go too. Nothing dead-letters what is dropped: the database keeps every failed
    delivery (status `failed`) whatever the queue holds.
    """
    arguments: dict[str, FieldValue] = {
        **QUORUM,
        "x-max-length": max_length,
        "x-overflow": "drop-head",
    }
    if max_age_seconds > 0:
        arguments["x-message-ttl"] = max_age_seconds * 1000
    return arguments


async def declared_depth(
    connection: AbstractRobustConnection,
    name: str,
    arguments: dict[str, FieldValue] | None = None,
    timeout: float = PUBLISH_TIMEOUT_SECONDS,
) -> int:
    """Declare queue `name` with `arguments` (None: passively, it must exist); its messages.

    On a channel of its own, closed after: a refused declare (no such queue, or other
    arguments than it was declared with) closes the channel it was made on.
    """
    channel = await asyncio.wait_for(connection.channel(), timeout)
    try:
        queue = await channel.declare_queue(
            name,
            durable=True,
            passive=arguments is None,
            arguments=arguments,
            timeout=timeout,
            robust=False,
        )
        declared = queue.declaration_result
        return 0 if declared.message_count is None else declared.message_count
    finally:
        if not channel.is_closed:
            with contextlib.suppress(*BROKER_ERRORS):
                await channel.close()


OnConnected = Callable[[AbstractRobustConnection], Awaitable[None]]


class Broker:
    """Keeps one robust connection; publishes with confirms on a channel of its own.

    The first connection is made in the background so that a service starts (and
    answers /readyz with 503) while RabbitMQ is down; after that aio-pika reconnects
    and restores channels, queues and consumers by itself.
    """

    def __init__(self, url: str, on_connected: OnConnected | None = None) -> None:
        self.url = url
        self._on_connected = on_connected
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._events: AbstractExchange | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._nacks_in_a_row = 0
        self._reopening = asyncio.Lock()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever())

    async def wait_ready(self, timeout: float) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def _connect_forever(self) -> None:
        connection = await retry(
            lambda: connect_cluster(self.url, timeout=5),
            (OSError, TimeoutError, aio_pika.exceptions.AMQPError),
            CONNECT_BACKOFF,
            "broker_connect_failed",
            url=redact_url(self.url),
        )
        self._connection = connection
        channel = await connection.channel(publisher_confirms=True)
        self._events, _ = await declare_topology(channel)
        self._channel = channel
        if self._on_connected is not None:
            await self._on_connected(connection)
        self._ready.set()
        log.info("broker_connected", url=redact_url(self.url))

    async def open_channel(self) -> AbstractChannel:
        """A new channel on the connection, once there is one (waits for it)."""
        await self._ready.wait()
        assert self._connection is not None
        return await self._connection.channel()

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    def _publish_channel(self) -> AbstractChannel:
        if not self.connected or self._channel is None:
            raise BrokerUnavailable("RabbitMQ is not connected")
        return self._channel

    async def request_fanout(
        self, msg: FanoutMessage, timeout: float = PUBLISH_TIMEOUT_SECONDS
    ) -> None:
        """An accepted event to the fan-out worker (confirmed within `timeout` seconds)."""
        await self._publish(msg.outgoing(), timeout)

    async def publish_recorded(
        self, msg: RecordedMessage, timeout: float = PUBLISH_TIMEOUT_SECONDS
    ) -> None:
        """What an outbox row holds, wherever it goes (confirmed within `timeout` seconds)."""
        await self._publish(msg.outgoing(), timeout)

    async def send_to_dispatch(self, msg: DeliveryMessage) -> None:
        """A delivery message due now, straight to the dispatcher (confirmed)."""
        await self._publish(msg.to_dispatch())

    async def park(self, msg: DeliveryMessage) -> None:
        """A delivery message round the delay ladder until it is due (confirmed)."""
        await self._publish(msg.to_delay())

    async def dead_letter(self, msg: DeliveryMessage) -> None:
        """A delivery message that was given up on, to the dead-letter queue (confirmed)."""
        await self._publish(msg.to_dead_letter())

    async def _publish(self, outgoing: Outgoing, timeout: float = PUBLISH_TIMEOUT_SECONDS) -> None:
        """Publish and wait for the broker's confirm, at most `timeout` seconds."""
        channel = self._publish_channel()
        route = outgoing.route
        if route.exchange == EVENTS_EXCHANGE and self._events is not None:
            target = self._events
        elif route.exchange == DEFAULT_EXCHANGE:
            target = channel.default_exchange
        else:
            raise ValueError(f"unknown exchange {route.exchange!r}")
        try:
            await asyncio.wait_for(
                target.publish(outgoing.message, route.routing_key, timeout=timeout), timeout
            )
        except aio_pika.exceptions.DeliveryError:
            await self._nacked(channel)
            raise
        self._nacks_in_a_row = 0

    async def _nacked(self, channel: AbstractChannel) -> None:
        """Count a nack on `channel`; after NACKS_BEFORE_REOPEN in a row, publish on a new one.

        Publishes that fail meanwhile are not lost: their outbox rows are published again.
        """
        self._nacks_in_a_row += 1
        if self._nacks_in_a_row < NACKS_BEFORE_REOPEN:
            return
        async with self._reopening:
            if self._channel is not channel or self._connection is None:
                return  # another publish has replaced it already
            try:
                fresh = await self._connection.channel(publisher_confirms=True)
                self._events = await fresh.get_exchange(EVENTS_EXCHANGE, ensure=False)
            except BROKER_ERRORS as exc:
                log.warning("broker_channel_reopen_failed", error=repr(exc))
                return
            self._channel = fresh
            log.warning("broker_channel_reopened", nacks_in_a_row=self._nacks_in_a_row)
            self._nacks_in_a_row = 0
        with contextlib.suppress(*BROKER_ERRORS):
            await channel.close()

    async def check(self) -> None:
        # Ready once the service's own setup on the connection (its consumers) is done too.
        if not (self._ready.is_set() and self.connected):
            raise BrokerUnavailable("RabbitMQ is not connected")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._connection is not None:
            await self._connection.close()


BROKER = web.AppKey("broker", Broker)


def broker_ctx(
    url: str, on_connected: OnConnected | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        broker = Broker(url, on_connected)
        app[BROKER] = broker
        await broker.start()
        yield
        await broker.close()

    return ctx


def broker_check(app: web.Application) -> Callable[[], Any]:
    async def broker() -> None:
        await app[BROKER].check()

    return broker
