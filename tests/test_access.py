"""Who may call what, for every route of the OpenAPI document: no key, a user key, an admin key.

The table is generated from the document, so a new route is covered as soon as it is
documented. For each route, through the real gateway:
- no key: 401 (routes with `security: []` are open: 200);
- another user's key: 404 on the owner's objects (path ids), 403 when it names the
  owner's `user_id` or the route needs the `admin` role, otherwise allowed;
- an admin key: allowed on the owner's objects and for the owner's `user_id`.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from harness.receiver import Receiver
from harness.stack import UPLOAD_EVENT_TYPE_ID, Stack, StackOptions
from services.common import api_keys
from services.common.api_keys import hash_api_key
from services.registration.openapi import openapi_document
from tests.test_security import call, create_key, new_user_id, registration_command

API_KEYS = StackOptions(auth_mode="api_key", auth_cache_seconds=0)
DENIED = (401, 403, 404)
# Routes that must be admin-only whenever they are documented (SPEC sections 12, 15 and 20).
ADMIN_ONLY = {
    ("post", "/event_type"),
    ("patch", "/event_type/{event_type_id}"),
    ("get", "/api_key"),
    ("post", "/api_key"),
    ("delete", "/api_key/{api_key_id}"),
    ("post", "/portal/session"),
    ("delete", "/portal/session/{portal_session_id}"),
}
METHODS = ("get", "post", "put", "patch", "delete")
# Path ids of objects that belong to a user (event types are global).
OWNED_PATH_PARAMETERS = ("webhook_id", "delivery_id", "event_id")


def create_admin_key(database_url: str) -> str:
    result = registration_command("create-api-key", "--admin", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "admin" in result.stdout
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("whk_"), result.stdout
    return key


def documented_routes() -> list[tuple[str, str, dict[str, Any]]]:
    document = openapi_document()
    routes = [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]
    # Deleting goes last, so the owner's objects exist for every other route.
    return sorted(routes, key=lambda route: route[0] == "delete")


def is_open(operation: dict[str, Any]) -> bool:
    return operation.get("security") == []


def needs_admin(operation: dict[str, Any]) -> bool:
    return any("admin" in req.get("apiKey", []) for req in operation.get("security", []))


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = openapi_document()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return resolve(node)


def takes_user_id(operation: dict[str, Any]) -> bool:
    """Whether the route names a user: a `user_id` query parameter or body field."""
    if any(p.get("name") == "user_id" for p in operation.get("parameters", [])):
        return True
    content = operation.get("requestBody", {}).get("content", {})
    return any("user_id" in resolve(c["schema"]).get("properties", {}) for c in content.values())


class Owner:
    """One user's webhook, delivery and event: the objects other callers try to reach."""

    def __init__(self, user_id: int, ids: dict[str, str]) -> None:
        self.user_id = user_id
        self.ids = ids

    def path(self, template: str) -> str:
        path = template
        for name in [part[1:-1] for part in template.split("/") if part.startswith("{")]:
            assert name in self.ids, f"{template}: add an object for path parameter {name!r}"
            path = path.replace(f"{{{name}}}", self.ids[name])
        return path


async def send(
    stack: Stack,
    method: str,
    template: str,
    operation: dict[str, Any],
    owner: Owner,
    key: str | None,
) -> tuple[int, dict[str, Any]]:
    """The route called with its documented example, aimed at the owner's objects."""
    path = owner.path(template)
    if any(p.get("name") == "user_id" for p in operation.get("parameters", [])):
        path += f"?user_id={owner.user_id}"
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    json_body: Any = None
    data: Any = None
    content = operation.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        data = aiohttp.FormData()
        data.add_field("file", b"hello", filename="hello.txt", content_type="text/plain")
    elif "application/json" in content:
        json_body = dict(content["application/json"].get("example", {}))
        if "user_id" in json_body or takes_user_id(operation):
            json_body["user_id"] = owner.user_id
    async with stack.http.request(
        method, f"{stack.gateway_url}{path}", json=json_body, data=data, headers=headers
    ) as resp:
        envelope = await resp.json() if resp.content_type == "application/json" else {}
        return resp.status, envelope


