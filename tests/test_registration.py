"""The registration service through the real gateway: event types, registering, refusals, limits."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from harness.stack import UPLOAD_EVENT_TYPE_ID, Stack, StackOptions
from services.common.urlsafety import is_forbidden_address
from services.registration.views import RegisteredWebhook

MAX_JSON_BYTES = StackOptions().max_json_bytes
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
# The response shape, as the OpenAPI document declares it.
WEBHOOK_KEYS = set(RegisteredWebhook.model_fields)
VALID = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1, "url": "https://example.com/hook"}
JSON = {"Content-Type": "application/json"}


async def read_envelope(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    """The body, checked to be our envelope."""
    assert resp.content_type == "application/json", await resp.text()
    body: dict[str, Any] = json.loads(await resp.read())
    assert set(body) >= {"message", "data", "error"}, body
    assert isinstance(body["message"], str)
    assert isinstance(body["error"], bool)
    return body


async def row_counts(stack: Stack) -> tuple[int, int]:
    registrations = await stack.pool.fetchval("SELECT count(*) FROM webhook_registrations")
    configurations = await stack.pool.fetchval("SELECT count(*) FROM webhook_configurations")
    return registrations, configurations


async def post_register(
    stack: Stack, body: bytes, headers: dict[str, str] | None = None, base: str | None = None
) -> tuple[aiohttp.ClientResponse, dict[str, Any]]:
    url = f"{base or stack.gateway_url}/webhook/register"
    async with stack.http.post(url, data=body, headers=headers or JSON) as resp:
        return resp, await read_envelope(resp)


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


# --- event types ----------------------------------------------------------------------------------
# The seeded event type is listed, and `?name=` filters exactly.


async def test_event_types_list_the_seeded_upload_type(stack: Stack) -> None:
    async with stack.http.get(f"{stack.gateway_url}/event_type") as resp:
        assert resp.status == 200
        body = await read_envelope(resp)
    assert body["error"] is False
    # Items keep the original design's fields (and gained SPEC §8's).
    original = ("id", "name", "description")
    assert {
        "id": UPLOAD_EVENT_TYPE_ID,
        "name": "upload file",
        "description": "Event type for file upload operations",
    } in [{name: item[name] for name in original} for item in body["data"]]
    (upload,) = [item for item in body["data"] if item["id"] == UPLOAD_EVENT_TYPE_ID]
    assert (upload["schema"], upload["archived"]) == (None, False)


async def test_event_types_filter_by_name(stack: Stack) -> None:
    async with stack.http.get(
        f"{stack.gateway_url}/event_type", params={"name": "upload file"}
    ) as resp:
        assert resp.status == 200
        body = await read_envelope(resp)
    assert body["error"] is False
    assert [item["id"] for item in body["data"]] == [UPLOAD_EVENT_TYPE_ID]

    async with stack.http.get(f"{stack.gateway_url}/event_type", params={"name": "nope"}) as resp:
        assert resp.status == 200
        body = await read_envelope(resp)
    assert body == {"message": body["message"], "data": [], "error": False}


# --- successful registration --------------------------------------------------------------------
# The response has exactly the documented shape, and both tables hold the webhook.


async def test_register_returns_the_webhook_and_stores_both_rows(stack: Stack) -> None:
    headers = {"Authorization": "Bearer yourtokenhere", "X-Tenant": "acme"}
    payload = {"key1": "value1", "nested": {"list": [1, 2, None], "flag": True}}
    before = await row_counts(stack)
    body = encode({**VALID, "user_id": 7, "custom_headers": headers, "custom_payload": payload})
    resp, envelope = await post_register(stack, body)
    assert resp.status == 200, envelope
    assert envelope["message"] == "Register Webhook Successfully!"
    assert envelope["error"] is False
    data = envelope["data"]
    assert set(data) == WEBHOOK_KEYS
    assert uuid.UUID(data["id"])
    assert data["user_id"] == 7
    assert data["url"] == VALID["url"]
    assert data["event_type_id"] == UPLOAD_EVENT_TYPE_ID
    assert data["custom_headers"] == headers
    assert data["custom_payload"] == payload

    assert data["secret"].startswith("whsec_")
    key = base64.b64decode(data["secret"].removeprefix("whsec_"), validate=True)
    assert 24 <= len(key) <= 64

    now = datetime.now(UTC).replace(tzinfo=None)
    for name in ("created_at", "updated_at"):
        assert TIMESTAMP.match(data[name]), data[name]
        stamp = datetime.strptime(data[name], "%Y-%m-%d %H:%M:%S")
        assert abs(stamp - now) < timedelta(minutes=1), (name, data[name], now)

    assert await row_counts(stack) == (before[0] + 1, before[1] + 1)
    webhook_id = uuid.UUID(data["id"])
    registration = await stack.pool.fetchrow(
        "SELECT user_id, url, event_type_id FROM webhook_registrations WHERE id = $1", webhook_id
    )
    assert registration is not None
    assert (registration["user_id"], registration["url"]) == (7, VALID["url"])
    assert str(registration["event_type_id"]) == UPLOAD_EVENT_TYPE_ID
    configuration = await stack.pool.fetchrow(
        """
        SELECT custom_headers, custom_payload,
               jsonb_typeof(custom_headers) AS headers_type,
               jsonb_typeof(custom_payload) AS payload_type,
               custom_payload -> 'nested' -> 'flag' = 'true'::jsonb AS queryable
        FROM webhook_configurations WHERE webhook_id = $1
        """,
        webhook_id,
    )
    assert configuration is not None
    assert configuration["headers_type"] == configuration["payload_type"] == "object"
    assert configuration["queryable"] is True
    assert configuration["custom_headers"] == headers
    assert configuration["custom_payload"] == payload


async def test_register_without_optional_fields_stores_empty_objects(stack: Stack) -> None:
    data = await stack.register("https://example.com/plain")
    assert data["custom_headers"] == {} and data["custom_payload"] == {}
    stored = await stack.pool.fetchrow(
        "SELECT custom_headers, custom_payload FROM webhook_configurations WHERE webhook_id = $1",
        uuid.UUID(data["id"]),
    )
    assert stored is not None
    assert (stored["custom_headers"], stored["custom_payload"]) == ({}, {})


async def test_an_integral_float_user_id_is_that_integer(stack: Stack) -> None:
    """JSON has one number type: 7.0 is the user 7, as JSON Schema's `integer` says."""
    body = encode({**VALID, "user_id": 7.0})
    assert b'"user_id": 7.0' in body
    resp, envelope = await post_register(stack, body)
    assert resp.status == 200, envelope
    assert envelope["data"]["user_id"] == 7


