"""The receivers' package in client/: verify, deduplicate, and the example aiohttp receiver."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from cryptography.exceptions import InvalidSignature as CryptographyInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.common.signing_keys import new_signing_key
from services.common.timefmt import iso_time
from services.dispatcher.signing import signature_header

# The package is installed with `pip install ./client`; the suite uses the checkout directly.
CLIENT = Path(__file__).resolve().parents[1] / "client"
sys.path.insert(0, str(CLIENT))

from webhooks_receiver import (  # noqa: E402
    MAX_TOLERANCE,
    Deduplicator,
    Event,
    InvalidSignature,
    MalformedEvent,
    Verifier,
    verify,
)

EXAMPLE = CLIENT / "examples" / "aiohttp_receiver.py"
# The body's event time, formatted as the sender formats it.
EVENT_TIME = iso_time(datetime(2026, 11, 28, 10, 52, 51, 15000, tzinfo=UTC))


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def upload_body(**custom_payload: Any) -> bytes:
    return json.dumps(
        {
            **custom_payload,
            "type": "upload.completed",
            "timestamp": EVENT_TIME,
            "data": {
                "upload_id": str(uuid.uuid4()),
                "webhook_id": str(uuid.uuid4()),
                "filename": "file.jpg",
                "size": 48213,
                "sha256": "ab" * 32,
                "content_type": "image/jpeg",
                "uploaded_at": EVENT_TIME,
            },
        }
    ).encode()


def signed_headers(
    secrets: list[str], body: bytes, *, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """Headers as a Standard Webhooks sender makes them, signed by the official library."""
    at = at or datetime.now(UTC)
    msg_id = msg_id or str(uuid.uuid4())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(
            Webhook(secret).sign(msg_id, at, body.decode()) for secret in secrets
        ),
    }


# --- verify -------------------------------------------------------------------------------------


def test_a_delivery_signed_with_standardwebhooks_verifies() -> None:
    secret = new_secret()
    body = upload_body(key1="value1")
    at = datetime.now(UTC)
    headers = signed_headers([secret], body, at=at)

    event = verify(secret, body, headers)

    assert isinstance(event, Event)
    assert event.id == headers["webhook-id"]
    assert event.type == "upload.completed"
    assert event.timestamp == datetime(2026, 11, 28, 10, 52, 51, 15000, tzinfo=UTC)
    assert event.signed_at == datetime.fromtimestamp(int(at.timestamp()), tz=UTC)
    assert event.data == json.loads(body)["data"]
    assert event.payload == json.loads(body)
    assert event.payload["key1"] == "value1"


def test_header_names_are_case_insensitive() -> None:
    secret = new_secret()
    body = upload_body()
    headers = {name.title(): value for name, value in signed_headers([secret], body).items()}

    assert verify(secret, body, headers).id == headers["Webhook-Id"]


def test_the_dispatchers_signature_verifies_with_old_and_new_secret() -> None:
    """Signed as our sender signs mid-rotation: new secret first, then the old one."""
    new, old = new_secret(), new_secret()
    body = upload_body(key1="value1")
    msg_id = str(uuid.uuid4())
    timestamp = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header([new, old], msg_id, timestamp, body.decode()),
    }

    for secrets in (new, old, [new_secret(), old]):
        event = verify(secrets, body, headers)
        assert event.id == msg_id
        assert event.payload["key1"] == "value1"
    with pytest.raises(InvalidSignature):
        verify(new_secret(), body, headers)


def test_either_of_two_signatures_verifies() -> None:
    new, old, unrelated = new_secret(), new_secret(), new_secret()
    body = upload_body()
    headers = signed_headers([new, old], body)
    assert " " in headers["webhook-signature"]

    assert verify(new, body, headers).id == headers["webhook-id"]
    assert verify(old, body, headers).id == headers["webhook-id"]
    assert verify([unrelated, old], body, headers).id == headers["webhook-id"]
    with pytest.raises(InvalidSignature):
        verify([unrelated], body, headers)


def _tampered(secret: str, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"file.jpg", b"evil.jpg"), headers


def _wrong_secret(
    secret: str, body: bytes, headers: dict[str, str]
) -> tuple[bytes, dict[str, str]]:
    return body, signed_headers([new_secret()], body, msg_id=headers["webhook-id"])


def _other_id(secret: str, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body, {**headers, "webhook-id": str(uuid.uuid4())}


def _signed_at(delta: timedelta) -> Callable[..., tuple[bytes, dict[str, str]]]:
    def make(secret: str, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        return body, signed_headers([secret], body, at=datetime.now(UTC) + delta)

    return make


def _without(name: str) -> Callable[..., tuple[bytes, dict[str, str]]]:
    def make(secret: str, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        return body, {key: value for key, value in headers.items() if key != name}

    return make


def _signature(value: str) -> Callable[..., tuple[bytes, dict[str, str]]]:
    def make(secret: str, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        return body, {**headers, "webhook-signature": value}

    return make


def _not_utf8(secret: str, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body + b"\xff", headers


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_tampered, id="tampered-body"),
        pytest.param(_wrong_secret, id="wrong-secret"),
        pytest.param(_other_id, id="other-webhook-id"),
        pytest.param(_signed_at(-timedelta(minutes=6)), id="old-timestamp"),
        pytest.param(_signed_at(timedelta(minutes=6)), id="future-timestamp"),
        pytest.param(_without("webhook-id"), id="no-webhook-id"),
        pytest.param(_without("webhook-timestamp"), id="no-webhook-timestamp"),
        pytest.param(_without("webhook-signature"), id="no-webhook-signature"),
        pytest.param(_signature("nonsense"), id="signature-without-version"),
        pytest.param(_signature("v1,not*base64"), id="signature-not-base64"),
        pytest.param(_signature("v1,a,b"), id="signature-with-two-commas"),
        pytest.param(_not_utf8, id="body-not-utf8"),
    ],
)
def test_a_bad_delivery_raises_invalid_signature(
    spoil: Callable[[str, bytes, dict[str, str]], tuple[bytes, dict[str, str]]],
) -> None:
    secret = new_secret()
    body = upload_body()
    bad_body, bad_headers = spoil(secret, body, signed_headers([secret], body))

    with pytest.raises(InvalidSignature) as raised:
        verify(secret, bad_body, bad_headers)
    # Code written against the official library's exception keeps working.
    assert isinstance(raised.value, WebhookVerificationError)


# --- ed25519 (v1a), checked against the cryptography package as an independent implementation --


def ed25519_keypair() -> tuple[Ed25519PrivateKey, str]:
    """A private key and its `whpk_` public key, made with `cryptography` directly."""
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, "whpk_" + base64.b64encode(raw).decode()


def ed25519_headers(
    private: Ed25519PrivateKey, body: bytes, msg_id: str, ts: int
) -> dict[str, str]:
    """Standard Webhooks v1a framing, written out here rather than taken from our code."""
    signature = private.sign(f"{msg_id}.{ts}.".encode() + body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1a," + base64.b64encode(signature).decode(),
    }


def cryptography_verifies(public: str, body: bytes, headers: dict[str, str]) -> bool:
    """Whether some `v1a` signature in the headers verifies with `cryptography` directly."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    for item in headers["webhook-signature"].split(" "):
        version, _, encoded = item.partition(",")
        if version == "v1a":
            try:
                key.verify(base64.b64decode(encoded), signed)
                return True
            except CryptographyInvalidSignature:
                continue
    return False