async def make_owner(stack: Stack, receiver: Receiver, key: str, user_id: int) -> Owner:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "url": receiver.url}
    async with stack.http.post(
        f"{stack.gateway_url}/webhook/register", json=body, headers=headers
    ) as resp:
        assert resp.status == 200, await resp.text()
        webhook_id = (await resp.json())["data"]["id"]
    form = aiohttp.FormData()
    form.add_field("file", b"hello", filename="hello.txt", content_type="text/plain")
    async with stack.http.post(
        f"{stack.gateway_url}/upload_file/webhook_id/{webhook_id}", data=form, headers=headers
    ) as resp:
        assert resp.status == 200, await resp.text()
        upload_id = (await resp.json())["data"]["upload_id"]
    delivery = await stack.delivery_for_upload(upload_id)
    await stack.wait_for_status(delivery["id"], "succeeded")
    # A type of its own: the admin's documented PATCH (which archives) must not reach the
    # seeded upload type that the other tests of the session register for.
    name = f"access.{uuid.uuid4().hex[:8]}"
    event_type_id = await stack.pool.fetchval(
        "INSERT INTO event_types (name, description, event_name) VALUES ($1, $1, $1) RETURNING id",
        name,
    )
    # A key of the owner's that no caller here uses: the admin's DELETE revokes it.
    spare = create_key(stack.database_url, user_id)
    spare_id = await stack.pool.fetchval(
        "SELECT id FROM api_keys WHERE key_hash = $1", hash_api_key(spare)
    )
    # A portal link of the owner's: the admin's DELETE revokes it.
    async with stack.pool.acquire() as conn:
        _, link = await api_keys.create_portal_session(conn, user_id, 3600)
    ids = {
        "webhook_id": webhook_id,
        "delivery_id": str(delivery["id"]),
        "event_id": str(delivery["event_id"]),
        "event_type_id": str(event_type_id),
        "api_key_id": str(spare_id),
        "portal_session_id": str(link["id"]),
    }
    return Owner(user_id, ids)


def test_event_type_writes_are_admin_only_when_documented() -> None:
    for method, path, operation in documented_routes():
        if (method, path) in ADMIN_ONLY:
            assert needs_admin(operation), (method, path)
            assert "403" in operation["responses"], (method, path)


def test_the_matrix_covers_the_documented_routes() -> None:
    routes = {(method, path) for method, path, _ in documented_routes()}
    assert ("post", "/webhook/register") in routes
    assert ("post", "/upload_file/webhook_id/{webhook_id}") in routes
    assert ("post", "/delivery/{delivery_id}/redeliver") in routes
    assert len(routes) >= 13


@pytest.mark.parametrize("stack_options", [API_KEYS])
async def test_every_route_no_key_user_key_and_admin_key(stack: Stack, receiver: Receiver) -> None:
    alice_id = new_user_id()
    alice = create_key(stack.database_url, alice_id)
    bob = create_key(stack.database_url, new_user_id())
    admin = create_admin_key(stack.database_url)
    owner = await make_owner(stack, receiver, alice, alice_id)

    table: list[str] = []
    wrong: list[str] = []
    for method, template, operation in documented_routes():
        route = f"{method.upper()} {template}"
        documented = set(operation["responses"])
        status, _ = await send(stack, method, template, operation, owner, None)
        expected = "200" if is_open(operation) else "401"
        if str(status) != expected:
            wrong.append(f"{route}: no key {status}, expected {expected}")
        if is_open(operation):
            table.append(f"{route}: open")
            continue

        owned = any(f"{{{name}}}" in template for name in OWNED_PATH_PARAMETERS)
        if needs_admin(operation) or takes_user_id(operation):
            user_expected = 403
        elif owned:
            user_expected = 404
        else:
            user_expected = None  # nothing of anyone's: a user key may call it
        status, envelope = await send(stack, method, template, operation, owner, bob)
        if user_expected is None:
            if status in DENIED:
                wrong.append(f"{route}: user key {status} {envelope.get('message')}")
        elif status != user_expected or str(status) not in documented:
            wrong.append(f"{route}: user key {status}, expected {user_expected} (documented)")

        status, envelope = await send(stack, method, template, operation, owner, admin)
        if status in DENIED or status >= 500:
            wrong.append(f"{route}: admin key {status} {envelope.get('message')}")
        table.append(f"{route}: user key {user_expected or 'allowed'}, admin {status}")
    assert not wrong, "\n".join([*wrong, "", *table])
    # The admin's writes landed on the owner's objects, not on some user of its own.
    deleted = await stack.pool.fetchval(
        "SELECT deleted_at IS NOT NULL FROM webhook_registrations WHERE id = $1",
        uuid.UUID(owner.ids["webhook_id"]),
    )
    assert deleted is True


