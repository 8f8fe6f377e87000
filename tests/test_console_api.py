"""The API routes the console needs, through the real gateway: delivery stats, the body as
sent, a sample test event, the auth mode, and the console's page and assets."""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import UTC, datetime

import jsonschema
import orjson
import pytest

from harness.receiver import Receiver, Reply
from harness.stack import Stack, StackOptions
from services.registration.console import CONTENT_SECURITY_POLICY
from tests.test_management import call, ok, refused, unique_user
from tests.test_security import create_key

NO_RETRIES = StackOptions(retry_schedule=())
API_KEYS = StackOptions(auth_mode="api_key", auth_cache_seconds=0)
ORDER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["order_id", "total"],
    "properties": {
        "order_id": {"type": "string", "minLength": 3},
        "total": {"type": "integer", "minimum": 1},
    },
}


async def new_event_type(stack: Stack, schema: dict[str, object] | None) -> uuid.UUID:
    """A type of this test's own (the events API's admin route is not this test's subject)."""
    name = f"order.paid.{uuid.uuid4().hex[:8]}"
    event_type_id = uuid.uuid4()
    await stack.pool.execute(
        "INSERT INTO event_types (id, name, description, event_name, schema) "
        "VALUES ($1, $2, 'test', $2, $3)",
        event_type_id,
        name,
        schema,
    )
    return event_type_id


@pytest.mark.parametrize("stack_options", [NO_RETRIES])
async def test_stats_count_deliveries_by_outcome_per_hour(stack: Stack) -> None:
    receiver = await Receiver([Reply(200), Reply(500)]).start()
    try:
        webhook = await stack.register(receiver.url, user_id=unique_user())
        first = await stack.upload(webhook["id"])
        await stack.wait_for_status(
            (await stack.delivery_for_upload(first["upload_id"]))["id"], "succeeded"
        )
        second = await stack.upload(webhook["id"])
        await stack.wait_for_status(
            (await stack.delivery_for_upload(second["upload_id"]))["id"], "failed"
        )
    finally:
        await receiver.stop()
    stats = await ok(stack, "GET", f"/webhook/{webhook['id']}/stats")
    assert stats["webhook_id"] == webhook["id"] and stats["hours"] == 24
    assert stats["totals"] == {
        "pending": 0, "succeeded": 1, "failed": 1, "not_attempted": 0, "cancelled": 0
    }  # fmt: skip
    assert stats["attempted"] == 2 and stats["success_rate"] == 0.5
    buckets = stats["buckets"]
    assert len(buckets) == 25
    starts = [datetime.strptime(b["start"], "%Y-%m-%d %H:%M:%S") for b in buckets]
    assert all((b - a).total_seconds() == 3600 for a, b in itertools.pairwise(starts))
    assert starts[-1] == datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    assert sum(b["succeeded"] for b in buckets) == 1 and buckets[-1]["failed"] == 1
    narrow = await ok(stack, "GET", f"/webhook/{webhook['id']}/stats?hours=1")
    assert len(narrow["buckets"]) == 2 and narrow["totals"]["succeeded"] == 1


async def test_stats_of_a_webhook_without_deliveries_and_bad_input(stack: Stack) -> None:
    webhook = await stack.register("https://example.com/hook", user_id=unique_user())
    stats = await ok(stack, "GET", f"/webhook/{webhook['id']}/stats")
    assert stats["attempted"] == 0 and stats["success_rate"] is None
    assert all(set(b.values()) - {b["start"]} == {0} for b in stats["buckets"])
    for hours in ("0", "169", "x"):
        message = await refused(stack, "GET", f"/webhook/{webhook['id']}/stats?hours={hours}")
        assert message.startswith("hours"), message
    await refused(stack, "GET", f"/webhook/{uuid.uuid4()}/stats", status=404)
    await refused(stack, "GET", "/webhook/nope/stats", status=400)


async def test_the_body_as_sent_is_the_bytes_the_endpoint_received(
    stack: Stack, receiver: Receiver
) -> None:
    webhook = await stack.register(receiver.url, custom_payload={"team": "<b>ops</b>"})
    upload = await stack.upload(webhook["id"])
    delivery = await stack.delivery_for_upload(upload["upload_id"])
    (received,) = await receiver.wait_for(1)
    shown = await ok(stack, "GET", f"/delivery/{delivery['id']}/body")
    assert shown == {"id": str(delivery["id"]), "body": received.body.decode()}
    assert orjson.loads(shown["body"])["team"] == "<b>ops</b>"
    await refused(stack, "GET", f"/delivery/{uuid.uuid4()}/body", status=404)
    await refused(stack, "GET", "/delivery/nope/body", status=400)


