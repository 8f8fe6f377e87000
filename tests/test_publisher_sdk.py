"""The publisher SDK in client/publisher: in step with the OpenAPI document, and driving the
real stack through the gateway with both its async and its sync client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import inspect
import secrets
import sys
import time
import typing
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook as Verifier

from harness.receiver import Receiver
from harness.stack import Stack, StackOptions
from services.registration.commands import create_api_key
from services.registration.openapi import openapi_document

# The package is installed with `pip install ./client/publisher`; the suite uses the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client" / "publisher"))

# The blocking client is generated from the async one and not kept in git: written afresh
# here, so the suite runs what the package's build would make of the async client as it is.
from unasync_clients import write_sync_client

write_sync_client()

from webhooks_publisher import (  # noqa: E402 (after the client is written)
    ApiError,
    AsyncWebhooksClient,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    Unprocessable,
    WebhooksClient,
    models,
)
from webhooks_publisher.operations import ROUTES  # noqa: E402

Answer = TypeVar("Answer")
# Documentation of the API and the web console, not API: the SDK has no method for them.
META_PATHS = {"/openapi.json", "/docs", "/console"}
# SDK parameters that the document spells another way: the multipart `file` part's name and type.
SDK_ONLY = {("POST", "/upload_file/webhook_id/{webhook_id}"): {"filename", "content_type"}}
INVOICE_SCHEMA = {
    "type": "object",
    "required": ["invoice_id", "amount"],
    "properties": {"invoice_id": {"type": "string"}, "amount": {"type": "integer", "minimum": 0}},
}


# ---- In step with the document -------------------------------------------------------------


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = document["components"][kind][name]
    return node


def ref_name(node: dict[str, Any]) -> str | None:
    return node["$ref"].rsplit("/", 1)[-1] if "$ref" in node else None


def document_routes(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, operations in document["paths"].items()
        if path not in META_PATHS
        for method, operation in operations.items()
    }


def request_names(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    """Every path and query parameter, body field and header a route takes, as SDK names."""
    names = set()
    for parameter in map(lambda p: resolve(document, p), operation.get("parameters", [])):
        names.add(parameter["name"].lower().replace("-", "_"))
    for content in operation.get("requestBody", {}).get("content", {}).values():
        names |= set(resolve(document, content["schema"]).get("properties", {}))
    return names


def data_schema(document: dict[str, Any], operation: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema of the success answer's `data` (of one item for a list), and if it is a list."""
    status = next(code for code in operation["responses"] if code.startswith("2"))
    answer = operation["responses"][status]["content"]["application/json"]["schema"]
    data = resolve(document, answer)["properties"]["data"]
    is_list = data.get("type") == "array"
    return (data["items"] if is_list else data), is_list


def nullable(node: dict[str, Any]) -> bool:
    types_ = node.get("type")
    return any(option.get("type") == "null" for option in node.get("anyOf", [])) or (
        isinstance(types_, list) and "null" in types_
    )


def referenced(node: dict[str, Any]) -> list[str]:
    """The component schemas a property refers to (directly, as items, or in an anyOf)."""
    options = [node, *node.get("anyOf", [])]
    options += [option["items"] for option in options if isinstance(option.get("items"), dict)]
    return [name for option in options if (name := ref_name(option)) is not None]


def shape_problems(document: dict[str, Any], name: str, seen: set[str]) -> list[str]:
    """How the TypedDict `models.<name>` differs from the schema `name` (and those it refers to)."""
    if name in seen or name == "JsonValue":
        return []
    seen.add(name)
    schema = document["components"]["schemas"][name]
    typed = getattr(models, name, None)
    if typed is None:
        return [f"no TypedDict for the schema {name}"]
    hints = typing.get_type_hints(typed)
    problems = [
        f"{name}.{field}: in the document, not in the SDK"
        for field in set(schema["properties"]) - set(hints)
    ]
    problems += [
        f"{name}.{field}: in the SDK, not in the document"
        for field in set(hints) - set(schema["properties"])
    ]
    if set(schema.get("required", ())) != set(typed.__required_keys__):
        problems.append(f"{name}: required fields differ")
    for field, node in schema["properties"].items():
        if field in hints and nullable(node) != (type(None) in typing.get_args(hints[field])):
            problems.append(f"{name}.{field}: null is allowed on one side only")
        for inner in referenced(node):
            problems += shape_problems(document, inner, seen)
    return problems


