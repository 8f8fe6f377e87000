"""The management API through the real gateway: see, change, delete, inspect, replay, rotate."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from harness.receiver import Received, Receiver, Reply
from harness.stack import Stack, StackOptions
from services.common.settings import Env
from services.common.web import BadRequest
from services.registration import views
from services.registration.app import create_app as create_registration
from services.registration.pagination import Cursor, decode_cursor
from services.registration.settings import RegistrationSettings

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
# The response shapes, as the OpenAPI document declares them.
WEBHOOK_KEYS = set(views.Webhook.model_fields)
DELIVERY_KEYS = set(views.Delivery.model_fields)
ATTEMPT_KEYS = set(views.Attempt.model_fields)
NO_RETRIES = StackOptions(retry_schedule=())
T = TypeVar("T")


async def call(
    stack: Stack,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One request through the gateway; the answer is checked to be our envelope."""
    async with stack.http.request(
        method, f"{stack.gateway_url}{path}", json=body, data=raw, headers=headers
    ) as resp:
        assert resp.content_type == "application/json", await resp.text()
        envelope: dict[str, Any] = await resp.json()
    assert {"message", "data", "error"} <= set(envelope), envelope
    assert envelope["error"] is (resp.status >= 400), (resp.status, envelope)
    return resp.status, envelope


