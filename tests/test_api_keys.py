"""API keys managed without their plaintext (SPEC section 20): list, revoke by id, expiry,
and the admin routes, against the real services, database and gateway.

The key cache stays on (AUTH_CACHE_SECONDS=5, the default) wherever a refusal is timed:
only the revocation notice, or the expiry checked on every request, makes 1 s.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from harness.receiver import Receiver
from harness.stack import UPLOAD_EVENT_TYPE_ID, Stack, StackOptions
from services.common.api_keys import hash_api_key
from tests.test_revocation import REFUSED_WITHIN_SECONDS, wait_for_listeners
from tests.test_security import call, new_user_id, registration_command

CACHED = StackOptions(auth_mode="api_key", auth_cache_seconds=5.0)
LISTED = {"id", "user_id", "admin", "portal", "prefix", "created_at", "last_used_at", "expires_at"}


def command_key(database_url: str, *args: str) -> tuple[str, str]:
    """(id, key) of a key made by `create-api-key` with `args`."""
    result = registration_command("create-api-key", *args, database_url=database_url)
    assert result.returncode == 0, result.stderr
    said, key = result.stdout.strip().splitlines()[-2:]
    assert said.startswith("API key "), result.stdout
    return said.split()[2], key


def list_command(database_url: str) -> str:
    result = registration_command("list-api-keys", database_url=database_url)
    assert result.returncode == 0, result.stderr
    return result.stdout


def line_of(listing: str, key_id: str) -> str:
    return next(line for line in listing.splitlines() if line.startswith(key_id))


async def statuses(stack: Stack, key: str, webhook_id: str) -> dict[str, tuple[int, str]]:
    """One authenticated request to registration and upload (own ports) and the gateway."""
    headers = {"Authorization": f"Bearer {key}"}
    http: aiohttp.ClientSession = stack.http
    answers: dict[str, tuple[int, str]] = {}
    for service, url in (
        ("registration", f"{stack.registration_url}/webhook"),
        ("gateway", f"{stack.gateway_url}/webhook"),
    ):
        async with http.get(url, headers=headers) as resp:
            answers[service] = (resp.status, (await resp.json())["message"])
    form = aiohttp.FormData()
    form.add_field("file", b"x", filename="x.txt", content_type="text/plain")
    url = f"{stack.upload_url}/upload_file/webhook_id/{webhook_id}"
    async with http.post(url, data=form, headers=headers) as resp:
        answers["upload"] = (resp.status, (await resp.json())["message"])
    return answers


async def refused_within(
    stack: Stack, key: str, webhook_id: str, since: float, limit: float
) -> dict[str, tuple[float, str]]:
    """Seconds from `since` (monotonic) to each one's first 401, and its message."""
    return await first_refusals(lambda: statuses(stack, key, webhook_id), since, limit)


async def first_refusals(
    probe: Callable[[], Awaitable[dict[str, tuple[int, str]]]], since: float, limit: float
) -> dict[str, tuple[float, str]]:
    """Seconds from `since` (monotonic) to the first 401 of each service `probe` asks (at
    most `limit`), and its message."""
    refused: dict[str, tuple[float, str]] = {}
    while time.monotonic() - since <= limit:
        answers = await probe()
        for service, (status, message) in answers.items():
            if status == 401:
                refused.setdefault(service, (time.monotonic() - since, message))
        if len(refused) == len(answers):
            break
        await asyncio.sleep(0.02)
    return refused


async def new_key(stack: Stack, by: str, **body: Any) -> dict[str, Any]:
    """A key made with POST /api_key by the admin key `by`."""
    status, envelope, _ = await call(stack, "POST", "/api_key", by, body)
    assert status == 201, envelope
    assert envelope["message"] == "API key created (shown only now; store it safely)"
    return envelope["data"]  # type: ignore[no-any-return]


async def webhook_of(stack: Stack, key: str, receiver: Receiver) -> str:
    body = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "url": receiver.url}
    status, envelope, _ = await call(stack, "POST", "/webhook/register", key, body)
    assert status == 200, envelope
    return str(envelope["data"]["id"])


async def listed(stack: Stack, admin: str) -> dict[str, dict[str, Any]]:
    """Every key the API lists, by id, following the cursors."""
    found: dict[str, dict[str, Any]] = {}
    path = "/api_key?limit=200"
    while True:
        status, envelope, _ = await call(stack, "GET", path, admin)
        assert status == 200, envelope
        found |= {item["id"]: item for item in envelope["data"]}
        if envelope["next_cursor"] is None:
            return found
        path = f"/api_key?limit=200&cursor={envelope['next_cursor']}"