def sdk_problems(document: dict[str, Any]) -> list[str]:
    """Everything in the document that the SDK lacks (or has that the document does not)."""
    routes = document_routes(document)
    problems = [f"{method} {path}: no SDK method" for method, path in set(routes) - set(ROUTES)]
    problems += [
        f"{method} {path}: not in the document" for method, path in set(ROUTES) - set(routes)
    ]
    seen: set[str] = set()
    for key in set(routes) & set(ROUTES):
        sdk, operation = ROUTES[key], routes[key]
        wanted = request_names(document, operation)
        taken = set(inspect.signature(sdk.builder).parameters)
        problems += [f"{key}: no parameter {name}" for name in sorted(wanted - taken)]
        extra = taken - wanted - SDK_ONLY.get(key, set())
        problems += [f"{key}: parameter {name} is not in the document" for name in sorted(extra)]
        data, is_list = data_schema(document, operation)
        if ref_name(data) != sdk.data.__name__:
            problems.append(f"{key}: answers {ref_name(data)}, the SDK reads {sdk.data.__name__}")
        if is_list != sdk.is_list:
            problems.append(f"{key}: a list on one side only")
        problems += shape_problems(document, ref_name(data) or "", seen)
    return problems


def test_the_sdk_covers_every_route_parameter_and_field_of_the_document() -> None:
    assert sdk_problems(openapi_document()) == []


def test_the_in_step_check_notices_a_new_route_field_or_nullable() -> None:
    document = copy.deepcopy(openapi_document())
    document["paths"]["/webhook/{webhook_id}/pause"] = {
        "post": copy.deepcopy(document["paths"]["/webhook/{webhook_id}/secret/rotate"]["post"])
    }
    schemas = document["components"]["schemas"]
    schemas["Webhook"]["properties"]["paused_until"] = {"type": "string"}
    schemas["Attempt"]["properties"]["duration_ms"] = {
        "anyOf": [{"type": "integer"}, {"type": "null"}]
    }
    schemas["EventTypePatch"]["properties"]["color"] = {"type": "string"}
    del document["paths"]["/event/{event_id}"]
    assert sorted(sdk_problems(document)) == sorted(
        [
            "POST /webhook/{webhook_id}/pause: no SDK method",
            "GET /event/{event_id}: not in the document",
            "Webhook.paused_until: in the document, not in the SDK",
            "Attempt.duration_ms: null is allowed on one side only",
            "('PATCH', '/event_type/{event_type_id}'): no parameter color",
        ]
    )


@pytest.mark.parametrize("client", [AsyncWebhooksClient, WebhooksClient])
def test_both_clients_have_a_method_per_route_with_its_builders_parameters(client: type) -> None:
    for route in ROUTES.values():
        method = getattr(client, route.builder.__name__)
        parameters = list(inspect.signature(method).parameters.values())[1:]  # without self
        builder = list(inspect.signature(route.builder).parameters.values())
        assert [(p.name, p.kind, p.default) for p in parameters] == [
            (p.name, p.kind, p.default) for p in builder
        ], route.builder.__name__
    public = {name for name in vars(AsyncWebhooksClient) if not name.startswith("_")}
    assert public - {"aclose"} == {n for n in vars(WebhooksClient) if not n.startswith("_")} - {
        "close"
    }


# ---- Against the real stack ----------------------------------------------------------------


def new_user_id() -> int:
    """A user of this test alone (the database is shared by the whole run)."""
    return secrets.randbelow(10**12) + 10**6


def new_type_name() -> str:
    return f"invoice.paid.{uuid.uuid4().hex[:12]}"


def assert_shape(answer: Any, typed: type) -> None:
    """What the service answered has exactly the TypedDict's keys."""
    assert set(answer) == set(typing.get_type_hints(typed)), (typed.__name__, answer)


async def eventually(
    check: Callable[[], Awaitable[Answer | None]], timeout: float = 20.0
) -> Answer:
    deadline = time.monotonic() + timeout
    while (result := await check()) is None:
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
    return result


