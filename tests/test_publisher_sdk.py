"""The publisher SDK in client/publisher: generated from the document's snapshot, with one
method per operation on both clients, driving the real stack through the gateway (register,
publish, deliveries page by page, redeliver, and each error status as its typed error)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import secrets
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from harness.receiver import Receiver
from harness.stack import Stack, StackOptions
from services.registration.commands import create_api_key
from services.registration.openapi import openapi_document

# The package is installed with `pip install ./client/publisher`; the suite uses the checkout,
# whose generated parts `make` writes (client/publisher/build_client.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client" / "publisher"))

from webhooks_publisher import (
    UNSET,
    ApiError,
    AsyncWebhooksClient,
    BadRequest,
    Conflict,
    File,
    Forbidden,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unprocessable,
    WebhooksClient,
    models,
)

Answer = TypeVar("Answer")
INVOICE_SCHEMA = {
    "type": "object",
    "required": ["invoice_id", "amount"],
    "properties": {"invoice_id": {"type": "string"}, "amount": {"type": "integer", "minimum": 0}},
}


def snake_case(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def test_both_clients_have_a_method_per_operation_of_the_document() -> None:
    operations = {
        snake_case(operation["operationId"])
        for item in openapi_document()["paths"].values()
        for operation in item.values()
        if operation["tags"] != ["meta"] or operation["operationId"] == "getAuthMode"
    }
    for client in (AsyncWebhooksClient, WebhooksClient):
        assert operations <= set(vars(client)), operations - set(vars(client))
    for name in vars(AsyncWebhooksClient):
        if not name.startswith("_"):
            asynchronous = inspect.signature(getattr(AsyncWebhooksClient, name))
            assert inspect.signature(getattr(WebhooksClient, name)).parameters == (
                asynchronous.parameters
            )
    assert {"iter_webhooks", "iter_deliveries", "iter_events"} <= set(vars(WebhooksClient))


def new_user_id() -> int:
    """A user of this test alone (the database is shared by the whole run)."""
    return secrets.randbelow(10**12) + 10**6


def new_type(schema: dict[str, Any] | None = None) -> models.EventTypeCreate:
    return models.EventTypeCreate(
        name=f"invoice.paid.{uuid.uuid4().hex[:12]}",
        schema=UNSET if schema is None else models.EventTypeCreateSchema.from_dict(schema),
    )


def event(type_name: str, user_id: int, **payload: Any) -> models.EventRequest:
    return models.EventRequest(
        user_id=user_id,
        event_type=type_name,
        payload=models.EventRequestPayload.from_dict(payload),
    )


async def eventually(
    check: Callable[[], Awaitable[Answer | None]], timeout: float = 20.0
) -> Answer:
    deadline = time.monotonic() + timeout
    while (result := await check()) is None:
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
    return result


async def test_register_publish_list_deliveries_page_by_page_and_redeliver(
    stack: Stack, receiver: Receiver
) -> None:
    user_id = new_user_id()
    async with AsyncWebhooksClient(stack.gateway_url) as client:
        event_type = await client.create_event_type(body=new_type(INVOICE_SCHEMA))
        assert event_type.schema is not None and event_type.schema.to_dict() == INVOICE_SCHEMA
        assert [t.id for t in await client.list_event_types(name=event_type.name)] == [
            event_type.id
        ]
        webhook = await client.register_webhook(
            body=models.WebhookRegistration(
                user_id=user_id,
                url=receiver.url,
                event_type_id=event_type.id,
                custom_payload=models.WebhookRegistrationCustomPayload.from_dict(
                    {"source": "billing"}
                ),
                filter_=models.WebhookRegistrationFilter.from_dict({"amount": {"$gte": 100}}),
            )
        )
        assert webhook.secret.startswith("whsec_")

        # The Idempotency-Key: a repeat answers the first event, nothing is published twice.
        first = await client.publish_event(
            body=event(event_type.name, user_id, invoice_id="in_1", amount=150),
            idempotency_key="in_1-paid",
        )
        again = await client.publish_event(
            body=event(event_type.name, user_id, invoice_id="in_1", amount=150),
            idempotency_key="in_1-paid",
        )
        assert again.event_id == first.event_id
        second = await client.publish_event(
            body=event(event_type.name, user_id, invoice_id="in_2", amount=200)
        )
        received = await receiver.wait_for(2)
        bodies = [Verifier(webhook.secret).verify(r.body, r.headers) for r in received]
        assert sorted(b["data"]["invoice_id"] for b in bodies) == ["in_1", "in_2"]
        assert {b["source"] for b in bodies} == {"billing"}

        async def both_delivered() -> list[models.Delivery] | None:
            page = await client.list_deliveries(
                webhook.id, status=models.ListDeliveriesStatus.SUCCEEDED
            )
            return page.items if len(page.items) == 2 else None

        delivered = await eventually(both_delivered)
        assert [d.event_id for d in delivered] == [second.event_id, first.event_id]

        # Paging: one a page, by hand and by the iterator, newest first.
        page = await client.list_deliveries(webhook.id, limit=1)
        assert [d.id for d in page.items] == [delivered[0].id]
        assert page.next_cursor is not None
        rest = await client.list_deliveries(webhook.id, limit=1, cursor=page.next_cursor)
        assert [d.id for d in rest.items] == [delivered[1].id] and rest.next_cursor is None
        every = [d.id async for d in client.iter_deliveries(webhook.id, limit=1)]
        assert every == [d.id for d in delivered]

        redelivered = await client.redeliver(delivered[1].id)
        assert redelivered.status == models.DeliveryStatus.PENDING
        third = (await receiver.wait_for(3))[2]
        assert third.headers["webhook-id"] == str(delivered[1].id)

        async def two_attempts() -> models.DeliveryWithAttempts | None:
            found = await client.get_delivery(delivered[1].id)
            return found if len(found.attempts) == 2 else None

        attempts = await eventually(two_attempts)
        assert [a.status_code for a in attempts.attempts] == [200, 200]
        since = datetime.now(UTC) - timedelta(hours=1)
        recovering = await client.recover_webhook(webhook.id, body=models.RecoverRequest(since))
        assert recovering.recovering == 0

        changed = await client.update_webhook(
            webhook.id, body=models.WebhookPatch(filter_=None, timeout_seconds=7)
        )
        assert (changed.filter_, changed.timeout_seconds) == (None, 7)
        deleted = await client.delete_webhook(webhook.id)
        assert deleted.id == webhook.id
        with pytest.raises(NotFound) as missing:
            await client.get_webhook(webhook.id)
        assert missing.value.status == 404 and missing.value.retry_after is None


async def test_the_other_operations_answer_their_models(stack: Stack, receiver: Receiver) -> None:
    """Every other operation once: the service's answer parses into the generated model."""
    user_id = new_user_id()
    async with AsyncWebhooksClient(stack.gateway_url) as client:
        first = await client.create_event_type(body=new_type())
        second = await client.create_event_type(body=new_type(INVOICE_SCHEMA))
        assert (await client.get_event_type(second.id)).name == second.name
        webhook = await client.register_webhook(
            body=models.WebhookRegistration(
                user_id=user_id, url=receiver.url, event_type_ids=[first.id, second.id]
            )
        )
        assert webhook.event_type_ids == [first.id, second.id]
        listed = await client.list_webhooks(user_id=user_id, event_type_id=second.id)
        assert [w.id for w in listed.items] == [webhook.id]

        accepted = await client.publish_event(body=event(first.name, user_id))
        sample = await client.get_sample_event(webhook.id)
        assert (sample.event_type_id, sample.user_id) == (first.id, user_id)
        sent = await client.send_test_event(
            webhook.id,
            body=models.SendTestEvent(
                event_type=second.name,
                payload=models.SendTestEventPayload.from_dict({"invoice_id": "t", "amount": 1}),
            ),
        )
        received = await receiver.wait_for(2)
        assert str(sent.delivery_id) in {r.headers["webhook-id"] for r in received}
        assert (await client.get_event(sent.event_id)).test is True
        body = await client.get_delivery_body(sent.delivery_id)
        assert body.body.encode() in {r.body for r in received}

        page = await client.list_events(user_id=user_id, limit=1)
        assert [e.id for e in page.items] == [sent.event_id]
        every = [e.id async for e in client.iter_events(user_id=user_id, limit=1)]
        assert every == [sent.event_id, accepted.event_id]

        stats = await client.get_webhook_stats(webhook.id, hours=1)
        assert (stats.webhook_id, stats.hours) == (webhook.id, 1)
        rotation = await client.rotate_secret(webhook.id)
        assert rotation.secret.startswith("whsec_") and rotation.secret != webhook.secret
        archived = await client.update_event_type(
            first.id, body=models.EventTypePatch(archived=True)
        )
        assert archived.archived is True


