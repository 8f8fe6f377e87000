"""Pure functions, no I/O: registration validation, URL safety, settings parsing, URL redaction,
batched writes, per-endpoint concurrency."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from typing import Any

import pytest

from services.common.batch import Batcher
from services.common.settings import ConfigError, Env, redact_url
from services.common.urlsafety import (
    UnsafeDestination,
    check_literal_host,
    check_registration_host,
    is_forbidden_address,
)
from services.common.web import BadRequest
from services.dispatcher.endpoints import EndpointGate
from services.registration.validation import (
    MAX_URL_LENGTH,
    parse_custom_headers,
    parse_custom_payload,
    parse_registration,
    parse_url,
    parse_user_id,
    parse_uuid,
)

# --- registration validation -------------------------------------------------------------------
# Every refusal is a BadRequest whose message names the field, so a client can fix its request.


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://example.com:8443/path?q=1#frag",
        "HTTPS://Example.COM/Upper",
        "http://[2606:4700::1111]:8080/x",
        "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/")),
    ],
)
def test_parse_url_accepts_absolute_http_urls(url: str) -> None:
    assert parse_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(42, id="not-a-string"),
        pytest.param(None, id="null"),
        pytest.param("", id="empty"),
        pytest.param("/relative/path", id="relative"),
        pytest.param("example.com/hook", id="no-scheme"),
        pytest.param("ftp://example.com/file", id="ftp"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("http://", id="no-host"),
        pytest.param("http:///path", id="empty-host"),
        pytest.param("http://user:pw@example.com/", id="credentials"),
        pytest.param("http://example.com:0/", id="port-0"),
        pytest.param("http://example.com:65536/", id="port-too-big"),
        pytest.param("http://example.com:abc/", id="port-not-number"),
        pytest.param("http://[::1/", id="broken-ipv6"),
        pytest.param(" http://example.com/", id="leading-space"),
        pytest.param("http://example.com/a b", id="inner-space"),
        pytest.param("http://example.com/\t", id="tab"),
        pytest.param("http://example.com/\x00", id="nul"),
        pytest.param("http://example.com/\x7f", id="del"),
        pytest.param(
            "https://example.com/" + "a" * (MAX_URL_LENGTH + 1 - len("https://example.com/")),
            id="one-char-too-long",
        ),
    ],
)
def test_parse_url_refuses(url: Any) -> None:
    with pytest.raises(BadRequest, match=r"^url "):
        parse_url(url)


def test_parse_url_length_message_states_the_limit() -> None:
    with pytest.raises(BadRequest, match="2048"):
        parse_url("https://example.com/" + "a" * 3000)


@pytest.mark.parametrize("value", [1, 42, 2**63 - 1])
def test_parse_user_id_accepts_positive_bigints(value: int) -> None:
    assert parse_user_id(value) == value


@pytest.mark.parametrize(
    "value",
    [0, -1, 2**63, True, False, 1.0, 1.5, "1", None, [1], {"id": 1}],
    ids=repr,
)
def test_parse_user_id_refuses(value: Any) -> None:
    with pytest.raises(BadRequest, match="user_id"):
        parse_user_id(value)


def test_parse_uuid_accepts_canonical_form() -> None:
    value = "21f8e1f7-4142-42f9-ac30-74961702b2eb"
    assert parse_uuid(value, "event_type_id") == uuid.UUID(value)


@pytest.mark.parametrize("value", [123, None, "", "not-a-uuid", "21f8e1f7-4142"], ids=repr)
def test_parse_uuid_refuses_naming_the_field(value: Any) -> None:
    with pytest.raises(BadRequest, match="event_type_id"):
        parse_uuid(value, "event_type_id")


@pytest.mark.parametrize(
    "value",
    [
        None,
        {},
        {"Content-Type": "application/json", "Authorization": "Bearer t"},
        {"X-Token_!#$%&'*+-.^`|~": "v"},
        {"X-Empty": ""},
        {"X-Tab": "a\tb"},
    ],
    ids=repr,
)
def test_parse_custom_headers_accepts(value: Any) -> None:
    assert parse_custom_headers(value) == (value or {})


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("Authorization: x", id="string"),
        pytest.param(["X-A", "b"], id="list"),
        pytest.param({"X-A": 1}, id="value-int"),
        pytest.param({"X-A": None}, id="value-null"),
        pytest.param({"X-A": ["b"]}, id="value-list"),
        pytest.param({"": "v"}, id="empty-name"),
        pytest.param({"X A": "v"}, id="name-space"),
        pytest.param({"X:A": "v"}, id="name-colon"),
        pytest.param({"X-A\n": "v"}, id="name-trailing-newline"),
        pytest.param({"X-A\r\nInjected": "v"}, id="name-crlf"),
        pytest.param({"X-Ä": "v"}, id="name-non-ascii"),
        pytest.param({"X(A)": "v"}, id="name-separator"),
        pytest.param({"X-A": "a\r\nInjected: 1"}, id="value-crlf"),
        pytest.param({"X-A": "a\rb"}, id="value-cr"),
        pytest.param({"X-A": "a\nb"}, id="value-lf"),
        pytest.param({"X-A": "a\x00b"}, id="value-nul"),
    ],
)
def test_parse_custom_headers_refuses(value: Any) -> None:
    with pytest.raises(BadRequest, match="custom_headers"):
        parse_custom_headers(value)


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "host",
        "Content-Length",
        "TRANSFER-ENCODING",
        "Connection",
        "webhook-id",
        "Webhook-Signature",
        "WEBHOOK-TIMESTAMP",
        "webhook-anything",
    ],
)
def test_parse_custom_headers_refuses_headers_the_dispatcher_sets(name: str) -> None:
    with pytest.raises(BadRequest, match=f"custom_headers.*{name}"):
        parse_custom_headers({name: "value"})


@pytest.mark.parametrize(
    "value",
    [None, {}, {"key1": "value1", "nested": {"data": 1, "type": "inner keys are free"}}],
    ids=repr,
)
def test_parse_custom_payload_accepts_objects(value: Any) -> None:
    assert parse_custom_payload(value) == (value or {})


@pytest.mark.parametrize("value", [[1, 2], "text", 3, True], ids=repr)
def test_parse_custom_payload_refuses_non_objects(value: Any) -> None:
    with pytest.raises(BadRequest, match="custom_payload must be an object"):
        parse_custom_payload(value)


@pytest.mark.parametrize("key", ["type", "timestamp", "data"])
def test_parse_custom_payload_refuses_reserved_keys(key: str) -> None:
    with pytest.raises(BadRequest, match=f"custom_payload.*{key}"):
        parse_custom_payload({"ok": 1, key: "mine"})


def test_parse_registration_names_unknown_fields_and_missing_ones() -> None:
    base = {
        "event_type_id": "21f8e1f7-4142-42f9-ac30-74961702b2eb",
        "user_id": 1,
        "url": "https://example.com/hook",
    }
    parsed = parse_registration(base)
    assert parsed.user_id == 1 and parsed.custom_headers == {} and parsed.custom_payload == {}
    with pytest.raises(BadRequest, match="colour"):
        parse_registration({**base, "colour": "red"})
    for name in base:
        body = {key: value for key, value in base.items() if key != name}
        with pytest.raises(BadRequest, match=f"{name} is required"):
            parse_registration(body)


# --- URL safety ---------------------------------------------------------------------------------
# Only public unicast addresses may receive webhooks; loopback names are judged without DNS.


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::",
        "ff02::1",
    ],
)
def test_is_forbidden_address_refuses_non_public(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address)) is True


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111"])
def test_is_forbidden_address_allows_public(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "::1",
        "[::1]",
        "fe80::1%eth0",
        "::ffff:127.0.0.1",
        "localhost",
        "LOCALHOST",
        "localhost.",
        "api.localhost",
    ],
)
def test_check_literal_host_refuses_without_dns(host: str) -> None:
    with pytest.raises(UnsafeDestination):
        check_literal_host(host)


def test_check_literal_host_judges_only_literals() -> None:
    assert check_literal_host("8.8.8.8") is True
    assert check_literal_host("2606:4700::1111") is True
    assert check_literal_host("example.com") is False
    assert check_literal_host("localhost-like.example.com") is False


async def test_check_registration_host_accepts_unresolvable_names() -> None:
    """Judged again at delivery time."""
    await check_registration_host("no-such-host.invalid", 443)


@pytest.mark.parametrize("host", ["0x7f.1", "2130706433"])
async def test_check_registration_host_refuses_numeric_loopback_spellings(host: str) -> None:
    """Not IP literals to Python, but the resolver turns them into 127.0.0.1."""
    with pytest.raises(UnsafeDestination):
        await check_registration_host(host, 80)


# --- settings -----------------------------------------------------------------------------------
# A bad value is a ConfigError naming the variable; blank means the default.


def test_integer_reads_and_defaults() -> None:
    env = Env({"PORT": " 8080 ", "BLANK": ""})
    assert env.integer("PORT", 1) == 8080
    assert env.integer("BLANK", 7) == 7
    assert env.integer("MISSING", 9) == 9


@pytest.mark.parametrize("raw", ["notanumber", "1.5", "8o8o"])
def test_integer_refuses_non_integers_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=f"REGISTRATION_PORT must be an integer, got '{raw}'"):
        Env({"REGISTRATION_PORT": raw}).integer("REGISTRATION_PORT", 8082, 1, 65535)


@pytest.mark.parametrize("raw", ["0", "65536", "-5"])
def test_integer_refuses_out_of_range(raw: str) -> None:
    with pytest.raises(ConfigError, match="REGISTRATION_PORT must be at least 1 and at most 65535"):
        Env({"REGISTRATION_PORT": raw}).integer("REGISTRATION_PORT", 8082, 1, 65535)


def test_seconds_list_parses_and_defaults() -> None:
    assert Env({"RETRY_SCHEDULE": " 1 , 2.5,30 "}).seconds_list("RETRY_SCHEDULE", "5") == (
        1.0,
        2.5,
        30.0,
    )
    assert Env({}).seconds_list("RETRY_SCHEDULE", "5,300") == (5.0, 300.0)


def test_empty_retry_schedule_means_no_retries() -> None:
    assert Env({"RETRY_SCHEDULE": ""}).seconds_list("RETRY_SCHEDULE", "5,300") == ()


def test_seconds_list_names_the_bad_item() -> None:
    with pytest.raises(ConfigError, match=r"RETRY_SCHEDULE .*'x'"):
        Env({"RETRY_SCHEDULE": "1,2,x"}).seconds_list("RETRY_SCHEDULE", "5")


@pytest.mark.parametrize("raw", ["-1", "1,-0.5", "nan", "1,inf"])
def test_seconds_list_refuses_delays_that_are_not_finite_non_negative(raw: str) -> None:
    with pytest.raises(ConfigError, match="RETRY_SCHEDULE"):
        Env({"RETRY_SCHEDULE": raw}).seconds_list("RETRY_SCHEDULE", "5")


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan"])
def test_number_refuses_non_positive_or_non_numbers(raw: str) -> None:
    with pytest.raises(ConfigError, match="DELIVERY_TIMEOUT_SECONDS"):
        Env({"DELIVERY_TIMEOUT_SECONDS": raw}).number("DELIVERY_TIMEOUT_SECONDS", 10.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        (" TRUE ", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_flag_reads_booleans(raw: str, expected: bool) -> None:
    assert Env({"ALLOW_PRIVATE_URLS": raw}).flag("ALLOW_PRIVATE_URLS", False) is expected


def test_flag_defaults_when_missing() -> None:
    assert Env({}).flag("ALLOW_PRIVATE_URLS", True) is True


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled"])
def test_flag_refuses_other_words(raw: str) -> None:
    with pytest.raises(ConfigError, match="ALLOW_PRIVATE_URLS must be true or false"):
        Env({"ALLOW_PRIVATE_URLS": raw}).flag("ALLOW_PRIVATE_URLS", False)


def test_url_refuses_other_schemes_without_leaking_the_password() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL") as caught:
        Env({"DATABASE_URL": "mysql://app:hunter2@db/x"}).url(
            "DATABASE_URL", "postgresql://h/db", ("postgresql", "postgres")
        )
    assert "hunter2" not in str(caught.value)


def test_choice_refuses_unknown_values() -> None:
    assert Env({"LOG_FORMAT": "CONSOLE"}).choice("LOG_FORMAT", "json", ("json", "console")) == (
        "console"
    )
    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of json, console"):
        Env({"LOG_FORMAT": "xml"}).choice("LOG_FORMAT", "json", ("json", "console"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:s3cret@db:5432/webhooks", "postgresql://app:***@db:5432/webhooks"),
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("postgresql://app:p%40ss@db/webhooks", "postgresql://app:***@db/webhooks"),
        (
            "postgresql://postgres@127.0.0.1:5432/webhooks",
            "postgresql://postgres@127.0.0.1:5432/webhooks",
        ),
        ("amqp://127.0.0.1/", "amqp://127.0.0.1/"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


# --- batched writes ----------------------------------------------------------------------------


async def test_calls_made_together_share_one_batch_in_order() -> None:
    batches: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0)
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(run, key=lambda item: item)
    assert await asyncio.gather(*(batcher(n) for n in (1, 2, 3))) == [10, 20, 30]
    assert batches == [[1, 2, 3]]
    assert await batcher(4) == 40  # idle: runs alone, at once
    assert batches[-1] == [4]


async def test_the_same_key_never_shares_a_batch() -> None:
    batches: list[list[tuple[str, int]]] = []

    async def run(items: list[tuple[str, int]]) -> list[int]:
        batches.append(items)
        return [n for _, n in items]

    batcher: Batcher[tuple[str, int], int] = Batcher(run, key=lambda item: item[0])
    results = await asyncio.gather(batcher(("a", 1)), batcher(("b", 2)), batcher(("a", 3)))
    assert results == [1, 2, 3]
    assert batches == [[("a", 1), ("b", 2)], [("a", 3)]]


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_runs() -> None:
    async def run(items: list[int]) -> list[int]:
        if 0 in items:
            raise OSError("database gone")
        return items

    batcher: Batcher[int, int] = Batcher(run, key=lambda item: item, max_batch=2)
    results = await asyncio.gather(
        batcher(0), batcher(1), batcher(2), batcher(3), return_exceptions=True
    )
    assert [type(r) for r in results[:2]] == [OSError, OSError]
    assert results[2:] == [2, 3]
    assert batcher.runner is None and batcher.queue == []


async def test_a_cancelled_batcher_cancels_its_waiting_callers() -> None:
    started = asyncio.Event()

    async def run(items: list[int]) -> list[int]:
        started.set()
        await asyncio.sleep(3600)
        return items

    batcher: Batcher[int, int] = Batcher(run, key=lambda item: item)
    callers = [asyncio.create_task(batcher(n)) for n in (1, 1)]
    await started.wait()
    assert batcher.runner is not None
    batcher.runner.cancel()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


# --- per-endpoint concurrency ------------------------------------------------------------------


async def test_a_fast_endpoint_serves_its_burst_in_order_without_parking() -> None:
    gate, endpoint = EndpointGate(2, max_wait_seconds=1.0), uuid.uuid4()
    gate.note_hold(endpoint, 0.01)  # it answers in 10 ms
    assert await gate.reserve(endpoint)
    assert await gate.reserve(endpoint)
    # Each waiter expects n * 10 ms / 2 slots: fifty wait rather than park for a second.
    waiting = [asyncio.create_task(gate.reserve(endpoint)) for _ in range(50)]
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in waiting)
    for task in waiting:
        gate.release(endpoint, 0.01)
        assert await task is True  # the longest waiter gets the slot
    gate.release(endpoint, 0.01)
    gate.release(endpoint, 0.01)
    assert gate.load == {} and gate.waiters == {}


async def test_a_slow_endpoint_parks_its_messages_at_once() -> None:
    gate, endpoint, other = EndpointGate(2, max_wait_seconds=1.0), uuid.uuid4(), uuid.uuid4()
    gate.note_hold(endpoint, 10.0)  # hanging until the timeout
    assert await gate.reserve(endpoint)
    assert await gate.reserve(endpoint)
    # A slot would come in 5 s: waiting would only hold a place in the prefetch window.
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await gate.reserve(endpoint) is False
    assert loop.time() - started < 0.05
    assert await gate.reserve(other)  # other endpoints are not affected
    assert gate.waiters == {}


async def test_an_endpoint_not_yet_heard_from_has_one_waiter_per_slot() -> None:
    gate, endpoint = EndpointGate(1, max_wait_seconds=0.05), uuid.uuid4()
    assert await gate.reserve(endpoint)
    first = asyncio.create_task(gate.reserve(endpoint))
    await asyncio.sleep(0)
    assert await gate.reserve(endpoint) is False  # the second parks at once
    # No slot within the wait: the waiter gives up (to be parked) and is forgotten.
    assert await first is False
    assert gate.waiters == {} and gate.load == {endpoint: 1}
    # Handed a slot, then cancelled (shutdown): the slot is not lost.
    waiter = asyncio.create_task(gate.reserve(endpoint))
    await asyncio.sleep(0)
    gate.release(endpoint)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.load == {}


async def test_each_caller_of_a_failed_batch_gets_its_own_error() -> None:
    async def run(items: list[int]) -> list[int]:
        raise OSError(111, "connection refused")

    batcher: Batcher[int, int] = Batcher(run, key=lambda item: item)
    first, second = await asyncio.gather(batcher(1), batcher(2), return_exceptions=True)
    assert isinstance(first, OSError) and isinstance(second, OSError)
    assert first is not second
    assert (
        (first.errno, first.strerror)
        == (second.errno, second.strerror)
        == (
            111,
            "connection refused",
        )
    )
