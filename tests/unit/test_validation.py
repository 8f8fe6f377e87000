"""services/registration/validation.py (and the URL grammar it checks with): every refusal
names the field, every accepted value comes back as given."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.api.edge import validated
from services.common.web import BadRequest
from services.registration.url_grammar import MAX_URL_LENGTH
from services.registration.validation import WebhookRegistration
from services.registration.webhook_options import FILTER_KEY_PATTERN

# Every refusal is a BadRequest whose message names the field, so a client can fix its request.
# Each field is checked in a registration that is valid but for it, as the route checks it.
VALID = {
    "event_type_id": "21f8e1f7-4142-42f9-ac30-74961702b2eb",
    "user_id": 1,
    "url": "https://example.com/hook",
}


def registration(**fields: Any) -> WebhookRegistration:
    return validated(WebhookRegistration, {**VALID, **fields})


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://example.com:8443/path?q=1#frag",
        "HTTPS://Example.COM/Upper",
        "http://[2606:4700::1111]:8080/x",
        # Every RFC 3986 IPv6address form, IPv4-embedded ones included.
        "http://[::ffff:1.2.3.4]/x",
        "http://[::1.2.3.4]/x",
        "http://[64:ff9b::192.0.2.33]:8443/x",
        "http://[1:2:3:4:5:6:1.2.3.4]/x",
        "http://[1::2:3:4:5:1.2.3.4]/x",
        "http://[1:2:3:4:5:6:7:8]/x",
        "http://[1:2:3:4:5:6:7::]/x",
        "http://[::2:3:4:5:6:7:8]/x",
        "http://[::]/x",
        "http://[FE80::A:b]/x",
        "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/")),
    ],
)
def test_url_accepts_absolute_http_urls(url: str) -> None:
    assert registration(url=url).url == url


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
        pytest.param("http://[::1.2.3.256]/", id="ipv6-embedded-octet-too-big"),
        pytest.param("http://[::ffff:1.2.3]/", id="ipv6-embedded-three-octets"),
        pytest.param("http://[1:2:3:4:5:6:7:1.2.3.4]/", id="ipv6-nine-pieces"),
        pytest.param("http://[1::2::3]/", id="ipv6-two-gaps"),
        pytest.param("http://[12345::]/", id="ipv6-piece-too-long"),
        pytest.param("http://[1.2.3.4]/", id="ipv4-in-brackets"),
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
def test_url_refuses(url: Any) -> None:
    with pytest.raises(BadRequest, match=r"^url "):
        registration(url=url)


def test_url_length_message_states_the_limit() -> None:
    with pytest.raises(BadRequest, match="2048"):
        registration(url="https://example.com/" + "a" * 3000)


@pytest.mark.parametrize("value", [1, 42, 2**63 - 1])
def test_user_id_accepts_positive_bigints(value: int) -> None:
    assert registration(user_id=value).user_id == value


@pytest.mark.parametrize(("value", "expected"), [(1.0, 1), (42.0, 42), (2.0**62, 2**62)])
def test_user_id_takes_an_integral_float_as_that_integer(value: float, expected: int) -> None:
    """JSON has one number type: JSON Schema counts 1.0 as an integer, and so do we."""
    parsed = registration(user_id=value).user_id
    assert parsed == expected and type(parsed) is int


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        2**63,
        True,
        False,
        0.0,
        -1.0,
        1.5,
        2.0**63,
        float("nan"),
        float("inf"),
        "1",
        "1.0",
        None,
        [1],
        {"id": 1},
    ],
    ids=repr,
)
def test_user_id_refuses(value: Any) -> None:
    with pytest.raises(BadRequest, match="user_id"):
        registration(user_id=value)


def test_event_type_id_accepts_canonical_form() -> None:
    value = "21f8e1f7-4142-42f9-ac30-74961702b2eb"
    assert registration(event_type_id=value).event_type_id == uuid.UUID(value)


@pytest.mark.parametrize("value", [123, None, "", "not-a-uuid", "21f8e1f7-4142"], ids=repr)
def test_event_type_id_refuses_naming_the_field(value: Any) -> None:
    with pytest.raises(BadRequest, match="event_type_id"):
        registration(event_type_id=value)


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
def test_custom_headers_accepts(value: Any) -> None:
    assert registration(custom_headers=value).custom_headers == (value or {})


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
def test_custom_headers_refuses(value: Any) -> None:
    with pytest.raises(BadRequest, match="custom_headers"):
        registration(custom_headers=value)


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
def test_custom_headers_refuses_headers_the_dispatcher_sets(name: str) -> None:
    with pytest.raises(BadRequest, match=f"custom_headers.*{name}"):
        registration(custom_headers={name: "value"})


@pytest.mark.parametrize(
    "value",
    [None, {}, {"key1": "value1", "nested": {"data": 1, "type": "inner keys are free"}}],
    ids=repr,
)
def test_custom_payload_accepts_objects(value: Any) -> None:
    assert registration(custom_payload=value).custom_payload == (value or {})


@pytest.mark.parametrize("value", [[1, 2], "text", 3, True], ids=repr)
def test_custom_payload_refuses_non_objects(value: Any) -> None:
    with pytest.raises(BadRequest, match="custom_payload must be an object"):
        registration(custom_payload=value)


@pytest.mark.parametrize("key", ["type", "timestamp", "data"])
def test_custom_payload_refuses_reserved_keys(key: str) -> None:
    with pytest.raises(BadRequest, match=f"custom_payload.*{key}"):
        registration(custom_payload={"ok": 1, key: "mine"})


def test_a_registration_names_unknown_fields_and_missing_ones() -> None:
    parsed = registration()
    assert parsed.user_id == 1 and parsed.custom_headers == {} and parsed.custom_payload == {}
    with pytest.raises(BadRequest, match="colour"):
        registration(colour="red")
    for name in VALID:
        body = {key: value for key, value in VALID.items() if key != name}
        with pytest.raises(BadRequest, match=f"{name} is required"):
            validated(WebhookRegistration, body)


@given(key=st.from_regex(FILTER_KEY_PATTERN, fullmatch=True).filter(lambda k: len(k) <= 200))
def test_a_filter_key_the_document_admits_is_accepted(key: str) -> None:
    """The document's pattern for filter keys holds only keys the service accepts."""
    value: Any = [{"a": 1}] if key in ("$and", "$or") else {"a": 1} if key == "$not" else 1
    assert registration(filter={key: value}).filter == {key: value}


@pytest.mark.parametrize("key", ["", "a..b", ".a", "a.", "$x", "$andx", "a\x00b"], ids=repr)
def test_a_filter_key_the_document_refuses_is_refused(key: str) -> None:
    assert not re.fullmatch(FILTER_KEY_PATTERN, key)
    with pytest.raises(BadRequest, match="filter"):
        registration(filter={key: 1})