async def test_each_error_status_is_its_typed_error(stack: Stack) -> None:
    user_id = new_user_id()
    async with AsyncWebhooksClient(stack.gateway_url) as client:
        with pytest.raises(NotFound) as unknown:
            await client.get_event(uuid.uuid4())
        assert unknown.value.status == 404 and "event" in unknown.value.message

        event_type = await client.create_event_type(body=new_type(INVOICE_SCHEMA))
        with pytest.raises(Unprocessable) as invalid:
            await client.publish_event(
                body=event(event_type.name, user_id, invoice_id="in_2", amount=-5)
            )
        assert invalid.value.status == 422 and "payload at /amount" in invalid.value.message

        with pytest.raises(Conflict) as taken:
            await client.create_event_type(body=models.EventTypeCreate(name=event_type.name))
        assert taken.value.status == 409 and "name" in taken.value.message

        with pytest.raises(BadRequest) as bad_filter:
            await client.register_webhook(
                body=models.WebhookRegistration(
                    user_id=user_id,
                    url="https://example.com/h",
                    event_type_id=event_type.id,
                    filter_=models.WebhookRegistrationFilter.from_dict({"a": {"$near": 1}}),
                )
            )
        assert bad_filter.value.status == 400 and "$near" in bad_filter.value.message
        assert isinstance(bad_filter.value, ApiError)

        with pytest.raises(Forbidden) as system_type:
            await client.publish_event(body=event("upload file", user_id))
        assert system_type.value.status == 403

        with pytest.raises(TooLarge) as too_large:
            await client.publish_event(
                body=event(event_type.name, user_id, invoice_id="x" * 70_000, amount=1)
            )
        assert too_large.value.status == 413


