"""The dead-letter queue is bounded (SPEC section 20): an endpoint that fails every delivery
fills it only up to DEAD_LETTER_MAX_LENGTH, its depth is a metric, and every failed
delivery stays listed by the API whatever the queue holds."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aio_pika
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from harness.events import create_event_type, fresh_user_id, insert_webhooks, new_event, publish
from harness.infra import VhostAdmin, amqp_url_for, unique_name
from harness.receiver import Receiver, Reply
from harness.stack import Stack, StackOptions
from services.common.broker import Broker, dead_letter_arguments
from services.common.messages import DEAD_LETTER_QUEUE, UNBOUNDED_DEAD_LETTER_QUEUE
from services.dispatcher.dead_letters import DeadLetters
from services.dispatcher.settings import DispatcherSettings

BOUND = 1000
WEBHOOKS = 100
EVENTS = 100  # each to every webhook: 10,000 deliveries
BOUNDED = StackOptions(dead_letter_max_length=BOUND, per_endpoint_concurrency=64)
STALL_SECONDS = 60
DEAD_LETTER_METRIC = "webhook_dead_letter_messages"
METRIC = re.compile(rf"^{DEAD_LETTER_METRIC} (\S+)$", re.MULTILINE)


async def queue_depth(amqp_url: str, name: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        count = queue.declaration_result.message_count
        return 0 if count is None else count


async def metric(stack: Stack) -> float | None:
    async with stack.http.get(f"{stack.dispatcher_url}/metrics") as resp:
        found = METRIC.search(await resp.text())
    return None if found is None else float(found[1])


async def failed_listed(stack: Stack, webhook_id: str) -> int:
    """The webhook's deliveries the API lists as failed, every page."""
    count, cursor = 0, ""
    while True:
        url = f"{stack.gateway_url}/webhook/{webhook_id}/deliveries?status=failed&limit=200"
        async with stack.http.get(url + cursor) as resp:
            assert resp.status == 200, await resp.text()
            page = await resp.json()
        count += len(page["data"])
        if page["next_cursor"] is None:
            return count
        cursor = f"&cursor={page['next_cursor']}"


@pytest.mark.timeout(1200)  # a slow machine's pace; a stall fails sooner (STALL_SECONDS)
@pytest.mark.parametrize("stack_options", [BOUNDED])
async def test_ten_thousand_failures_keep_the_queue_within_its_bound_and_all_stay_listed(
    stack: Stack, broker: Broker
) -> None:
    receiver = await Receiver([Reply(status=500, body="down")]).start()
    try:
        type_id, name = await create_event_type(stack.pool)
        user = fresh_user_id()
        # One retry a second later, as an endpoint down for days would have many.
        webhooks = await insert_webhooks(
            stack.pool, WEBHOOKS, user, type_id, receiver.url, "whsec_" + "A" * 32,
            retry_schedule=[1],
        )  # fmt: skip
        for n in range(EVENTS):
            await publish(stack.pool, broker, new_event(type_id, name, user, {"n": n}))
        total = WEBHOOKS * EVENTS
        # 20,000 attempts, each failure recorded, announced and dead-lettered: 45-60 s on an
        # idle machine, over 480 s on a busy one (the stop's CI of 2026-12-07). So the test
        # fails on a stall, not on a pace: a minute without one more failure recorded.
        failed, stalled_since = 0, time.monotonic()
        while True:
            now_failed = await stack.pool.fetchval(
                "SELECT count(*) FROM deliveries WHERE webhook_id = ANY($1) AND status = 'failed'",
                webhooks,
            )
            if now_failed == total:
                break
            if now_failed > failed:
                failed, stalled_since = now_failed, time.monotonic()
            stalled = time.monotonic() - stalled_since
            assert stalled < STALL_SECONDS, f"{failed} of {total} failed, none for {stalled:.0f} s"
            await asyncio.sleep(1)
    finally:
        await receiver.stop()
    assert len(receiver.received) >= 2 * total  # the first attempt and the retry

    # The oldest were dropped: the queue holds the newest BOUND.
    await asyncio.sleep(0.5)  # the last confirmed publishes settle
    assert await queue_depth(stack.amqp_url, DEAD_LETTER_QUEUE) == BOUND
    deadline = time.monotonic() + 15
    while await metric(stack) != BOUND:
        assert time.monotonic() < deadline, await metric(stack)
        await asyncio.sleep(0.5)

    # Whatever the queue dropped, the API lists every failed delivery.
    counts = await asyncio.gather(*(failed_listed(stack, str(w)) for w in webhooks))
    assert sum(counts) == total and set(counts) == {EVENTS}


@pytest.fixture
async def own_vhost() -> AsyncIterator[str]:
    """A vhost of the test's own: the session's must keep the queue every stack declares."""
    admin = VhostAdmin()
    vhost = unique_name("webhooks_dead")
    admin.create(vhost)
    yield amqp_url_for(vhost)
    admin.delete(vhost)


async def test_an_old_unbounded_queue_is_reported_and_a_changed_bound_kept_until_deleted(
    own_vhost: str,
) -> None:
    connection = await aio_pika.connect(own_vhost)
    async with connection:
        channel = await connection.channel()
        # As an earlier release left it, and as the same queue with another bound.
        await channel.declare_queue(
            UNBOUNDED_DEAD_LETTER_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await channel.declare_queue(
            DEAD_LETTER_QUEUE, durable=True, arguments=dead_letter_arguments(5, 0)
        )
        for n in range(3):
            await channel.default_exchange.publish(
                aio_pika.Message(b"%d" % n), UNBOUNDED_DEAD_LETTER_QUEUE
            )
            await channel.default_exchange.publish(aio_pika.Message(b"%d" % n), DEAD_LETTER_QUEUE)

        settings = replace(DispatcherSettings(), dead_letter_max_length=BOUND)
        dead_letters = DeadLetters(settings)
        broker = Broker(own_vhost, dead_letters.on_connected)
        with capture_logs() as logs:
            await broker.start()
            await broker.wait_ready(10)
        try:
            events = {entry["event"]: entry for entry in logs}
            assert events["unbounded_dead_letter_queue_left"]["messages"] == 3
            assert (
                "delete_queue webhooks.dead" in events["unbounded_dead_letter_queue_left"]["detail"]
            )
            assert "x-max-length" in events["dead_letter_queue_bound_differs"]["error"]
            assert REGISTRY.get_sample_value(DEAD_LETTER_METRIC) == 3  # read passively

            # Deleted by the operator: declared again with the bound of the settings.
            await channel.queue_delete(DEAD_LETTER_QUEUE)
            await dead_letters.refresh()
            assert REGISTRY.get_sample_value(DEAD_LETTER_METRIC) == 0
            await channel.declare_queue(
                DEAD_LETTER_QUEUE,
                durable=True,
                arguments=dead_letter_arguments(BOUND, settings.dead_letter_max_age_seconds),
            )
        finally:
            await broker.close()
