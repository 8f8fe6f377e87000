"""Endpoints (SPEC §14) through the gateway: a webhook of several event types, the user's events
log (GET /event), and a test event to one webhook, with real receivers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from harness.events import create_event_type, fresh_user_id
from harness.receiver import Receiver
from harness.stack import UPLOAD_EVENT_TYPE_ID, Stack, StackOptions
from tests.test_events_api import call, create_type, publish
from tests.test_security import create_key

# What a receiver may still get after the test is over, to tell "nothing came" from "late".
QUIET_SECONDS = 2.0


async def register_types(
    stack: Stack, url: str, type_ids: list[str], user_id: int, **fields: Any
) -> dict[str, Any]:
    body = {"event_type_ids": type_ids, "user_id": user_id, "url": url, **fields}
    status, answer, _ = await call(stack, "POST", "/webhook/register", body)
    assert status == 200, answer
    return answer["data"]  # type: ignore[no-any-return]


async def refused(stack: Stack, method: str, path: str, body: Any, status: int) -> str:
    got, answer, _ = await call(stack, method, path, body)
    assert got == status and answer["error"] is True, answer
    return str(answer["message"])


# --- several event types per webhook ---------------------------------------------------------


async def test_one_endpoint_gets_the_events_of_each_of_its_types_signed_with_one_secret(
    stack: Stack, receiver: Receiver
) -> None:
    first, second, third = [await create_type(stack) for _ in range(3)]
    user = fresh_user_id()
    hook = await register_types(stack, receiver.url, [second["id"], first["id"]], user)
    assert hook["event_type_ids"] == [second["id"], first["id"]]
    assert hook["event_type_id"] == second["id"]  # the first, for the original clients
    status, got, _ = await call(stack, "GET", f"/webhook/{hook['id']}")
    assert status == 200 and got["data"]["event_type_ids"] == [second["id"], first["id"]]

    for event_type, n in ((first, 1), (second, 2), (third, 3)):
        body = {"event_type": event_type["name"], "user_id": user, "payload": {"n": n}}
        assert (await publish(stack, body))[0] == 202
    received = await receiver.wait_for(2)
    verified = [Webhook(hook["secret"]).verify(r.body, r.headers) for r in received]
    assert sorted((body["data"]["n"], body["type"]) for body in verified) == [
        (1, first["name"]),
        (2, second["name"]),
    ]

    # PATCH replaces the list whole: the dropped type's events no longer arrive.
    status, patched, _ = await call(
        stack, "PATCH", f"/webhook/{hook['id']}", {"event_type_ids": [third["id"]]}
    )
    assert status == 200, patched
    assert patched["data"]["event_type_ids"] == [third["id"]]
    assert patched["data"]["event_type_id"] == third["id"]
    for event_type, n in ((first, 4), (third, 5)):
        body = {"event_type": event_type["name"], "user_id": user, "payload": {"n": n}}
        assert (await publish(stack, body))[0] == 202
    (late,) = (await receiver.wait_for(3))[2:]
    assert Webhook(hook["secret"]).verify(late.body, late.headers)["data"] == {"n": 5}
    await asyncio.sleep(QUIET_SECONDS)
    assert len(receiver.received) == 3


async def test_a_single_event_type_id_is_a_list_of_one(stack: Stack) -> None:
    event_type = await create_type(stack)
    body = {"event_type_id": event_type["id"], "user_id": 1, "url": "https://example.com/one"}
    status, answer, _ = await call(stack, "POST", "/webhook/register", body)
    assert status == 200 and answer["data"]["event_type_ids"] == [event_type["id"]]


async def test_event_type_lists_are_checked(stack: Stack) -> None:
    known, archived = await create_type(stack), await create_type(stack)
    status, _, _ = await call(stack, "PATCH", f"/event_type/{archived['id']}", {"archived": True})
    assert status == 200
    unknown = str(uuid.uuid4())
    base = {"user_id": 1, "url": "https://example.com/types"}

    async def refused_registration(status: int, **fields: Any) -> str:
        return await refused(stack, "POST", "/webhook/register", {**base, **fields}, status)

    both = await refused_registration(400, event_type_id=known["id"], event_type_ids=[known["id"]])
    assert "event_type_id" in both and "event_type_ids" in both and "not both" in both
    message = await refused_registration(400, event_type_ids=[known["id"], unknown])
    assert message == f"event_type_ids[1]: event type {unknown} does not exist"
    message = await refused_registration(409, event_type_ids=[known["id"], archived["id"]])
    assert archived["name"] in message and "archived" in message
    message = await refused_registration(400, event_type_ids=[known["id"], known["id"]])
    assert message.startswith("event_type_ids[1]") and "twice" in message
    assert "event_type_ids" in await refused_registration(400, event_type_ids=[])
    many = [str(uuid.uuid4()) for _ in range(101)]
    assert "event_type_ids" in await refused_registration(400, event_type_ids=many)
    # The original design's single id keeps its answer for an unknown type.
    assert "event_type_id" in await refused_registration(404, event_type_id=unknown)

    hook = (await call(stack, "POST", "/webhook/register", {**base, "event_type_id": known["id"]}))[
        1
    ]
    path = f"/webhook/{hook['data']['id']}"
    message = await refused(stack, "PATCH", path, {"event_type_ids": [unknown]}, 400)
    assert message == f"event_type_ids[0]: event type {unknown} does not exist"
    await refused(stack, "PATCH", path, {"event_type_ids": [archived["id"]]}, 409)
    await refused(stack, "PATCH", path, {"event_type_ids": []}, 400)
    status, got, _ = await call(stack, "GET", path)
    assert got["data"]["event_type_ids"] == [known["id"]]  # nothing changed

    # A type archived after the webhook subscribed to it may stay in its list.
    status, _, _ = await call(stack, "PATCH", f"/event_type/{known['id']}", {"archived": True})
    assert status == 200
    other = await create_type(stack)
    status, answer, _ = await call(
        stack, "PATCH", path, {"event_type_ids": [other["id"], known["id"]]}
    )
    assert status == 200 and answer["data"]["event_type_ids"] == [other["id"], known["id"]]


async def test_webhooks_are_listed_by_event_type(stack: Stack) -> None:
    first, second = await create_type(stack), await create_type(stack)
    user = fresh_user_id()
    url = "https://example.com/listed"
    both = await register_types(stack, url, [first["id"], second["id"]], user)
    only_second = await register_types(stack, url, [second["id"]], user)
    await register_types(stack, url, [first["id"]], fresh_user_id())  # another user's

    async def listed(type_id: str) -> list[str]:
        status, answer, _ = await call(
            stack, "GET", f"/webhook?user_id={user}&event_type_id={type_id}"
        )
        assert status == 200, answer
        return [webhook["id"] for webhook in answer["data"]]

    assert await listed(first["id"]) == [both["id"]]
    assert await listed(second["id"]) == [only_second["id"], both["id"]]  # newest first
    assert await listed(str(uuid.uuid4())) == []
    status, answer, _ = await call(stack, "GET", f"/webhook?user_id={user}&event_type_id=x")
    assert status == 400 and "event_type_id" in answer["message"]


# --- the events log ---------------------------------------------------------------------------


async def settled(stack: Stack, event_ids: list[str], timeout: float = 15.0) -> None:
    """Until none of these events' deliveries is pending."""
    ids = [uuid.UUID(event_id) for event_id in event_ids]
    for _ in range(int(timeout / 0.05)):
        pending = await stack.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE event_id = ANY($1) AND status = 'pending'", ids
        )
        if pending == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{pending} deliveries still pending")