async def test_async_client_publishes_and_manages_webhooks(
    stack: Stack, receiver: Receiver
) -> None:
    user_id = new_user_id()
    async with AsyncWebhooksClient(stack.gateway_url) as client:
        event_type = await client.create_event_type(
            new_type_name(), description="An invoice was paid", schema=INVOICE_SCHEMA
        )
        assert_shape(event_type, models.EventType)
        assert event_type["schema"] == INVOICE_SCHEMA
        assert await client.get_event_type(event_type["id"]) == event_type
        listed = await client.list_event_types(name=event_type["name"])
        assert [item["id"] for item in listed.items] == [event_type["id"]]

        webhook = await client.register_webhook(
            event_type["id"],
            receiver.url,
            user_id=user_id,
            custom_payload={"source": "billing"},
            filter={"amount": {"$gte": 100}},
        )
        assert_shape(webhook, models.RegisteredWebhook)
        assert webhook["filter"] == {"amount": {"$gte": 100}}

        payload = {"invoice_id": "in_1", "amount": 150}
        accepted = await client.publish_event(
            event_type["name"], payload=payload, user_id=user_id, idempotency_key="in_1-paid"
        )
        assert_shape(accepted, models.AcceptedEvent)
        again = await client.publish_event(
            event_type["name"], payload=payload, user_id=user_id, idempotency_key="in_1-paid"
        )
        assert again["event_id"] == accepted["event_id"]

        [received] = await receiver.wait_for(1)
        body = Verifier(webhook["secret"]).verify(received.body, received.headers)
        assert body == {
            "source": "billing",
            "type": event_type["name"],
            "timestamp": body["timestamp"],
            "data": payload,
        }

        async def delivered() -> models.Event | None:
            event = await client.get_event(accepted["event_id"])
            statuses = [delivery["status"] for delivery in event["deliveries"]]
            return event if statuses == ["succeeded"] else None

        event = await eventually(delivered)
        assert_shape(event, models.Event)
        assert event["payload"] == payload
        delivery_id = event["deliveries"][0]["id"]
        assert received.headers["webhook-id"] == delivery_id

        page = await client.list_deliveries(webhook["id"], status="succeeded")
        assert [d["id"] for d in page.items] == [delivery_id]
        assert_shape(page.items[0], models.Delivery)
        assert page.items[0]["event_id"] == accepted["event_id"]
        assert [d["id"] async for d in client.iter_deliveries(webhook["id"], limit=1)] == [
            delivery_id
        ]
        attempts = await client.get_delivery(delivery_id)
        assert_shape(attempts, models.DeliveryWithAttempts)
        assert [a["status_code"] for a in attempts["attempts"]] == [200]
        stats = await client.get_webhook_stats(webhook["id"], hours=1)
        assert_shape(stats, models.DeliveryStats)
        assert (stats["webhook_id"], stats["hours"]) == (webhook["id"], 1)
        assert stats["totals"] == {
            "pending": 0,
            "succeeded": 1,
            "failed": 0,
            "not_attempted": 0,
            "cancelled": 0,
        }
        assert (stats["attempted"], stats["success_rate"]) == (1, 1.0)
        assert sum(hour["succeeded"] for hour in stats["buckets"]) == 1

        redelivered = await client.redeliver(delivery_id)
        assert_shape(redelivered, models.Delivery)
        assert redelivered["status"] == "pending"
        second = (await receiver.wait_for(2))[1]
        assert second.headers["webhook-id"] == delivery_id

        rotation = await client.rotate_secret(webhook["id"])
        assert_shape(rotation, models.SecretRotation)
        assert rotation["secret"].startswith("whsec_") and rotation["secret"] != webhook["secret"]

        changed = await client.update_webhook(
            webhook["id"], filter=None, retry_schedule=(5, 60), timeout_seconds=7
        )
        assert_shape(changed, models.Webhook)
        assert (changed["filter"], changed["retry_schedule"], changed["timeout_seconds"]) == (
            None,
            [5, 60],
            7,
        )
        assert changed["custom_payload"] == {"source": "billing"}  # not sent, so not changed
        since = datetime.now(UTC) - timedelta(hours=1)
        assert await client.recover_webhook(webhook["id"], since) == {"recovering": 0}

        others = [
            await client.register_webhook(event_type["id"], receiver.url, user_id=user_id)
            for _ in range(2)
        ]
        first = await client.list_webhooks(user_id, limit=2)
        assert len(first.items) == 2 and first.next_cursor is not None
        rest = await client.list_webhooks(user_id, limit=2, cursor=first.next_cursor)
        assert rest.next_cursor is None
        newest_first = [others[1]["id"], others[0]["id"], webhook["id"]]
        assert [w["id"] for w in first.items + rest.items] == newest_first
        assert [w["id"] async for w in client.iter_webhooks(user_id, limit=1)] == newest_first

        deleted = await client.delete_webhook(webhook["id"])
        assert deleted["id"] == webhook["id"]
        with pytest.raises(NotFound) as missing:
            await client.get_webhook(webhook["id"])
        assert missing.value.status == 404


