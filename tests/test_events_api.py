"""The events API through the gateway: event types, POST /event, GET /event/{event_id}, and a
webhook's filter, retry schedule and timeout, with real receivers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from harness import events as harness_events
from harness.receiver import Receiver, Reply
from harness.stack import Stack, StackOptions
from services.common import system_events
from services.common.api_keys import hash_api_key, new_api_key
from services.upload.fanout.worker import INLINE_WEBHOOKS

INVOICE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["invoice_id", "amount"],
    "properties": {
        "invoice_id": {"type": "string"},
        "amount": {"type": "integer", "minimum": 0},
        "customer": {
            "type": "object",
            "properties": {"country": {"type": "string", "minLength": 2}},
        },
    },
}


async def call(
    stack: Stack,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with stack.http.request(
        method, f"{stack.gateway_url}{path}", json=body, headers=headers
    ) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


async def create_type(stack: Stack, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    name = f"invoice.paid.{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {"name": name, "description": "An invoice was paid"}
    if schema is not None:
        body["schema"] = schema
    status, answer, _ = await call(stack, "POST", "/event_type", body)
    assert status == 201, answer
    return answer["data"]  # type: ignore[no-any-return]


async def register(stack: Stack, url: str, event_type_id: str, **fields: Any) -> dict[str, Any]:
    body = {"event_type_id": event_type_id, "user_id": 1, "url": url, **fields}
    status, answer, _ = await call(stack, "POST", "/webhook/register", body)
    assert status == 200, answer
    return answer["data"]  # type: ignore[no-any-return]


async def publish(stack: Stack, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else None
    return await call(stack, "POST", "/event", body, headers)


# --- event types ------------------------------------------------------------------------------


async def test_event_types_are_created_read_changed_and_listed(stack: Stack) -> None:
    created = await create_type(stack, INVOICE_SCHEMA)
    assert set(created) == {
        "id", "name", "description", "schema", "archived", "created_at", "updated_at"
    }  # fmt: skip
    assert created["schema"] == INVOICE_SCHEMA and created["archived"] is False
    status, got, _ = await call(stack, "GET", f"/event_type/{created['id']}")
    assert status == 200 and got["data"] == created

    status, patched, _ = await call(
        stack, "PATCH", f"/event_type/{created['id']}", {"description": "Paid", "schema": None}
    )
    assert status == 200, patched
    assert patched["data"]["description"] == "Paid" and patched["data"]["schema"] is None
    status, patched, _ = await call(
        stack, "PATCH", f"/event_type/{created['id']}", {"archived": True}
    )
    assert status == 200 and patched["data"]["archived"] is True
    assert patched["data"]["description"] == "Paid"

    # The list shows the change at once (the cache was invalidated), archived types too.
    status, listed, _ = await call(stack, "GET", f"/event_type?name={created['name']}")
    assert status == 200 and listed["data"] == [patched["data"]]
    status, listed, _ = await call(stack, "GET", "/event_type?name=upload%20file")
    assert [t["id"] for t in listed["data"]] == [str(system_events.UPLOAD_EVENT_TYPE_ID)]


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"name": "has space"}, 400, "name"),
        ({"name": "x" * 101}, 400, "name"),
        ({"name": "ok.name", "schema": {"type": "nonsense"}}, 400, "schema"),
        ({"name": "ok.name", "schema": {"$ref": "https://example.com/s.json"}}, 400, "schema"),
        ({"name": "ok.name", "schema": {"type": "object", "pattern": "("}}, 400, "schema"),
        ({"name": "ok.name", "schema": [1]}, 400, "schema"),
        ({"name": "ok.name", "extra": 1}, 400, "extra"),
        ({"name": "upload.completed"}, 409, "upload.completed"),
        ({"name": "webhook.disabled"}, 409, "webhook.disabled"),
    ],
)
async def test_bad_event_types_are_refused_naming_the_field(
    stack: Stack, body: dict[str, Any], status: int, names: str
) -> None:
    got, answer, _ = await call(stack, "POST", "/event_type", body)
    assert got == status, answer
    assert answer["error"] is True and names in answer["message"]


async def test_event_type_lookups_and_patches_answer_like_the_other_routes(stack: Stack) -> None:
    unknown = uuid.uuid4()
    assert (await call(stack, "GET", f"/event_type/{unknown}"))[0] == 404
    assert (await call(stack, "PATCH", f"/event_type/{unknown}", {"archived": True}))[0] == 404
    assert (await call(stack, "GET", "/event_type/nope"))[0] == 400
    created = await create_type(stack)
    status, answer, _ = await call(stack, "PATCH", f"/event_type/{created['id']}", {})
    assert status == 400 and "nothing to update" in answer["message"]
    status, answer, _ = await call(stack, "PATCH", f"/event_type/{created['id']}", {"name": "x"})
    assert status == 400 and "name" in answer["message"]
    status, answer, _ = await call(stack, "PATCH", f"/event_type/{created['id']}", {"archived": 1})
    assert status == 400 and "archived" in answer["message"]


# --- publishing and fan-out -------------------------------------------------------------------


async def test_an_event_reaches_exactly_the_matching_webhooks_of_its_user_and_type(
    stack: Stack, receiver: Receiver
) -> None:
    invoice = await create_type(stack, INVOICE_SCHEMA)
    other_type = await create_type(stack)
    big = await register(
        stack, f"{receiver.url}/big", invoice["id"], filter={"amount": {"$gte": 100}}
    )
    french = await register(
        stack,
        f"{receiver.url}/french",
        invoice["id"],
        filter={"$or": [{"customer.country": "FR"}, {"customer.country": {"$exists": False}}]},
    )
    german = await register(
        stack, f"{receiver.url}/german", invoice["id"], filter={"customer.country": "DE"}
    )
    await register(stack, f"{receiver.url}/other-user", invoice["id"], user_id=2)
    await register(stack, f"{receiver.url}/other-type", other_type["id"])
    assert big["filter"] == {"amount": {"$gte": 100}}

    payload = {"invoice_id": "in_1", "amount": 150, "customer": {"country": "FR"}}
    status, answer, headers = await publish(
        stack, {"event_type": invoice["name"], "user_id": 1, "payload": payload}
    )
    assert status == 202, answer
    accepted = answer["data"]
    assert set(accepted) == {"event_id", "event_type", "user_id", "created_at"}
    assert (accepted["event_type"], accepted["user_id"]) == (invoice["name"], 1)
    assert "Idempotent-Replayed" not in headers

    requests = await receiver.wait_for(2)
    await asyncio.sleep(1.0)  # nothing else may come
    assert sorted(r.path.rsplit("/", 1)[-1] for r in receiver.received) == ["big", "french"]
    secrets = {"big": big["secret"], "french": french["secret"]}
    for request in requests:
        body = Webhook(secrets[request.path.rsplit("/", 1)[-1]]).verify(
            request.body, request.headers
        )
        assert body["type"] == invoice["name"] and body["data"] == payload

    status, shown, _ = await call(stack, "GET", f"/event/{accepted['event_id']}")
    assert status == 200, shown
    event = shown["data"]
    assert (event["id"], event["event_type"], event["user_id"], event["payload"]) == (
        accepted["event_id"], invoice["name"], 1, payload
    )  # fmt: skip
    assert event["created_at"] == accepted["created_at"]
    assert {d["webhook_id"] for d in event["deliveries"]} == {big["id"], french["id"]}
    assert {d["id"] for d in event["deliveries"]} == {r.headers["webhook-id"] for r in requests}
    assert german["id"] not in {d["webhook_id"] for d in event["deliveries"]}

    # Delivery items carry the event's id, in the list and alone.
    status, listed, _ = await call(stack, "GET", f"/webhook/{big['id']}/deliveries")
    assert [d["event_id"] for d in listed["data"]] == [accepted["event_id"]]
    assert listed["data"][0]["upload_id"] is None
    delivery_id = listed["data"][0]["id"]
    status, one, _ = await call(stack, "GET", f"/delivery/{delivery_id}")
    assert one["data"]["event_id"] == accepted["event_id"]


async def test_few_webhooks_are_fanned_out_by_the_request_many_by_the_worker(
    stack: Stack,
) -> None:
    """Up to INLINE_WEBHOOKS: the deliveries exist when the 202 arrives and the fan-out
    message is never needed; one more: the worker makes them all, after the answer."""
    few, many = await create_type(stack), await create_type(stack)
    await insert_webhooks(stack, few["id"], 41, 2, filter={"amount": {"$gt": 5}})
    await insert_webhooks(stack, few["id"], 41, 1)  # unfiltered
    await insert_webhooks(stack, many["id"], 42, INLINE_WEBHOOKS + 1)
    status, answer, _ = await publish(
        stack, {"event_type": few["name"], "user_id": 41, "payload": {"amount": 1}}
    )
    assert status == 202, answer
    event_id = uuid.UUID(answer["data"]["event_id"])
    made = await stack.pool.fetchval(
        "SELECT count(*) FROM deliveries WHERE event_id = $1", event_id
    )
    assert made == 1  # the filtered pair did not match
    assert await stack.pool.fetchval("SELECT fanned_out_at FROM events WHERE id = $1", event_id)
    status, answer, _ = await publish(
        stack, {"event_type": many["name"], "user_id": 42, "payload": {}}
    )
    assert status == 202, answer
    event_id = uuid.UUID(answer["data"]["event_id"])
    for _ in range(200):
        made = await stack.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE event_id = $1", event_id
        )
        if made == INLINE_WEBHOOKS + 1:
            break
        await asyncio.sleep(0.05)
    assert made == INLINE_WEBHOOKS + 1


async def insert_webhooks(
    stack: Stack, type_id: str, user_id: int, count: int, **columns: Any
) -> None:
    await harness_events.insert_webhooks(
        stack.pool, count, user_id, uuid.UUID(type_id), "http://127.0.0.1:9/x", "whsec_"
        + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", **columns,
    )  # fmt: skip


async def test_an_event_type_id_works_as_well_as_its_name(stack: Stack, receiver: Receiver) -> None:
    created = await create_type(stack)
    hook = await register(stack, receiver.url, created["id"])
    status, answer, _ = await publish(
        stack, {"event_type_id": created["id"], "user_id": 1, "payload": {"n": 1}}
    )
    assert status == 202, answer
    (request,) = await receiver.wait_for(1)
    assert Webhook(hook["secret"]).verify(request.body, request.headers)["data"] == {"n": 1}


async def test_uploads_carry_their_event_id(stack: Stack, receiver: Receiver) -> None:
    webhook = await stack.register(receiver.url)
    upload = await stack.upload(webhook["id"])
    status, listed, _ = await call(stack, "GET", f"/webhook/{webhook['id']}/deliveries")
    (item,) = listed["data"]
    assert item["upload_id"] == upload["upload_id"] and item["event_id"] is not None
    status, shown, _ = await call(stack, "GET", f"/event/{item['event_id']}")
    assert status == 200 and shown["data"]["event_type"] == "upload.completed"
    assert shown["data"]["payload"]["upload_id"] == upload["upload_id"]


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        ({"amount": 1}, "payload: "),
        ({"invoice_id": 7, "amount": 1}, "/invoice_id"),
        ({"invoice_id": "a", "amount": -1}, "/amount"),
        ({"invoice_id": "a", "amount": 1, "customer": {"country": "F"}}, "/customer/country"),
    ],
)
async def test_a_payload_failing_the_schema_is_422_naming_the_pointer(
    stack: Stack, payload: dict[str, Any], pointer: str
) -> None:
    invoice = await create_type(stack, INVOICE_SCHEMA)
    status, answer, _ = await publish(
        stack, {"event_type": invoice["name"], "user_id": 1, "payload": payload}
    )
    assert status == 422, answer
    assert pointer in answer["message"] and invoice["name"] in answer["message"]
    assert (
        await stack.pool.fetchval(
            "SELECT count(*) FROM events WHERE user_id = 1 AND event_type_id = $1",
            uuid.UUID(invoice["id"]),
        )
        == 0
    )


async def test_unknown_archived_and_system_types_are_refused(stack: Stack) -> None:
    body: dict[str, Any] = {"user_id": 1, "payload": {}}
    status, answer, _ = await publish(stack, {**body, "event_type": "no.such.type"})
    assert status == 404 and "no.such.type" in answer["message"]
    status, answer, _ = await publish(stack, {**body, "event_type_id": str(uuid.uuid4())})
    assert status == 404
    archived = await create_type(stack)
    await call(stack, "PATCH", f"/event_type/{archived['id']}", {"archived": True})
    status, answer, _ = await publish(stack, {**body, "event_type": archived["name"]})
    assert status == 409 and "archived" in answer["message"]
    status, answer, _ = await call(
        stack,
        "POST",
        "/webhook/register",
        {"event_type_id": archived["id"], "user_id": 1, "url": "http://127.0.0.1:9/x"},
    )
    assert status == 409 and "archived" in answer["message"]
    for name in ("webhook.disabled", "delivery.failed", "upload file"):
        status, answer, _ = await publish(stack, {**body, "event_type": name})
        assert status == 403 and "system" in answer["message"], (name, answer)


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"user_id": 1, "payload": {}}, "event_type"),
        ({"event_type": "a", "event_type_id": str(uuid.uuid4()), "user_id": 1, "payload": {}},
         "not both"),
        ({"event_type": "a", "user_id": 0, "payload": {}}, "user_id"),
        ({"event_type": "a", "user_id": "1", "payload": {}}, "user_id"),
        ({"event_type": "a", "user_id": 1, "payload": [1]}, "payload"),
        ({"event_type": "a", "user_id": 1}, "payload"),
        ({"event_type": "a", "user_id": 1, "payload": {"k": "\x00"}}, "NUL"),
        ({"event_type": "a", "user_id": 1, "payload": {}, "extra": 1}, "extra"),
    ],
)  # fmt: skip
async def test_malformed_events_are_400_naming_the_field(
    stack: Stack, body: dict[str, Any], names: str
) -> None:
    status, answer, _ = await publish(stack, body)
    assert status == 400, answer
    assert names in answer["message"]


@pytest.mark.parametrize("stack_options", [StackOptions(max_json_bytes=2048)])
async def test_an_event_over_max_json_bytes_is_413(stack: Stack) -> None:
    created = await create_type(stack)
    body = {"event_type": created["name"], "user_id": 1, "payload": {"x": "a" * 4096}}
    status, answer, _ = await publish(stack, body)
    assert status == 413 and answer["error"] is True


async def test_idempotency_key_replays_the_first_answer(stack: Stack, receiver: Receiver) -> None:
    created = await create_type(stack)
    await register(stack, receiver.url, created["id"])
    body = {"event_type": created["name"], "user_id": 1, "payload": {"n": 1}}
    key = f"key-{uuid.uuid4()}"
    first = await publish(stack, body, key)
    again = await publish(stack, body, key)
    assert first[0] == again[0] == 202
    assert again[1]["data"] == first[1]["data"]
    assert again[2]["Idempotent-Replayed"] == "true"
    other = await publish(stack, {**body, "payload": {"n": 2}}, key)
    assert other[0] == 422 and "Idempotency-Key" in other[1]["message"]
    bad = await publish(stack, body, "k" * 256)
    assert bad[0] == 400 and "Idempotency-Key" in bad[1]["message"]
    await receiver.wait_for(1)
    await asyncio.sleep(1.0)
    assert len(receiver.received) == 1


async def test_concurrent_requests_with_one_key_make_one_event(stack: Stack) -> None:
    """events is partitioned by day, so no unique index holds the key: the claim's lock does."""
    created = await create_type(stack)
    body = {"event_type": created["name"], "user_id": 1, "payload": {"n": 1}}
    key = f"key-{uuid.uuid4()}"
    answers = await asyncio.gather(*(publish(stack, body, key) for _ in range(10)))
    assert [status for status, _, _ in answers] == [202] * 10, answers
    assert len({answer["data"]["event_id"] for _, answer, _ in answers}) == 1
    assert sum("Idempotent-Replayed" not in headers for _, _, headers in answers) == 1
    stored = await stack.pool.fetchval(
        "SELECT count(*) FROM events WHERE user_id = 1 AND idempotency_key = $1", key
    )
    assert stored == 1


