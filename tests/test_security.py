"""Security through the real gateway: API keys and ownership, secrets at rest, abuse limits."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook

from deploy.gateway.render import GatewaySettings
from harness.processes import REPO, service_env
from harness.receiver import Receiver
from harness.stack import UPLOAD_EVENT_TYPE_ID, Stack, StackOptions
from services.common.auth import KeyCache, RateLimiter
from services.common.secrets import ENCRYPTED_PREFIX, SecretBox, SecretUnavailable
from services.common.settings import CommonSettings

# Keys made once per run; the same two throughout, so rows any test left stay readable.
OLD_SECRETS_KEY = Fernet.generate_key().decode()
NEW_SECRETS_KEY = Fernet.generate_key().decode()
# No cache: a revoked key is refused at once (production keeps it AUTH_CACHE_SECONDS).
API_KEYS = StackOptions(auth_mode="api_key", auth_cache_seconds=0)
ENCRYPTED = StackOptions(auth_mode="api_key", auth_cache_seconds=0, secrets_keys=(OLD_SECRETS_KEY,))
# During a SECRETS_KEY rotation: the new key encrypts, the old one still decrypts.
ROTATING = StackOptions(secrets_keys=(NEW_SECRETS_KEY, OLD_SECRETS_KEY))


def new_user_id() -> int:
    """A user of this test alone (the database is shared by the whole run)."""
    return secrets.randbelow(10**12) + 10**6


def registration_command(
    *args: str, database_url: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.registration", *args],
        cwd=REPO,
        env=service_env(DATABASE_URL=database_url, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create_key(database_url: str, user_id: int) -> str:
    result = registration_command(
        "create-api-key", "--user-id", str(user_id), database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("whk_") and len(key) >= 40, result.stdout
    return key


async def call(
    stack: Stack,
    method: str,
    path: str,
    key: str | None,
    body: Any = None,
    *,
    data: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One request through the gateway with `key`; the answer is checked to be our envelope."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    async with stack.http.request(
        method, f"{stack.gateway_url}{path}", json=body, data=data, headers=sent
    ) as resp:
        assert resp.content_type == "application/json", await resp.text()
        envelope: dict[str, Any] = await resp.json()
        answer_headers = dict(resp.headers)
    assert envelope["error"] is (resp.status >= 400), (resp.status, envelope)
    return resp.status, envelope, answer_headers


def upload_form(filename: str = "hello.txt") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", b"hello", filename=filename, content_type="text/plain")
    return form


async def register(stack: Stack, key: str | None, url: str, **fields: Any) -> dict[str, Any]:
    body = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "url": url, **fields}
    status, envelope, _ = await call(stack, "POST", "/webhook/register", key, body)
    assert status == 200, envelope
    return envelope["data"]  # type: ignore[no-any-return]


async def upload(stack: Stack, key: str | None, webhook_id: str) -> dict[str, Any]:
    path = f"/upload_file/webhook_id/{webhook_id}"
    status, envelope, _ = await call(stack, "POST", path, key, data=upload_form())
    assert status == 200, envelope
    return envelope["data"]  # type: ignore[no-any-return]


# --- API keys and ownership -------------------------------------------------------------------


@pytest.mark.parametrize("stack_options", [API_KEYS])
async def test_a_key_acts_only_for_its_own_user_on_every_route(
    stack: Stack, receiver: Receiver
) -> None:
    alice_id, bob_id = new_user_id(), new_user_id()
    alice = create_key(stack.database_url, alice_id)
    bob = create_key(stack.database_url, bob_id)

    # user_id defaults to the key's user; someone else's is 403.
    webhook = await register(stack, alice, receiver.url)
    assert webhook["user_id"] == alice_id
    assert (await register(stack, alice, receiver.url, user_id=alice_id))["user_id"] == alice_id
    body = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "url": receiver.url, "user_id": bob_id}
    status, envelope, _ = await call(stack, "POST", "/webhook/register", alice, body)
    assert status == 403 and "user_id" in envelope["message"], envelope
    status, envelope, _ = await call(stack, "GET", "/webhook", alice)
    assert status == 200 and {w["user_id"] for w in envelope["data"]} == {alice_id}
    assert len(envelope["data"]) == 2
    status, envelope, _ = await call(stack, "GET", f"/webhook?user_id={bob_id}", alice)
    assert status == 403, envelope
    status, envelope, _ = await call(stack, "GET", "/webhook", bob)
    assert status == 200 and envelope["data"] == []

    webhook_id = webhook["id"]
    uploaded = await upload(stack, alice, webhook_id)
    delivery = await stack.delivery_for_upload(uploaded["upload_id"])
    await stack.wait_for_status(delivery["id"], "succeeded")
    delivery_id = str(delivery["id"])

    # Bob sees nothing of Alice's: the same 404 as for an id that does not exist.
    since = {"since": "2020-01-01T00:00:00Z"}
    webhook_routes: list[tuple[str, str, Any]] = [
        ("GET", "/webhook/{}", None),
        ("PATCH", "/webhook/{}", {"disabled": True}),
        ("GET", "/webhook/{}/deliveries", None),
        ("POST", "/webhook/{}/recover", since),
        ("POST", "/webhook/{}/secret/rotate", None),
        ("DELETE", "/webhook/{}", None),
    ]
    delivery_routes: list[tuple[str, str, Any]] = [
        ("GET", "/delivery/{}", None),
        ("POST", "/delivery/{}/redeliver", None),
    ]
    missing = str(uuid.uuid4())
    for routes, real_id in ((webhook_routes, webhook_id), (delivery_routes, delivery_id)):
        for method, template, body in routes:
            status, envelope, _ = await call(stack, method, template.format(real_id), bob, body)
            assert status == 404, (method, template, envelope)
            _, unknown, _ = await call(stack, method, template.format(missing), bob, body)
            assert envelope["message"] == unknown["message"].replace(missing, real_id)
    path = f"/upload_file/webhook_id/{webhook_id}"
    status, envelope, _ = await call(stack, "POST", path, bob, data=upload_form())
    assert status == 404, envelope
    assert (
        await stack.pool.fetchval(
            "SELECT count(*) FROM uploads WHERE webhook_id = $1", uuid.UUID(webhook_id)
        )
        == 1
    )

    # Alice may do all of it.
    for method, template, body in webhook_routes[:-1] + delivery_routes:
        if template.endswith("/recover") or template.endswith("/redeliver"):
            continue  # the webhook is disabled just above: those are 409 now
        real_id = delivery_id if template.startswith("/delivery") else webhook_id
        status, envelope, _ = await call(stack, method, template.format(real_id), alice, body)
        assert status == 200, (method, template, envelope)
    await call(stack, "PATCH", f"/webhook/{webhook_id}", alice, {"disabled": False})
    for method, template, body in (webhook_routes[3], delivery_routes[1]):
        real_id = delivery_id if template.startswith("/delivery") else webhook_id
        status, envelope, _ = await call(stack, method, template.format(real_id), alice, body)
        assert status == 202, (method, template, envelope)
    status, envelope, _ = await call(stack, "DELETE", f"/webhook/{webhook_id}", alice)
    assert status == 200, envelope


@pytest.mark.parametrize("stack_options", [API_KEYS])
async def test_requests_without_a_valid_key_are_401(stack: Stack, receiver: Receiver) -> None:
    user_id = new_user_id()
    key = create_key(stack.database_url, user_id)
    webhook = await register(stack, key, receiver.url)
    body = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "url": receiver.url, "user_id": user_id}
    wrong = [
        {},
        {"Authorization": "Bearer whk_not-a-real-key"},
        {"Authorization": f"Basic {key}"},
        {"Authorization": "Bearer"},
    ]
    for headers in wrong:
        for method, path, json_body, data in (
            ("GET", "/event_type", None, None),
            ("POST", "/webhook/register", body, None),
            ("GET", f"/webhook/{webhook['id']}", None, None),
            ("POST", f"/upload_file/webhook_id/{webhook['id']}", None, upload_form()),
        ):
            status, envelope, answer = await call(
                stack, method, path, None, json_body, data=data, headers=headers
            )
            assert status == 401, (headers, path, envelope)
            assert answer["WWW-Authenticate"] == "Bearer"
            assert key not in envelope["message"]
    # The API's description needs no key.
    async with stack.http.get(f"{stack.gateway_url}/openapi.json") as resp:
        assert resp.status == 200
        document = await resp.json()
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    async with stack.http.get(f"{stack.gateway_url}/docs") as resp:
        assert resp.status == 200
    # Health and metrics: on the services' own ports only, open there.
    for url in (stack.registration_url, stack.upload_url):
        for path in ("/healthz", "/readyz", "/metrics"):
            async with stack.http.get(f"{url}{path}") as resp:
                assert resp.status == 200, (url, path)
    async with stack.http.get(f"{stack.gateway_url}/healthz") as resp:
        assert resp.status == 404


@pytest.mark.parametrize("stack_options", [API_KEYS])
async def test_cli_creates_and_revokes_keys(stack: Stack) -> None:
    user_id = new_user_id()
    key = create_key(stack.database_url, user_id)
    status, _, _ = await call(stack, "GET", "/webhook", key)
    assert status == 200

    revoked = registration_command("revoke-api-key", key, database_url=stack.database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert key not in revoked.stdout
    status, envelope, _ = await call(stack, "GET", "/webhook", key)
    assert status == 401, envelope

    again = registration_command("revoke-api-key", key, database_url=stack.database_url)
    assert again.returncode == 1
    assert len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert key not in again.stderr
    # Only the hash is stored.
    stored = await stack.pool.fetch("SELECT key_hash, prefix FROM api_keys")
    assert all(key not in row["key_hash"] and row["prefix"] != key for row in stored)


# --- secrets at rest --------------------------------------------------------------------------


def pg_dump(database_url: str) -> str:
    result = subprocess.run(
        ["pg_dump", "--data-only", database_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def verify(secret: str, received: Any) -> None:
    """The official library accepts the delivery with this secret."""
    Webhook(secret).verify(received.body, received.headers)


@pytest.mark.parametrize("stack_options", [ENCRYPTED])
async def test_database_dump_holds_no_key_and_no_secret(stack: Stack, receiver: Receiver) -> None:
    key = create_key(stack.database_url, new_user_id())
    webhook = await register(stack, key, receiver.url)
    first_secret = webhook["secret"]
    status, envelope, _ = await call(stack, "POST", f"/webhook/{webhook['id']}/secret/rotate", key)
    assert status == 200, envelope
    second_secret = envelope["data"]["secret"]

    await upload(stack, key, webhook["id"])
    [received] = await receiver.wait_for(1)
    # Both signatures verify during the grace period: both secrets were decrypted.
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    verify(first_secret, received)
    verify(second_secret, received)

    stored = await stack.pool.fetchrow(
        "SELECT secret, previous_secret FROM webhook_registrations WHERE id = $1",
        uuid.UUID(webhook["id"]),
    )
    assert stored["secret"].startswith(ENCRYPTED_PREFIX)
    assert stored["previous_secret"].startswith(ENCRYPTED_PREFIX)
    dump = pg_dump(stack.database_url)
    assert "api_keys" in dump and "webhook_registrations" in dump
    for plaintext in (key, key.removeprefix("whk_"), first_secret, second_secret):
        assert plaintext not in dump
    for secret in (first_secret, second_secret):
        assert secret.removeprefix("whsec_") not in dump


@pytest.mark.parametrize("stack_options", [ROTATING])
async def test_deliveries_verify_through_a_secrets_key_rotation(
    stack: Stack, receiver: Receiver
) -> None:
    """New key first, old key after it; reencrypt-secrets; then the old key can go."""
    legacy = await stack.register(receiver.url)
    old = await stack.register(receiver.url)
    # As if written before the rotation: one row in plaintext, one with the old key.
    await stack.pool.execute(
        "UPDATE webhook_registrations SET secret = $2 WHERE id = $1",
        uuid.UUID(legacy["id"]),
        legacy["secret"],
    )
    await stack.pool.execute(
        "UPDATE webhook_registrations SET secret = $2 WHERE id = $1",
        uuid.UUID(old["id"]),
        SecretBox((OLD_SECRETS_KEY,)).encrypt(old["secret"]),
    )
    new = await stack.register(receiver.url)
    for webhook in (legacy, old, new):
        await stack.upload(webhook["id"])
    received = await receiver.wait_for(3)
    by_webhook = {r.json()["data"]["webhook_id"]: r for r in received}
    for webhook in (legacy, old, new):
        verify(webhook["secret"], by_webhook[webhook["id"]])

    result = registration_command(
        "reencrypt-secrets",
        database_url=stack.database_url,
        SECRETS_KEY=f"{NEW_SECRETS_KEY},{OLD_SECRETS_KEY}",
    )
    assert result.returncode == 0, result.stderr
    new_only = SecretBox((NEW_SECRETS_KEY,))
    for webhook in (legacy, old, new):
        stored = await stack.pool.fetchval(
            "SELECT secret FROM webhook_registrations WHERE id = $1", uuid.UUID(webhook["id"])
        )
        assert stored.startswith(ENCRYPTED_PREFIX)
        assert new_only.decrypt(stored) == webhook["secret"]


def test_an_invalid_secrets_key_stops_the_service_with_one_line() -> None:
    for service in ("registration", "dispatcher"):
        result = subprocess.run(
            [sys.executable, "-m", f"services.{service}"],
            cwd=REPO,
            env=service_env(SECRETS_KEY="not-a-fernet-key"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "SECRETS_KEY" in lines[0], lines
        assert "not-a-fernet-key" not in result.stderr


# --- abuse limits -----------------------------------------------------------------------------


async def test_oversized_bodies_and_configuration_are_refused(
    stack: Stack, receiver: Receiver
) -> None:
    base = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1, "url": receiver.url}
    too_big = {**base, "custom_payload": {"pad": "x" * 70_000}}
    status, envelope, _ = await call(stack, "POST", "/webhook/register", None, too_big)
    assert status == 413, envelope
    cases: list[tuple[dict[str, Any], str]] = [
        ({"custom_payload": {"pad": "x" * 17_000}}, "custom_payload"),
        ({"custom_headers": {f"X-H{i}": "v" for i in range(33)}}, "custom_headers"),
        ({"custom_headers": {f"X-H{i}": "v" * 500 for i in range(20)}}, "custom_headers"),
    ]
    for extra, field in cases:
        status, envelope, _ = await call(stack, "POST", "/webhook/register", None, base | extra)
        assert status == 400, envelope
        assert envelope["message"].startswith(field), envelope
    # Just inside the limits is fine.
    inside = {"custom_payload": {"pad": "x" * 16_000}, "custom_headers": {"X-A": "v" * 8000}}
    status, envelope, _ = await call(stack, "POST", "/webhook/register", None, base | inside)
    assert status == 200, envelope


@pytest.mark.parametrize("stack_options", [StackOptions(rate_limit_per_second=1)])
async def test_the_services_rate_limit_answers_429_with_retry_after(stack: Stack) -> None:
    answers = [await call(stack, "GET", "/event_type", None) for _ in range(6)]
    limited = [(envelope, headers) for status, envelope, headers in answers if status == 429]
    assert limited, [status for status, _, _ in answers]
    envelope, headers = limited[0]
    assert int(headers["Retry-After"]) >= 1
    assert "too many requests" in envelope["message"]
    # Health and metrics are never limited.
    for _ in range(5):
        async with stack.http.get(f"{stack.registration_url}/healthz") as resp:
            assert resp.status == 200
    await asyncio.sleep(1.1)
    status, _, _ = await call(stack, "GET", "/event_type", None)
    assert status == 200


@pytest.mark.parametrize(
    "stack_options", [StackOptions(auth_mode="api_key", rate_limit_per_second=1)]
)
async def test_guessing_keys_is_limited_per_address(stack: Stack) -> None:
    """A new made-up key per request does not dodge the limit."""
    statuses = [(await call(stack, "GET", "/event_type", f"whk_guess{i}"))[0] for i in range(8)]
    assert statuses[0] == 401 and 429 in statuses, statuses


@pytest.mark.parametrize(
    "stack_options", [StackOptions(gateway_rate_per_second=1, gateway_rate_burst=1)]
)
async def test_the_gateway_rate_limit_answers_429_with_retry_after(stack: Stack) -> None:
    answers = await asyncio.gather(*(call(stack, "GET", "/event_type", None) for _ in range(8)))
    statuses = [status for status, _, _ in answers]
    assert 429 in statuses and 200 in statuses, statuses
    _, envelope, headers = next(answer for answer in answers if answer[0] == 429)
    assert headers["Retry-After"] == "1"
    assert envelope["message"] == "too many requests, retry later"


async def test_a_path_in_the_filename_stays_inside_upload_dir(
    stack: Stack, receiver: Receiver
) -> None:
    """Also tests/test_upload.py::test_filename_cannot_escape_the_upload_dir."""
    webhook = await stack.register(receiver.url)
    boundary = "sec" + secrets.token_hex(8)
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="../../etc/x"\r\n'
        "Content-Type: text/plain\r\n\r\nhello\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    path = f"/upload_file/webhook_id/{webhook['id']}"
    status, envelope, _ = await call(stack, "POST", path, None, data=body, headers=headers)
    assert status == 200, envelope
    assert envelope["data"]["filename"] == "x"
    stored = await stack.pool.fetchval(
        "SELECT stored_path FROM uploads WHERE id = $1", uuid.UUID(envelope["data"]["upload_id"])
    )
    assert_inside(Path(stored), stack.upload_dir)


def assert_inside(path: Path, folder: Path) -> None:
    resolved = path.resolve()
    assert resolved.is_relative_to(folder.resolve()), resolved
    assert resolved.read_bytes() == b"hello"


# --- units ------------------------------------------------------------------------------------


def test_token_bucket_allows_bursts_of_twice_the_rate_then_refills() -> None:
    now = [100.0]
    limiter = RateLimiter(2.0, clock=lambda: now[0])
    assert [limiter.retry_after("a") for _ in range(4)] == [None] * 4
    assert limiter.retry_after("a") == 1
    assert limiter.retry_after("b") is None  # callers are counted apart
    now[0] += 0.5
    assert limiter.retry_after("a") is None


def test_the_default_rate_limits_never_meet_one_producer_at_the_readme_figures() -> None:
    """SPEC section 13: a burst of 2,000 uploads, then the busiest README rate (GET
    /event_type, ~5,500/s) for a minute, from one caller, through the default limits."""
    now = [0.0]
    limiter = RateLimiter(CommonSettings.rate_limit_per_second, clock=lambda: now[0])
    assert all(limiter.retry_after("producer") is None for _ in range(2000))
    for _ in range(60 * 5500):
        now[0] += 1 / 5500
        assert limiter.retry_after("producer") is None
    gateway = GatewaySettings()
    assert gateway.rate_per_second >= 5500 and gateway.rate_burst >= 2000


def test_key_cache_forgets_after_its_ttl() -> None:
    now = [0.0]
    cache = KeyCache(5.0, clock=lambda: now[0])
    cache.put("h", 7)
    assert cache.get("h") == (True, 7)
    now[0] += 5.0
    assert cache.get("h") == (False, None)


def test_secret_box_reads_plaintext_and_every_listed_key() -> None:
    old, new = SecretBox((OLD_SECRETS_KEY,)), SecretBox((NEW_SECRETS_KEY, OLD_SECRETS_KEY))
    stored = old.encrypt("whsec_abc")
    assert stored.startswith(ENCRYPTED_PREFIX) and "whsec_abc" not in stored
    assert new.decrypt(stored) == "whsec_abc"
    assert new.decrypt("whsec_legacy") == "whsec_legacy"
    assert SecretBox((NEW_SECRETS_KEY,)).decrypt(new.reencrypt(stored)) == "whsec_abc"
    with pytest.raises(SecretUnavailable):
        SecretBox((NEW_SECRETS_KEY,)).decrypt(stored)
    with pytest.raises(SecretUnavailable):
        SecretBox().decrypt(stored)
    assert SecretBox().encrypt("whsec_abc") == "whsec_abc"