def test_the_commands_list_and_revoke_keys_by_id_never_showing_a_key(database_url: str) -> None:
    user = new_user_id()
    user_key_id, user_key = command_key(database_url, "--user-id", str(user), "--expires-in", "30d")
    admin_id, admin_key = command_key(database_url, "--admin")
    short_id, _ = command_key(database_url, "--user-id", str(user), "--expires-in", "1s")
    time.sleep(1.1)

    listing = list_command(database_url)
    for secret in (user_key, admin_key, hash_api_key(user_key), hash_api_key(admin_key)):
        assert secret not in listing
    assert listing.splitlines()[0].split() == [
        "id", "prefix", "for", "created", "last", "used", "expires"
    ]  # fmt: skip
    user_line = line_of(listing, user_key_id)
    assert f"user {user}" in user_line and user_key[:10] + "..." in user_line
    assert user_line.split()[-2:] != ["never", "never"]  # it expires (date, time)
    assert "(expired)" not in user_line
    assert line_of(listing, admin_id).split()[2:3] == ["admin"]
    assert line_of(listing, admin_id).endswith("never")
    assert line_of(listing, short_id).endswith("(expired)")

    revoked = registration_command("revoke-api-key", "--id", user_key_id, database_url=database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == f"revoked API key {user_key_id} of user {user}"
    assert user_key_id not in list_command(database_url)
    again = registration_command("revoke-api-key", "--id", user_key_id, database_url=database_url)
    assert again.returncode == 1
    assert f"no active API key has the id {user_key_id}" in again.stderr

    bad = registration_command(
        "create-api-key", "--admin", "--expires-in", "30 days", database_url=database_url
    )
    assert bad.returncode == 2
    assert "--expires-in: must be a whole number and a unit s, m, h or d" in bad.stderr


@pytest.mark.parametrize("stack_options", [CACHED])
async def test_a_key_revoked_by_id_is_refused_everywhere_within_a_second(
    stack: Stack, receiver: Receiver
) -> None:
    await wait_for_listeners(stack.pool)
    _, admin = command_key(stack.database_url, "--admin")
    for revoke_with in ("api", "command"):
        made = await new_key(stack, admin, user_id=new_user_id())
        webhook_id = await webhook_of(stack, made["key"], receiver)
        answers = await statuses(stack, made["key"], webhook_id)  # now cached everywhere
        assert {status for status, _ in answers.values()} == {200}, answers

        if revoke_with == "api":
            status, envelope, _ = await call(stack, "DELETE", f"/api_key/{made['id']}", admin)
            assert status == 200 and envelope["message"] == "API key revoked", envelope
            assert envelope["data"] == {k: v for k, v in made.items() if k != "key"} | {
                "last_used_at": envelope["data"]["last_used_at"]
            }
        else:
            result = registration_command(
                "revoke-api-key", "--id", made["id"], database_url=stack.database_url
            )
            assert result.returncode == 0, result.stderr
        returned = time.monotonic()
        refused = await refused_within(
            stack, made["key"], webhook_id, returned, REFUSED_WITHIN_SECONDS
        )
        assert set(refused) == {"registration", "upload", "gateway"}, (revoke_with, refused)
        assert {message for _, message in refused.values()} == {"the API key is unknown or revoked"}


@pytest.mark.parametrize("stack_options", [CACHED])
async def test_an_expired_key_is_refused_everywhere_saying_so(
    stack: Stack, receiver: Receiver
) -> None:
    _, admin = command_key(stack.database_url, "--admin")
    made = await new_key(stack, admin, user_id=new_user_id(), expires_in_seconds=3)
    webhook_id = await webhook_of(stack, made["key"], receiver)
    answers = await statuses(stack, made["key"], webhook_id)  # cached for 5 s everywhere
    assert {status for status, _ in answers.values()} == {200}, answers
    expires_at = await stack.pool.fetchval(
        "SELECT expires_at FROM api_keys WHERE id = $1", uuid.UUID(made["id"])
    )
    assert made["expires_at"] == expires_at.strftime("%Y-%m-%d %H:%M:%S")
    await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()))

    refused = await refused_within(
        stack, made["key"], webhook_id, time.monotonic(), REFUSED_WITHIN_SECONDS
    )
    assert set(refused) == {"registration", "upload", "gateway"}, refused
    expected = f"the API key expired at {made['expires_at']} UTC"
    assert all(message.startswith(expected) for _, message in refused.values()), refused
    # Still listed, so that it can be seen and revoked.
    assert made["id"] in await listed(stack, admin)


