"""Endpoints (SPEC §14) through the gateway: a webhook of several event types, the user's events
log (GET /event), and a test event to one webhook, with real receivers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from standardwebhooks.webhooks import Webhook

from harness.events import fresh_user_id
from harness.receiver import Receiver
from harness.stack import Stack
from tests.test_events_api import call, create_type, publish

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