async def test_a_sample_event_fits_the_webhooks_type(stack: Stack) -> None:
    user = unique_user()
    upload_hook = await stack.register("https://example.com/a", user_id=user)
    sample = await ok(stack, "GET", f"/webhook/{upload_hook['id']}/sample_event")
    assert sample == {
        "event_type_id": upload_hook["event_type_id"],
        "event_type": "upload file",
        "user_id": user,
        "payload": {"test": True},
    }
    typed = await new_event_type(stack, ORDER_SCHEMA)
    order_hook = await stack.register(
        "https://example.com/b", user_id=user, event_type_id=str(typed)
    )
    sample = await ok(stack, "GET", f"/webhook/{order_hook['id']}/sample_event")
    assert sample["event_type_id"] == str(typed) and sample["user_id"] == user
    assert sample["event_type"].startswith("order.paid.")
    jsonschema.validate(sample["payload"], ORDER_SCHEMA)
    await refused(stack, "GET", f"/webhook/{uuid.uuid4()}/sample_event", status=404)


async def test_auth_mode_is_open_and_says_none(stack: Stack) -> None:
    assert await ok(stack, "GET", "/auth_mode") == {"auth_mode": "none"}


@pytest.mark.parametrize("stack_options", [API_KEYS])
async def test_with_api_keys_the_new_routes_need_the_owners_key(stack: Stack) -> None:
    code, envelope = await call(stack, "GET", "/auth_mode")
    assert (code, envelope["data"]) == (200, {"auth_mode": "api_key"})
    alice, bob = unique_user(), unique_user()
    alice_key, bob_key = create_key(stack.database_url, alice), create_key(stack.database_url, bob)
    async with stack.http.post(
        f"{stack.gateway_url}/webhook/register",
        json={
            "event_type_id": "21f8e1f7-4142-42f9-ac30-74961702b2eb",
            "url": "https://example.com/h",
        },
        headers={"Authorization": f"Bearer {alice_key}"},
    ) as resp:
        webhook = (await resp.json())["data"]
    for path in (f"/webhook/{webhook['id']}/stats", f"/webhook/{webhook['id']}/sample_event"):
        code, _ = await call(stack, "GET", path)
        assert code == 401, path
        code, _ = await call(stack, "GET", path, headers={"Authorization": f"Bearer {bob_key}"})
        assert code == 404, path
        code, _ = await call(stack, "GET", path, headers={"Authorization": f"Bearer {alice_key}"})
        assert code == 200, path
    code, _ = await call(stack, "GET", f"/delivery/{uuid.uuid4()}/body")
    assert code == 401


async def test_console_page_and_assets_through_the_gateway(stack: Stack) -> None:
    async with stack.http.get(f"{stack.gateway_url}/console") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert resp.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert resp.headers["Cache-Control"] == "no-cache"
        page = await resp.text()
    policy = CONTENT_SECURITY_POLICY
    script_src = policy.split("script-src", 1)[1].split(";", 1)[0]
    assert script_src.strip() == "'self'" and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert " on" not in page.lower().replace("\n", " ").split("<body", 1)[1].split(">", 1)[0]
    assert "style=" not in page and "http://" not in page and "https://" not in page
    assets = re.findall(r'(?:src|href)="(/console/assets/[0-9a-f]+/[^"]+)"', page)
    assert assets
    for path in assets:
        async with stack.http.get(f"{stack.gateway_url}{path}") as resp:
            assert resp.status == 200, path
            assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert resp.content_type in ("text/javascript", "text/css"), path
    stale = re.sub(r"/assets/[0-9a-f]+/", "/assets/0123/", assets[0])
    async with stack.http.get(f"{stack.gateway_url}{stale}") as resp:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"
    version = assets[0].split("/")[3]
    for missing in (f"/console/assets/{version}/nope.js", f"/console/assets/{version}/..%2Fapp.py"):
        async with stack.http.get(f"{stack.gateway_url}{missing}") as resp:
            assert resp.status in (400, 404), missing