@pytest.mark.parametrize("stack_options", [CACHED])
async def test_the_admin_routes_list_create_and_revoke_keys(
    stack: Stack, receiver: Receiver
) -> None:
    _, admin = command_key(stack.database_url, "--admin")
    user = new_user_id()
    _, user_key = command_key(stack.database_url, "--user-id", str(user))

    for method, path, body in (
        ("GET", "/api_key", None),
        ("POST", "/api_key", {"user_id": user}),
        ("DELETE", f"/api_key/{uuid.uuid4()}", None),
    ):
        status, envelope, _ = await call(stack, method, path, user_key, body)
        assert status == 403, envelope
        assert envelope["message"] == (
            "only an admin API key may manage API keys; this key acts for one user"
        )
        status, envelope, _ = await call(stack, method, path, None, body)
        assert status == 401, envelope

    made = await new_key(stack, admin, user_id=user, expires_in_seconds=3600)
    assert set(made) == LISTED | {"key"}
    assert made["user_id"] == user and made["admin"] is False
    assert made["key"].startswith(made["prefix"]) and made["last_used_at"] is None
    status, envelope, _ = await call(stack, "GET", "/webhook", made["key"])
    assert status == 200, envelope
    other_admin = await new_key(stack, admin, admin=True)
    assert other_admin["user_id"] is None and other_admin["expires_at"] is None
    assert other_admin["admin"] is True

    # The list shows every field but the key; its last use is noted in the background.
    deadline = time.monotonic() + 5
    while True:
        keys = await listed(stack, admin)
        if keys[made["id"]]["last_used_at"] is not None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert keys[made["id"]]["last_used_at"] is not None, keys[made["id"]]
    assert all(set(item) == LISTED for item in keys.values())
    async with stack.http.get(
        f"{stack.gateway_url}/api_key?limit=200", headers={"Authorization": f"Bearer {admin}"}
    ) as resp:
        text = await resp.text()
    assert made["key"] not in text and hash_api_key(made["key"]) not in text
    status, first, _ = await call(stack, "GET", "/api_key?limit=1", admin)
    assert status == 200 and first["data"][0]["id"] == other_admin["id"], first
    after = f"/api_key?limit=1&cursor={first['next_cursor']}"
    status, second, _ = await call(stack, "GET", after, admin)
    assert status == 200 and second["data"][0]["id"] == made["id"], second

    for body, said in (
        ({}, 'give user_id (a key for that user) or "admin": true (for every user)'),
        ({"user_id": user, "admin": True}, "give user_id or admin, not both"),
        ({"admin": False}, "give user_id"),
        ({"user_id": user, "expires_in_seconds": 0}, "expires_in_seconds"),
        ({"user_id": user, "expires_in_seconds": 1.5}, "expires_in_seconds"),
        ({"user_id": 0}, "user_id"),
        ({"user_id": user, "owner": "x"}, "unknown field(s): owner"),
    ):
        status, envelope, _ = await call(stack, "POST", "/api_key", admin, body)
        assert status == 400 and said in envelope["message"], (body, envelope)

    status, envelope, _ = await call(stack, "DELETE", f"/api_key/{made['id']}", admin)
    assert status == 200 and envelope["data"]["id"] == made["id"], envelope
    status, envelope, _ = await call(stack, "DELETE", f"/api_key/{made['id']}", admin)
    assert status == 404, envelope
    assert envelope["message"] == f"API key {made['id']} does not exist or is already revoked"
    status, envelope, _ = await call(stack, "DELETE", "/api_key/nope", admin)
    assert status == 400 and "api_key_id must be a UUID" in envelope["message"], envelope
    assert made["id"] not in await listed(stack, admin)


async def test_without_api_keys_the_routes_say_to_use_the_commands(stack: Stack) -> None:
    """AUTH_MODE=none: keys are not checked, and an open API must not mint them."""
    for method, path, body in (
        ("GET", "/api_key", None),
        ("POST", "/api_key", {"admin": True}),
        ("DELETE", f"/api_key/{uuid.uuid4()}", None),
    ):
        status, envelope, _ = await call(stack, method, path, None, body)
        assert status == 403, envelope
        assert "only with AUTH_MODE=api_key" in envelope["message"]
        assert "list-api-keys" in envelope["message"]