def test_a_delivery_signed_by_cryptography_verifies_with_the_public_key() -> None:
    private, public = ed25519_keypair()
    body = upload_body(key1="value1")
    now = int(datetime.now(UTC).timestamp())
    headers = ed25519_headers(private, body, "msg_1", now)

    event = verify(public, body, headers)

    assert event.id == "msg_1" and event.payload["key1"] == "value1"
    _, other = ed25519_keypair()
    with pytest.raises(InvalidSignature):
        verify(other, body, headers)
    with pytest.raises(InvalidSignature):
        verify(public, body + b" ", headers)
    stale = ed25519_headers(private, body, "msg_1", now - 600)
    with pytest.raises(InvalidSignature):
        verify(public, body, stale)
    # A v1a signature is never taken for a v1 one, nor the other way round.
    as_v1 = {**headers, "webhook-signature": headers["webhook-signature"].replace("v1a,", "v1,")}
    with pytest.raises(InvalidSignature):
        verify(public, body, as_v1)


def test_the_dispatchers_ed25519_signature_verifies_with_cryptography_and_the_client() -> None:
    """Our sender's v1a signature, checked by cryptography directly and by the client."""
    stored = new_signing_key("ed25519")
    assert stored.shown.startswith("whpk_") and stored.stored.startswith("whsk_")
    assert len(base64.b64decode(stored.shown.removeprefix("whpk_"))) == 32
    body = upload_body()
    msg_id = str(uuid.uuid4())
    ts = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature_header([stored.stored], msg_id, ts, body.decode()),
    }
    assert headers["webhook-signature"].startswith("v1a,")
    assert cryptography_verifies(stored.shown, body, headers)
    assert verify(stored.shown, body, headers).id == msg_id
    tampered = {**headers, "webhook-id": str(uuid.uuid4())}
    assert not cryptography_verifies(stored.shown, body, tampered)