async def listed_events(stack: Stack, query: str, headers: dict[str, str] | None = None) -> Any:
    status, answer, _ = await call(stack, "GET", f"/event?{query}", None, headers)
    assert status == 200, answer
    return answer


async def test_events_are_listed_newest_first_with_their_deliveries_counted(
    stack: Stack, receiver: Receiver
) -> None:
    chosen, other = await create_type(stack), await create_type(stack)
    user = fresh_user_id()
    await register_types(stack, receiver.url, [chosen["id"]], user)
    await register_types(stack, receiver.url, [chosen["id"]], user, filter={"n": {"$lt": 0}})
    off = await register_types(stack, receiver.url, [chosen["id"]], user)
    status, _, _ = await call(stack, "PATCH", f"/webhook/{off['id']}", {"disabled": True})
    assert status == 200
    published = []
    for n in range(5):
        event_type = other if n == 2 else chosen
        body = {"event_type": event_type["name"], "user_id": user, "payload": {"n": n}}
        status, answer, _ = await publish(stack, body)
        assert status == 202, answer
        published.append(answer["data"]["event_id"])
    await publish(stack, {"event_type": chosen["name"], "user_id": fresh_user_id(), "payload": {}})
    await receiver.wait_for(4)
    await settled(stack, published)
    # An hour apart, so that since and until are exact. An event's deliveries carry its
    # time (their partition key, docs/partitions.md), and their attempts the deliveries'.
    for hour, event_id in enumerate(published):
        moved = datetime(2026, 1, 1, 10 + hour, tzinfo=UTC)
        async with stack.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE delivery_attempts a SET delivery_created_at = $2 FROM deliveries d"
                " WHERE d.event_id = $1 AND a.delivery_id = d.id",
                uuid.UUID(event_id),
                moved,
            )
            for table, key in (("deliveries", "event_id"), ("events", "id")):
                await conn.execute(
                    f"UPDATE {table} SET created_at = $2 WHERE {key} = $1",
                    uuid.UUID(event_id),
                    moved,
                )

    answer = await listed_events(stack, f"user_id={user}")
    assert [event["id"] for event in answer["data"]] == published[::-1]
    assert answer["next_cursor"] is None
    newest = answer["data"][0]
    assert newest == {
        "id": published[4],
        "event_type": chosen["name"],
        "user_id": user,
        "created_at": "2026-01-01 14:00:00",
        "test": False,
        "deliveries": {
            "pending": 0,
            "succeeded": 1,
            "failed": 0,
            "not_attempted": 1,
            "cancelled": 0,
        },
    }
    assert answer["data"][2]["deliveries"] == dict.fromkeys(newest["deliveries"], 0)

    by_type = await listed_events(stack, f"user_id={user}&event_type={other['name']}")
    assert [event["id"] for event in by_type["data"]] == [published[2]]
    window = await listed_events(
        stack, f"user_id={user}&since=2026-01-01 11:00:00&until=2026-01-01 13:00:00"
    )
    assert [event["id"] for event in window["data"]] == [published[2], published[1]]
    pages, cursor = [], ""
    while True:
        page = await listed_events(stack, f"user_id={user}&limit=2{cursor}")
        pages.append([event["id"] for event in page["data"]])
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert pages == [published[:2:-1], published[2:0:-1], published[:1]]

    for query, name in (
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-13-01 00:00:00", "until"),
        ("cursor=w1_00", "cursor"),
    ):
        status, refusal, _ = await call(stack, "GET", f"/event?user_id={user}&{query}")
        assert status == 400 and name in refusal["message"], (query, refusal)
    default = await listed_events(stack, f"user_id={user}")
    assert len(default["data"]) == 5  # at most 20 a page by default


