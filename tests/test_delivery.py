"""Delivery: the signed request, retries on the schedule, Retry-After, redirects, timeouts, SSRF."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import timedelta

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from harness.receiver import Receiver, Reply
from harness.stack import Stack, StackOptions, dead_letters
from services.common import deliveries, delivery_records
from services.common.broker import Broker
from services.common.messages import DeliveryMessage


async def attempts_of(stack: Stack, delivery_id: uuid.UUID) -> list[dict[str, object]]:
    rows = await stack.pool.fetch(
        "SELECT * FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt", delivery_id
    )
    return [dict(row) for row in rows]


async def wait_for_attempts(
    stack: Stack, delivery_id: uuid.UUID, count: int = 1, timeout: float = 10.0
) -> list[dict[str, object]]:
    """The delivery's attempts once `count` are recorded (a reply is recorded just after)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while len(attempts := await attempts_of(stack, delivery_id)) < count:
        assert asyncio.get_running_loop().time() < deadline, attempts
        await asyncio.sleep(0.05)
    return attempts


async def error_log_of(stack: Stack, delivery_id: uuid.UUID) -> list[dict[str, object]]:
    rows = await stack.pool.fetch(
        "SELECT * FROM error_log WHERE delivery_id = $1 ORDER BY retry_count", delivery_id
    )
    return [dict(row) for row in rows]


async def test_delivery_is_signed_and_carries_the_event(stack: Stack, receiver: Receiver) -> None:
    webhook = await stack.register(
        receiver.url,
        custom_headers={"X-Tenant": "acme", "Authorization": "Bearer t0ken"},
        custom_payload={"key1": "value1", "nested": {"a": [1, 2]}},
    )
    upload = await stack.upload(webhook["id"], b"some bytes", "report.csv")
    (request,) = await receiver.wait_for(1)

    event = Webhook(webhook["secret"]).verify(request.body, request.headers)
    assert event["type"] == "upload.completed"
    assert event["key1"] == "value1" and event["nested"] == {"a": [1, 2]}
    assert event["data"] == {
        **upload,
        "uploaded_at": event["data"]["uploaded_at"],
    }
    assert event["timestamp"] == event["data"]["uploaded_at"]
    assert event["timestamp"].endswith("Z")
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["x-tenant"] == "acme"
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("webhooks-dispatcher/")
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["webhook-timestamp"].isdigit()

    delivery = await stack.delivery_for_upload(upload["upload_id"])
    assert headers["webhook-id"] == str(delivery["id"])
    done = await stack.wait_for_status(delivery["id"], "succeeded")
    assert done["attempt_count"] == 1
    (attempt,) = await attempts_of(stack, delivery["id"])
    assert attempt["status_code"] == 200 and attempt["error"] is None
    assert await error_log_of(stack, delivery["id"]) == []


async def test_two_failures_then_success(stack: Stack) -> None:
    receiver = await Receiver([Reply(500), Reply(500), Reply(200)]).start()
    try:
        webhook = await stack.register(receiver.url)
        upload = await stack.upload(webhook["id"])
        requests = await receiver.wait_for(3, timeout=20)
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        done = await stack.wait_for_status(delivery["id"], "succeeded")
    finally:
        await receiver.stop()

    assert {request.headers["webhook-id"] for request in requests} == {str(delivery["id"])}
    for request in requests:
        Webhook(webhook["secret"]).verify(request.body, request.headers)
    # The event's time stays; the signing time is per attempt.
    bodies = [request.json() for request in requests]
    assert len({body["timestamp"] for body in bodies}) == 1
    assert done["attempt_count"] == 3
    attempts = await attempts_of(stack, delivery["id"])
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    errors = await error_log_of(stack, delivery["id"])
    assert [e["retry_count"] for e in errors] == [1, 2]
    assert all(e["error_message"] == "HTTP 500" for e in errors)
    assert all(e["next_retry_time"] is not None for e in errors)
    # Retries follow the 1 s schedule (±10 % jitter), not sooner.
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    assert all(gap >= 0.85 for gap in gaps), gaps


