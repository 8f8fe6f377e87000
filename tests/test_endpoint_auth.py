"""Endpoint authentication end to end (SPEC §17): receivers on 127.0.0.1 that require it, and
the secrets it needs stored encrypted and never shown."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.receiver import Receiver, Reply, serve_on_loopback
from harness.stack import UPLOAD_EVENT_TYPE_ID, Stack, StackOptions
from services.common.secrets import ENCRYPTED_PREFIX, SecretBox
from tests.test_security import (
    NEW_SECRETS_KEY,
    OLD_SECRETS_KEY,
    ROTATING,
    call,
    registration_command,
)

ENCRYPTED = StackOptions(secrets_keys=(OLD_SECRETS_KEY,), retry_schedule=())
PASSWORD = "correct horse battery staple"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def requiring(receiver: Receiver, authorization: str) -> None:
    """The receiver answers 401 to any request without exactly this `Authorization`."""

    def respond(number: int) -> Reply:
        headers = {k.lower(): v for k, v in receiver.received[number].headers.items()}
        return Reply() if headers.get("authorization") == authorization else Reply(401)

    receiver.respond = respond


async def deliver(stack: Stack, webhook_id: str) -> Any:
    upload = await stack.upload(webhook_id)
    return await stack.delivery_for_upload(upload["upload_id"])


async def stored_auth(stack: Stack, webhook_id: str) -> Any:
    return await stack.pool.fetchval(
        "SELECT auth FROM webhook_configurations WHERE webhook_id = $1", uuid.UUID(webhook_id)
    )


@pytest.mark.parametrize("stack_options", [ENCRYPTED])
async def test_basic_auth_is_sent_stored_encrypted_and_never_shown(
    stack: Stack, receiver: Receiver
) -> None:
    requiring(receiver, basic("hooks", PASSWORD))
    auth = {"type": "basic", "username": "hooks", "password": PASSWORD}
    webhook = await stack.register(receiver.url, auth=auth)
    shown = {"type": "basic", "username": "hooks", "password": None, "has_password": True}
    assert webhook["auth"] == shown
    stored = await stored_auth(stack, webhook["id"])
    assert stored["password"].startswith(ENCRYPTED_PREFIX)
    assert SecretBox((OLD_SECRETS_KEY,)).decrypt(stored["password"]) == PASSWORD

    delivery = await deliver(stack, webhook["id"])
    await stack.wait_for_status(delivery["id"], "succeeded")

    path = f"/webhook/{webhook['id']}"
    status, envelope, _ = await call(stack, "GET", path, None)
    assert status == 200 and envelope["data"]["auth"] == shown
    status, envelope, _ = await call(stack, "GET", "/webhook?user_id=1", None)
    assert [w["auth"] for w in envelope["data"] if w["id"] == webhook["id"]] == [shown]

    # A new password by PATCH is the one sent from then on.
    status, envelope, _ = await call(
        stack, "PATCH", path, None, {"auth": {**auth, "password": "new one"}}
    )
    assert status == 200 and envelope["data"]["auth"] == shown, envelope
    delivery = await deliver(stack, webhook["id"])
    await stack.wait_for_status(delivery["id"], "failed")  # the receiver wants the old one
    requiring(receiver, basic("hooks", "new one"))
    delivery = await deliver(stack, webhook["id"])
    await stack.wait_for_status(delivery["id"], "succeeded")

    # null removes it; a PATCH of something else leaves it as it is.
    status, envelope, _ = await call(stack, "PATCH", path, None, {"timeout_seconds": 3})
    assert status == 200 and envelope["data"]["auth"] == shown
    status, envelope, _ = await call(stack, "PATCH", path, None, {"auth": None})
    assert status == 200 and envelope["data"]["auth"] is None
    assert await stored_auth(stack, webhook["id"]) is None
    count = len(receiver.received)
    delivery = await deliver(stack, webhook["id"])
    await stack.wait_for_status(delivery["id"], "failed")
    assert "authorization" not in {k.lower() for k in receiver.received[count].headers}


async def test_auth_wins_over_a_stored_custom_authorization(
    stack: Stack, receiver: Receiver
) -> None:
    requiring(receiver, basic("hooks", PASSWORD))
    webhook = await stack.register(receiver.url, custom_headers={"authorization": "Bearer old"})
    auth = {"type": "basic", "username": "hooks", "password": PASSWORD}
    status, envelope, _ = await call(
        stack, "PATCH", f"/webhook/{webhook['id']}", None, {"auth": auth}
    )
    assert status == 200, envelope
    # Stored in the clear without SECRETS_KEY (the services warn at start), still never shown.
    assert (await stored_auth(stack, webhook["id"]))["password"] == PASSWORD
    assert envelope["data"]["auth"]["password"] is None
    delivery = await deliver(stack, webhook["id"])
    await stack.wait_for_status(delivery["id"], "succeeded")
    [received] = receiver.received
    assert [k for k in received.headers if k.lower() == "authorization"] == ["Authorization"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            {
                "custom_headers": {"Authorization": "Bearer x"},
                "auth": {"type": "basic", "username": "a", "password": "b"},
            },
            "Authorization",
        ),
        ({"auth": {"type": "basic", "username": "a:b", "password": "c"}}, "auth.basic.username"),
        ({"auth": {"type": "basic", "username": "a", "password": ""}}, "auth.basic.password"),
        ({"auth": {"type": "basic", "username": "a"}}, "auth.basic.password"),
        ({"auth": {"type": "digest", "username": "a", "password": "b"}}, "auth"),
        ({"auth": {"type": "basic", "username": "a", "password": "b", "x": 1}}, "x"),
    ],
)
async def test_bad_auth_is_refused_naming_the_field(
    stack: Stack, receiver: Receiver, body: dict[str, Any], named: str
) -> None:
    registration = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1, "url": receiver.url}
    status, envelope, _ = await call(
        stack, "POST", "/webhook/register", None, {**registration, **body}
    )
    assert status == 400 and named in envelope["message"], envelope
    webhook = await stack.register(receiver.url)
    status, envelope, _ = await call(stack, "PATCH", f"/webhook/{webhook['id']}", None, body)
    assert status == 400 and named in envelope["message"], envelope


# --- OAuth2 client credentials -------------------------------------------------------------

CLIENT_ID = "hooks-client"
CLIENT_SECRET = "oauth client secret 9f2c"


class TokenServer:
    """An OAuth2 token endpoint on 127.0.0.1 (RFC 6749 §4.4) and the tokens it issued."""

    def __init__(self, expires_in: int = 3600, basic_only: bool = False) -> None:
        self.expires_in = expires_in
        self.delay = 0.0  # seconds before each answer
        self.basic_only = basic_only  # answers 401 to credentials in the body
        # Closes each connection after answering: a forward proxy (proxy.py) logs a request
        # when its connection ends.
        self.close_connections = False
        self.requests: list[dict[str, str]] = []
        self.valid: set[str] = set()
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oauth2/token"

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        await asyncio.sleep(self.delay)
        self.requests.append({**form, "authorization": request.headers.get("Authorization", "")})
        if request.headers.get("Authorization"):
            client_id, _, secret = (
                base64.b64decode(request.headers["Authorization"].split()[1])
                .decode()
                .partition(":")
            )
        elif self.basic_only:
            return web.json_response({"error": "invalid_client"}, status=401)
        else:
            client_id, secret = str(form.get("client_id")), str(form.get("client_secret"))
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if (unquote_plus(client_id), unquote_plus(secret)) != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"error": "invalid_client"}, status=401)
        token = f"token-{len(self.requests)}-{uuid.uuid4().hex}"
        self.valid.add(token)
        answer = {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
        return web.json_response(answer)

    async def closing(self, _: web.Request, response: web.StreamResponse) -> None:
        if self.close_connections:
            response.force_close()

    async def start(self) -> TokenServer:
        app = web.Application()
        app.router.add_post("/oauth2/token", self.token)
        app.on_response_prepare.append(self.closing)
        self.runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def token_server() -> AsyncIterator[TokenServer]:
    server = await TokenServer().start()
    yield server
    await server.stop()


def accepting_tokens_of(receiver: Receiver, server: TokenServer) -> None:
    """The receiver answers 401 to any request without a token the server issued."""

    def respond(number: int) -> Reply:
        headers = {k.lower(): v for k, v in receiver.received[number].headers.items()}
        token = headers.get("authorization", "").removeprefix("Bearer ")
        return Reply() if token in server.valid else Reply(401)

    receiver.respond = respond


def oauth2(server: TokenServer, secret: str = CLIENT_SECRET) -> dict[str, Any]:
    return {
        "type": "oauth2_client_credentials",
        "token_url": server.url,
        "client_id": CLIENT_ID,
        "client_secret": secret,
        "scope": "hooks:write",
    }


@pytest.mark.parametrize("stack_options", [StackOptions(secrets_keys=(OLD_SECRETS_KEY,))])
async def test_one_token_serves_many_deliveries_and_is_fetched_again_when_refused(
    stack: Stack, receiver: Receiver, token_server: TokenServer
) -> None:
    accepting_tokens_of(receiver, token_server)
    webhook = await stack.register(receiver.url, auth=oauth2(token_server))
    assert webhook["auth"] == {
        **oauth2(token_server),
        "client_secret": None,
        "has_secret": True,
        "audience": None,
    }
    stored = await stored_auth(stack, webhook["id"])
    assert stored["client_secret"].startswith(ENCRYPTED_PREFIX)

    # A slow token endpoint: deliveries that come meanwhile wait for the same request.
    token_server.delay = 0.5
    uploads = [await stack.upload(webhook["id"]) for _ in range(100)]
    for upload in uploads:
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        await stack.wait_for_status(delivery["id"], "succeeded")
    [request] = token_server.requests
    assert request["grant_type"] == "client_credentials" and request["scope"] == "hooks:write"
    assert request["client_id"] == CLIENT_ID and request["authorization"] == ""

    # The endpoint stops accepting the token: that attempt fails with 401, and the retry
    # (1 s later) carries a new token.
    token_server.valid.clear()
    delivery = await deliver(stack, webhook["id"])
    row = await stack.wait_for_status(delivery["id"], "succeeded")
    assert row["attempt_count"] == 2 and len(token_server.requests) == 2


@pytest.mark.parametrize("stack_options", [ENCRYPTED])
async def test_a_token_is_fetched_again_before_it_expires(
    stack: Stack, receiver: Receiver, token_server: TokenServer
) -> None:
    # Used for 2 s less 10 %: a delivery 2 s after the first needs a new token.
    token_server.expires_in = 2
    accepting_tokens_of(receiver, token_server)
    webhook = await stack.register(receiver.url, auth=oauth2(token_server))
    await stack.wait_for_status((await deliver(stack, webhook["id"]))["id"], "succeeded")
    await stack.wait_for_status((await deliver(stack, webhook["id"]))["id"], "succeeded")
    assert len(token_server.requests) == 1
    await asyncio.sleep(2.0)
    await stack.wait_for_status((await deliver(stack, webhook["id"]))["id"], "succeeded")
    assert len(token_server.requests) == 2


@pytest.mark.parametrize("stack_options", [ENCRYPTED])
async def test_a_token_endpoint_that_wants_basic_gets_it(
    stack: Stack, receiver: Receiver, token_server: TokenServer
) -> None:
    token_server.basic_only = True
    accepting_tokens_of(receiver, token_server)
    webhook = await stack.register(receiver.url, auth=oauth2(token_server))
    await stack.wait_for_status((await deliver(stack, webhook["id"]))["id"], "succeeded")
    await stack.wait_for_status((await deliver(stack, webhook["id"]))["id"], "succeeded")
    body_form, basic_form = token_server.requests  # then Basic only, and one token
    assert body_form["client_secret"] == CLIENT_SECRET
    assert "client_secret" not in basic_form and basic_form["authorization"].startswith("Basic ")


@pytest.mark.parametrize("stack_options", [ENCRYPTED])
async def test_a_bad_client_secret_is_a_failed_attempt_that_says_so(
    stack: Stack, receiver: Receiver, token_server: TokenServer
) -> None:
    webhook = await stack.register(receiver.url, auth=oauth2(token_server, "wrong"))
    delivery = await deliver(stack, webhook["id"])
    await stack.wait_for_status(delivery["id"], "failed")
    error = await stack.pool.fetchval(
        "SELECT error FROM delivery_attempts WHERE delivery_id = $1", delivery["id"]
    )
    assert error == f"token request to {token_server.url}: 401 invalid_client", error
    assert receiver.received == []


@pytest.mark.parametrize("stack_options", [StackOptions(registration_allow_private=False)])
async def test_a_private_token_url_is_refused_at_registration(
    stack: Stack, token_server: TokenServer
) -> None:
    registration = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1}
    body = {**registration, "url": "https://example.com/hook", "auth": oauth2(token_server)}
    status, envelope, _ = await call(stack, "POST", "/webhook/register", None, body)
    assert status == 400 and envelope["message"].startswith("auth.token_url is not allowed")


# --- mutual TLS ----------------------------------------------------------------------------


def issued(
    name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, *, ca: bool = False
) -> tuple[str, str, x509.Name, ec.EllipticCurvePrivateKey]:
    """A certificate for `name` (PEM) and its key (PEM), signed by `issuer` (else itself)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = builder.add_extension(x509.SubjectAlternativeName([address]), critical=False)
    certificate = builder.sign(issuer_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem, subject, key


class TlsReceiver(Receiver):
    """An HTTPS receiver on 127.0.0.1 that accepts only clients with a certificate its CA
    signed."""

    def __init__(self, server_ca: Any, client_ca_pem: str, workdir: Path) -> None:
        super().__init__()
        certificate, key, _, _ = issued("receiver", server_ca)
        (workdir / "server.pem").write_text(certificate)
        (workdir / "server.key").write_text(key)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(workdir / "server.pem", workdir / "server.key")
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(cadata=client_ca_pem)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hook"

    async def start(self) -> TlsReceiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve_on_loopback(app, ssl_context=self.context)
        return self


@pytest.mark.parametrize("stack_options", [ENCRYPTED])
async def test_a_client_certificate_is_presented_to_an_endpoint_that_requires_one(
    stack: Stack, tmp_path: Path
) -> None:
    server_ca_pem, _, server_ca_name, server_ca_key = issued("server CA", None, ca=True)
    client_ca_pem, _, client_ca_name, client_ca_key = issued("client CA", None, ca=True)
    receiver = await TlsReceiver((server_ca_name, server_ca_key), client_ca_pem, tmp_path).start()
    try:
        certificate, key, _, _ = issued("hooks client", (client_ca_name, client_ca_key))
        # The server's CA is not the system's: without tls_ca the server is not trusted.
        tls = {"certificate": certificate, "private_key": key}
        webhook = await stack.register(receiver.url, tls_client_certificate=tls)
        failed = await stack.wait_for_status((await deliver(stack, webhook["id"]))["id"], "failed")
        assert "certificate verify failed" in failed["last_error"], failed["last_error"]

        # Trusted, but no client certificate: the receiver refuses the handshake.
        webhook = await stack.register(receiver.url, tls_ca=server_ca_pem)
        assert webhook["tls_ca"] == server_ca_pem and webhook["tls_client_certificate"] is None
        delivery = await deliver(stack, webhook["id"])
        failed = await stack.wait_for_status(delivery["id"], "failed")
        assert failed["last_error"].startswith("connection error"), failed["last_error"]
        assert receiver.received == []

        path = f"/webhook/{webhook['id']}"
        status, envelope, _ = await call(
            stack, "PATCH", path, None, {"tls_client_certificate": tls}
        )
        assert status == 200, envelope
        shown = envelope["data"]["tls_client_certificate"]
        assert shown["subject"] == "CN=hooks client" and shown["has_private_key"] is True
        assert shown["private_key"] is None and set(shown) == {
            "subject",
            "expires_at",
            "private_key",
            "has_private_key",
        }
        stored = await stack.pool.fetchval(
            "SELECT tls_client_certificate FROM webhook_configurations WHERE webhook_id = $1",
            uuid.UUID(webhook["id"]),
        )
        assert stored["private_key"].startswith(ENCRYPTED_PREFIX)
        delivery = await deliver(stack, webhook["id"])
        await stack.wait_for_status(delivery["id"], "succeeded")
        [received] = receiver.received
        assert received.json()["data"]["upload_id"] == str(delivery["upload_id"])

        status, envelope, _ = await call(
            stack, "PATCH", path, None, {"tls_client_certificate": None, "tls_ca": None}
        )
        assert status == 200 and envelope["data"]["tls_client_certificate"] is None
        assert envelope["data"]["tls_ca"] is None
    finally:
        await receiver.stop()


async def test_bad_tls_settings_are_refused_naming_the_field(
    stack: Stack, receiver: Receiver
) -> None:
    _, _, ca_name, ca_key = issued("CA", None, ca=True)
    certificate, key, _, _ = issued("client", (ca_name, ca_key))
    _, other_key, _, _ = issued("other", None)
    cases = [
        ({"tls_ca": "not a PEM"}, "tls_ca"),
        (
            {"tls_client_certificate": {"certificate": "nope", "private_key": key}},
            "tls_client_certificate.certificate",
        ),
        (
            {"tls_client_certificate": {"certificate": certificate, "private_key": "nope"}},
            "tls_client_certificate.private_key",
        ),
        (
            {"tls_client_certificate": {"certificate": certificate, "private_key": other_key}},
            "tls_client_certificate.private_key is not the key",
        ),
    ]
    webhook = await stack.register(receiver.url)
    for body, named in cases:
        registration = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1, "url": receiver.url}
        status, envelope, _ = await call(
            stack, "POST", "/webhook/register", None, {**registration, **body}
        )
        assert status == 400 and named in envelope["message"], envelope
        status, envelope, _ = await call(stack, "PATCH", f"/webhook/{webhook['id']}", None, body)
        assert status == 400 and named in envelope["message"], envelope