# --- a webhook's filter and delivery settings ---------------------------------------------------

GOOD_FILTERS = [
    {"a": 1},
    {"a": {"$eq": 1}},
    {"a": {"$ne": 1}},
    {"a": {"$gt": 1}},
    {"a": {"$gte": "b"}},
    {"a": {"$lt": 1.5}},
    {"a": {"$lte": 2}},
    {"a": {"$in": [1, "x"]}},
    {"a": {"$nin": [1]}},
    {"a.b": {"$exists": True}},
    {"a": {"$startsWith": "in_"}},
    {"$and": [{"a": 1}, {"b": 2}]},
    {"$or": [{"a": 1}, {"b": 2}]},
    {"$not": {"a": 1}},
]
BAD_FILTERS = [
    ({"a": {"$regex": "x"}}, "$regex"),
    ({"$xor": [{"a": 1}]}, "$xor"),
    ({"a": {"$in": 1}}, "$in"),
    ({"a": {"$exists": "yes"}}, "$exists"),
    ({"a": {"$startsWith": 1}}, "$startsWith"),
    ({"a": {"$gt": [1]}}, "$gt"),
    ({"$and": []}, "$and"),
    ({"$or": {"a": 1}}, "$or"),
    ({"$not": 1}, "$not"),
    ({"a..b": 1}, "a..b"),
    ({"a": {"$eq": 1, "b": 2}}, "cannot mix"),
    ([1], "filter"),
]