@pytest.mark.parametrize("stack_options", [StackOptions(auth_mode="api_key")])
async def test_a_user_key_lists_its_own_users_events_only(stack: Stack) -> None:
    _, type_name = await create_event_type(stack.pool)
    users = fresh_user_id(), fresh_user_id()
    keys = {
        user: {"Authorization": f"Bearer {create_key(stack.database_url, user)}"} for user in users
    }
    for user in users:
        body = {"event_type": type_name, "payload": {}}
        status, answer, _ = await call(stack, "POST", "/event", body, keys[user])
        assert status == 202, answer
    mine = await listed_events(stack, "", keys[users[0]])
    assert [event["user_id"] for event in mine["data"]] == [users[0]]
    status, answer, _ = await call(stack, "GET", f"/event?user_id={users[1]}", None, keys[users[0]])
    assert status == 403 and "user_id" in answer["message"]


# --- a test event to one webhook ------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["invoice_id", "amount"],
    "properties": {"invoice_id": {"type": "string"}, "amount": {"type": "integer"}},
}


async def test_a_test_event_goes_to_its_webhook_only(stack: Stack) -> None:
    first, second = await Receiver().start(), await Receiver().start()
    try:
        user = fresh_user_id()
        uploads = await register_types(
            stack, first.url, [UPLOAD_EVENT_TYPE_ID], user, filter={"size": {"$gt": 10**12}}
        )
        await register_types(stack, second.url, [UPLOAD_EVENT_TYPE_ID], user)
        path = f"/webhook/{uploads['id']}/test"
        status, answer, _ = await call(stack, "POST", path)  # no body at all
        assert status == 202, answer
        sent = answer["data"]
        (received,) = await first.wait_for(1)
        body = Webhook(uploads["secret"]).verify(received.body, received.headers)
        # The filter does not apply; a type without a schema gets the no-schema sample.
        assert body["type"] == "upload.completed" and body["data"] == {"test": True}
        assert received.headers["webhook-id"] == sent["delivery_id"]
        await asyncio.sleep(QUIET_SECONDS)
        assert second.received == [] and len(first.received) == 1

        status, event, _ = await call(stack, "GET", f"/event/{sent['event_id']}")
        assert status == 200 and event["data"]["test"] is True
        assert [d["id"] for d in event["data"]["deliveries"]] == [sent["delivery_id"]]
        listed = await listed_events(stack, f"user_id={user}")
        assert [(e["id"], e["test"]) for e in listed["data"]] == [(sent["event_id"], True)]
    finally:
        await first.stop()
        await second.stop()