async def test_each_registration_gets_its_own_id_and_secret(stack: Stack) -> None:
    first = await stack.register("https://example.com/a")
    second = await stack.register("https://example.com/a")
    assert first["id"] != second["id"]
    assert first["secret"] != second["secret"]


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.0.0.1]:8080/x",
        "http://[::1.2.3.4]/x",
        "https://[64:ff9b::192.0.2.33]/x",
        "http://[1:2:3:4:5:6:7::]/x",
        "http://[fe80::1]/x",
    ],
)
async def test_every_ipv6_literal_form_is_accepted(stack: Stack, url: str) -> None:
    """RFC 3986 IPv6address, IPv4-embedded forms included (this stack allows private URLs)."""
    resp, envelope = await post_register(stack, with_fields(url=url))
    assert resp.status == 200, envelope
    assert envelope["data"]["url"] == url


async def test_url_of_exactly_2048_characters_is_accepted(stack: Stack) -> None:
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    assert (await stack.register(url))["url"] == url


# --- refused registrations ----------------------------------------------------------------------
# Each bad input gets the right 4xx, error:true, a message naming the field, and writes nothing.


def with_fields(**fields: Any) -> bytes:
    return encode({**VALID, **fields})


def without(name: str) -> bytes:
    return encode({key: value for key, value in VALID.items() if key != name})