def test_a_rotation_across_schemes_signs_with_both_and_either_key_verifies() -> None:
    """hmac → ed25519 during the grace period: `v1a,… v1,…`, one space apart."""
    new = new_signing_key("ed25519")
    old = new_secret()
    body = upload_body()
    msg_id = str(uuid.uuid4())
    ts = int(datetime.now(UTC).timestamp())
    header = signature_header([new.stored, old], msg_id, ts, body.decode())
    first, second = header.split(" ")
    assert first.startswith("v1a,") and second.startswith("v1,")
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": header}
    assert cryptography_verifies(new.shown, body, headers)
    Webhook(old).verify(body, headers)  # the official library, for the HMAC one
    for keys in (new.shown, old, [old, new.shown]):
        assert verify(keys, body, headers).id == msg_id


@pytest.mark.parametrize(
    "public", ["whpk_AAAA", "whpk_not base64", "whpk_" + base64.b64encode(b"x" * 31).decode()]
)
def test_an_unusable_public_key_fails_when_the_verifier_is_built(public: str) -> None:
    with pytest.raises(ValueError, match="public key") as raised:
        Verifier(public)
    assert public not in str(raised.value)


def test_a_signature_of_another_version_is_ignored() -> None:
    secret = new_secret()
    body = upload_body()
    headers = signed_headers([secret], body)
    v1 = headers["webhook-signature"]

    with pytest.raises(InvalidSignature):
        verify(secret, body, {**headers, "webhook-signature": v1.replace("v1,", "v2,")})
    assert verify(secret, body, {**headers, "webhook-signature": f"v1a,xyz {v1}"})


def test_tolerance_can_narrow_the_window_but_not_widen_it() -> None:
    secret = new_secret()
    body = upload_body()
    headers = signed_headers([secret], body, at=datetime.now(UTC) - timedelta(minutes=2))

    assert verify(secret, body, headers)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(secret, body, headers, tolerance=timedelta(minutes=1))
    for tolerance in (MAX_TOLERANCE + timedelta(seconds=1), timedelta(0)):
        with pytest.raises(ValueError, match="tolerance"):
            verify(secret, body, headers, tolerance=tolerance)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'{"timestamp": "2026-11-28T10:52:51Z", "data": {}}', id="no-type"),
        pytest.param(b'{"type": "x", "timestamp": "2026-11-28T10:52:51Z"}', id="no-data"),
        pytest.param(b'{"type": "x", "timestamp": "2026-11-28T10:52:51Z", "data": []}', id="data"),
        pytest.param(b'{"type": "x", "data": {}}', id="no-timestamp"),
        pytest.param(b'{"type": "x", "timestamp": "yesterday", "data": {}}', id="bad-timestamp"),
    ],
)
def test_a_signed_body_that_is_not_an_event_raises_malformed_event(body: bytes) -> None:
    secret = new_secret()

    with pytest.raises(MalformedEvent):
        verify(secret, body, signed_headers([secret], body))


@pytest.mark.parametrize(
    "secrets",
    [
        pytest.param([], id="none"),
        pytest.param("", id="empty"),
        pytest.param("whsec_", id="prefix-only"),
        pytest.param("whsec_!!!!", id="not-base64"),
    ],
)
def test_an_unusable_secret_fails_when_the_verifier_is_built(secrets: str | list[str]) -> None:
    with pytest.raises(ValueError) as raised:
        Verifier(secrets)
    assert not isinstance(raised.value, InvalidSignature)
    assert "!!!!" not in str(raised.value)