async def test_a_test_event_is_of_one_of_the_webhooks_types(
    stack: Stack, receiver: Receiver
) -> None:
    plain, schemad, other = (
        await create_type(stack),
        await create_type(stack, SCHEMA),
        await create_type(stack),
    )
    hook = await register_types(stack, receiver.url, [plain["id"], schemad["id"]], fresh_user_id())
    path = f"/webhook/{hook['id']}/test"

    status, answer, _ = await call(stack, "POST", path, {"event_type": schemad["name"]})
    assert status == 202, answer
    (received,) = await receiver.wait_for(1)
    body = Webhook(hook["secret"]).verify(received.body, received.headers)
    assert body["type"] == schemad["name"]
    assert isinstance(body["data"]["invoice_id"], str) and isinstance(body["data"]["amount"], int)

    given = {"event_type": schemad["name"], "payload": {"invoice_id": "in_1", "amount": 5}}
    assert (await call(stack, "POST", path, given))[0] == 202
    assert (await receiver.wait_for(2))[1].json()["data"] == given["payload"]
    status, answer, _ = await call(stack, "POST", path, {})  # the first type by default
    assert status == 202
    assert (await receiver.wait_for(3))[2].json()["type"] == plain["name"]

    message = await refused(stack, "POST", path, {"event_type": other["name"]}, 400)
    assert other["name"] in message and "event_type" in message
    bad = {"event_type": schemad["name"], "payload": {"invoice_id": "in_1", "amount": "5"}}
    message = await refused(stack, "POST", path, bad, 422)
    assert "amount" in message
    assert "colour" in await refused(stack, "POST", path, {"colour": "red"}, 400)
    await refused(stack, "POST", f"/webhook/{uuid.uuid4()}/test", {}, 404)
    status, _, _ = await call(stack, "PATCH", f"/webhook/{hook['id']}", {"disabled": True})
    assert status == 200
    assert "disabled" in await refused(stack, "POST", path, {}, 409)
    await asyncio.sleep(QUIET_SECONDS)
    assert len(receiver.received) == 3


@pytest.mark.parametrize("stack_options", [StackOptions(auth_mode="api_key")])
async def test_with_api_keys_another_users_webhook_takes_no_test_event(
    stack: Stack, receiver: Receiver
) -> None:
    owner, other = fresh_user_id(), fresh_user_id()
    keys = {
        user: {"Authorization": f"Bearer {create_key(stack.database_url, user)}"}
        for user in (owner, other)
    }
    body = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "url": receiver.url}
    status, answer, _ = await call(stack, "POST", "/webhook/register", body, keys[owner])
    assert status == 200, answer
    path = f"/webhook/{answer['data']['id']}/test"
    status, refusal, _ = await call(stack, "POST", path, {}, keys[other])
    assert status == 404 and refusal["error"] is True
    status, sent, _ = await call(stack, "POST", path, {}, keys[owner])
    assert status == 202, sent
    await receiver.wait_for(1)