async def test_always_failing_gives_up_and_dead_letters(stack: Stack) -> None:
    receiver = await Receiver([Reply(500, body="nope " * 2000)]).start()
    try:
        webhook = await stack.register(receiver.url)
        upload = await stack.upload(webhook["id"])
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        done = await stack.wait_for_status(delivery["id"], "failed", timeout=30)
        await asyncio.sleep(1.5)  # nothing more may come after giving up
    finally:
        await receiver.stop()

    schedule = StackOptions().retry_schedule
    assert len(receiver.received) == 1 + len(schedule)
    assert done["attempt_count"] == 1 + len(schedule)
    assert done["next_retry_at"] is None
    attempts = await attempts_of(stack, delivery["id"])
    assert len(attempts) == 1 + len(schedule)
    assert all(len(str(a["response_body"])) <= 4096 for a in attempts)
    errors = await error_log_of(stack, delivery["id"])
    assert [e["retry_count"] for e in errors] == [1, 2, 3, 4]
    assert errors[-1]["next_retry_time"] is None
    assert all(e["next_retry_time"] is not None for e in errors[:-1])
    bodies = await dead_letters(stack.amqp_url)
    assert any(orjson.loads(body)["delivery_id"] == str(delivery["id"]) for body in bodies)


async def test_retry_after_is_honoured(stack: Stack) -> None:
    receiver = await Receiver([Reply(429, headers={"Retry-After": "2"}), Reply(200)]).start()
    try:
        webhook = await stack.register(receiver.url)
        await stack.upload(webhook["id"])
        first, second = await receiver.wait_for(2, timeout=15)
    finally:
        await receiver.stop()
    assert second.at - first.at >= 1.95


async def test_gone_stops_retries_and_disables_the_webhook(stack: Stack) -> None:
    receiver = await Receiver([Reply(410, headers={"Retry-After": "1"})]).start()
    try:
        webhook = await stack.register(receiver.url)
        upload = await stack.upload(webhook["id"])
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        await stack.wait_for_status(delivery["id"], "failed")
        await asyncio.sleep(1.5)
    finally:
        await receiver.stop()
    assert len(receiver.received) == 1
    disabled = await stack.pool.fetchrow(
        "SELECT disabled, disabled_reason FROM webhook_registrations WHERE id = $1",
        uuid.UUID(webhook["id"]),
    )
    assert disabled["disabled"] is True
    assert "410" in disabled["disabled_reason"]


async def test_redirect_is_not_followed(stack: Stack) -> None:
    target = await Receiver().start()
    redirecting = await Receiver([Reply(302, headers={"Location": target.url})]).start()
    try:
        webhook = await stack.register(redirecting.url)
        upload = await stack.upload(webhook["id"])
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        await redirecting.wait_for(1)
        (attempt,) = await wait_for_attempts(stack, delivery["id"])
    finally:
        await redirecting.stop()
        await target.stop()
    assert target.received == []
    assert attempt["status_code"] == 302
    assert attempt["error"] == "HTTP 302"
    row = await stack.pool.fetchrow("SELECT status FROM deliveries WHERE id = $1", delivery["id"])
    assert row["status"] == "pending"  # a failed attempt, retried later


@pytest.mark.parametrize(
    "stack_options", [StackOptions(delivery_timeout_seconds=1.0, retry_schedule=(30.0,))]
)
async def test_slow_receiver_is_a_timeout(stack: Stack) -> None:
    receiver = await Receiver([Reply(200, delay=3.0)]).start()
    try:
        webhook = await stack.register(receiver.url)
        upload = await stack.upload(webhook["id"])
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        await receiver.wait_for(1)
        (attempt,) = await wait_for_attempts(stack, delivery["id"])
    finally:
        await receiver.stop()
    assert attempt["error"] == "timeout after 1 s"
    assert attempt["status_code"] is None
    assert 900 <= int(attempt["duration_ms"]) < 2900


@pytest.mark.parametrize("stack_options", [StackOptions(dispatcher_allow_private=False)])
async def test_private_destination_refused_at_delivery(stack: Stack, receiver: Receiver) -> None:
    """Registration allowed it (as a name that resolved elsewhere might be); delivery refuses."""
    for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost")):
        webhook = await stack.register(url)
        upload = await stack.upload(webhook["id"])
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        (attempt,) = await wait_for_attempts(stack, delivery["id"])
        assert str(attempt["error"]).startswith("refused destination"), attempt
        assert "not a public address" in str(attempt["error"]) or "loopback" in str(
            attempt["error"]
        )
    assert receiver.received == []