BAD_INPUTS = [
    pytest.param(b"{not json", 400, "JSON", id="body-not-json"),
    pytest.param(b"[1, 2]", 400, "object", id="body-array"),
    pytest.param(b"", 400, "empty", id="body-empty"),
    pytest.param(b'"just a string"', 400, "object", id="body-string"),
    pytest.param(without("event_type_id"), 400, "event_type_id", id="missing-event_type_id"),
    pytest.param(without("user_id"), 400, "user_id", id="missing-user_id"),
    pytest.param(without("url"), 400, "url", id="missing-url"),
    pytest.param(with_fields(colour="red"), 400, "colour", id="unknown-field"),
    pytest.param(with_fields(event_type_id=42), 400, "event_type_id", id="event_type_id-int"),
    pytest.param(
        with_fields(event_type_id="not-a-uuid"), 400, "event_type_id", id="event_type_id-not-uuid"
    ),
    pytest.param(
        with_fields(event_type_id=str(uuid.uuid4())),
        404,
        "event_type_id",
        id="event_type_id-unknown",
    ),
    pytest.param(with_fields(user_id=0), 400, "user_id", id="user_id-0"),
    pytest.param(with_fields(user_id=-1), 400, "user_id", id="user_id-negative"),
    pytest.param(with_fields(user_id="1"), 400, "user_id", id="user_id-string"),
    pytest.param(with_fields(user_id=1.5), 400, "user_id", id="user_id-float"),
    pytest.param(with_fields(user_id=True), 400, "user_id", id="user_id-bool"),
    pytest.param(with_fields(user_id=0.0), 400, "user_id", id="user_id-zero-float"),
    pytest.param(with_fields(user_id=2.0**63), 400, "user_id", id="user_id-float-beyond-bigint"),
    pytest.param(with_fields(user_id=2**63), 400, "user_id", id="user_id-beyond-bigint"),
    pytest.param(with_fields(url=123), 400, "url", id="url-not-string"),
    pytest.param(with_fields(url="/callback"), 400, "url", id="url-relative"),
    pytest.param(with_fields(url="ftp://example.com/x"), 400, "url", id="url-ftp"),
    pytest.param(
        with_fields(url="https://example.com/" + "a" * 2100), 400, "url", id="url-too-long"
    ),
    pytest.param(with_fields(url="https://example.com/a b"), 400, "url", id="url-whitespace"),
    pytest.param(
        with_fields(custom_headers="Authorization: x"),
        400,
        "custom_headers",
        id="custom_headers-string",
    ),
    pytest.param(
        with_fields(custom_headers=["X-A"]), 400, "custom_headers", id="custom_headers-list"
    ),
    pytest.param(
        with_fields(custom_headers={"X-A": 1}), 400, "custom_headers", id="header-value-int"
    ),
    pytest.param(
        with_fields(custom_headers={"X A": "v"}), 400, "custom_headers", id="header-name-space"
    ),
    pytest.param(
        with_fields(custom_headers={"X:A": "v"}), 400, "custom_headers", id="header-name-colon"
    ),
    pytest.param(
        with_fields(custom_headers={"X-A\n": "v"}),
        400,
        "custom_headers",
        id="header-name-trailing-newline",
    ),
    *(
        pytest.param(
            with_fields(custom_headers={name: "v"}), 400, "custom_headers", id=f"header-{name}"
        )
        for name in (
            "Host",
            "content-length",
            "Transfer-Encoding",
            "CONNECTION",
            "webhook-id",
            "Webhook-Signature",
        )
    ),
    pytest.param(
        with_fields(custom_headers={"X-A": "a\r\nInjected: 1"}),
        400,
        "custom_headers",
        id="header-value-crlf",
    ),
    pytest.param(
        with_fields(custom_payload=[1, 2]), 400, "custom_payload", id="custom_payload-list"
    ),
    pytest.param(
        with_fields(custom_payload="text"), 400, "custom_payload", id="custom_payload-string"
    ),
    *(
        pytest.param(
            with_fields(custom_payload={key: "mine"}),
            400,
            "custom_payload",
            id=f"custom_payload-reserved-{key}",
        )
        for key in ("type", "timestamp", "data")
    ),
]


@pytest.mark.parametrize(("body", "status", "names"), BAD_INPUTS)
async def test_bad_input_is_refused_and_writes_nothing(
    stack: Stack, body: bytes, status: int, names: str
) -> None:
    before = await row_counts(stack)
    resp, envelope = await post_register(stack, body)
    assert resp.status == status, envelope
    assert envelope["error"] is True
    assert names in envelope["message"], envelope["message"]
    assert await row_counts(stack) == before


async def test_wrong_content_type_is_415(stack: Stack) -> None:
    before = await row_counts(stack)
    resp, envelope = await post_register(stack, encode(VALID), {"Content-Type": "text/html"})
    assert resp.status == 415, envelope
    assert envelope["error"] is True
    assert "Content-Type" in envelope["message"]
    assert await row_counts(stack) == before


# --- body size ----------------------------------------------------------------------------------
# MAX_JSON_BYTES holds at the gateway and at the service; a 413 is our envelope either way.


def body_of_size(size: int) -> bytes:
    """A valid registration whose JSON is exactly `size` bytes.

    Padded with JSON whitespace: custom_payload itself may hold only 16 KiB.
    """
    compact = encode(VALID)
    body = compact[:-1] + b" " * (size - len(compact)) + compact[-1:]
    assert len(body) == size
    return body


