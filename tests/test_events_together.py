"""Events that arrive together: accepted with their small fan-outs in one statement, each
event keeping its own outcome, webhooks, filters and trace (docs/events.md)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from harness.events import (
    create_event_type,
    fresh_user_id,
    insert_webhooks,
    new_event,
    new_secret,
)
from harness.stack import Stack
from services.common import event_details, events
from services.common.broker import Broker
from services.upload.fanout.inline import AcceptedHere
from services.upload.fanout.worker import INLINE_WEBHOOKS, FanoutWorker
from services.upload.ingest.events import accept_together
from services.upload.relay.outbox_cleanup import OutboxCleanup

DEAD_URL = "http://127.0.0.1:9/x"


def traced(event: events.NewEvent) -> events.NewEvent:
    """The event with a trace context of its own, to find on its outbox rows."""
    carrier = {"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"}
    return replace(event, trace_context=carrier)


async def webhooks(stack: Stack, user_id: int, type_id: uuid.UUID, **columns: Any) -> uuid.UUID:
    (webhook_id,) = await insert_webhooks(
        stack.pool, 1, user_id, type_id, DEAD_URL, new_secret(), **columns
    )
    return webhook_id


async def outbox_traces(stack: Stack, outbox_ids: list[int]) -> dict[int, Any]:
    """The trace context on each of these outbox rows."""
    rows = await stack.pool.fetch(
        "SELECT id, trace_context FROM outbox WHERE id = ANY($1::bigint[])", outbox_ids
    )
    return {row["id"]: row["trace_context"] for row in rows}


async def test_events_accepted_together_are_each_fanned_out_as_if_alone(
    stack: Stack, broker: Broker
) -> None:
    (first_type, first_name), (other_type, other_name) = (
        await create_event_type(stack.pool),
        await create_event_type(stack.pool),
    )
    user, other_user, lonely_user = fresh_user_id(), fresh_user_id(), fresh_user_id()
    now = datetime.now(UTC)
    before = now - timedelta(seconds=20)
    plain = await webhooks(stack, user, first_type, created_at=before)
    matching = await webhooks(
        stack, user, first_type, filter={"amount": {"$gt": 100}}, created_at=before
    )
    disabled = await webhooks(stack, user, first_type, disabled=True, created_at=before)
    # Registered between the acceptance of the two events of (user, first type).
    newer = await webhooks(stack, user, first_type, created_at=now - timedelta(seconds=5))
    others = await webhooks(stack, other_user, first_type)
    await insert_webhooks(stack.pool, INLINE_WEBHOOKS + 1, user, other_type, DEAD_URL, new_secret())
    early = new_event(first_type, first_name, user, {"amount": 150})
    batch = [
        traced(replace(early, created_at=now - timedelta(seconds=10))),
        traced(new_event(first_type, first_name, user, {"amount": 5})),
        traced(new_event(first_type, first_name, other_user, {"amount": 1})),
        traced(new_event(other_type, other_name, user, {"amount": 1})),
        traced(new_event(first_type, first_name, lonely_user, {"amount": 1})),
    ]

    worker = FanoutWorker(stack.pool, broker, OutboxCleanup(stack.pool), 5.0)
    outcomes = await accept_together(worker, batch)
    assert all(isinstance(one, AcceptedHere) for one in outcomes), outcomes
    accepted = [one for one in outcomes if isinstance(one, AcceptedHere)]
    # Only the event with more webhooks than INLINE_WEBHOOKS has a fan-out message (in its
    # own trace), for the worker; the others were born fanned out, by the same statement.
    fanouts = {
        one.event.outbox_id: event.trace_context
        for one, event in zip(accepted, batch, strict=True)
        if one.event.outbox_id is not None
    }
    assert list(fanouts.values()) == [batch[3].trace_context]
    assert await outbox_traces(stack, list(fanouts)) == fanouts
    announced = [one.announced for one in accepted]

    expected = [
        {plain: "pending", matching: "pending", disabled: "not_attempted"},
        {plain: "pending", disabled: "not_attempted", newer: "pending"},
        {others: "pending"},
        None,  # more than INLINE_WEBHOOKS: the worker's
        {},
    ]
    announced_ids: set[uuid.UUID] = set()
    for event, made, wanted in zip(batch, announced, expected, strict=True):
        stored = await event_details.get_event(stack.pool, event.id)
        assert stored is not None
        if wanted is None:
            assert made is None and stored.fanned_out_at is None
            continue
        assert made is not None and stored.fanned_out_at is not None
        by_webhook = {uuid.UUID(d["webhook_id"]): d["status"] for d in stored.deliveries}
        assert by_webhook == wanted
        # Only the pending deliveries are announced (in messages the batch's events
        # share), each entry in its own event's trace.
        pending = {uuid.UUID(d["id"]) for d in stored.deliveries if d["status"] == "pending"}
        entries = {e.delivery_id: e for _, message in made for e in message.events}
        assert pending <= entries.keys()
        assert {entries[d].trace_context == event.trace_context for d in pending} <= {True}
        assert {entries[d].type for d in pending} <= {event.event_type}
        announced_ids |= pending
    # Every announced entry is a pending delivery of one of the events: nothing else.
    assert {e.delivery_id for m in announced if m for _, b in m for e in b.events} == announced_ids


async def test_a_row_the_database_refuses_fails_only_its_own_event(
    stack: Stack, broker: Broker
) -> None:
    type_id, name = await create_event_type(stack.pool)
    user = fresh_user_id()
    good = [new_event(type_id, name, user, {"n": n}) for n in range(3)]
    refused = new_event(type_id, name, 0, {"n": 9})  # user_id must be positive
    worker = FanoutWorker(stack.pool, broker, OutboxCleanup(stack.pool), 5.0)

    outcomes = await accept_together(worker, [good[0], refused, good[1], good[2]])

    assert isinstance(outcomes[1], Exception)
    accepted = [outcomes[0], *outcomes[2:]]
    assert [one.event.id for one in accepted if isinstance(one, AcceptedHere)] == [
        event.id for event in good
    ]
    stored = await stack.pool.fetch("SELECT id FROM events WHERE user_id = $1", user)
    assert {row["id"] for row in stored} == {event.id for event in good}


async def publish(stack: Stack, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else None
    async with stack.http.post(f"{stack.gateway_url}/event", json=body, headers=headers) as resp:
        answer: dict[str, Any] = await resp.json()
        assert resp.status == 202, answer
        # The answer comes only once the event is durable and its small fan-out done.
        event_id = uuid.UUID(answer["data"]["event_id"])
        row = await stack.pool.fetchrow(
            "SELECT fanned_out_at, (SELECT count(*) FROM deliveries d WHERE d.event_id = e.id)"
            " AS made FROM events e WHERE e.id = $1",
            event_id,
        )
        assert row is not None
        return {"event_id": event_id, **dict(row)}


async def test_concurrent_events_each_have_their_deliveries_when_answered(stack: Stack) -> None:
    (few_type, few_name), (many_type, many_name) = (
        await create_event_type(stack.pool),
        await create_event_type(stack.pool),
    )
    users = [fresh_user_id() for _ in range(3)]
    for count, user in enumerate(users, start=1):
        await insert_webhooks(stack.pool, count, user, few_type, DEAD_URL, new_secret())
    await insert_webhooks(
        stack.pool, INLINE_WEBHOOKS + 1, users[0], many_type, DEAD_URL, new_secret()
    )
    bodies = [
        {"event_type": few_name, "user_id": users[n % 3], "payload": {"n": n}} for n in range(60)
    ]
    many = {"event_type": many_name, "user_id": users[0], "payload": {}}

    answers = await asyncio.gather(
        *(publish(stack, body) for body in bodies),
        *(publish(stack, body, key=uuid.uuid4().hex) for body in bodies[:6]),
        publish(stack, many),
    )

    for body, answer in zip(bodies + bodies[:6], answers[:-1], strict=True):
        assert answer["fanned_out_at"] is not None
        assert answer["made"] == users.index(body["user_id"]) + 1
    many_id = answers[-1]["event_id"]
    for _ in range(200):
        made = await stack.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE event_id = $1", many_id
        )
        if made == INLINE_WEBHOOKS + 1:
            break
        await asyncio.sleep(0.05)
    assert made == INLINE_WEBHOOKS + 1


async def test_the_request_and_the_worker_fanning_out_at_once_make_each_delivery_once(
    stack: Stack, broker: Broker
) -> None:
    type_id, name = await create_event_type(stack.pool)
    user = fresh_user_id()
    hooks = await insert_webhooks(stack.pool, 3, user, type_id, DEAD_URL, new_secret())
    event = new_event(type_id, name, user, {"n": 1})
    # Accepted alone, as with an Idempotency-Key: fanned out after, by the request.
    async with stack.pool.acquire() as conn:
        accepted = await events.accept(conn, event)
    assert isinstance(accepted, events.AcceptedEvent) and accepted.outbox_id is not None
    worker = FanoutWorker(stack.pool, broker, OutboxCleanup(stack.pool), 5.0)

    # As when the relay publishes the fan-out message while the request fans out.
    await asyncio.gather(worker.fan_out(event.id), worker.fan_out_small([event]))

    rows = await stack.pool.fetch("SELECT webhook_id FROM deliveries WHERE event_id = $1", event.id)
    assert sorted(row["webhook_id"] for row in rows) == sorted(hooks)