async def test_duplicate_message_for_a_succeeded_delivery_is_not_sent(
    stack: Stack, receiver: Receiver
) -> None:
    webhook = await stack.register(receiver.url)
    upload = await stack.upload(webhook["id"])
    await receiver.wait_for(1)
    delivery = await stack.delivery_for_upload(upload["upload_id"])
    await stack.wait_for_status(delivery["id"], "succeeded")

    broker = Broker(stack.amqp_url)
    await broker.start()
    await broker.wait_ready(10)
    try:
        for _ in range(3):
            await broker.send_to_dispatch(DeliveryMessage(delivery["id"], 1))
        await asyncio.sleep(1.0)
    finally:
        await broker.close()
    assert len(receiver.received) == 1


async def test_concurrent_copies_send_once(stack: Stack) -> None:
    """Copies of one message handled at once (relay republish, broker redelivery): one send."""
    receiver = await Receiver([Reply(200, delay=0.5)]).start()
    try:
        webhook = await stack.register(receiver.url)
        upload = await stack.upload(webhook["id"])
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        broker = Broker(stack.amqp_url)
        await broker.start()
        await broker.wait_ready(10)
        try:
            await asyncio.gather(
                *(broker.send_to_dispatch(DeliveryMessage(delivery["id"], 1)) for _ in range(5))
            )
        finally:
            await broker.close()
        await stack.wait_for_status(delivery["id"], "succeeded")
        await asyncio.sleep(1.0)
    finally:
        await receiver.stop()
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    "stack_options",
    [StackOptions(retry_schedule=(1.0, 1.0, 1.0, 1.0, 1.0), disable_after_seconds=1.5)],
)
async def test_endpoint_failing_continuously_is_disabled(stack: Stack) -> None:
    receiver = await Receiver([Reply(500)]).start()
    try:
        webhook = await stack.register(receiver.url)
        upload = await stack.upload(webhook["id"])
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        done = await stack.wait_for_status(delivery["id"], "not_attempted", timeout=20)
        await asyncio.sleep(1.5)
    finally:
        await receiver.stop()
    row = await stack.pool.fetchrow(
        "SELECT disabled, disabled_reason, failing_since FROM webhook_registrations WHERE id = $1",
        uuid.UUID(webhook["id"]),
    )
    assert row["disabled"] is True
    assert "failed continuously" in row["disabled_reason"]
    # Failing since the first attempt; disabled once that is 1.5 s old (third attempt).
    assert len(receiver.received) == 3
    assert done["attempt_count"] == 3


async def test_success_clears_failing_since(stack: Stack) -> None:
    receiver = await Receiver([Reply(500), Reply(200)]).start()
    try:
        webhook = await stack.register(receiver.url)
        upload = await stack.upload(webhook["id"])
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        await receiver.wait_for(1)
        await asyncio.sleep(0.3)
        failing = await stack.pool.fetchval(
            "SELECT failing_since FROM webhook_registrations WHERE id = $1",
            uuid.UUID(webhook["id"]),
        )
        await stack.wait_for_status(delivery["id"], "succeeded")
    finally:
        await receiver.stop()
    assert failing is not None
    cleared = await stack.pool.fetchval(
        "SELECT failing_since FROM webhook_registrations WHERE id = $1", uuid.UUID(webhook["id"])
    )
    assert cleared is None


async def test_a_webhooks_own_max_concurrency_caps_it(stack: Stack) -> None:
    """max_concurrency set on the webhook replaces DISPATCH_PER_ENDPOINT_CONCURRENCY (32)."""
    slow = await Receiver([Reply(200, delay=0.5)]).start()
    try:
        hook = await stack.register(slow.url, max_concurrency=3)
        for _ in range(9):
            await stack.upload(hook["id"])
        await slow.wait_for(9, timeout=30)
    finally:
        await slow.stop()
    assert slow.max_in_flight == 3


