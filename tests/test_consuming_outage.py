"""A message being handled when the broker connection drops is handled to the end
(services/common/consuming.py): aiormq cancels its consumer callbacks with the channel,
and a delivery cancelled between its request and its record would be sent twice."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from harness.infra import unique_name
from harness.procstack import via_proxy
from harness.proxy import TcpProxy
from services.common.broker import QUORUM, Broker
from services.common.consuming import Consumer, Outcome


async def test_a_handler_in_flight_when_the_broker_link_drops_finishes(amqp_url: str) -> None:
    real = urlsplit(amqp_url)
    proxy = await TcpProxy(real.hostname or "127.0.0.1", real.port or 5672).start()
    broker = Broker(via_proxy(amqp_url, proxy.port))
    queue = unique_name("consuming_outage")
    started, release = asyncio.Event(), asyncio.Event()
    handled: list[tuple[bytes, bool]] = []  # body, redelivered: each handler that finished

    async def handle(message: AbstractIncomingMessage, body: bytes) -> Outcome:
        started.set()
        await release.wait()  # the request on the wire, its outcome not yet recorded
        handled.append((body, message.redelivered))
        return Outcome.ACK

    consumer = Consumer(broker, queue, 8, lambda message: message.body, handle)
    direct = await aio_pika.connect(amqp_url)
    try:
        await broker.start()
        await broker.wait_ready(10)
        consumer.start()
        channel = await direct.channel()
        await channel.declare_queue(queue, durable=True, arguments=QUORUM)
        await channel.default_exchange.publish(aio_pika.Message(b"one"), queue)
        await asyncio.wait_for(started.wait(), 10)

        proxy.cut()
        await asyncio.sleep(1.0)  # aiormq notices and closes the channel
        assert not broker.connected
        release.set()
        await asyncio.sleep(0.2)
        assert handled == [(b"one", False)]  # not cancelled with the channel

        # Its ack went down with the channel: the broker hands the message out again,
        # which the consumer's own checks absorb (the dispatcher's claim turns it away).
        proxy.restore()
        deadline = asyncio.get_running_loop().time() + 30
        while len(handled) < 2:
            assert asyncio.get_running_loop().time() < deadline, handled
            await asyncio.sleep(0.1)
        assert handled[1] == (b"one", True)
    finally:
        proxy.restore()  # a link that cannot come back makes closing it wait
        await consumer.stop(1.0)
        await broker.close()
        await proxy.stop()
        channel = await direct.channel()
        await channel.queue_delete(queue)
        await direct.close()
