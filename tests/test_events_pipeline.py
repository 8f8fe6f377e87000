"""The events pipeline end to end: accept, fan out, deliver; filters on uploads; per-webhook
settings; operational events without loops; idempotency; retention of events."""

from __future__ import annotations

import asyncio
import collections
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from harness.events import (
    create_event_type,
    fresh_user_id,
    insert_webhooks,
    new_event,
    new_secret,
    publish,
)
from harness.receiver import Receiver, Reply
from harness.stack import Stack, StackOptions
from services.common import event_details, events, retention, system_events
from services.common.broker import Broker
from services.common.timefmt import iso_time

UPLOAD_TYPE = system_events.UPLOAD_EVENT_TYPE_ID


async def wait_until(check: object, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


async def event_rows(stack: Stack, user_id: int) -> list[dict[str, object]]:
    rows = await stack.pool.fetch(
        "SELECT e.*, t.event_name FROM events e JOIN event_types t ON t.id = e.event_type_id"
        " WHERE e.user_id = $1 ORDER BY e.created_at",
        user_id,
    )
    return [dict(row) for row in rows]


async def test_an_event_reaches_exactly_the_subscribed_matching_webhooks(
    stack: Stack, receiver: Receiver, broker: Broker
) -> None:
    type_id, name = await create_event_type(stack.pool)
    secret = new_secret()

    async def hooks(path: str, user_id: int, type_: uuid.UUID, **columns: object) -> uuid.UUID:
        (webhook_id,) = await insert_webhooks(
            stack.pool, 1, user_id, type_, f"{receiver.url}/{path}", secret, **columns
        )
        return webhook_id

    plain = await hooks("plain", 7, type_id)
    matching = await hooks("matching", 7, type_id, filter={"amount": {"$gt": 100}})
    await hooks("other-filter", 7, type_id, filter={"currency": "EUR"})
    await hooks("other-user", 8, type_id)
    await hooks("other-type", 7, UPLOAD_TYPE)
    disabled = await hooks("disabled", 7, type_id, disabled=True)
    payload = {"amount": 150, "currency": "USD", "customer": {"country": "FR"}}
    event = new_event(type_id, name, 7, payload)

    event_id = await publish(stack.pool, broker, event)
    requests = await receiver.wait_for(2)
    await asyncio.sleep(1.0)  # nothing else may come

    assert sorted(r.path.rsplit("/", 1)[-1] for r in receiver.received) == ["matching", "plain"]
    for request in requests:
        body = Webhook(secret).verify(request.body, request.headers)
        assert body == {"type": name, "timestamp": iso_time(event.created_at), "data": payload}
    stored = await event_details.get_event(stack.pool, event_id)
    assert stored is not None and stored.fanned_out_at is not None
    assert (stored.event_type, stored.user_id, stored.payload) == (name, 7, payload)
    by_webhook = {d["webhook_id"]: d for d in stored.deliveries}
    assert set(by_webhook) == {str(plain), str(matching), str(disabled)}
    assert by_webhook[str(disabled)]["status"] == "not_attempted"
    sent_ids = {r.headers["webhook-id"] for r in requests}
    assert sent_ids == {by_webhook[str(plain)]["id"], by_webhook[str(matching)]["id"]}


async def test_a_fan_out_to_1000_webhooks_delivers_each_once(stack: Stack, broker: Broker) -> None:
    receiver = await Receiver().start()
    try:
        type_id, name = await create_event_type(stack.pool)
        secret = new_secret()
        ids = await insert_webhooks(stack.pool, 1000, 12, type_id, receiver.url, secret)
        event_id = await publish(stack.pool, broker, new_event(type_id, name, 12, {"n": 1}))
        requests = await receiver.wait_for(1000, timeout=120)
        await asyncio.sleep(1.0)
    finally:
        await receiver.stop()
    assert len(receiver.received) == 1000
    assert len({r.headers["webhook-id"] for r in requests}) == 1000
    Webhook(secret).verify(requests[-1].body, requests[-1].headers)
    rows = await stack.pool.fetch("SELECT webhook_id FROM deliveries WHERE event_id = $1", event_id)
    assert sorted(row["webhook_id"] for row in rows) == sorted(ids)


async def test_an_event_without_a_broker_publish_is_fanned_out_by_the_relay(
    stack: Stack, receiver: Receiver
) -> None:
    type_id, name = await create_event_type(stack.pool)
    await insert_webhooks(stack.pool, 2, 13, type_id, receiver.url, new_secret())
    await publish(stack.pool, None, new_event(type_id, name, 13, {"via": "relay"}))
    requests = await receiver.wait_for(2, timeout=30)
    assert [r.json()["data"] for r in requests] == [{"via": "relay"}] * 2


@pytest.mark.parametrize("stack_options", [StackOptions(with_dispatcher=False)])
async def test_upload_filters_decide_whether_an_upload_gets_a_delivery(stack: Stack) -> None:
    user = fresh_user_id()
    webhook = await stack.register("http://127.0.0.1:9/unused", user_id=user)
    await stack.pool.execute(
        "UPDATE webhook_registrations SET filter = $2 WHERE id = $1",
        uuid.UUID(webhook["id"]),
        {"size": {"$gt": 3}},
    )
    small = await stack.upload(webhook["id"], b"ab")
    large = await stack.upload(webhook["id"], b"abcdefgh")
    rows = {
        str(row["upload_id"]): row
        for row in await stack.pool.fetch(
            "SELECT upload_id, event_id, status FROM deliveries WHERE webhook_id = $1",
            uuid.UUID(webhook["id"]),
        )
    }
    assert set(rows) == {large["upload_id"]}
    upload_events = await event_rows(stack, user)
    payloads = {e["payload"]["upload_id"]: e for e in upload_events}  # type: ignore[index]
    assert set(payloads) == {small["upload_id"], large["upload_id"]}
    large_event = payloads[large["upload_id"]]
    assert rows[large["upload_id"]]["event_id"] == large_event["id"]
    assert large_event["event_name"] == "upload.completed"
    assert large_event["fanned_out_at"] is not None
    small_event = await event_details.get_event(stack.pool, payloads[small["upload_id"]]["id"])  # type: ignore[arg-type]
    assert small_event is not None and small_event.deliveries == []


async def test_per_webhook_schedule_and_timeout_and_the_delivery_failed_event(
    stack: Stack,
) -> None:
    slow = await Receiver([Reply(200, delay=2.5)]).start()
    ops = await Receiver().start()
    try:
        webhook = await stack.register(slow.url, user_id=21)
        await stack.pool.execute(
            "UPDATE webhook_registrations SET retry_schedule = '{1}', timeout_seconds = 1"
            " WHERE id = $1",
            uuid.UUID(webhook["id"]),
        )
        ops_secret = new_secret()
        await insert_webhooks(
            stack.pool, 1, 21, system_events.DELIVERY_FAILED_TYPE_ID, ops.url, ops_secret
        )
        upload = await stack.upload(webhook["id"])
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        done = await stack.wait_for_status(delivery["id"], "failed", timeout=30)
        (announcement,) = await ops.wait_for(1)
        await asyncio.sleep(2.0)  # no third attempt (the service's schedule has three)
        attempts = await stack.pool.fetch(
            "SELECT error FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
            delivery["id"],
        )
    finally:
        await slow.stop()
        await ops.stop()
    assert done["attempt_count"] == 2
    assert [a["error"] for a in attempts] == ["timeout after 1 s"] * 2
    body = Webhook(ops_secret).verify(announcement.body, announcement.headers)
    assert body["type"] == "delivery.failed"
    assert body["data"] == {
        "delivery_id": str(delivery["id"]),
        "webhook_id": webhook["id"],
        "event_type": "upload.completed",
        "attempts": 2,
        "last_error": "timeout after 1 s",
    }


async def test_a_410_announces_webhook_disabled_to_that_users_webhook_only(stack: Stack) -> None:
    user = fresh_user_id()
    gone = await Receiver([Reply(410)]).start()
    ops = await Receiver().start()
    try:
        webhook = await stack.register(gone.url, user_id=user)
        secret = new_secret()
        await insert_webhooks(
            stack.pool, 1, user, system_events.WEBHOOK_DISABLED_TYPE_ID, f"{ops.url}/mine", secret
        )
        await insert_webhooks(
            stack.pool,
            1,
            user + 1,
            system_events.WEBHOOK_DISABLED_TYPE_ID,
            f"{ops.url}/theirs",
            secret,
        )
        await stack.upload(webhook["id"])
        (announcement,) = await ops.wait_for(1)
        await asyncio.sleep(1.0)
    finally:
        await gone.stop()
        await ops.stop()
    assert len(ops.received) == 1 and announcement.path.endswith("/mine")
    body = Webhook(secret).verify(announcement.body, announcement.headers)
    assert body["type"] == "webhook.disabled"
    data = body["data"]
    assert data["webhook_id"] == webhook["id"] and data["url"] == gone.url
    assert data["reason"] == "endpoint answered 410 Gone"
    assert data["disabled_at"].endswith("Z") and "T" in data["disabled_at"]
    types = [e["event_name"] for e in await event_rows(stack, user)]
    assert sorted(types) == ["delivery.failed", "upload.completed", "webhook.disabled"]


async def test_failing_operational_webhooks_cause_no_further_events(stack: Stack) -> None:
    user = fresh_user_id()
    gone = await Receiver([Reply(410)]).start()
    try:
        webhook = await stack.register(gone.url, user_id=user)
        disabled_hook = await insert_webhooks(
            stack.pool, 1, user, system_events.WEBHOOK_DISABLED_TYPE_ID, gone.url, new_secret()
        )
        failed_hook = await insert_webhooks(
            stack.pool,
            1,
            user,
            system_events.DELIVERY_FAILED_TYPE_ID,
            gone.url,
            new_secret(),
            retry_schedule=[],
        )
        await stack.upload(webhook["id"])
        # The upload's delivery, then one delivery of each announcement: all answered 410.
        await gone.wait_for(3)

        async def operational_deliveries_done() -> bool:
            statuses = await stack.pool.fetch(
                "SELECT status FROM deliveries WHERE webhook_id = ANY($1)",
                disabled_hook + failed_hook,
            )
            return len(statuses) == 2 and all(s["status"] == "failed" for s in statuses)

        await wait_until(operational_deliveries_done)
        await asyncio.sleep(1.5)
    finally:
        await gone.stop()
    assert len(gone.received) == 3
    types = collections.Counter(e["event_name"] for e in await event_rows(stack, user))
    assert types == {"upload.completed": 1, "webhook.disabled": 1, "delivery.failed": 1}
    # The operational webhooks that answered 410 are disabled, silently.
    disabled = await stack.pool.fetch(
        "SELECT disabled FROM webhook_registrations WHERE id = ANY($1)",
        disabled_hook + failed_hook,
    )
    assert [row["disabled"] for row in disabled] == [True, True]


@pytest.mark.parametrize("stack_options", [StackOptions(with_dispatcher=False)])
async def test_idempotency_key_replays_or_conflicts_per_user(stack: Stack) -> None:
    type_id, name = await create_event_type(stack.pool)

    async def accept(user_id: int, payload: dict[str, int]) -> object:
        async with stack.pool.acquire() as conn:
            return await events.accept(conn, new_event(type_id, name, user_id, payload, "k-1"))

    first = await accept(51, {"a": 1})
    again = await accept(51, {"a": 1})
    different = await accept(51, {"a": 2})
    other_user = await accept(52, {"a": 1})
    assert isinstance(first, events.AcceptedEvent) and not first.replayed
    assert first.outbox_id is not None
    assert isinstance(again, events.AcceptedEvent) and again.replayed
    assert (again.id, again.created_at, again.outbox_id) == (first.id, first.created_at, None)
    assert isinstance(different, events.IdempotencyConflict)
    assert different.event_id == first.id and "k-1" in different.message
    assert isinstance(other_user, events.AcceptedEvent) and other_user.id != first.id
    count = "SELECT count(*) FROM events WHERE idempotency_key = 'k-1'"
    assert await stack.pool.fetchval(count) == 2
    fanouts = await stack.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE payload->>'event_id' = ANY($1)",
        [str(first.id), str(other_user.id)],
    )
    assert fanouts == 2


@pytest.mark.parametrize("stack_options", [StackOptions(with_dispatcher=False)])
async def test_retention_prunes_old_events_without_pending_deliveries(
    stack: Stack, tmp_path: Path
) -> None:
    user = fresh_user_id()
    webhook = await stack.register("http://127.0.0.1:9/unused", user_id=user)
    done = await stack.upload(webhook["id"])
    pending = await stack.upload(webhook["id"])
    await stack.pool.execute(
        "UPDATE deliveries SET status = 'succeeded' WHERE upload_id = $1",
        uuid.UUID(done["upload_id"]),
    )
    old = timedelta(days=40)
    await stack.pool.execute(
        "UPDATE events SET created_at = created_at - $2::interval WHERE user_id = $1", user, old
    )
    await stack.pool.execute(
        "UPDATE deliveries SET created_at = created_at - $2::interval,"
        " updated_at = updated_at - $2::interval WHERE webhook_id = $1",
        uuid.UUID(webhook["id"]),
        old,
    )
    result = await retention.prune(stack.pool, tmp_path, 30)
    left = [e["payload"]["upload_id"] for e in await event_rows(stack, user)]  # type: ignore[index]
    assert result.events >= 1
    assert left == [pending["upload_id"]]