@pytest.mark.parametrize("stack_options", [StackOptions(per_endpoint_concurrency=2)])
async def test_a_slow_endpoint_holds_only_its_share(stack: Stack) -> None:
    """A flooded slow endpoint gets at most its limit in flight; others are not held up."""
    slow = await Receiver([Reply(200, delay=1.0)]).start()
    fast = await Receiver().start()
    try:
        slow_hook = await stack.register(slow.url)
        fast_hook = await stack.register(fast.url)
        for _ in range(8):
            await stack.upload(slow_hook["id"])
        await slow.wait_for(2)
        for _ in range(5):
            await stack.upload(fast_hook["id"])
        await fast.wait_for(5, timeout=10)
        slow_seen_when_fast_done = len(slow.received)
        await slow.wait_for(8, timeout=30)
    finally:
        await slow.stop()
        await fast.stop()
    assert slow.max_in_flight == 2
    # The fast endpoint was served while the slow one still had work queued.
    assert slow_seen_when_fast_done < 8
    for _ in range(100):  # the last answers take their second to be recorded
        attempts = await stack.pool.fetch(
            "SELECT a.attempt FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
            " WHERE d.webhook_id = $1",
            uuid.UUID(slow_hook["id"]),
        )
        if len(attempts) >= 8:
            break
        await asyncio.sleep(0.05)
    # Parking while the endpoint is busy never spends an attempt.
    assert sorted(row["attempt"] for row in attempts) == [1] * 8