@pytest.mark.parametrize("through", ["gateway", "service"])
async def test_body_over_max_json_bytes_is_413(stack: Stack, through: str) -> None:
    base = stack.gateway_url if through == "gateway" else stack.registration_url
    before = await row_counts(stack)
    resp, envelope = await post_register(stack, body_of_size(100 * 1024), base=base)
    assert resp.status == 413, envelope
    assert envelope["error"] is True
    assert "too large" in envelope["message"] or "larger" in envelope["message"]
    assert await row_counts(stack) == before


@pytest.mark.parametrize("through", ["gateway", "service"])
@pytest.mark.parametrize("size", [20 * 1024, MAX_JSON_BYTES])
async def test_body_up_to_max_json_bytes_is_accepted(stack: Stack, through: str, size: int) -> None:
    """Bodies larger than nginx's in-memory buffer, up to the limit itself, get through."""
    base = stack.gateway_url if through == "gateway" else stack.registration_url
    url = f"{base}/webhook/register"
    async with stack.http.post(url, data=body_of_size(size), headers=JSON) as resp:
        text = await resp.text()
    assert resp.status == 200, text[:300]
    assert json.loads(text)["message"] == "Register Webhook Successfully!"


@pytest.mark.parametrize("through", ["gateway", "service"])
async def test_one_byte_over_max_json_bytes_is_413(stack: Stack, through: str) -> None:
    base = stack.gateway_url if through == "gateway" else stack.registration_url
    resp, envelope = await post_register(stack, body_of_size(MAX_JSON_BYTES + 1), base=base)
    assert resp.status == 413, envelope["message"]
    assert envelope["error"] is True


async def in_pieces(body: bytes, size: int, pause: float) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]
        await asyncio.sleep(pause)


async def test_body_arriving_in_pieces_is_read_whole(stack: Stack) -> None:
    """A slow (chunked) client straight to the service: the body is not cut at the first read."""
    body = encode({**VALID, "custom_payload": {"key1": "value1"}})
    async with stack.http.post(
        f"{stack.registration_url}/webhook/register",
        data=in_pieces(body, 16, 0.05),
        headers=JSON,
    ) as resp:
        envelope = await read_envelope(resp)
    assert resp.status == 200, envelope["message"]
    assert envelope["data"]["custom_payload"] == {"key1": "value1"}


async def test_oversized_body_arriving_in_pieces_is_413(stack: Stack) -> None:
    before = await row_counts(stack)
    async with stack.http.post(
        f"{stack.registration_url}/webhook/register",
        data=in_pieces(body_of_size(100 * 1024), 8 * 1024, 0.01),
        headers=JSON,
    ) as resp:
        envelope = await read_envelope(resp)
    assert resp.status == 413, envelope["message"]
    assert await row_counts(stack) == before


# --- routing ------------------------------------------------------------------------------------
# Unknown routes and methods are envelopes; health and metrics stay off the gateway.


async def test_unknown_route_through_gateway_is_404_envelope(stack: Stack) -> None:
    # /webhook/{webhook_id} is a route now: /webhook/nope is a 400 (not a UUID).
    for path in ("/nope", "/webhook/nope/more", "/webhooks"):
        async with stack.http.get(f"{stack.gateway_url}{path}") as resp:
            assert resp.status == 404, path
            envelope = await read_envelope(resp)
        assert envelope["error"] is True