@pytest.mark.parametrize("filter_", GOOD_FILTERS)
async def test_every_operator_and_combinator_is_stored_and_shown(
    stack: Stack, filter_: dict[str, Any]
) -> None:
    created = await register(stack, "http://127.0.0.1:9/x", str(system_events.UPLOAD_EVENT_TYPE_ID),
                             filter=filter_)  # fmt: skip
    status, got, _ = await call(stack, "GET", f"/webhook/{created['id']}")
    assert status == 200 and got["data"]["filter"] == filter_


@pytest.mark.parametrize(("filter_", "names"), BAD_FILTERS)
async def test_a_bad_filter_is_400_naming_it_and_nothing_is_stored(
    stack: Stack, filter_: Any, names: str
) -> None:
    url = f"http://127.0.0.1:9/{uuid.uuid4().hex}"
    body = {"event_type_id": str(system_events.UPLOAD_EVENT_TYPE_ID), "user_id": 1, "url": url}
    status, answer, _ = await call(stack, "POST", "/webhook/register", {**body, "filter": filter_})
    assert status == 400, answer
    assert names in answer["message"] and "filter" in answer["message"]
    assert (
        await stack.pool.fetchval("SELECT count(*) FROM webhook_registrations WHERE url = $1", url)
        == 0
    )
    webhook = await register(stack, url, str(system_events.UPLOAD_EVENT_TYPE_ID), filter={"a": 1})
    status, answer, _ = await call(stack, "PATCH", f"/webhook/{webhook['id']}", {"filter": filter_})
    assert status == 400 and names in answer["message"]
    status, got, _ = await call(stack, "GET", f"/webhook/{webhook['id']}")
    assert got["data"]["filter"] == {"a": 1}


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"retry_schedule": [0]}, "retry_schedule"),
        ({"retry_schedule": [604801]}, "retry_schedule"),
        ({"retry_schedule": [1] * 21}, "retry_schedule"),
        ({"retry_schedule": ["5"]}, "retry_schedule"),
        ({"retry_schedule": 5}, "retry_schedule"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 61}, "timeout_seconds"),
        ({"timeout_seconds": True}, "timeout_seconds"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 1001}, "max_concurrency"),
        ({"max_concurrency": 2.5}, "max_concurrency"),
        ({"max_concurrency": "8"}, "max_concurrency"),
    ],
)
async def test_bad_delivery_settings_are_400_naming_them(
    stack: Stack, fields: dict[str, Any], names: str
) -> None:
    body = {"event_type_id": str(system_events.UPLOAD_EVENT_TYPE_ID), "user_id": 1,
            "url": "http://127.0.0.1:9/x", **fields}  # fmt: skip
    status, answer, _ = await call(stack, "POST", "/webhook/register", body)
    assert status == 400 and names in answer["message"], answer