def verifies_with_ed25519(public_key: str, body: bytes, headers: dict[str, str]) -> bool:
    """Whether the delivery's `v1a` signature verifies with the `whpk_` key (the
    cryptography package directly, not the service's code)."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    [signature] = headers["webhook-signature"].split(" ")
    version, _, encoded = signature.partition(",")
    assert version == "v1a"
    key.verify(base64.b64decode(encoded), signed)  # raises InvalidSignature otherwise
    return True


async def test_one_endpoint_of_two_types_its_events_and_a_test_event_to_it(
    stack: Stack, receiver: Receiver
) -> None:
    user_id = new_user_id()
    async with AsyncWebhooksClient(stack.gateway_url) as client:
        first = await client.create_event_type(new_type_name())
        second = await client.create_event_type(new_type_name(), schema=INVOICE_SCHEMA)
        webhook = await client.register_webhook(
            None, receiver.url, event_type_ids=(first["id"], second["id"]), user_id=user_id
        )
        assert webhook["event_type_ids"] == [first["id"], second["id"]]
        listed = await client.list_webhooks(user_id, event_type_id=second["id"])
        assert [item["id"] for item in listed.items] == [webhook["id"]]

        accepted = await client.publish_event(first["name"], payload={}, user_id=user_id)
        sent = await client.send_test_event(webhook["id"], event_type=second["name"])
        assert_shape(sent, models.SentTestEvent)
        received = await receiver.wait_for(2)
        assert {r.headers["webhook-id"] for r in received} >= {sent["delivery_id"]}
        assert (await client.get_event(sent["event_id"]))["test"] is True

        page = await client.list_events(user_id, limit=1)
        assert [event["id"] for event in page.items] == [sent["event_id"]]
        assert_shape(page.items[0], models.ListedEvent)
        events = [event["id"] async for event in client.iter_events(user_id, limit=1)]
        assert events == [sent["event_id"], accepted["event_id"]]
        only_first = await client.list_events(user_id, event_type=first["name"])
        assert [event["id"] for event in only_first.items] == [accepted["event_id"]]

        changed = await client.update_webhook(webhook["id"], event_type_ids=[second["id"]])
        assert changed["event_type_ids"] == [second["id"]]


async def test_an_ed25519_webhook_gets_a_public_key_and_signatures_it_verifies(
    stack: Stack, receiver: Receiver
) -> None:
    user_id = new_user_id()
    async with AsyncWebhooksClient(stack.gateway_url) as client:
        assert await client.get_auth_mode() == {"auth_mode": "none"}
        event_type = await client.create_event_type(new_type_name(), schema=INVOICE_SCHEMA)
        webhook = await client.register_webhook(
            event_type["id"], receiver.url, user_id=user_id, signature_scheme="ed25519"
        )
        assert_shape(webhook, models.RegisteredWebhook)
        assert webhook["signature_scheme"] == "ed25519"
        assert webhook["secret"].startswith("whpk_")

        sample = await client.get_sample_event(webhook["id"])
        assert_shape(sample, models.SampleEvent)
        assert (sample["event_type_id"], sample["user_id"]) == (event_type["id"], user_id)
        await client.publish_event(
            sample["event_type"], payload=sample["payload"], user_id=sample["user_id"]
        )
        [received] = await receiver.wait_for(1)
        assert verifies_with_ed25519(webhook["secret"], received.body, received.headers)
        body = await client.get_delivery_body(received.headers["webhook-id"])
        assert_shape(body, models.DeliveryBody)
        assert body["body"].encode() == received.body

        # Back to hmac: the PATCH answer carries the new key, the old one signs for a while.
        changed = await client.update_webhook(webhook["id"], signature_scheme="hmac")
        assert_shape(changed, models.UpdatedWebhook)
        assert changed["signature_scheme"] == "hmac"
        assert changed["secret"].startswith("whsec_")
        assert (await client.get_webhook(webhook["id"]))["signature_scheme"] == "hmac"


async def test_error_answers_are_typed_exceptions(stack: Stack) -> None:
    user_id = new_user_id()
    async with AsyncWebhooksClient(stack.gateway_url) as client:
        with pytest.raises(NotFound) as unknown:
            await client.get_event(uuid.uuid4())
        assert unknown.value.status == 404 and unknown.value.message
        assert unknown.value.retry_after is None

        event_type = await client.create_event_type(new_type_name(), schema=INVOICE_SCHEMA)
        with pytest.raises(Unprocessable) as invalid:
            await client.publish_event(
                event_type["name"], payload={"invoice_id": "in_2", "amount": -5}, user_id=user_id
            )
        assert invalid.value.status == 422
        assert "payload at /amount" in invalid.value.message

        with pytest.raises(Conflict) as taken:
            await client.create_event_type(event_type["name"])
        assert taken.value.status == 409 and "name" in taken.value.message

        archived = await client.update_event_type(event_type["id"], archived=True)
        assert archived["archived"] is True
        with pytest.raises(Conflict):
            await client.publish_event(
                event_type_id=event_type["id"],
                payload={"invoice_id": "in_3", "amount": 1},
                user_id=user_id,
            )

        with pytest.raises(BadRequest) as bad_filter:
            await client.register_webhook(
                event_type["id"],
                "https://example.com/h",
                user_id=user_id,
                filter={"a": {"$near": 1}},
            )
        assert "$near" in bad_filter.value.message
        assert isinstance(bad_filter.value, ApiError)


def sync_flow(gateway_url: str, receiver_url: str, user_id: int) -> dict[str, Any]:
    """Everything a blocking program does, with the sync client."""
    with WebhooksClient(gateway_url) as client:
        event_type = client.create_event_type(new_type_name(), schema=INVOICE_SCHEMA)
        webhook = client.register_webhook(event_type["id"], receiver_url, user_id=user_id)
        extra = client.register_webhook(event_type["id"], receiver_url, user_id=user_id)
        accepted = client.publish_event(
            event_type["name"], payload={"invoice_id": "in_9", "amount": 9}, user_id=user_id
        )
        upload = client.upload_file(
            webhook["id"], b"hello", filename="hello.txt", content_type="text/plain"
        )
        assert_shape(upload, models.Upload)
        assert upload["size"] == 5
        listed = [w["id"] for w in client.iter_webhooks(user_id, limit=1)]
        assert listed == [extra["id"], webhook["id"]]
        return {
            "accepted": accepted,
            "webhook": webhook,
            "extra": extra,
            "client": client.get_webhook(webhook["id"]),
        }


def sync_delete(gateway_url: str, webhook_id: str) -> None:
    with WebhooksClient(gateway_url) as client:
        client.delete_webhook(webhook_id)
        with pytest.raises(NotFound):
            client.get_webhook(webhook_id)


async def test_sync_client_does_the_same_from_a_thread(stack: Stack, receiver: Receiver) -> None:
    # The stack runs on this event loop, so the blocking client runs in a thread.
    result = await asyncio.to_thread(sync_flow, stack.gateway_url, receiver.url, new_user_id())
    assert_shape(result["client"], models.Webhook)
    received = await receiver.wait_for(3)  # the event to both webhooks, then the upload
    types_ = sorted(r.json()["type"] for r in received)
    assert types_ == sorted([result["accepted"]["event_type"]] * 2 + ["upload.completed"])
    # Deleted only now: a delete cancels the webhook's deliveries still pending.
    await asyncio.to_thread(sync_delete, stack.gateway_url, result["extra"]["id"])


@pytest.mark.parametrize("stack_options", [StackOptions(rate_limit_per_second=1)])
async def test_a_rate_limit_carries_retry_after(stack: Stack) -> None:
    async with AsyncWebhooksClient(stack.gateway_url) as client:
        with pytest.raises(RateLimited) as limited:
            for _ in range(10):
                await client.list_event_types()
    assert limited.value.status == 429
    assert limited.value.retry_after is not None and limited.value.retry_after >= 1


@pytest.mark.parametrize("stack_options", [StackOptions(auth_mode="api_key", auth_cache_seconds=0)])
async def test_the_api_key_is_sent_as_a_bearer_token(stack: Stack, receiver: Receiver) -> None:
    user_id = new_user_id()
    async with stack.pool.acquire() as conn:
        key = await create_api_key(conn, user_id)
        admin_key = await create_api_key(conn, None)  # event types are written by admins only
    async with AsyncWebhooksClient(stack.gateway_url) as anonymous:
        with pytest.raises(Unauthorized) as refused:
            await anonymous.list_webhooks()
        assert refused.value.status == 401
        assert await anonymous.get_auth_mode() == {"auth_mode": "api_key"}  # needs no key
    async with AsyncWebhooksClient(stack.gateway_url, api_key=admin_key) as admin:
        event_type = await admin.create_event_type(new_type_name())
    async with AsyncWebhooksClient(stack.gateway_url, api_key=key) as client:
        with pytest.raises(Forbidden) as not_admin:
            await client.create_event_type(new_type_name())
        assert not_admin.value.status == 403
        webhook = await client.register_webhook(event_type["id"], receiver.url)  # the key's user
        assert webhook["user_id"] == user_id
        accepted = await client.publish_event(event_type["name"], payload={"n": 1})
        assert accepted["user_id"] == user_id
        assert [w["id"] async for w in client.iter_webhooks()] == [webhook["id"]]
    await receiver.wait_for(1)


# ---- The README's example, as it stands ----------------------------------------------------

README = Path(__file__).resolve().parents[1] / "client" / "README.md"
EXAMPLE_HEADING = "A whole program"


def readme_example() -> str:
    text = README.read_text()
    start = text.index("```python\n", text.index(EXAMPLE_HEADING)) + len("```python\n")
    return text[start : text.index("```\n", start)]


async def run_example(path: Path, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(path),
        env={**env, "PYTHONPATH": str(README.parent / "publisher")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await asyncio.wait_for(process.communicate(), timeout=60))[0].decode()
    assert process.returncode == 0, out
    return out


@pytest.mark.parametrize(
    "stack_options",
    [StackOptions(), StackOptions(auth_mode="api_key", auth_cache_seconds=0)],
    ids=["auth_mode=none", "auth_mode=api_key"],
)
async def test_the_readme_example_runs_as_it_stands(
    stack: Stack, stack_options: StackOptions, tmp_path: Path
) -> None:
    """Twice, after someone else made `invoice.paid`: neither the type (409) nor the
    Idempotency-Key (replayed) makes a second run fail."""
    env = {"PATH": "/usr/bin:/bin", "WEBHOOKS_URL": stack.gateway_url}
    if stack_options.auth_mode == "api_key":
        user_id = new_user_id()
        async with stack.pool.acquire() as conn:
            env["WEBHOOKS_API_KEY"] = await create_api_key(conn, user_id)
            env["WEBHOOKS_ADMIN_KEY"] = await create_api_key(conn, None)
    else:
        user_id = 1
    async with AsyncWebhooksClient(
        stack.gateway_url, api_key=env.get("WEBHOOKS_ADMIN_KEY")
    ) as admin:
        with contextlib.suppress(Conflict):  # as after the README's curl flow
            await admin.create_event_type("invoice.paid", schema=INVOICE_SCHEMA)
    example = tmp_path / "example.py"
    example.write_text(readme_example())

    first = await run_example(example, env)
    second = await run_example(example, env)

    for out in (first, second):
        lines = out.splitlines()
        assert lines[0].startswith("whsec_"), out
        assert lines[1] == "['pending']", out  # one delivery: the first run's webhook's
    # Each run registered a webhook of its own, listed as the user's.
    listed = [line for line in second.splitlines() if "example.com/hooks/big-invoices" in line]
    mine = [line for line in first.splitlines() if "example.com/hooks/big-invoices" in line]
    assert len(listed) == len(mine) + 1, (first, second)
    assert first.splitlines()[0] != second.splitlines()[0]  # two webhooks, two secrets