@pytest.mark.parametrize("stack_options", [StackOptions(with_dispatcher=False)])
async def test_batched_claims_and_records_treat_each_delivery_alone(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    ids = [
        (await stack.delivery_for_upload((await stack.upload(webhook["id"]))["upload_id"]))["id"]
        for _ in range(4)
    ]
    ready, held, stale, unknown = ids[0], ids[1], ids[2], uuid.uuid4()
    await stack.pool.execute(
        "UPDATE deliveries SET lease_until = now() + interval '1 minute' WHERE id = $1", held
    )
    # Made ten days ago (a redeliver of an old one): found beyond the recent days, which a
    # claim looks in first.
    await stack.pool.execute(
        "UPDATE deliveries SET created_at = now() - interval '10 days' WHERE id = $1", ready
    )
    claimed = await deliveries.claim_many(
        stack.pool,
        [
            delivery_records.ClaimRequest(ready, 1),
            delivery_records.ClaimRequest(held, 1),
            delivery_records.ClaimRequest(stale, 2),  # attempt 1 is still to come
            delivery_records.ClaimRequest(unknown, 1),
        ],
        lease_seconds=5.0,
    )
    assert claimed[0] is not None and claimed[0].id == ready and claimed[0].attempt == 1
    assert claimed[0].url == "http://127.0.0.1:9/unused"
    assert claimed[1:] == [None, None, None]

    created_at = {
        row["id"]: row["created_at"]
        for row in await stack.pool.fetch(
            "SELECT id, created_at FROM deliveries WHERE id = ANY($1::uuid[])", ids
        )
    }

    def record(delivery_id: uuid.UUID, error: str | None) -> delivery_records.AttemptRecord:
        return delivery_records.AttemptRecord(
            delivery_id=delivery_id,
            webhook_id=uuid.UUID(webhook["id"]),
            attempt=1,
            status="pending" if error else "succeeded",
            retry_in_seconds=30.0 if error else None,
            status_code=500 if error else 200,
            error=error,
            response_body="body",
            duration_ms=3,
            # An unknown delivery has none: any time finds nothing.
            delivery_created_at=created_at.get(delivery_id, created_at[ready]),
        )

    failing_since = "SELECT failing_since FROM webhook_registrations WHERE id = $1"
    # All of an endpoint's attempts in a batch failed: it is failing from now on.
    assert await deliveries.record_attempts(stack.pool, [record(ready, "HTTP 500")]) == [
        delivery_records.RecordedAttempt(True)
    ]
    assert await stack.pool.fetchval(failing_since, uuid.UUID(webhook["id"])) is not None
    # A success beside a failure: healthy again. A record for an attempt already
    # recorded (ready's first) changes nothing.
    outcome = await deliveries.record_attempts(
        stack.pool, [record(held, None), record(stale, "HTTP 500"), record(ready, None)]
    )
    assert [r.recorded for r in outcome] == [True, True, False]
    assert [r.failure_event for r in outcome] == [None, None, None]
    assert await stack.pool.fetchval(failing_since, uuid.UUID(webhook["id"])) is None
    states = {
        row["id"]: (row["status"], row["attempt_count"], row["lease_until"])
        for row in await stack.pool.fetch(
            "SELECT id, status, attempt_count, lease_until FROM deliveries WHERE id = ANY($1)",
            ids,
        )
    }
    assert states[ready] == ("pending", 1, None)
    assert states[held] == ("succeeded", 1, None)
    assert states[stale] == ("pending", 1, None)
    assert states[ids[3]] == ("pending", 0, None)
    assert [a["error"] for a in await attempts_of(stack, ready)] == ["HTTP 500"]
    assert [e["error_message"] for e in await error_log_of(stack, stale)] == ["HTTP 500"]
    assert await error_log_of(stack, held) == []


@pytest.mark.parametrize("stack_options", [StackOptions(with_dispatcher=False)])
async def test_a_claim_that_names_the_day_looks_there_and_a_wrong_day_costs_no_delivery(
    stack: Stack,
) -> None:
    """A message's created_at (DeliveryMessage.created_at) names the delivery's partition;
    one naming another time, or none, is still claimed, by its id as before."""
    webhook = await stack.register("http://127.0.0.1:9/unused")
    ids = [
        (await stack.delivery_for_upload((await stack.upload(webhook["id"]))["upload_id"]))["id"]
        for _ in range(3)
    ]
    rows = await stack.pool.fetch(
        "SELECT id, created_at FROM deliveries WHERE id = ANY($1::uuid[])", ids
    )
    created_at = {row["id"]: row["created_at"] for row in rows}
    right, wrong, undated = ids
    claimed = await deliveries.claim_many(
        stack.pool,
        [
            delivery_records.ClaimRequest(right, 1, created_at[right]),
            delivery_records.ClaimRequest(wrong, 1, created_at[wrong] - timedelta(days=3)),
            delivery_records.ClaimRequest(undated, 1),
        ],
        lease_seconds=5.0,
    )
    assert [c.id if c else None for c in claimed] == [right, wrong, undated]
    assert [c.created_at if c else None for c in claimed] == [created_at[i] for i in ids]
    # Each is leased now: a second claim of any, by its day or not, takes none.
    again = await deliveries.claim_many(
        stack.pool,
        [delivery_records.ClaimRequest(i, 1, created_at[i]) for i in ids],
        lease_seconds=5.0,
    )
    assert again == [None, None, None]


# Shapes our publishers do not write, which the queues and the outbox of an upgraded install
# may still hold for a long time (messages/DeliveryEvent, DeliveryMessage.webhook_id).


@pytest.mark.parametrize("stack_options", [StackOptions(retry_schedule=(3600.0,))])
async def test_a_retry_message_without_the_webhook_id_is_delivered(
    stack: Stack, broker: Broker
) -> None:
    receiver = await Receiver([Reply(500), Reply(200)]).start()
    try:
        webhook = await stack.register(receiver.url)
        upload = await stack.upload(webhook["id"])
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        await wait_for_attempts(stack, delivery["id"], 1)  # its own retry waits an hour
        retry = DeliveryMessage(delivery["id"], 2)
        assert orjson.loads(retry.encode().body) == {
            "delivery_id": str(delivery["id"]),
            "attempt": 2,
        }
        await broker.send_to_dispatch(retry)
        done = await stack.wait_for_status(delivery["id"], "succeeded")
    finally:
        await receiver.stop()
    assert done["attempt_count"] == 2
    assert [a["status_code"] for a in await attempts_of(stack, delivery["id"])] == [500, 200]


async def test_an_outbox_row_of_one_delivery_alone_is_relayed_and_delivered(
    stack: Stack, receiver: Receiver
) -> None:
    webhook = await stack.register(receiver.url)
    delivery_id, webhook_id = uuid.uuid4(), uuid.UUID(webhook["id"])
    async with stack.pool.acquire() as conn, conn.transaction():
        # The delivery and its event's outbox row, as an upload recorded them together.
        await conn.execute(
            """
            INSERT INTO deliveries (id, webhook_id, event_type, event_time, event_data, status,
                                    next_retry_at, request_id, created_at)
            VALUES ($1, $2, 'upload.completed', now(), $3, 'pending', now(), 'req-row', now())
            """,
            delivery_id,
            webhook_id,
            {"filename": "row.txt"},
        )
        await conn.execute(
            """
            INSERT INTO outbox (routing_key, payload, request_id, created_at)
            VALUES ('upload.completed', $1, 'req-row', now() - interval '1 minute')
            """,
            {
                "type": "upload.completed",
                "delivery_id": str(delivery_id),
                "webhook_id": str(webhook_id),
            },
        )
    requests = await receiver.wait_for(1, timeout=20)
    await stack.wait_for_status(delivery_id, "succeeded")
    assert requests[0].headers["webhook-id"] == str(delivery_id)
    assert requests[0].json()["data"] == {"filename": "row.txt"}
    assert await stack.pool.fetchval("SELECT count(*) FROM outbox") == 0