async def ok(stack: Stack, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    code, envelope = await call(stack, method, path, body)
    assert code == status, envelope
    return envelope["data"]


async def refused(stack: Stack, method: str, path: str, body: Any = None, status: int = 400) -> str:
    """The error message of a request that must fail with `status`."""
    code, envelope = await call(stack, method, path, body)
    assert code == status, envelope
    assert envelope["data"] == {}
    message: str = envelope["message"]
    return message


def unique_user() -> int:
    return uuid.uuid4().int % 2**62 + 1


async def delivery_of(stack: Stack, upload: dict[str, Any]) -> uuid.UUID:
    row = await stack.delivery_for_upload(upload["upload_id"])
    delivery_id: uuid.UUID = row["id"]
    return delivery_id


def signatures(request: Received) -> list[str]:
    header = request.headers["webhook-signature"]
    assert "  " not in header and header == header.strip()
    return header.split(" ")


def verifies(secret: str, request: Received) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


async def eventually(
    fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 10.0
) -> T:
    """Poll `fetch` until `done` says yes; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"still {value!r} after {timeout} s"
        await asyncio.sleep(0.05)


@pytest.fixture
async def failing_receiver() -> AsyncIterator[Receiver]:
    """Answers 500 until its `replies` are changed."""
    server = await Receiver([Reply(500)]).start()
    yield server
    await server.stop()


# --- GET /webhook/{webhook_id} --------------------------------------------------------------------


async def test_get_webhook_shows_everything_but_the_secret(stack: Stack) -> None:
    registered = await stack.register(
        "https://example.com/hook",
        custom_headers={"X-Tenant": "acme"},
        custom_payload={"key1": "value1"},
    )
    webhook = await ok(stack, "GET", f"/webhook/{registered['id']}")
    assert set(webhook) == WEBHOOK_KEYS
    assert "secret" not in str(webhook) and registered["secret"] not in str(webhook)
    assert webhook == {
        "id": registered["id"],
        "user_id": 1,
        "url": "https://example.com/hook",
        "event_type_id": registered["event_type_id"],
        "event_type_ids": [registered["event_type_id"]],
        "custom_headers": {"X-Tenant": "acme"},
        "custom_payload": {"key1": "value1"},
        "disabled": False,
        "disabled_reason": None,
        # Not given at registration: every event, the service's schedule and timeout.
        "filter": None,
        "retry_schedule": None,
        "timeout_seconds": None,
        "signature_scheme": "hmac",
        "max_concurrency": None,
        "rate_limit_per_second": None,
        "auth": None,
        "tls_client_certificate": None,
        "tls_ca": None,
        "created_at": registered["created_at"],
        "updated_at": registered["updated_at"],
    }
    assert TIMESTAMP.match(webhook["created_at"]) and TIMESTAMP.match(webhook["updated_at"])


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE", "PUT"])
async def test_register_is_not_a_webhook_id(stack: Stack, method: str) -> None:
    async with stack.http.request(method, f"{stack.gateway_url}/webhook/register") as resp:
        assert resp.status == 405
        assert resp.headers.getall("Allow") == ["POST"]
        assert (await resp.json())["error"] is True
    # ... and registering still works.
    registered = await stack.register("https://example.com/still")
    assert registered["secret"].startswith("whsec_")


# Every management route, with its method and a body that would be valid.
ROUTES = [
    ("GET", "/webhook/{w}", None),
    ("PATCH", "/webhook/{w}", {"url": "https://example.com/other"}),
    ("DELETE", "/webhook/{w}", None),
    ("GET", "/webhook/{w}/deliveries", None),
    ("POST", "/webhook/{w}/recover", {"since": "2020-01-01T00:00:00Z"}),
    ("POST", "/webhook/{w}/secret/rotate", None),
    ("GET", "/delivery/{d}", None),
    ("POST", "/delivery/{d}/redeliver", None),
]


@pytest.mark.parametrize(("method", "template", "body"), ROUTES)
async def test_ids_that_are_not_uuids_are_400(
    stack: Stack, method: str, template: str, body: Any
) -> None:
    for bad in ("nope", "123", "21f8e1f7-4142-42f9-ac30-74961702b2e"):
        message = await refused(stack, method, template.format(w=bad, d=bad), body)
        name = "webhook_id" if "{w}" in template else "delivery_id"
        assert name in message and "UUID" in message


@pytest.mark.parametrize(("method", "template", "body"), ROUTES)
async def test_unknown_ids_are_404(stack: Stack, method: str, template: str, body: Any) -> None:
    unknown = str(uuid.uuid4())
    message = await refused(stack, method, template.format(w=unknown, d=unknown), body, 404)
    assert unknown in message


# --- GET /webhook?user_id= ------------------------------------------------------------------------


async def test_listing_walks_every_page_once_newest_first(stack: Stack) -> None:
    user = unique_user()
    ids = [(await stack.register(f"https://example.com/{n}", user_id=user))["id"] for n in range(7)]
    other = await stack.register("https://example.com/other", user_id=user + 1)
    deleted = await stack.register("https://example.com/deleted", user_id=user)
    await ok(stack, "DELETE", f"/webhook/{deleted['id']}")

    seen: list[str] = []
    pages = []
    cursor: str | None = None
    while True:
        query = f"user_id={user}&limit=3" + (f"&cursor={cursor}" if cursor else "")
        code, envelope = await call(stack, "GET", f"/webhook?{query}")
        assert code == 200, envelope
        assert "next_cursor" in envelope
        pages.append(len(envelope["data"]))
        for webhook in envelope["data"]:
            assert set(webhook) == WEBHOOK_KEYS
            assert webhook["user_id"] == user
        seen += [webhook["id"] for webhook in envelope["data"]]
        cursor = envelope["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert pages == [3, 3, 1]
    assert seen == list(reversed(ids))  # newest first, each once
    assert other["id"] not in seen and deleted["id"] not in seen

    code, envelope = await call(stack, "GET", f"/webhook?user_id={user}")
    assert code == 200 and envelope["next_cursor"] is None and len(envelope["data"]) == 7
    code, envelope = await call(stack, "GET", f"/webhook?user_id={user}&limit=7")
    assert envelope["next_cursor"] is None and len(envelope["data"]) == 7
    code, envelope = await call(stack, "GET", f"/webhook?user_id={unique_user()}")
    assert code == 200 and envelope["data"] == [] and envelope["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "user_id"),
        ("user_id=", "user_id"),
        ("user_id=0", "user_id"),
        ("user_id=-1", "user_id"),
        ("user_id=1.5", "user_id"),
        ("user_id=abc", "user_id"),
        ("user_id=99999999999999999999", "user_id"),
        ("user_id=1&limit=0", "limit"),
        ("user_id=1&limit=201", "limit"),
        ("user_id=1&limit=ten", "limit"),
        ("user_id=1&cursor=bm9wZQ", "cursor"),
        ("user_id=1&cursor=%25%25", "cursor"),
        ("user_id=1&cursor=", "cursor"),
    ],
)
async def test_listing_refuses_bad_query_strings(stack: Stack, query: str, field: str) -> None:
    message = await refused(stack, "GET", f"/webhook?{query}")
    assert field in message


async def test_a_cursor_of_another_list_is_refused(stack: Stack, receiver: Receiver) -> None:
    webhook = await stack.register(receiver.url)
    for _ in range(2):
        await stack.upload(webhook["id"])
    code, envelope = await call(stack, "GET", f"/webhook/{webhook['id']}/deliveries?limit=1")
    assert code == 200 and envelope["next_cursor"]
    message = await refused(stack, "GET", f"/webhook?user_id=1&cursor={envelope['next_cursor']}")
    assert "cursor" in message


async def test_limit_up_to_200_is_accepted(stack: Stack) -> None:
    code, envelope = await call(stack, "GET", "/webhook?user_id=1&limit=200")
    assert code == 200 and len(envelope["data"]) <= 200


# --- PATCH /webhook/{webhook_id} ------------------------------------------------------------------


async def test_patch_changes_what_the_next_delivery_looks_like(stack: Stack) -> None:
    first = await Receiver().start()
    second = await Receiver().start()
    try:
        registered = await stack.register(first.url, custom_headers={"X-Old": "1"})
        before = await stack.pool.fetchrow(
            "SELECT r.updated_at AS r, c.updated_at AS c FROM webhook_registrations r "
            "JOIN webhook_configurations c ON c.webhook_id = r.id WHERE r.id = $1",
            uuid.UUID(registered["id"]),
        )
        changes = {
            "url": second.url,
            "custom_headers": {"X-New": "2"},
            "custom_payload": {"tenant": "acme"},
        }
        code, envelope = await call(stack, "PATCH", f"/webhook/{registered['id']}", changes)
        assert code == 200, envelope
        updated = envelope["data"]
        assert set(updated) == WEBHOOK_KEYS
        assert {key: updated[key] for key in changes} == changes
        assert updated["created_at"] == registered["created_at"]
        assert await ok(stack, "GET", f"/webhook/{registered['id']}") == updated
        after = await stack.pool.fetchrow(
            "SELECT r.updated_at AS r, c.updated_at AS c FROM webhook_registrations r "
            "JOIN webhook_configurations c ON c.webhook_id = r.id WHERE r.id = $1",
            uuid.UUID(registered["id"]),
        )
        assert after["r"] > before["r"] and after["c"] > before["c"]

        await stack.upload(registered["id"])
        (request,) = await second.wait_for(1)
    finally:
        await first.stop()
        await second.stop()
    assert first.received == []
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["x-new"] == "2" and "x-old" not in headers
    assert request.json()["tenant"] == "acme"


async def test_patch_one_field_keeps_the_others(stack: Stack) -> None:
    registered = await stack.register(
        "https://example.com/a", custom_headers={"X-A": "1"}, custom_payload={"p": 1}
    )
    updated = await ok(stack, "PATCH", f"/webhook/{registered['id']}", {"custom_payload": {"q": 2}})
    assert updated["url"] == "https://example.com/a"
    assert updated["custom_headers"] == {"X-A": "1"}
    assert updated["custom_payload"] == {"q": 2}
    cleared = await ok(stack, "PATCH", f"/webhook/{registered['id']}", {"custom_headers": None})
    assert cleared["custom_headers"] == {} and cleared["custom_payload"] == {"q": 2}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "nothing to update"),
        ({"colour": "red"}, "unknown field"),
        ({"url": "https://example.com/x", "colour": "red"}, "unknown field"),
        ({"user_id": 2}, "user_id"),
        ({"event_type_id": "21f8e1f7-4142-42f9-ac30-74961702b2eb"}, "event_type_id"),
        ({"url": None}, "url"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "https://" + "a" * 2048}, "url"),
        ({"url": "https://user:pw@example.com/"}, "url"),
        ({"custom_headers": {"Webhook-Id": "x"}}, "custom_headers"),
        ({"custom_headers": {"Host": "x"}}, "custom_headers"),
        ({"custom_headers": {"X-A": "a\r\nb"}}, "custom_headers"),
        ({"custom_headers": {"bad name": "x"}}, "custom_headers"),
        ({"custom_headers": {"X-A": 1}}, "custom_headers"),
        ({"custom_headers": []}, "custom_headers"),
        ({"custom_payload": {"type": "x"}}, "custom_payload"),
        ({"custom_payload": "x"}, "custom_payload"),
        ({"custom_payload": {"k": ["a\u0000b"]}}, "NUL"),
        ({"custom_payload": {"a\u0000": 1}}, "NUL"),
        ({"disabled": "yes"}, "disabled"),
        ({"disabled": 0}, "disabled"),
        ({"disabled": None}, "disabled"),
        ([], "JSON object"),
    ],
)
async def test_patch_refuses_bad_input_and_changes_nothing(
    stack: Stack, body: Any, expected: str
) -> None:
    registered = await stack.register("https://example.com/a", custom_payload={"p": 1})
    before = await ok(stack, "GET", f"/webhook/{registered['id']}")
    message = await refused(stack, "PATCH", f"/webhook/{registered['id']}", body)
    assert expected in message
    assert await ok(stack, "GET", f"/webhook/{registered['id']}") == before


async def test_patch_body_must_be_json(stack: Stack) -> None:
    registered = await stack.register("https://example.com/a")
    path = f"/webhook/{registered['id']}"
    code, envelope = await call(
        stack, "PATCH", path, raw=b"{", headers={"Content-Type": "application/json"}
    )
    assert code == 400 and "JSON" in envelope["message"]
    code, envelope = await call(
        stack, "PATCH", path, raw=b"", headers={"Content-Type": "application/json"}
    )
    assert code == 400
    code, envelope = await call(
        stack,
        "PATCH",
        path,
        raw=b"url=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert code == 415


@pytest.mark.parametrize("stack_options", [StackOptions(registration_allow_private=False)])
async def test_patch_refuses_a_private_url(stack: Stack) -> None:
    registered = await stack.register("https://example.com/a")
    for url in ("http://127.0.0.1:8080/x", "http://localhost/x", "http://169.254.169.254/"):
        message = await refused(stack, "PATCH", f"/webhook/{registered['id']}", {"url": url})
        assert "url is not allowed" in message
    updated = await ok(stack, "PATCH", f"/webhook/{registered['id']}", {"url": "https://8.8.8.8/"})
    assert updated["url"] == "https://8.8.8.8/"


# --- disabling, 410, recover after re-enabling ----------------------------------------------------


async def test_disabled_webhook_records_uploads_and_recover_delivers_them(
    stack: Stack, receiver: Receiver
) -> None:
    webhook = await stack.register(receiver.url)
    path = f"/webhook/{webhook['id']}"
    disabled = await ok(stack, "PATCH", path, {"disabled": True})
    assert disabled["disabled"] is True and disabled["disabled_reason"] == "disabled by user"
    since = datetime.now(UTC) - timedelta(seconds=1)

    upload = await stack.upload(webhook["id"])  # accepted while disabled
    delivery_id = await delivery_of(stack, upload)
    await stack.wait_for_status(delivery_id, "not_attempted")
    delivery = await ok(stack, "GET", f"/delivery/{delivery_id}")
    assert delivery["status"] == "not_attempted" and delivery["attempts"] == []
    # Nothing would be sent while it is disabled: say so rather than pretend.
    assert "disabled" in await refused(
        stack, "POST", f"{path}/recover", {"since": "2020-01-01"}, 409
    )
    assert "disabled" in await refused(
        stack, "POST", f"/delivery/{delivery_id}/redeliver", None, 409
    )
    await asyncio.sleep(0.5)
    assert receiver.received == []

    await stack.pool.execute(
        "UPDATE webhook_registrations SET failing_since = now() WHERE id = $1",
        uuid.UUID(webhook["id"]),
    )
    enabled = await ok(stack, "PATCH", path, {"disabled": False})
    assert enabled["disabled"] is False and enabled["disabled_reason"] is None
    failing_since = await stack.pool.fetchval(
        "SELECT failing_since FROM webhook_registrations WHERE id = $1", uuid.UUID(webhook["id"])
    )
    assert failing_since is None

    recovering = await ok(stack, "POST", f"{path}/recover", {"since": since.isoformat()}, 202)
    assert recovering == {"recovering": 1}
    (request,) = await receiver.wait_for(1)
    assert request.headers["webhook-id"] == str(delivery_id)
    assert verifies(webhook["secret"], request)
    await stack.wait_for_status(delivery_id, "succeeded")


async def test_gone_disables_the_webhook_and_shows_why(stack: Stack) -> None:
    gone = await Receiver([Reply(410)]).start()
    try:
        webhook = await stack.register(gone.url)
        upload = await stack.upload(webhook["id"])
        delivery_id = await delivery_of(stack, upload)
        await stack.wait_for_status(delivery_id, "failed")
        # The dispatcher records the attempt, then disables the webhook.
        shown = await eventually(
            lambda: ok(stack, "GET", f"/webhook/{webhook['id']}"), lambda w: w["disabled"]
        )
        later = await stack.upload(webhook["id"])
        later_id = await delivery_of(stack, later)
        await stack.wait_for_status(later_id, "not_attempted")
        await asyncio.sleep(1.2)
    finally:
        await gone.stop()
    assert shown["disabled"] is True
    assert "410" in shown["disabled_reason"]
    assert len(gone.received) == 1  # no retry, nothing for the later upload
    delivery = await ok(stack, "GET", f"/delivery/{delivery_id}")
    assert [a["status_code"] for a in delivery["attempts"]] == [410]


# --- DELETE /webhook/{webhook_id} ----------------------------------------------------------------


async def test_deleted_webhook_and_its_deliveries_answer_404_everywhere(
    stack: Stack, failing_receiver: Receiver
) -> None:
    webhook = await stack.register(failing_receiver.url)
    upload = await stack.upload(webhook["id"])
    delivery_id = await delivery_of(stack, upload)
    # Between attempts: the first is recorded and the retry waits in the delay queue.
    row = await eventually(
        lambda: stack.pool.fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery_id),
        lambda row: row["attempt_count"] == 1,
    )
    assert row["status"] == "pending"

    code, envelope = await call(stack, "DELETE", f"/webhook/{webhook['id']}")
    assert code == 200, envelope
    assert envelope["data"]["id"] == webhook["id"] and set(envelope["data"]) == WEBHOOK_KEYS
    cancelled = await stack.pool.fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery_id)
    assert cancelled["status"] == "cancelled" and cancelled["next_retry_at"] is None

    for method, template, body in ROUTES:
        path = template.format(w=webhook["id"], d=delivery_id)
        assert await refused(stack, method, path, body, 404), path
    code, envelope = await call(stack, "GET", f"/webhook/{webhook['id']}/deliveries?status=failed")
    assert code == 404
    form = aiohttp.FormData()
    form.add_field("file", b"x", filename="x.txt")
    async with stack.http.post(
        f"{stack.gateway_url}/upload_file/webhook_id/{webhook['id']}", data=form
    ) as resp:
        assert resp.status == 404

    await asyncio.sleep(1.5)  # the waiting retry comes due and is turned away
    assert len(failing_receiver.received) == 1
    still = await stack.pool.fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery_id)
    assert still["status"] == "cancelled" and still["attempt_count"] == 1


# --- deliveries -----------------------------------------------------------------------------------


async def test_deliveries_list_pages_newest_first_and_filters_by_status(
    stack: Stack, receiver: Receiver
) -> None:
    webhook = await stack.register(receiver.url)
    uploads = [await stack.upload(webhook["id"], f"file {n}".encode()) for n in range(5)]
    ids = [str(await delivery_of(stack, upload)) for upload in uploads]
    for delivery_id in ids:
        await stack.wait_for_status(uuid.UUID(delivery_id), "succeeded")
    await stack.pool.execute(
        "UPDATE deliveries SET status = 'failed' WHERE id = $1", uuid.UUID(ids[1])
    )

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        path = f"/webhook/{webhook['id']}/deliveries?limit=2" + (
            f"&cursor={cursor}" if cursor else ""
        )
        code, envelope = await call(stack, "GET", path)
        assert code == 200, envelope
        assert len(envelope["data"]) <= 2
        seen += envelope["data"]
        cursor = envelope["next_cursor"]
        if cursor is None:
            break
    assert [d["id"] for d in seen] == list(reversed(ids))
    for item, upload in zip(reversed(seen), uploads, strict=True):
        assert set(item) == DELIVERY_KEYS
        assert item["webhook_id"] == webhook["id"] and item["upload_id"] == upload["upload_id"]
        assert item["attempt_count"] == 1 and item["next_retry_at"] is None
        assert TIMESTAMP.match(item["created_at"]) and TIMESTAMP.match(item["updated_at"])
    # The delivery id is the webhook-id header the endpoint received.
    assert {r.headers["webhook-id"] for r in receiver.received} == set(ids)

    failed = await ok(stack, "GET", f"/webhook/{webhook['id']}/deliveries?status=failed")
    assert [d["id"] for d in failed] == [ids[1]]
    succeeded = await ok(stack, "GET", f"/webhook/{webhook['id']}/deliveries?status=succeeded")
    assert len(succeeded) == 4
    assert await ok(stack, "GET", f"/webhook/{webhook['id']}/deliveries?status=cancelled") == []
    for bad in ("status=done", "status=", "limit=0", "limit=x", "cursor=zzz"):
        assert await refused(stack, "GET", f"/webhook/{webhook['id']}/deliveries?{bad}")


async def test_delivery_shows_its_attempts_in_order(stack: Stack) -> None:
    receiver = await Receiver([Reply(500, body="busy"), Reply(200, body="thanks")]).start()
    try:
        webhook = await stack.register(receiver.url)
        upload = await stack.upload(webhook["id"])
        delivery_id = await delivery_of(stack, upload)
        await stack.wait_for_status(delivery_id, "succeeded")
    finally:
        await receiver.stop()
    delivery = await ok(stack, "GET", f"/delivery/{delivery_id}")
    assert set(delivery) == DELIVERY_KEYS | {"attempts"}
    assert delivery["id"] == str(delivery_id) == receiver.received[0].headers["webhook-id"]
    assert delivery["status"] == "succeeded" and delivery["attempt_count"] == 2
    first, second = delivery["attempts"]
    assert set(first) == ATTEMPT_KEYS
    assert (first["attempt"], first["status_code"], first["error"]) == (1, 500, "HTTP 500")
    assert first["response_body"] == "busy"
    assert (second["attempt"], second["status_code"], second["error"]) == (2, 200, None)
    assert second["response_body"] == "thanks"
    assert all(
        isinstance(a["duration_ms"], int) and TIMESTAMP.match(a["created_at"])
        for a in delivery["attempts"]
    )


async def test_redeliver_sends_a_succeeded_delivery_again(stack: Stack, receiver: Receiver) -> None:
    webhook = await stack.register(receiver.url)
    upload = await stack.upload(webhook["id"])
    delivery_id = await delivery_of(stack, upload)
    await stack.wait_for_status(delivery_id, "succeeded")

    code, envelope = await call(stack, "POST", f"/delivery/{delivery_id}/redeliver")
    assert code == 202, envelope
    assert set(envelope["data"]) == DELIVERY_KEYS
    assert envelope["data"]["status"] == "pending" and envelope["data"]["attempt_count"] == 1
    first, second = await receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(delivery_id)
    assert first.json() == second.json()  # the same event
    assert verifies(webhook["secret"], second)
    done = await stack.wait_for_status(delivery_id, "succeeded")
    assert done["attempt_count"] == 2
    delivery = await ok(stack, "GET", f"/delivery/{delivery_id}")
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2]
    await asyncio.sleep(0.5)
    assert len(receiver.received) == 2


async def test_redeliver_restarts_the_retry_schedule(stack: Stack) -> None:
    schedule = StackOptions().retry_schedule
    receiver = await Receiver([Reply(500)]).start()
    try:
        webhook = await stack.register(receiver.url)
        upload = await stack.upload(webhook["id"])
        delivery_id = await delivery_of(stack, upload)
        await stack.wait_for_status(delivery_id, "failed", timeout=30)
        spent = 1 + len(schedule)
        # The endpoint is fixed, but only after one more failure: a new round retries it.
        receiver.replies = [*([Reply(500)] * spent), Reply(500), Reply(200)]
        await ok(stack, "POST", f"/delivery/{delivery_id}/redeliver", status=202)
        done = await stack.wait_for_status(delivery_id, "succeeded", timeout=30)
    finally:
        await receiver.stop()
    assert done["attempt_count"] == spent + 2
    assert {r.headers["webhook-id"] for r in receiver.received} == {str(delivery_id)}


@pytest.mark.parametrize("stack_options", [NO_RETRIES])
async def test_recover_redelivers_exactly_the_failed_and_not_attempted_since(
    stack: Stack, failing_receiver: Receiver
) -> None:
    receiver = failing_receiver
    webhook = await stack.register(receiver.url)
    neighbour = await stack.register(receiver.url)
    path = f"/webhook/{webhook['id']}"

    async def upload_until(target: dict[str, Any], status: str) -> uuid.UUID:
        delivery_id = await delivery_of(stack, await stack.upload(target["id"]))
        await stack.wait_for_status(delivery_id, status)
        return delivery_id

    before_since = await upload_until(webhook, "failed")
    await asyncio.sleep(0.05)
    since = datetime.now(UTC)
    await asyncio.sleep(0.05)
    failed = [await upload_until(webhook, "failed") for _ in range(2)]
    other_webhook_failed = await upload_until(neighbour, "failed")
    await ok(stack, "PATCH", path, {"disabled": True})
    not_attempted = await upload_until(webhook, "not_attempted")
    await ok(stack, "PATCH", path, {"disabled": False})
    receiver.replies = [Reply(200)]
    succeeded = await upload_until(webhook, "succeeded")
    sent_before = len(receiver.received)
    assert sent_before == 5

    # Naive means UTC.
    naive = since.replace(tzinfo=None).isoformat()
    recovering = await ok(stack, "POST", f"{path}/recover", {"since": naive}, 202)
    assert recovering == {"recovering": 3}
    expected = {*failed, not_attempted}
    for delivery_id in expected:
        await stack.wait_for_status(delivery_id, "succeeded")
    await asyncio.sleep(0.5)
    resent = receiver.received[sent_before:]
    assert sorted(r.headers["webhook-id"] for r in resent) == sorted(map(str, expected))
    for delivery_id in failed:
        delivery = await ok(stack, "GET", f"/delivery/{delivery_id}")
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    untouched = {before_since: "failed", other_webhook_failed: "failed", succeeded: "succeeded"}
    for delivery_id, status in untouched.items():
        row = await stack.pool.fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery_id)
        assert (row["status"], row["attempt_count"]) == (status, 1)

    # Nothing left to recover since then; an offset is honoured.
    plus_five = timezone(timedelta(hours=5))
    assert await ok(stack, "POST", f"{path}/recover", {"since": since.isoformat()}, 202) == {
        "recovering": 0
    }
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).astimezone(plus_five)
    assert await ok(stack, "POST", f"{path}/recover", {"since": in_an_hour.isoformat()}, 202) == {
        "recovering": 0
    }
    an_hour_ago = (since - timedelta(hours=1)).astimezone(plus_five)
    assert await ok(stack, "POST", f"{path}/recover", {"since": an_hour_ago.isoformat()}, 202) == {
        "recovering": 1
    }
    await stack.wait_for_status(before_since, "succeeded")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "since is required"),
        ({"since": None}, "since"),
        ({"since": 1700000000}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-13-01T00:00:00Z"}, "since"),
        ({"since": "2026-01-01T00:00:00Z", "until": "x"}, "unknown field"),
        ([], "JSON object"),
    ],
)
async def test_recover_refuses_a_bad_since(stack: Stack, body: Any, expected: str) -> None:
    webhook = await stack.register("https://example.com/a")
    message = await refused(stack, "POST", f"/webhook/{webhook['id']}/recover", body)
    assert expected in message


# --- secret rotation ------------------------------------------------------------------------------


async def test_rotation_signs_with_both_secrets_during_the_grace_period(
    stack: Stack, receiver: Receiver
) -> None:
    webhook = await stack.register(receiver.url)
    original = webhook["secret"]
    path = f"/webhook/{webhook['id']}/secret/rotate"

    code, envelope = await call(stack, "POST", path)
    assert code == 200, envelope
    rotation = envelope["data"]
    assert set(rotation) == set(views.SecretRotation.model_fields)
    first = rotation["secret"]
    assert first.startswith("whsec_") and first != original
    expires = datetime.strptime(rotation["previous_secret_expires_at"], "%Y-%m-%d %H:%M:%S")
    grace = expires.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < grace <= timedelta(days=1)
    assert first not in str(await ok(stack, "GET", f"/webhook/{webhook['id']}"))

    await stack.upload(webhook["id"])
    (during,) = await receiver.wait_for(1)
    assert len(signatures(during)) == 2
    assert verifies(first, during) and verifies(original, during)

    second = (await ok(stack, "POST", path))["secret"]
    await stack.upload(webhook["id"])
    _, again = await receiver.wait_for(2)
    assert len(signatures(again)) == 2  # never more than two
    assert verifies(second, again) and verifies(first, again)
    assert not verifies(original, again)

    # The grace period is over: only the new secret signs.
    await stack.pool.execute(
        "UPDATE webhook_registrations SET previous_secret_expires_at = now() - interval '1 second'"
        " WHERE id = $1",
        uuid.UUID(webhook["id"]),
    )
    await stack.upload(webhook["id"])
    *_, after = await receiver.wait_for(3)
    assert len(signatures(after)) == 1
    assert verifies(second, after) and not verifies(first, after)


def test_rotation_grace_comes_from_the_environment() -> None:
    assert RegistrationSettings.from_env(Env({})).secret_rotation_grace_seconds == 86400
    settings = RegistrationSettings.from_env(Env({"SECRET_ROTATION_GRACE_SECONDS": "60"}))
    assert settings.secret_rotation_grace_seconds == 60


# --- the broker is down ---------------------------------------------------------------------------


async def test_redeliver_and_recover_answer_503_without_the_broker(
    stack: Stack, receiver: Receiver, aiohttp_client: Any
) -> None:
    webhook = await stack.register(receiver.url)
    upload = await stack.upload(webhook["id"])
    delivery_id = await delivery_of(stack, upload)
    done = await stack.wait_for_status(delivery_id, "succeeded")
    # A second registration service on the same database, whose broker is unreachable.
    settings = RegistrationSettings(
        database_url=stack.database_url, amqp_url="amqp://guest:guest@127.0.0.1:9/"
    )
    client = await aiohttp_client(create_registration(settings))
    resp = await client.post(f"/delivery/{delivery_id}/redeliver")
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert (await resp.json())["error"] is True
    resp = await client.post(
        f"/webhook/{webhook['id']}/recover", json={"since": "2020-01-01T00:00:00Z"}
    )
    assert resp.status == 503
    resp = await client.get("/readyz")
    assert resp.status == 503
    # Reads do not need the broker; nothing was changed.
    resp = await client.get(f"/delivery/{delivery_id}")
    assert resp.status == 200
    row = await stack.pool.fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery_id)
    assert (row["status"], row["attempt_count"]) == (done["status"], done["attempt_count"])


# --- cursors ------------------------------------------------------------------------------------


def test_a_cursor_round_trips_to_the_microsecond() -> None:
    at = datetime(2026, 11, 28, 9, 30, 15, 123456, tzinfo=UTC)
    item = uuid.uuid4()
    raw = Cursor("w", at, item).encode()
    assert re.fullmatch(r"[A-Za-z0-9_-]+", raw)  # safe in a query string as it is
    assert decode_cursor(raw, "w") == Cursor("w", at, item)
    assert decode_cursor(None, "w") is None
    for bad in (raw + "x", raw[:-2], "", "%%", "bm9wZQ"):
        with pytest.raises(BadRequest):
            decode_cursor(bad, "w")
    with pytest.raises(BadRequest, match="cursor"):
        decode_cursor(raw, "d")  # a cursor of another list
