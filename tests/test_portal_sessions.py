"""Portal links (SPEC section 15): POST /portal/session and DELETE /portal/session/{id} against
the real services, database and gateway with AUTH_MODE=api_key.

The key cache stays on (AUTH_CACHE_SECONDS=5, the default) wherever a refusal is timed or
checked after a first success: only the revocation notice, or the expiry checked on every
request, refuses a cached token.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.receiver import Receiver
from harness.stack import Stack
from services.common.api_keys import hash_api_key
from tests.test_api_keys import CACHED, command_key, first_refusals, listed, webhook_of
from tests.test_revocation import REFUSED_WITHIN_SECONDS, wait_for_listeners
from tests.test_security import call, new_user_id

SESSION_FIELDS = {"id", "user_id", "url", "expires_at"}
ADMIN_ONLY = "only an admin API key may create or revoke portal links; this key acts for one user"


def token_of(session: dict[str, Any]) -> str:
    return str(session["url"].split("#session=", 1)[1])


async def new_session(stack: Stack, admin: str, **body: Any) -> dict[str, Any]:
    status, envelope, _ = await call(stack, "POST", "/portal/session", admin, body)
    assert status == 201, envelope
    return envelope["data"]  # type: ignore[no-any-return]


async def new_event_type(stack: Stack) -> str:
    name = f"portal.{uuid.uuid4().hex[:10]}"
    await stack.pool.execute(
        "INSERT INTO event_types (name, description, event_name) VALUES ($1, $1, $1)", name
    )
    return name


async def answers(stack: Stack, token: str, event_type: str) -> dict[str, tuple[int, str]]:
    """One request with the token to registration and upload (own ports) and the gateway."""
    headers = {"Authorization": f"Bearer {token}"}
    found: dict[str, tuple[int, str]] = {}
    for service, method, url, body in (
        ("registration", "GET", f"{stack.registration_url}/webhook", None),
        ("gateway", "GET", f"{stack.gateway_url}/webhook", None),
        ("upload", "POST", f"{stack.upload_url}/event", {"event_type": event_type, "payload": {}}),
    ):
        async with stack.http.request(method, url, json=body, headers=headers) as resp:
            found[service] = (resp.status, (await resp.json())["message"])
    return found


@pytest.mark.parametrize("stack_options", [CACHED])
async def test_a_portal_link_acts_as_its_user_only(stack: Stack, receiver: Receiver) -> None:
    _, admin = command_key(stack.database_url, "--admin")
    user, other = new_user_id(), new_user_id()
    _, other_key = command_key(stack.database_url, "--user-id", str(other))
    others_webhook = await webhook_of(stack, other_key, receiver)

    before = datetime.now(UTC)
    session = await new_session(stack, admin, user_id=user, expires_in_seconds=600)
    assert set(session) == SESSION_FIELDS and session["user_id"] == user
    assert session["url"].startswith(stack.gateway_url + "/console#session=")
    expires_at = datetime.strptime(session["expires_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs(expires_at - (before + timedelta(seconds=600))) < timedelta(seconds=5)
    default = await new_session(stack, admin, user_id=user)
    default_expiry = datetime.strptime(default["expires_at"], "%Y-%m-%d %H:%M:%S")
    assert abs(default_expiry.replace(tzinfo=UTC) - (before + timedelta(hours=1))) < timedelta(
        seconds=5
    )

    token = token_of(session)
    mine = await webhook_of(stack, token, receiver)
    status, envelope, _ = await call(stack, "GET", "/webhook", token)
    assert status == 200 and [w["id"] for w in envelope["data"]] == [mine], envelope
    assert {w["user_id"] for w in envelope["data"]} == {user}
    status, envelope, _ = await call(stack, "GET", f"/webhook/{others_webhook}", token)
    assert status == 404, envelope
    status, envelope, _ = await call(stack, "GET", f"/webhook?user_id={other}", token)
    assert status == 403, envelope

    # Never an admin's routes: event types, API keys, portal links.
    for method, path, body in (
        ("POST", "/event_type", {"name": f"portal.{uuid.uuid4().hex[:8]}"}),
        ("POST", "/api_key", {"user_id": user}),
        ("GET", "/api_key", None),
        ("POST", "/portal/session", {"user_id": user}),
        ("DELETE", f"/portal/session/{session['id']}", None),
    ):
        status, envelope, _ = await call(stack, method, path, token, body)
        assert status == 403, (path, envelope)

    # Listed among the keys, marked, so an operator sees the live links; never the token.
    keys = await listed(stack, admin)
    assert keys[session["id"]]["portal"] is True and keys[session["id"]]["user_id"] == user
    assert keys[session["id"]]["admin"] is False
    assert keys[session["id"]]["expires_at"] == session["expires_at"]
    # This user's links (the stack's database is shared with other tests' links).
    links = {k for k, item in keys.items() if item["portal"] and item["user_id"] == user}
    assert links == {session["id"], default["id"]}, keys


@pytest.mark.parametrize("stack_options", [CACHED])
async def test_who_may_ask_for_a_link_and_what_it_must_say(stack: Stack) -> None:
    _, admin = command_key(stack.database_url, "--admin")
    user = new_user_id()
    _, user_key = command_key(stack.database_url, "--user-id", str(user))
    for method, path, body in (
        ("POST", "/portal/session", {"user_id": user}),
        ("DELETE", f"/portal/session/{uuid.uuid4()}", None),
    ):
        status, envelope, _ = await call(stack, method, path, user_key, body)
        assert status == 403 and envelope["message"] == ADMIN_ONLY, envelope
        status, envelope, _ = await call(stack, method, path, None, body)
        assert status == 401, envelope

    for body, said in (
        ({"user_id": user, "expires_in_seconds": 59}, "expires_in_seconds"),
        ({"user_id": user, "expires_in_seconds": 86401}, "expires_in_seconds"),
        ({"user_id": user, "expires_in_seconds": 600.5}, "expires_in_seconds"),
        ({"user_id": user, "expires_in_seconds": "600"}, "expires_in_seconds"),
        ({}, "user_id is required"),
        ({"expires_in_seconds": 600}, "user_id is required"),
        ({"user_id": 0}, "user_id"),
        ({"user_id": "7"}, "user_id"),
        ({"user_id": None}, "user_id"),
        ({"user_id": user, "admin": True}, "unknown field(s): admin"),
    ):
        status, envelope, _ = await call(stack, "POST", "/portal/session", admin, body)
        assert status == 400 and said in envelope["message"], (body, envelope)
    for seconds in (60, 86400):
        await new_session(stack, admin, user_id=user, expires_in_seconds=seconds)

    # DELETE revokes only portal sessions: an unknown id, or an ordinary key's, is 404.
    ordinary_id, ordinary = command_key(stack.database_url, "--user-id", str(user))
    for missing in (str(uuid.uuid4()), ordinary_id):
        status, envelope, _ = await call(stack, "DELETE", f"/portal/session/{missing}", admin)
        assert status == 404, envelope
        assert envelope["message"] == (
            f"portal session {missing} does not exist or is already revoked"
        )
    status, envelope, _ = await call(stack, "GET", "/webhook", ordinary)
    assert status == 200, envelope
    status, envelope, _ = await call(stack, "DELETE", "/portal/session/nope", admin)
    assert status == 400 and "portal_session_id must be a UUID" in envelope["message"], envelope


@pytest.mark.parametrize("stack_options", [CACHED])
async def test_only_the_tokens_hash_is_stored(stack: Stack) -> None:
    _, admin = command_key(stack.database_url, "--admin")
    session = await new_session(stack, admin, user_id=new_user_id())
    token = token_of(session)
    # What pg_dump would write of the table: every column of every row, as text.
    dumped = "\n".join(str(dict(row)) for row in await stack.pool.fetch("SELECT * FROM api_keys"))
    assert token not in dumped and token[10:] not in dumped
    stored = await stack.pool.fetchrow(
        "SELECT key_hash, prefix, portal FROM api_keys WHERE id = $1", uuid.UUID(session["id"])
    )
    assert stored["key_hash"] == hash_api_key(token) and stored["portal"] is True
    assert token.startswith(stored["prefix"]) and len(stored["prefix"]) == 10


@pytest.mark.parametrize("stack_options", [CACHED])
async def test_an_expired_link_is_refused_everywhere_saying_so(stack: Stack) -> None:
    _, admin = command_key(stack.database_url, "--admin")
    event_type = await new_event_type(stack)
    session = await new_session(stack, admin, user_id=new_user_id(), expires_in_seconds=60)
    token = token_of(session)
    # The shortest link lives a minute: its end is brought near in the database before its
    # first use, which every service then caches (for 5 s) with that expiry.
    expires_at = datetime.now(UTC) + timedelta(seconds=1.5)
    await stack.pool.execute(
        "UPDATE api_keys SET expires_at = $2 WHERE id = $1", uuid.UUID(session["id"]), expires_at
    )
    found = await answers(stack, token, event_type)
    assert {status for status, _ in found.values()} == {200, 202}, found
    cached_at = time.monotonic()
    await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.1)

    refused = await answers(stack, token, event_type)
    assert time.monotonic() - cached_at < CACHED.auth_cache_seconds  # from the caches
    assert {status for status, _ in refused.values()} == {401}, refused
    said = f"the portal link expired at {expires_at.strftime('%Y-%m-%d %H:%M:%S')} UTC"
    assert {message for _, message in refused.values()} == {said}, refused
    # Past its end the link is still listed (and revocable), like an expired key.
    assert session["id"] in await listed(stack, admin)


@pytest.mark.parametrize("stack_options", [CACHED])
async def test_a_revoked_link_is_refused_everywhere_within_a_second(stack: Stack) -> None:
    await wait_for_listeners(stack.pool)
    _, admin = command_key(stack.database_url, "--admin")
    event_type = await new_event_type(stack)
    session = await new_session(stack, admin, user_id=new_user_id())
    token = token_of(session)
    found = await answers(stack, token, event_type)  # now cached everywhere
    assert {status for status, _ in found.values()} == {200, 202}, found

    status, envelope, _ = await call(stack, "DELETE", f"/portal/session/{session['id']}", admin)
    returned = time.monotonic()
    assert status == 200 and envelope["message"] == "portal link revoked", envelope
    assert envelope["data"]["id"] == session["id"] and envelope["data"]["portal"] is True
    refused = await first_refusals(
        lambda: answers(stack, token, event_type), returned, REFUSED_WITHIN_SECONDS
    )
    assert set(refused) == {"registration", "upload", "gateway"}, refused
    assert {message for _, message in refused.values()} == {"the portal link was revoked"}

    status, envelope, _ = await call(stack, "DELETE", f"/portal/session/{session['id']}", admin)
    assert status == 404, envelope
    assert session["id"] not in await listed(stack, admin)


async def test_without_api_keys_portal_links_are_refused_saying_why(stack: Stack) -> None:
    """AUTH_MODE=none: no key is checked, so a link could neither sign in nor be refused."""
    for method, path, body in (
        ("POST", "/portal/session", {"user_id": 1}),
        ("DELETE", f"/portal/session/{uuid.uuid4()}", None),
    ):
        status, envelope, _ = await call(stack, method, path, None, body)
        assert status == 403, envelope
        assert envelope["message"].startswith("portal links need AUTH_MODE=api_key"), envelope