def test_a_verifier_built_once_verifies_many_deliveries() -> None:
    secret = new_secret()
    verifier = Verifier([secret])
    bodies = [upload_body(n=n) for n in range(3)]

    events = [verifier.verify(body, signed_headers([secret], body)) for body in bodies]

    assert [event.payload["n"] for event in events] == [0, 1, 2]


# --- Deduplicator -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_deduplicator_marks_what_it_checks() -> None:
    dedupe = Deduplicator()

    assert dedupe.seen_before("a") is False
    assert dedupe.seen_before("a") is True
    assert dedupe.seen_before("b") is False
    assert len(dedupe) == 2


def test_deduplicator_evicts_the_least_recently_seen_beyond_max_size() -> None:
    dedupe = Deduplicator(max_size=2)
    dedupe.seen_before("a")
    dedupe.seen_before("b")
    assert dedupe.seen_before("a") is True  # a is now more recent than b

    dedupe.seen_before("c")

    assert len(dedupe) == 2
    assert dedupe.seen_before("b") is False  # evicted (and now marked again, evicting a)
    assert dedupe.seen_before("c") is True


def test_deduplicator_forgets_ids_not_seen_for_max_age() -> None:
    clock = FakeClock()
    dedupe = Deduplicator(max_age=timedelta(seconds=60), clock=clock)
    dedupe.seen_before("old")
    clock.now += 30
    dedupe.seen_before("recent")
    clock.now += 30

    assert len(dedupe) == 1
    assert dedupe.seen_before("recent") is True  # seen again: remembered for 60 s more
    assert dedupe.seen_before("old") is False
    clock.now += 59
    assert dedupe.seen_before("recent") is True
    clock.now += 60
    assert dedupe.seen_before("recent") is False


def test_deduplicator_forget_lets_a_retry_through() -> None:
    dedupe = Deduplicator()
    dedupe.seen_before("a")

    dedupe.forget("a")
    dedupe.forget("never-seen")

    assert dedupe.seen_before("a") is False