@pytest.mark.parametrize("through", ["gateway", "service"])
async def test_get_on_register_is_405_with_allow(stack: Stack, through: str) -> None:
    base = stack.gateway_url if through == "gateway" else stack.registration_url
    async with stack.http.get(f"{base}/webhook/register") as resp:
        assert resp.status == 405
        assert resp.headers.getall("Allow") == ["POST"]
        envelope = await read_envelope(resp)
    assert envelope["error"] is True
    assert "GET" in envelope["message"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_health_and_metrics_are_not_behind_the_gateway(stack: Stack, path: str) -> None:
    async with stack.http.get(f"{stack.gateway_url}{path}") as resp:
        assert resp.status == 404
        envelope = await read_envelope(resp)
    assert envelope["error"] is True


async def test_health_and_metrics_on_the_service_port(stack: Stack) -> None:
    async with stack.http.get(f"{stack.registration_url}/event_type") as resp:
        assert resp.status == 200
    async with stack.http.get(f"{stack.registration_url}/healthz") as resp:
        assert resp.status == 200
        assert (await read_envelope(resp))["error"] is False
    async with stack.http.get(f"{stack.registration_url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert re.search(
        r'^webhook_http_requests_total\{[^}]*route="/event_type"[^}]*\} [1-9]', text, re.M
    ), text[:2000]


# --- request ids --------------------------------------------------------------------------------
# Every gateway answer, including its own errors, carries exactly one X-Request-ID.


async def gateway_answers(stack: Stack, headers: dict[str, str]) -> list[aiohttp.ClientResponse]:
    answers = []
    requests: list[tuple[str, str, bytes | None]] = [
        ("GET", "/event_type", None),
        ("POST", "/webhook/register", encode(VALID)),
        ("POST", "/webhook/register", b"{"),
        ("GET", "/webhook/register", None),
        ("GET", "/nope", None),
        ("POST", "/webhook/register", body_of_size(100 * 1024)),
    ]
    for method, path, body in requests:
        async with stack.http.request(
            method, f"{stack.gateway_url}{path}", data=body, headers={**JSON, **headers}
        ) as resp:
            await resp.read()
            answers.append(resp)
    assert [resp.status for resp in answers] == [200, 200, 400, 405, 404, 413]
    return answers


async def test_gateway_gives_every_answer_one_request_id(stack: Stack) -> None:
    ids = []
    for resp in await gateway_answers(stack, {}):
        values = resp.headers.getall("X-Request-ID", [])
        assert len(values) == 1 and values[0], (resp.url, values)
        ids.append(values[0])
    assert len(set(ids)) == len(ids)


async def test_gateway_echoes_the_client_request_id(stack: Stack) -> None:
    for resp in await gateway_answers(stack, {"X-Request-ID": "client-id-42"}):
        assert resp.headers.getall("X-Request-ID") == ["client-id-42"], resp.url


# --- SSRF at registration -----------------------------------------------------------------------
# With private URLs disallowed, internal destinations are refused; unresolvable names wait.


class TestPrivateUrlsRefused:
    @pytest.fixture
    def stack_options(self) -> StackOptions:
        return StackOptions(registration_allow_private=False)

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1/x",
            "http://localhost/x",
            "http://LocalHost.:8080/x",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://192.168.0.1/",
            "http://[::ffff:10.1.2.3]:8080/x",
            "http://[::FFFF:169.254.169.254]/latest",
            "http://[0:0:0:0:0:ffff:192.168.0.1]/",
            "http://0.0.0.0:8080/",
            "http://2130706433/",
        ],
    )
    async def test_internal_destination_is_refused(self, stack: Stack, url: str) -> None:
        before = await row_counts(stack)
        resp, envelope = await post_register(stack, with_fields(url=url))
        assert resp.status == 400, envelope
        assert envelope["error"] is True
        assert "url" in envelope["message"]
        assert "ALLOW_PRIVATE_URLS=true" in envelope["message"]
        assert await row_counts(stack) == before

    @pytest.mark.parametrize(
        "url", ["http://[::ffff:127.0.0.1]/", "http://[::ffff:10.1.2.3]:8080/x", "http://[::1]/"]
    )
    async def test_an_ipv6_literal_is_judged_by_the_address_check(
        self, stack: Stack, url: str
    ) -> None:
        """The URL's form is valid (RFC 3986): the refusal is the address check's own."""
        resp, envelope = await post_register(stack, with_fields(url=url))
        assert resp.status == 400, envelope
        assert envelope["message"].startswith("url is not allowed: address "), envelope

    async def test_name_is_judged_by_what_it_resolves_to(self, stack: Stack) -> None:
        """This machine's own name: refused when it resolves to internal addresses only."""
        host = socket.gethostname()
        try:
            infos = socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
            internal = all(
                is_forbidden_address(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
                for info in infos
            )
        except OSError:
            internal = False  # unresolvable: accepted now, judged at delivery
        resp, envelope = await post_register(stack, with_fields(url=f"http://{host}/x"))
        if internal:
            assert resp.status == 400, envelope
            assert "url" in envelope["message"]
        else:
            assert resp.status == 200, envelope

    @pytest.mark.parametrize(
        "url",
        [
            "https://no-such-host.invalid/x",
            "http://93.184.216.34/x",
            "http://[::ffff:93.184.216.34]/x",
        ],
    )
    async def test_unresolvable_name_and_public_address_are_accepted(
        self, stack: Stack, url: str
    ) -> None:
        resp, envelope = await post_register(stack, with_fields(url=url))
        assert resp.status == 200, envelope
        assert envelope["data"]["url"] == url
