"""Fault injection on the fan-out: the upload service (which runs the fan-out worker) killed
with SIGKILL in the middle of a fan-out to 1,000 webhooks loses none and sends none twice."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from pathlib import Path

from harness.events import create_event_type, insert_webhooks, new_event, new_secret, publish
from harness.procstack import process_stack
from harness.receiver import Receiver
from services.common.db import create_pool

WEBHOOKS = 1000


async def test_kill_9_mid_fan_out_to_1000_webhooks(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    receiver = await Receiver().start()
    pool = await create_pool(database_url, max_size=4)
    try:
        async with process_stack(database_url, amqp_url, tmp_path) as stack:
            type_id, name = await create_event_type(pool)
            ids = sorted(
                await insert_webhooks(pool, WEBHOOKS, 71, type_id, receiver.url, new_secret())
            )
            event = new_event(type_id, name, 71, {"order": 1})
            await publish(pool, None, event)  # the relay publishes its fan-out message
            async with pool.acquire() as blocker:
                # Hold the second batch: the fan-out's insert of this (event, webhook)
                # waits for our transaction, after the first batch of 500 committed. (At the
                # event's time, as the fan-out makes it: the unique key includes it.)
                transaction = blocker.transaction()
                await transaction.start()
                await blocker.execute(
                    "INSERT INTO deliveries (id, webhook_id, event_id, event_type, event_time,"
                    " event_data, created_at) VALUES ($1, $2, $3, $4, $5, '{}', $5)",
                    uuid.uuid4(),
                    ids[700],
                    event.id,
                    name,
                    event.created_at,
                )
                deadline = time.monotonic() + 60
                count = "SELECT count(*) FROM deliveries WHERE event_id = $1"
                waiting = """
                    SELECT pid FROM pg_stat_activity
                    WHERE datname = current_database() AND wait_event_type = 'Lock'
                """
                while await pool.fetchval(count, event.id) < 500 or not (
                    stuck := await pool.fetch(waiting)
                ):
                    assert time.monotonic() < deadline, "the fan-out never reached batch 2"
                    await asyncio.sleep(0.1)
                await stack.kill9("upload")
                for row in stuck:  # the dead worker's statement dies with it
                    await pool.execute("SELECT pg_terminate_backend($1)", row["pid"])
                await transaction.rollback()
            created_before_restart = await pool.fetchval(count, event.id)
            await stack.start("upload")
            await receiver.wait_for(WEBHOOKS, timeout=120)
            await asyncio.sleep(4.0)  # the relay's republishes, if any, arrive too
            rows = await pool.fetch(
                "SELECT webhook_id, status FROM deliveries WHERE event_id = $1", event.id
            )
            fanned_out = await pool.fetchval(
                "SELECT fanned_out_at IS NOT NULL FROM events WHERE id = $1", event.id
            )
    finally:
        await pool.close()
        await receiver.stop()
    assert created_before_restart == 500
    sent = collections.Counter(r.headers["webhook-id"] for r in receiver.received)
    assert len(sent) == WEBHOOKS and max(sent.values()) == 1
    assert sorted(row["webhook_id"] for row in rows) == ids
    assert fanned_out