@pytest.mark.parametrize(
    "kwargs",
    [{"max_size": 0}, {"max_age": timedelta(0)}],
    ids=["max-size", "max-age"],
)
def test_deduplicator_refuses_useless_bounds(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Deduplicator(**kwargs)


# --- the example receiver -----------------------------------------------------------------------


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiohttp_receiver", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = load_example()


class Recorder:
    """The receiver's event handler: records events, and blocks while `gate` is clear."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()

    async def __call__(self, event: Event) -> None:
        self.started.set()
        await self.gate.wait()
        await self.events.put(event)

    async def next(self) -> Event:
        return await asyncio.wait_for(self.events.get(), timeout=5)


async def test_example_receiver_acks_verifies_and_deduplicates(aiohttp_client: Any) -> None:
    secret = new_secret()
    recorder = Recorder()
    client = await aiohttp_client(example.create_app(secret, handle_event=recorder))
    body = upload_body(key1="value1")
    headers = signed_headers([secret], body)

    first = await client.post("/callback", data=body, headers=headers)
    assert first.status == 204
    handled = await recorder.next()
    assert handled.id == headers["webhook-id"]
    assert handled.data["filename"] == "file.jpg"

    # The same delivery again, as a retry signs it: same webhook-id, new timestamp.
    retry = signed_headers([secret], body, msg_id=headers["webhook-id"])
    duplicate = await client.post("/callback", data=body, headers=retry)
    assert duplicate.status == 200

    forged = await client.post("/callback", data=body, headers=signed_headers([new_secret()], body))
    assert forged.status == 401
    unsigned = await client.post("/callback", data=body)
    assert unsigned.status == 401
    not_an_event = await client.post(
        "/callback", data=b"[]", headers=signed_headers([secret], b"[]")
    )
    assert not_an_event.status == 400

    await asyncio.sleep(0.05)
    assert recorder.events.empty()  # nothing but the first delivery reached the handler


async def test_example_receiver_defers_when_its_queue_is_full(aiohttp_client: Any) -> None:
    secret = new_secret()
    recorder = Recorder()
    recorder.gate.clear()
    app = example.create_app(secret, handle_event=recorder, queue_size=1)
    client = await aiohttp_client(app)
    bodies = [upload_body(n=n) for n in range(3)]
    headers = [signed_headers([secret], body) for body in bodies]

    assert (await client.post("/callback", data=bodies[0], headers=headers[0])).status == 204
    # The worker takes it off the queue and blocks in the handler.
    await asyncio.wait_for(recorder.started.wait(), timeout=5)
    assert (await client.post("/callback", data=bodies[1], headers=headers[1])).status == 204
    full = await client.post("/callback", data=bodies[2], headers=headers[2])
    assert full.status == 503
    assert full.headers["Retry-After"] == "30"

    recorder.gate.set()
    assert [(await recorder.next()).payload["n"] for _ in range(2)] == [0, 1]
    # The deferred delivery was not marked as seen: the sender's retry is handled.
    retry = signed_headers([secret], bodies[2], msg_id=headers[2]["webhook-id"])
    assert (await client.post("/callback", data=bodies[2], headers=retry)).status == 204
    assert (await recorder.next()).payload["n"] == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def example_process() -> AsyncIterator[Callable[..., Any]]:
    processes: list[asyncio.subprocess.Process] = []

    async def start(env: dict[str, str]) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            env={"PATH": os.environ.get("PATH", ""), **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def test_example_runs_as_a_script(example_process: Callable[..., Any]) -> None:
    secret = new_secret()
    port = free_port()
    process = await example_process(
        {"WEBHOOK_SECRET": f"{new_secret()} {secret}", "PORT": str(port)}
    )
    body = upload_body()
    url = f"http://127.0.0.1:{port}/callback"

    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                response = await session.post(
                    url, data=body, headers=signed_headers([secret], body)
                )
                break
            except aiohttp.ClientConnectionError:
                assert process.returncode is None, "the example receiver exited"
                await asyncio.sleep(0.1)
        else:
            pytest.fail("the example receiver did not start listening")
        assert response.status == 204
        response.release()
        invoice = json.dumps(
            {"type": "invoice.paid", "timestamp": EVENT_TIME, "data": {"invoice": "in_1"}}
        ).encode()
        delivery_id = str(uuid.uuid4())
        response = await session.post(
            url, data=invoice, headers=signed_headers([secret], invoice, msg_id=delivery_id)
        )
        assert response.status == 204
        response.release()
        await asyncio.sleep(0.5)  # the example's worker handles accepted events after the 204

    process.terminate()
    output = (await process.communicate())[0].decode()
    assert "delivery_accepted" in output
    assert "upload_processed delivery_id=" in output
    # Another type is logged as itself, and the delivery's id is named as what it is.
    assert f"event_processed delivery_id={delivery_id} type=invoice.paid" in output
    assert "filename=None" not in output
    assert "webhook_id=" not in output


async def test_example_refuses_to_start_without_a_secret(
    example_process: Callable[..., Any],
) -> None:
    process = await example_process({"PORT": str(free_port())})

    output = (await asyncio.wait_for(process.communicate(), timeout=30))[0].decode()

    assert process.returncode != 0
    assert "WEBHOOK_SECRET" in output


TWO_TYPES = CLIENT / "examples" / "two_event_types.py"


def event_body(event_type: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "timestamp": EVENT_TIME, "data": data}).encode()


async def test_the_two_types_example_hands_each_type_to_its_handler(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("two_event_types", TWO_TYPES)
    assert spec is not None and spec.loader is not None
    two_types = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(two_types)
    invoices, disabled = Recorder(), Recorder()
    monkeypatch.setitem(two_types.HANDLERS, "invoice.paid", invoices)
    monkeypatch.setitem(two_types.HANDLERS, "webhook.disabled", disabled)
    secret = new_secret()
    client = await aiohttp_client(
        two_types.create_app(secret, handle_event=two_types.handle_by_type)
    )
    sent = {
        "invoice.paid": {"invoice_id": "in_1", "amount": 150},
        "webhook.disabled": {"webhook_id": str(uuid.uuid4()), "url": "https://x", "reason": "410"},
        "build.finished": {"build": 7},
    }
    for event_type, data in sent.items():
        body = event_body(event_type, data)
        answer = await client.post("/callback", data=body, headers=signed_headers([secret], body))
        assert answer.status == 204, event_type
    assert (await invoices.next()).data == sent["invoice.paid"]
    assert (await disabled.next()).data == sent["webhook.disabled"]
    await asyncio.sleep(0.05)
    assert invoices.events.empty() and disabled.events.empty()  # build.finished: neither