@pytest.mark.parametrize("stack_options", [StackOptions(rate_limit_per_second=1)])
async def test_a_rate_limit_carries_retry_after(stack: Stack) -> None:
    async with AsyncWebhooksClient(stack.gateway_url) as client:
        with pytest.raises(RateLimited) as limited:
            for _ in range(10):
                await client.list_event_types()
    assert limited.value.status == 429
    assert limited.value.retry_after is not None and limited.value.retry_after >= 1


@pytest.mark.parametrize("stack_options", [StackOptions(auth_mode="api_key", auth_cache_seconds=0)])
async def test_the_api_key_is_sent_as_a_bearer_token(stack: Stack) -> None:
    user_id = new_user_id()
    async with stack.pool.acquire() as conn:
        admin_key = await create_api_key(conn, None)
    async with AsyncWebhooksClient(stack.gateway_url) as anonymous:
        with pytest.raises(Unauthorized) as refused:
            await anonymous.list_webhooks(user_id=user_id)
        assert refused.value.status == 401
        auth_mode = await anonymous.get_auth_mode()  # needs no key
        assert auth_mode.auth_mode.value == "api_key"
    async with AsyncWebhooksClient(stack.gateway_url, api_key=admin_key) as admin:
        made = await admin.create_api_key(body=models.ApiKeyCreate(user_id=user_id))
        assert made.key.startswith("whk_") and made.user_id == user_id
        assert made.id in [k.id async for k in admin.iter_api_keys(limit=1)]
        link = await admin.create_portal_session(
            body=models.PortalSessionCreate(user_id=user_id, expires_in_seconds=60)
        )
        assert "#session=" in link.url
        assert (await admin.revoke_portal_session(link.id)).portal is True
    async with AsyncWebhooksClient(stack.gateway_url, api_key=made.key) as client:
        with pytest.raises(Forbidden) as not_admin:
            await client.create_event_type(body=new_type())
        assert not_admin.value.status == 403
        with pytest.raises(Forbidden) as other_user:
            await client.list_webhooks(user_id=user_id + 1)
        assert other_user.value.status == 403
        page = await client.list_webhooks(user_id=user_id)
        assert page.items == [] and page.next_cursor is None
    async with AsyncWebhooksClient(stack.gateway_url, api_key=admin_key) as admin:
        assert (await admin.revoke_api_key(made.id)).id == made.id