@pytest.mark.parametrize("stack_options", [API_KEYS])
async def test_an_admin_key_must_say_which_user(stack: Stack, receiver: Receiver) -> None:
    admin = create_admin_key(stack.database_url)
    headers = {"Authorization": f"Bearer {admin}"}
    body = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "url": receiver.url}
    async with stack.http.post(
        f"{stack.gateway_url}/webhook/register", json=body, headers=headers
    ) as resp:
        assert resp.status == 400
        assert "user_id" in (await resp.json())["message"]
    user_id = new_user_id()
    async with stack.http.post(
        f"{stack.gateway_url}/webhook/register", json={**body, "user_id": user_id}, headers=headers
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["data"]["user_id"] == user_id
    async with stack.http.get(
        f"{stack.gateway_url}/webhook?user_id={user_id}", headers=headers
    ) as resp:
        assert resp.status == 200
        assert [w["user_id"] for w in (await resp.json())["data"]] == [user_id]
    stored = await stack.pool.fetchrow(
        "SELECT user_id, admin FROM api_keys WHERE prefix = $1", admin[:10]
    )
    assert stored["admin"] is True and stored["user_id"] is None


@pytest.mark.parametrize("stack_options", [API_KEYS])
async def test_a_user_key_names_only_its_own_user_on_each_route_that_names_one(
    stack: Stack, receiver: Receiver
) -> None:
    """POST /webhook/register, GET /webhook and POST /event: a user key's user by default
    or by name; another user is 403 (after the request's own validation, a 400); an
    admin key names anyone."""
    alice_id, bob_id = new_user_id(), new_user_id()
    alice = create_key(stack.database_url, alice_id)
    admin = create_admin_key(stack.database_url)
    event_type = f"access.{uuid.uuid4().hex[:8]}"
    await stack.pool.execute(
        "INSERT INTO event_types (name, description, event_name) VALUES ($1, $1, $1)",
        event_type,
    )
    webhook = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "url": receiver.url}
    event = {"event_type": event_type, "payload": {}}

    async def named(route: str, key: str, user_id: Any = None) -> tuple[int, dict[str, Any]]:
        """The route called by `key`, naming `user_id` (None: left out)."""
        user = {} if user_id is None else {"user_id": user_id}
        if route == "GET /webhook":
            query = "" if user_id is None else f"?user_id={user_id}"
            status, envelope, _ = await call(stack, "GET", f"/webhook{query}", key)
        elif route == "POST /webhook/register":
            status, envelope, _ = await call(
                stack, "POST", "/webhook/register", key, {**webhook, **user}
            )
        else:
            status, envelope, _ = await call(stack, "POST", "/event", key, {**event, **user})
        return status, envelope

    def users_of(envelope: dict[str, Any]) -> set[int]:
        data = envelope["data"]
        return {item["user_id"] for item in data} if isinstance(data, list) else {data["user_id"]}

    routes = ("POST /webhook/register", "GET /webhook", "POST /event")
    for route in routes:
        status, envelope = await named(route, alice, bob_id)
        assert status == 403, (route, envelope)
        assert envelope["message"] == (
            f"user_id {bob_id} is not the API key's user: a key acts only for its own"
        ), route
        status, envelope = await named(route, alice, 0)
        assert status == 400 and "user_id" in envelope["message"], (route, envelope)
        for user_id in (alice_id, None):
            status, envelope = await named(route, alice, user_id)
            assert status in (200, 202) and users_of(envelope) == {alice_id}, (route, envelope)
        status, envelope = await named(route, admin, bob_id)
        assert status in (200, 202) and users_of(envelope) == {bob_id}, (route, envelope)
        status, envelope = await named(route, admin)
        assert status == 400 and "user_id" in envelope["message"], (route, envelope)