@pytest.mark.parametrize("stack_options", [ROTATING])
async def test_reencrypt_secrets_rewrites_endpoint_secrets_too(
    stack: Stack, receiver: Receiver, tmp_path: Path
) -> None:
    requiring(receiver, basic("hooks", PASSWORD))
    certificate, key, _, _ = issued("hooks client", None)
    webhook = await stack.register(
        receiver.url,
        auth={"type": "basic", "username": "hooks", "password": PASSWORD},
        tls_client_certificate={"certificate": certificate, "private_key": key},
    )
    # As if written before the rotation, with the old key.
    old = SecretBox((OLD_SECRETS_KEY,))
    stored = await stored_auth(stack, webhook["id"])
    await stack.pool.execute(
        """
        UPDATE webhook_configurations
        SET auth = jsonb_set(auth, '{password}', to_jsonb($2::text)),
            tls_client_certificate = jsonb_set(tls_client_certificate, '{private_key}',
                                               to_jsonb($3::text))
        WHERE webhook_id = $1
        """,
        uuid.UUID(webhook["id"]),
        old.encrypt(PASSWORD),
        old.encrypt(key),
    )
    result = registration_command(
        "reencrypt-secrets",
        database_url=stack.database_url,
        SECRETS_KEY=f"{NEW_SECRETS_KEY},{OLD_SECRETS_KEY}",
    )
    assert result.returncode == 0, result.stderr
    new_only = SecretBox((NEW_SECRETS_KEY,))
    stored = await stored_auth(stack, webhook["id"])
    assert new_only.decrypt(stored["password"]) == PASSWORD
    certificate_row = await stack.pool.fetchval(
        "SELECT tls_client_certificate FROM webhook_configurations WHERE webhook_id = $1",
        uuid.UUID(webhook["id"]),
    )
    assert new_only.decrypt(certificate_row["private_key"]) == key
    assert certificate_row["subject"] == "CN=hooks client"