def sync_flow(gateway_url: str, receiver_url: str, user_id: int) -> list[str]:
    """What a blocking program does, with the sync client: the ids it registered."""
    with WebhooksClient(gateway_url) as client:
        event_type = client.create_event_type(body=new_type())
        webhooks = [
            client.register_webhook(
                body=models.WebhookRegistration(
                    user_id=user_id, url=receiver_url, event_type_id=event_type.id
                )
            )
            for _ in range(3)
        ]
        upload = models.UploadForm(
            file=File(io.BytesIO(b"hello"), file_name="hello.txt", mime_type="text/plain")
        )
        stored = client.upload_file(webhooks[0].id, body=upload, idempotency_key="hello-1")
        assert stored.size == 5
        upload.file.payload.seek(0)
        replayed = client.upload_file(webhooks[0].id, body=upload, idempotency_key="hello-1")
        assert replayed.upload_id == stored.upload_id
        return [str(w.id) for w in client.iter_webhooks(user_id=user_id, limit=2)]


async def test_the_sync_client_does_the_same_from_a_thread(
    stack: Stack, receiver: Receiver
) -> None:
    # The stack runs on this event loop, so the blocking client runs in a thread.
    listed = await asyncio.to_thread(sync_flow, stack.gateway_url, receiver.url, new_user_id())
    assert len(listed) == 3 and len(set(listed)) == 3
    [received] = await receiver.wait_for(1)  # one upload, one delivery, despite the repeat
    assert received.json()["type"] == "upload.completed"


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
    user_id = new_user_id() if stack_options.auth_mode == "api_key" else 1
    env["WEBHOOKS_USER_ID"] = str(user_id)
    if stack_options.auth_mode == "api_key":
        async with stack.pool.acquire() as conn:
            env["WEBHOOKS_API_KEY"] = await create_api_key(conn, user_id)
            env["WEBHOOKS_ADMIN_KEY"] = await create_api_key(conn, None)
    async with AsyncWebhooksClient(
        stack.gateway_url, api_key=env.get("WEBHOOKS_ADMIN_KEY")
    ) as admin:
        with contextlib.suppress(Conflict):  # as after the README's curl flow
            await admin.create_event_type(
                body=models.EventTypeCreate(
                    name="invoice.paid",
                    schema=models.EventTypeCreateSchema.from_dict(INVOICE_SCHEMA),
                )
            )
    example = tmp_path / "example.py"
    example.write_text(readme_example())

    first = await run_example(example, env)
    second = await run_example(example, env)

    for out in (first, second):
        lines = out.splitlines()
        assert lines[0].startswith("whsec_"), out
        assert lines[1] == "['pending']", out  # one delivery: the first run's webhook's
    listed = [line for line in second.splitlines() if "example.com/hooks/big-invoices" in line]
    mine = [line for line in first.splitlines() if "example.com/hooks/big-invoices" in line]
    assert len(listed) == len(mine) + 1, (first, second)
    assert first.splitlines()[0] != second.splitlines()[0]  # two webhooks, two secrets