async def test_settings_are_shown_changed_and_reset_to_the_defaults(stack: Stack) -> None:
    webhook = await register(
        stack, "http://127.0.0.1:9/x", str(system_events.UPLOAD_EVENT_TYPE_ID),
        retry_schedule=[10, 60], timeout_seconds=3, filter={"size": {"$gt": 1}},
        max_concurrency=1000,
    )  # fmt: skip
    assert (webhook["retry_schedule"], webhook["timeout_seconds"]) == ([10, 60], 3)
    assert webhook["max_concurrency"] == 1000
    assert {"id", "secret", "custom_headers", "custom_payload", "created_at"} <= set(webhook)
    status, patched, _ = await call(
        stack, "PATCH", f"/webhook/{webhook['id']}", {"retry_schedule": [], "url": webhook["url"]}
    )
    assert status == 200, patched
    assert patched["data"]["retry_schedule"] == [] and patched["data"]["timeout_seconds"] == 3
    assert patched["data"]["max_concurrency"] == 1000
    status, patched, _ = await call(
        stack, "PATCH", f"/webhook/{webhook['id']}", {"max_concurrency": 1}
    )
    assert status == 200 and patched["data"]["max_concurrency"] == 1, patched
    status, patched, _ = await call(
        stack, "PATCH", f"/webhook/{webhook['id']}",
        {"retry_schedule": None, "timeout_seconds": None, "filter": None,
         "max_concurrency": None},
    )  # fmt: skip
    assert status == 200, patched
    data = patched["data"]
    assert (data["retry_schedule"], data["timeout_seconds"], data["filter"]) == (None, None, None)
    assert data["max_concurrency"] is None
    status, got, _ = await call(stack, "GET", f"/webhook/{webhook['id']}")
    assert got["data"] == data


