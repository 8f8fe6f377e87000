"""services/common/broker.py: a publishing channel that keeps answering Basic.Nack is
replaced by a new one (after a RabbitMQ failover the restored channel nacked for about a
minute, issue 29). The nacks here are real: a queue full with `x-overflow: reject-publish`
nacks every publish to it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractQueue

from services.common.broker import NACKS_BEFORE_REOPEN, Broker
from services.common.messages import DEFAULT_EXCHANGE, EVENTS_EXCHANGE, Outgoing, Route


@pytest.fixture
async def broker_link(amqp_url: str) -> AsyncIterator[Broker]:
    link = Broker(amqp_url)
    await link.start()
    await link.wait_ready(10)
    yield link
    await link.close()


@pytest.fixture
async def full_queue(broker_link: Broker) -> AsyncIterator[AbstractQueue]:
    """A queue with room for one message, which nacks every publish once it holds one."""
    channel = await broker_link.open_channel()
    queue = await channel.declare_queue(
        f"test.full.{uuid.uuid4().hex[:8]}",
        auto_delete=True,
        arguments={"x-max-length": 1, "x-overflow": "reject-publish"},
    )
    yield queue
    await queue.delete(if_unused=False, if_empty=False)
    await channel.close()


def to_queue(name: str) -> Outgoing:
    message = aio_pika.Message(b"{}", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    return Outgoing(message, Route(DEFAULT_EXCHANGE, name))


async def test_a_channel_that_keeps_nacking_is_replaced(
    broker_link: Broker, full_queue: AbstractQueue
) -> None:
    full = full_queue.name
    await broker_link._publish(to_queue(full))  # takes the one place
    first = broker_link._publish_channel()
    for _ in range(NACKS_BEFORE_REOPEN - 1):
        with pytest.raises(aio_pika.exceptions.DeliveryError):
            await broker_link._publish(to_queue(full))
    assert broker_link._publish_channel() is first, "reopened before enough nacks"
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        await broker_link._publish(to_queue(full))
    second = broker_link._publish_channel()
    assert second is not first and first.is_closed
    assert broker_link.connected
    # The new channel publishes (and confirms) once there is room.
    await full_queue.purge()
    await broker_link._publish(to_queue(full))
    assert broker_link._publish_channel() is second
    assert await full_queue.get(no_ack=True, fail=False) is not None
    # The events exchange is published to on the new channel too.
    events = Outgoing(to_queue(full).message, Route(EVENTS_EXCHANGE, "test.nacks"))
    await broker_link._publish(events)
    assert broker_link._events is not None and broker_link._events.channel is second


async def test_an_ack_between_nacks_starts_the_count_again(
    broker_link: Broker, full_queue: AbstractQueue
) -> None:
    first = broker_link._publish_channel()
    for _ in range(2):
        await broker_link._publish(to_queue(full_queue.name))
        for _ in range(NACKS_BEFORE_REOPEN - 1):
            with pytest.raises(aio_pika.exceptions.DeliveryError):
                await broker_link._publish(to_queue(full_queue.name))
        await full_queue.purge()
    assert broker_link._publish_channel() is first