async def test_a_webhooks_own_schedule_and_timeout_are_used(stack: Stack) -> None:
    slow = await Receiver([Reply(200, delay=2.5)]).start()
    try:
        created = await create_type(stack)
        webhook = await register(
            stack, slow.url, created["id"], retry_schedule=[1], timeout_seconds=1
        )
        status, answer, _ = await publish(
            stack, {"event_type": created["name"], "user_id": 1, "payload": {"n": 1}}
        )
        assert status == 202, answer
        await slow.wait_for(2, timeout=30)
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            status, listed, _ = await call(stack, "GET", f"/webhook/{webhook['id']}/deliveries")
            if listed["data"] and listed["data"][0]["status"] == "failed":
                break
            assert asyncio.get_running_loop().time() < deadline, listed
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # no third attempt (the service's schedule has three)
    finally:
        await slow.stop()
    (delivery,) = listed["data"]
    assert delivery["attempt_count"] == 2 and len(slow.received) == 2
    status, one, _ = await call(stack, "GET", f"/delivery/{delivery['id']}")
    assert [a["error"] for a in one["data"]["attempts"]] == ["timeout after 1 s"] * 2


# --- API keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack_options", [StackOptions(auth_mode="api_key")])
async def test_with_api_keys_an_event_is_the_keys_users(stack: Stack) -> None:
    keys = {}
    for user in (41, 42):
        key = new_api_key()
        await stack.pool.execute(
            "INSERT INTO api_keys (key_hash, user_id, prefix) VALUES ($1, $2, $3)",
            hash_api_key(key), user, key[:10],
        )  # fmt: skip
        keys[user] = {"Authorization": f"Bearer {key}"}
    new_type = {"name": f"t.{uuid.uuid4().hex[:8]}"}
    status, answer, _ = await call(stack, "POST", "/event_type", new_type, keys[41])
    assert status == 403 and "admin" in answer["message"]  # event types are global
    admin = new_api_key()
    await stack.pool.execute(
        "INSERT INTO api_keys (key_hash, user_id, prefix, admin) VALUES ($1, NULL, $2, true)",
        hash_api_key(admin), admin[:10],
    )  # fmt: skip
    status, answer, _ = await call(
        stack, "POST", "/event_type", new_type, {"Authorization": f"Bearer {admin}"}
    )
    assert status == 201, answer
    name = answer["data"]["name"]
    status, answer, _ = await call(
        stack, "POST", "/event", {"event_type": name, "payload": {}}, keys[41]
    )
    assert status == 202 and answer["data"]["user_id"] == 41
    event_id = answer["data"]["event_id"]
    status, answer, _ = await call(
        stack, "POST", "/event", {"event_type": name, "user_id": 42, "payload": {}}, keys[41]
    )
    assert status == 403 and "user_id" in answer["message"]
    assert (await call(stack, "GET", f"/event/{event_id}", None, keys[41]))[0] == 200
    assert (await call(stack, "GET", f"/event/{event_id}", None, keys[42]))[0] == 404
    assert (await call(stack, "GET", f"/event/{uuid.uuid4()}", None, keys[41]))[0] == 404
