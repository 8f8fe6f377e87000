"""Bad input at the edges: property-based fuzzing of every endpoint through the gateway.

Whatever a client sends, the answer comes within a bounded time, is never a 5xx (503 neither:
the dependencies are up), is always the JSON envelope `{message, data, error}` with `error`
true exactly for statuses >= 400, and a refused upload leaves no file and no row behind.
The raw-socket cases at the end cover what an HTTP client library will not send: huge or
broken request heads, slow clients, bodies cut short and malformed chunked encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import string
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from yarl import URL

from harness.stack import UPLOAD_EVENT_TYPE_ID, Stack, StackOptions

# aiohttp warns (and carries on) about a malformed Content-Disposition; the suite turns every
# warning into an error, which would make the in-process service fail where production does not.
pytestmark = [
    pytest.mark.filterwarnings("ignore::aiohttp.BadContentDispositionHeader"),
    pytest.mark.filterwarnings("ignore::aiohttp.BadContentDispositionParam"),
]

FUZZ = settings(
    max_examples=100,
    deadline=None,
    # The same examples on every run, so CI is repeatable; FUZZ_RANDOM=1 explores anew.
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    # No "explain" phase: it re-runs failing cases for seconds to annotate them.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    database=None,  # no .hypothesis/ folder in the checkout
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one running stack serves every example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
REQUEST_TIMEOUT_SECONDS = 10.0
ENVELOPE_KEYS = {"message", "data", "error"}
REGISTRATION_FIELDS = ("event_type_id", "user_id", "url", "custom_headers", "custom_payload")
RESERVED_PAYLOAD_KEYS = {"type", "timestamp", "data"}
RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
# RFC 2046 boundary characters; a boundary may not end with the space.
BOUNDARY_CHARS = string.ascii_letters + string.digits + "'()+_,-./:=? "
# What an HTTP client can put in a header value: visible ASCII, space, tab and obs-text.
HEADER_VALUE_CHARS = st.characters(
    codec="latin-1", exclude_characters="\r\n\x00", exclude_categories=["Cc"]
) | st.sampled_from("\t")


# --- talking to the gateway -----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    method: str
    target: str
    status: int
    content_type: str
    body: bytes

    def __str__(self) -> str:
        return f"{self.method} {self.target} -> {self.status} {self.body[:300]!r}"


async def send(
    stack: Stack,
    method: str,
    target: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    skip: tuple[str, ...] = (),
) -> Answer:
    """One request through the gateway; `target` is sent exactly as given (already encoded)."""
    url = URL(stack.gateway_url + target, encoded=True)
    try:
        async with stack.http.request(
            method,
            url,
            data=data,
            headers=headers,
            skip_auto_headers=skip,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
        ) as resp:
            body = await resp.read()
            return Answer(method, target, resp.status, resp.content_type, body)
    except TimeoutError:
        raise AssertionError(
            f"{method} {target}: no answer within {REQUEST_TIMEOUT_SECONDS} s"
        ) from None


def check_envelope(answer: Answer, protocol_5xx: frozenset[int] = frozenset()) -> dict[str, Any]:
    """No 5xx, and the body is our envelope with `error` matching the status.

    `protocol_5xx` names the statuses HTTP itself prescribes for a request (501 for an unknown
    transfer coding, 505 for an unsupported version); those still need the envelope.
    """
    assert answer.status < 500 or answer.status in protocol_5xx, f"server error: {answer}"
    assert answer.content_type == "application/json", f"not JSON: {answer}"
    try:
        body = json.loads(answer.body)
    except ValueError:
        raise AssertionError(f"body is not JSON: {answer}") from None
    assert isinstance(body, dict), f"not an envelope: {answer}"
    assert ENVELOPE_KEYS <= set(body) <= ENVELOPE_KEYS | {"next_cursor"}, (
        f"not an envelope: {answer}"
    )
    assert isinstance(body["message"], str) and body["message"], f"no message: {answer}"
    assert isinstance(body["data"], dict | list), f"data is not an object or array: {answer}"
    assert body["error"] is (answer.status >= 400), f"error flag disagrees with status: {answer}"
    return body


async def registration_count(stack: Stack) -> int:
    count: int = await stack.pool.fetchval(
        "SELECT (SELECT count(*) FROM webhook_registrations)"
        " + (SELECT count(*) FROM webhook_configurations)"
    )
    return count


async def upload_count(stack: Stack) -> int:
    count: int = await stack.pool.fetchval("SELECT count(*) FROM uploads")
    return count


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


@pytest.fixture
def stack_options() -> StackOptions:
    """No dispatcher: nothing here is delivered, and it would only add load and log lines."""
    return StackOptions(with_dispatcher=False)


_webhooks: dict[str, str] = {}


async def target_webhook(stack: Stack) -> str:
    """One registered webhook per running stack, shared by that test's examples."""
    if stack.gateway_url not in _webhooks:
        _webhooks[stack.gateway_url] = (await stack.register("http://127.0.0.1:9/unused"))["id"]
    return _webhooks[stack.gateway_url]


# --- strategies: JSON ----------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["\x00", "a\x00b", "\u2028", "\ud800", "\ufeff", "%00", "' OR 1=1 --"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
header_names = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=20) | st.sampled_from(
    ["Host", "content-length", "Webhook-Id", "Connection", "X Space", "Ümlaut", ""]
)
hostnames = st.sampled_from(
    [
        "example.com",
        "127.0.0.1",
        "[::1]",
        "localhost",
        "exämple.com",
        "a..b",
        "..",
        "\u0080",
        "\u200b.com",
        "x" * 64 + ".com",
        "[::ffff:169.254.169.254]",
        "[fe80::1%25eth0]",
        "2130706433",
        "",
    ]
) | st.text(max_size=20)
ports = st.one_of(
    st.none(),
    st.none(),
    st.integers(min_value=-1, max_value=70000).map(str),
    st.text(max_size=6),
)


@st.composite
def urls(draw: st.DrawFn) -> str:
    """Mostly http(s)://host[:port]/path, so that the host and port checks are reached."""
    usual = draw(st.integers(0, 4)) > 0
    scheme = draw(
        st.sampled_from(["http", "https"])
        if usual
        else st.sampled_from(["HTTP", "ftp", "javascript", ""]) | st.text(max_size=6)
    )
    separator = "://" if usual else draw(st.sampled_from([":", ":///", "//", "://"]))
    userinfo = draw(st.sampled_from(["", "", "", "user@", "user:pass@"]))
    host = draw(hostnames)
    port = draw(ports)
    path = draw(st.text(max_size=30))
    return f"{scheme}{separator}{userinfo}{host}{'' if port is None else ':' + port}/{path}"


field_values: dict[str, st.SearchStrategy[Any]] = {
    "event_type_id": st.uuids().map(str) | st.uuids().map(lambda u: u.hex.upper()) | json_values,
    "user_id": st.integers(min_value=-5, max_value=2**64) | json_values,
    "url": urls() | json_values,
    "custom_headers": st.dictionaries(header_names, st.text(max_size=20) | json_values, max_size=4)
    | json_values,
    "custom_payload": st.dictionaries(
        st.sampled_from(["key", "type", "data", "\x00", "a\x00"]) | st.text(max_size=8),
        json_values,
        max_size=4,
    )
    | json_values,
}

# Valid by the contract: the service must accept every one of them.
payload_text = st.text(
    alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=20
)
payload_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | payload_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(payload_text, inner, max_size=3),
    max_leaves=10,
)
valid_registrations = st.fixed_dictionaries(
    {
        "event_type_id": st.just(UPLOAD_EVENT_TYPE_ID),
        "user_id": st.integers(min_value=1, max_value=2**63 - 1),
        "url": st.builds(
            lambda scheme, host, port, path: f"{scheme}://{host}{port}/{quote(path)}",
            st.sampled_from(["http", "https"]),
            st.sampled_from(["example.com", "hooks.example.org", "127.0.0.1", "[2001:db8::1]"]),
            st.sampled_from(["", ":1", ":8080", ":65535"]),
            st.text(max_size=40),
        ),
    },
    optional={
        "custom_headers": st.dictionaries(
            st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=20).filter(
                lambda name: (
                    name.lower() not in RESERVED_HEADERS and not name.lower().startswith("webhook-")
                )
            ),
            st.text(
                alphabet=st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"]),
                max_size=30,
            ),
            max_size=4,
        ),
        "custom_payload": st.dictionaries(
            payload_text.filter(lambda key: key not in RESERVED_PAYLOAD_KEYS),
            payload_values,
            max_size=4,
        ),
    },
)


VALID_BASE = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1, "url": "https://example.com/"}


@st.composite
def registration_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A valid registration with some fields dropped or given values of any type."""
    body = draw(valid_registrations)
    for name in REGISTRATION_FIELDS:
        fate = draw(st.integers(0, 5))  # mostly kept, so that later checks are reached
        if fate == 0:
            body.pop(name, None)
        elif fate == 1:
            body[name] = draw(field_values[name])
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(max_size=10))] = draw(json_values)
    return body


content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/json; charset=utf-16",
            "text/plain",
            "text/html",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json;;;",
            'application/json; charset="unterminated',
            "",
            ";",
            "/",
        ]
    ),
    st.text(alphabet=HEADER_VALUE_CHARS, max_size=60),
)


# --- strategies: multipart -----------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """A multipart request, and what a correct service must make of it."""

    content_type: str
    body: bytes
    well_formed: bool  # every rule of RFC 2046/7578 that the service relies on holds
    file: bytes | None  # content of the first part named "file", when well formed
    file_end: int  # offset just past the delimiter that ends that part


def quote_param(value: str) -> str:
    if value and all(ch in TOKEN_CHARS for ch in value):
        return value
    return '"' + value + '"'


boundaries = st.text(alphabet=BOUNDARY_CHARS, min_size=1, max_size=70).filter(
    lambda b: not b.endswith(" ")
)
odd_boundaries = st.one_of(
    st.text(alphabet=BOUNDARY_CHARS, min_size=71, max_size=90),
    st.text(alphabet=HEADER_VALUE_CHARS, max_size=20),
    st.sampled_from(["", " ", '"', "a;b", "a\\b", "--", "a b "]),
)
filenames_raw = st.one_of(
    st.sampled_from(
        [
            b"../../etc/passwd",
            b"..\\..\\windows\\win.ini",
            b"/etc/shadow",
            b"..",
            b".",
            b"",
            b"a\x00b.txt",
            b"\x00",
            b"\xff\xfe\xfd",
            b"CON",
            b".bashrc",
            "r\u00e9sum\u00e9 \U0001f600.txt".encode(),
            "\u202etxt.exe".encode(),
            "\uff0e\uff0e\uff0fx".encode(),
            b"x" * 300,
            "\u00e9".encode() * 150,
            b'quo"te',
            b"semi;colon",
        ]
    ),
    st.text(max_size=40).map(str.encode),
    st.binary(max_size=40),
)
part_names = st.sampled_from(["file", "file", "other", "FILE", "file ", "_charset_", ""]) | st.text(
    max_size=10
)
header_lines_raw = st.one_of(
    st.sampled_from(
        [
            b"Content-Type: text/plain",
            b"Content-Type: multipart/mixed",
            b"Content-Type: multipart/mixed; boundary=inner",
            b"Content-Transfer-Encoding: base64",
            b"Content-Length: 3",
            b"Content-Length: -1",
            b"Content-Encoding: gzip",
            b"No-Colon-Here",
            b": empty name",
            b"Bad Name: value",
            b"X-Long: " + b"v" * 9000,
            b" folded continuation",
        ]
    ),
    st.binary(max_size=60),
)


@st.composite
def well_formed_part(draw: st.DrawFn, boundary: bytes, name: str) -> tuple[bytes, bytes]:
    """Headers and content of a part that follows the RFCs."""
    headers = [f'Content-Disposition: form-data; name="{name}"'.encode()]
    if draw(st.booleans()):
        filename = draw(
            st.text(
                alphabet=st.characters(
                    exclude_characters='"\\', exclude_categories=["Cc", "Cs", "Zl", "Zp"]
                ),
                max_size=40,
            )
        )
        headers[0] += b'; filename="' + filename.encode() + b'"'
    if draw(st.booleans()):
        headers.append(
            b"Content-Type: "
            + draw(st.sampled_from([b"text/plain", b"application/octet-stream", b"image/png"]))
        )
    content = draw(st.binary(max_size=2048) | st.sampled_from([b"", b"\r\n", b"--", b"\r\n--"]))
    delimiter = b"\r\n--" + boundary
    # The content may not hold the delimiter (aiohttp reads the CRLF before it as its own).
    assume((b"\r\n" + content + delimiter).find(delimiter) == 2 + len(content))
    return b"\r\n".join(headers), content


@st.composite
def forms(draw: st.DrawFn) -> Form:
    well_formed = draw(st.booleans())
    boundary_text = draw(boundaries if well_formed else boundaries | odd_boundaries)
    boundary = boundary_text.encode("utf-8", "surrogateescape")

    # Content-Type: decoy boundary parameters first, the real one last (curl's habit).
    params = [f"boundary={quote_param(decoy)}" for decoy in draw(st.lists(boundaries, max_size=2))]
    params.append(f"boundary={quote_param(boundary_text)}")
    if draw(st.booleans()):
        params.append("charset=utf-8")
    if not well_formed and draw(st.booleans()):
        params = draw(st.permutations(params))
    media = (
        "multipart/form-data"
        if well_formed
        else draw(
            st.sampled_from(["multipart/form-data", "Multipart/Form-Data", "multipart/mixed"])
        )
    )
    content_type = "; ".join([media, *params])

    names = draw(
        st.lists(
            part_names if not well_formed else st.sampled_from(["other", "FILE", "file ", "files"]),
            max_size=3,
        )
    )
    if draw(st.integers(0, 3)) > 0:  # mostly with a file field, anywhere among the others
        names.insert(draw(st.integers(0, len(names))), "file")
    body = bytearray()
    if draw(st.booleans()):
        preamble = draw(st.binary(max_size=40))
        assume(b"--" + boundary not in preamble)
        body += preamble + b"\r\n"
    file: bytes | None = None
    file_start = file_end = 0
    for name in names:
        if file is None and name == "file":
            file_start = len(body)
        body += b"--" + boundary + b"\r\n"
        if well_formed:
            headers, content = draw(well_formed_part(boundary, name))
        else:
            lines = [
                b'Content-Disposition: form-data; name="'
                + name.encode("utf-8", "surrogateescape")
                + b'"; filename="'
                + draw(filenames_raw)
                + b'"'
            ]
            lines += draw(st.lists(header_lines_raw, max_size=3))
            headers = b"\r\n".join(draw(st.permutations(lines)))
            content = draw(st.binary(max_size=1024) | st.just(b"--" + boundary))
        body += headers + b"\r\n\r\n" + content + b"\r\n"
        if file is None and name == "file":
            file = content
            file_end = len(body) + len(b"--" + boundary)
    body += b"--" + boundary + b"--"
    if draw(st.booleans()):
        body += b"\r\n" + draw(st.binary(max_size=20))
    if draw(st.integers(0, 2)) == 0:  # truncated, often inside the file part
        inside = file_end > file_start and draw(st.booleans())
        cut = draw(
            st.integers(file_start, file_end - 1) if inside else st.integers(0, len(body) - 1)
        )
        if cut < file_end:
            file_end = -1  # the file part never ended: it must not be accepted
        body = body[:cut]
    return Form(content_type, bytes(body), well_formed, file if well_formed else None, file_end)


def simple_form(content: bytes = b"hello") -> tuple[bytes, str]:
    body = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + content + b"\r\n--b0undary--\r\n"
    )
    return body, "multipart/form-data; boundary=b0undary"


# --- GET /event_type ------------------------------------------------------------------------------

query_strings = st.one_of(
    st.lists(
        st.tuples(
            st.sampled_from(["name", "Name", "name[]", "limit", "cursor"]) | st.text(max_size=8),
            st.text(max_size=30) | st.sampled_from(["upload file", "\x00", "%", "'; DROP TABLE x"]),
        ),
        max_size=4,
    ).map(lambda pairs: "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)),
    st.binary(max_size=40).map(lambda raw: quote(raw, safe="=&")),
    st.binary(max_size=20).map(lambda raw: "name=" + quote(raw, safe="")),
    st.sampled_from(["name=%00", "name=%FF", "name=%", "name=a&name=b", "name[]=x", "=", "&&"]),
    st.text(alphabet=string.ascii_letters + string.digits + "=&;+,/?:@-._~!$'()*", max_size=40),
)


@FUZZ
@given(query=query_strings)
async def test_event_type_query_strings(stack: Stack, query: str) -> None:
    answer = await send(stack, "GET", f"/event_type?{query}")
    body = check_envelope(answer)
    if answer.status == 200:
        assert isinstance(body["data"], list)


# --- POST /webhook/register -----------------------------------------------------------------------


async def check_registration(stack: Stack, raw: bytes, content_type: str | None) -> Answer:
    before = await registration_count(stack)
    headers = {} if content_type is None else {"Content-Type": content_type}
    skip = ("Content-Type",) if content_type is None else ()
    answer = await send(stack, "POST", "/webhook/register", data=raw, headers=headers, skip=skip)
    body = check_envelope(answer)
    after = await registration_count(stack)
    if answer.status == 200:
        assert after == before + 2, f"an accepted registration stores two rows: {answer}"
        assert uuid.UUID(body["data"]["id"])
    else:
        assert after == before, f"a refused registration wrote rows: {answer}"
    return answer


@FUZZ
@given(value=json_values)
async def test_register_any_json_value(stack: Stack, value: Any) -> None:
    await check_registration(stack, json.dumps(value).encode(), "application/json")


@FUZZ
@given(fields=registration_objects())
async def test_register_objects_with_any_field_values(stack: Stack, fields: dict[str, Any]) -> None:
    await check_registration(stack, json.dumps(fields).encode(), "application/json")


@FUZZ
@given(
    headers=st.none() | st.dictionaries(header_names, st.text(max_size=20) | json_values),
    payload=st.none()
    | st.dictionaries(
        st.text(max_size=8) | st.sampled_from(["\x00", "key"]), json_values, max_size=4
    ),
)
async def test_register_any_custom_headers_and_payload(
    stack: Stack, headers: Any, payload: Any
) -> None:
    """Everything else valid: the object fields alone decide, and never with a 5xx."""
    fields = {**VALID_BASE, "custom_headers": headers, "custom_payload": payload}
    answer = await check_registration(stack, json.dumps(fields).encode(), "application/json")
    if answer.status == 200:
        data = json.loads(answer.body)["data"]
        assert data["custom_headers"] == (headers or {})
        assert data["custom_payload"] == (payload or {})


@FUZZ
@given(
    raw=st.binary(max_size=300) | st.text(max_size=100).map(str.encode), content_type=content_types
)
async def test_register_any_bytes_any_content_type(
    stack: Stack, raw: bytes, content_type: str | None
) -> None:
    await check_registration(stack, raw, content_type)


@FUZZ
@given(fields=valid_registrations)
async def test_register_valid_bodies_are_accepted(stack: Stack, fields: dict[str, Any]) -> None:
    answer = await send(
        stack,
        "POST",
        "/webhook/register",
        data=json.dumps(fields).encode(),
        headers={"Content-Type": "application/json"},
    )
    body = check_envelope(answer)
    assert answer.status == 200, f"a valid registration was refused: {answer}"
    data = body["data"]
    for name in ("user_id", "url", "event_type_id"):
        assert data[name] == fields[name]
    assert data["custom_headers"] == fields.get("custom_headers", {})
    assert data["custom_payload"] == fields.get("custom_payload", {})


@FUZZ
@pytest.mark.parametrize(
    "stack_options", [StackOptions(registration_allow_private=False, with_dispatcher=False)]
)
@given(url=urls())
async def test_register_any_url_with_private_urls_refused(stack: Stack, url: str) -> None:
    """The production default: every URL's host is judged (literals, names, DNS) without a 5xx."""
    fields = {**VALID_BASE, "url": url}
    await check_registration(stack, json.dumps(fields).encode(), "application/json")


# --- POST /upload_file/webhook_id/{webhook_id} ----------------------------------------------------


async def check_upload(
    stack: Stack, target: str, body: bytes, content_type: str | None
) -> tuple[Answer, dict[str, Any]]:
    """Post it; whatever the answer, only an accepted upload leaves a file and a row."""
    files_before = files_under(stack.upload_dir)
    rows_before = await upload_count(stack)
    headers = {} if content_type is None else {"Content-Type": content_type}
    skip = ("Content-Type",) if content_type is None else ()
    answer = await send(stack, "POST", target, data=body, headers=headers, skip=skip)
    envelope = check_envelope(answer)
    new_files = files_under(stack.upload_dir) - files_before
    rows_after = await upload_count(stack)
    if answer.status == 200:
        data = envelope["data"]
        stored = stack.upload_dir / data["upload_id"] / data["filename"]
        assert new_files == {stored}, f"{answer}: new files {new_files}"
        assert stored.resolve().is_relative_to(stack.upload_dir.resolve())
        assert stored.stat().st_size == data["size"]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == data["sha256"]
        assert rows_after == rows_before + 1
    else:
        assert new_files == set(), f"refused upload left files: {answer}: {new_files}"
        assert rows_after == rows_before, f"refused upload left a row: {answer}"
    return answer, envelope


@FUZZ
@given(form=forms())
async def test_upload_any_multipart(stack: Stack, form: Form) -> None:
    target = f"/upload_file/webhook_id/{await target_webhook(stack)}"
    answer, envelope = await check_upload(stack, target, form.body, form.content_type)
    if form.file_end == -1:
        assert answer.status >= 400, f"a file part that never ended was accepted: {answer}"
    elif form.well_formed and form.file is not None:
        assert answer.status == 200, f"a well-formed upload was refused: {answer}"
        assert envelope["data"]["size"] == len(form.file)
        assert envelope["data"]["sha256"] == hashlib.sha256(form.file).hexdigest()
    elif form.well_formed:
        assert answer.status == 400, f"a form without a file field: {answer}"


@FUZZ
@given(raw=st.binary(max_size=2048), content_type=content_types)
async def test_upload_any_bytes_any_content_type(
    stack: Stack, raw: bytes, content_type: str | None
) -> None:
    target = f"/upload_file/webhook_id/{await target_webhook(stack)}"
    await check_upload(stack, target, raw, content_type)


path_segments = st.one_of(
    st.text(max_size=40).map(lambda s: quote(s, safe="")),
    st.binary(max_size=40).map(lambda raw: quote(raw, safe="")),
    st.text(alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@", max_size=40),
    st.uuids().flatmap(
        lambda u: st.sampled_from([str(u), u.hex, str(u).upper(), "{" + str(u) + "}", u.urn])
    ),
    st.sampled_from(["..", ".", "", "%2e%2e", "..%2F..%2Fevent_type", "a%2Fb", "%00", "%25"]),
)


@FUZZ
@given(segment=path_segments)
async def test_upload_any_path_segment(stack: Stack, segment: str) -> None:
    body, content_type = simple_form()
    answer, _ = await check_upload(stack, f"/upload_file/webhook_id/{segment}", body, content_type)
    assert answer.status in (400, 404, 405), f"upload to an unknown webhook: {answer}"


# --- unknown paths and methods --------------------------------------------------------------------

DOCUMENTS = {("GET", "/openapi.json", 200), ("GET", "/docs", 200)}
# HEAD answers have no body to check, CONNECT is a proxy request, and TRACE is nginx's own
# refusal (a raw-socket case below); lowercase methods are too (the client would send them as is).
methods = st.sampled_from(
    ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "FOO"]
) | st.text(alphabet=string.ascii_uppercase + "_-", min_size=1, max_size=12).filter(
    lambda m: m not in ("TRACE", "CONNECT", "HEAD")
)
paths = st.one_of(
    st.sampled_from(
        [
            "/",
            "/event_type",
            "/event_type/",
            "/event_types",
            "/webhook",
            "/webhook/",
            "/webhook/register",
            "/webhook/register/x",
            "/webhookx",
            "/upload_file",
            "/upload_file/",
            "/upload_file/webhook_id",
            "/delivery",
            "/delivery/",
            "/openapi.json",
            "/docs",
            "/healthz",
            "/metrics",
            "//event_type",
            "/./event_type",
            "/x/../event_type",
        ]
    ),
    st.lists(st.text(max_size=12).map(lambda s: quote(s, safe="")), min_size=1, max_size=4).map(
        lambda segments: "/" + "/".join(segments)
    ),
)


@FUZZ
@given(method=methods, path=paths, body=st.none() | st.binary(max_size=64))
async def test_unknown_paths_and_methods(
    stack: Stack, method: str, path: str, body: bytes | None
) -> None:
    answer = await send(stack, method, path, data=body)
    if (method, path, answer.status) in DOCUMENTS:
        return  # the OpenAPI document and the docs page are what they are, not envelopes
    check_envelope(answer)


# --- known edge cases ----------------------------------------------------------------------------
# Found by the properties above (or close to what they found), kept so they run on every run.


def multipart(*parts: bytes, boundary: bytes = b"b0undary", close: bool = True) -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + boundary + b"--\r\n" if close else b"")


FILE_PART = b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello'
MULTIPART = "multipart/form-data; boundary=b0undary"
LONG_BOUNDARY = "b" * 71

EDGE_CASES = [
    pytest.param("GET", "/event_type?name=%00", None, None, {200, 400}, id="event_type-name-nul"),
    pytest.param(
        "POST",
        "/webhook/register",
        "application/json",
        json.dumps({**VALID_BASE, "custom_payload": {"k": "a\x00b"}}).encode(),
        {200, 400},
        id="register-nul-in-custom_payload-value",
    ),
    pytest.param(
        "POST",
        "/webhook/register",
        "application/json",
        json.dumps({**VALID_BASE, "custom_payload": {"a\x00b": 1}}).encode(),
        {200, 400},
        id="register-nul-in-custom_payload-key",
    ),
    pytest.param(
        "POST",
        "/webhook/register",
        "application/json",
        json.dumps({**VALID_BASE, "custom_headers": {"X-A": "\u2028"}}).encode(),
        {200, 400},
        id="register-unicode-line-separator-in-header-value",
    ),
    pytest.param(
        "POST",
        "{upload}",
        f"multipart/form-data; boundary={LONG_BOUNDARY}",
        multipart(FILE_PART, boundary=LONG_BOUNDARY.encode()),
        {400},
        id="upload-boundary-over-70-chars",
    ),
    pytest.param(
        "POST", "{upload}", MULTIPART, b"--b0undary\r\nC", {400}, id="upload-part-cut-in-head"
    ),
    pytest.param(
        "POST",
        "{upload}",
        MULTIPART,
        multipart(b"Bad Name: x\r\n" + FILE_PART),
        {400},
        id="upload-part-header-name-with-space",
    ),
    pytest.param(
        "POST",
        "{upload}",
        MULTIPART,
        multipart(b"Content-Type: text/plain\r\nContent-Type: text/plain\r\n" + FILE_PART),
        {400},
        id="upload-part-with-two-content-types",
    ),
    pytest.param(
        "POST",
        "{upload}",
        MULTIPART,
        multipart(b"".join(b"X-%d: v\r\n" % i for i in range(200)) + FILE_PART),
        {400},
        id="upload-part-with-200-headers",
    ),
    pytest.param(
        "POST",
        "{upload}",
        MULTIPART,
        multipart(b"X-Long: " + b"v" * 9000 + b"\r\n" + FILE_PART),
        {400},
        id="upload-part-header-of-9000-bytes",
    ),
    pytest.param(
        "POST",
        "{upload}",
        MULTIPART,
        multipart(
            b'Content-Disposition: form-data; name="_charset_"\r\n\r\n' + b"x" * 40, FILE_PART
        ),
        # The upload service ignores `_charset_` (the file part needs none).
        {200},
        id="upload-_charset_-part-too-long",
    ),
    pytest.param(
        "POST",
        "{upload}",
        MULTIPART,
        b'--b0undary\r\nContent-Disposition: form-data; name="file"',
        {400},
        id="upload-cut-in-part-head-is-not-an-empty-file",
    ),
    pytest.param(
        "POST",
        "{upload}",
        MULTIPART,
        multipart(FILE_PART, close=False)[: -len(b"\r\n")],
        {400},
        id="upload-cut-right-after-file-content",
    ),
    pytest.param(
        "POST",
        "{upload}",
        MULTIPART,
        b"--b0undary\r\n" + FILE_PART + b" and the rest never came",
        {400},
        id="upload-cut-in-file-content",
    ),
    pytest.param(
        "POST",
        "{upload}",
        MULTIPART,
        multipart(
            b'Content-Disposition: form-data; name="file"; filename="\xff\xfe.txt"\r\n'
            b"Content-Type: text/\xff\r\n\r\nx"
        ),
        {200, 400},
        id="upload-part-headers-not-utf-8",
    ),
    pytest.param(
        "POST",
        "{upload}",
        MULTIPART,
        multipart(
            b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
            b"Content-Type: " + b"t" * 8000 + b"\r\n\r\nx"
        ),
        {200, 400},
        id="upload-part-content-type-of-8000-bytes",
    ),
    pytest.param(
        "POST",
        "{upload}",
        f"multipart/form-data; boundary={'b' * 40}",
        multipart(
            b'Content-Disposition: form-data; name="_charset_"\r\n\r\nutf-8',
            FILE_PART,
            boundary=b"b" * 40,
        ),
        {200},
        id="upload-valid-_charset_-part-with-40-char-boundary",
    ),
    pytest.param(
        "POST",
        "{upload}",
        'multipart/form-data; boundary=" b0undary"',
        multipart(FILE_PART, boundary=b" b0undary"),
        # Legal per RFC 2046, but aiohttp's parser strips the space: a clear 400, not a 500.
        {200, 400},
        id="upload-valid-quoted-boundary-with-leading-space",
    ),
    pytest.param("FOO", "/event_type", None, None, {400, 405}, id="unknown-method-FOO"),
    pytest.param(
        "POST",
        "/upload_file/webhook_id/%00",
        MULTIPART,
        multipart(FILE_PART),
        {400, 404},
        id="upload-webhook_id-nul",
    ),
    pytest.param("GET", "/upload_file", None, None, {404}, id="get-upload_file-without-slash"),
    pytest.param("GET", "/delivery", None, None, {404}, id="get-delivery-without-slash"),
]


@pytest.mark.parametrize(("method", "target", "content_type", "body", "statuses"), EDGE_CASES)
async def test_known_edge_cases(
    stack: Stack,
    method: str,
    target: str,
    content_type: str | None,
    body: bytes | None,
    statuses: set[int],
) -> None:
    if target == "{upload}":
        target = f"/upload_file/webhook_id/{await target_webhook(stack)}"
    if target.startswith("/upload_file/"):
        answer, _ = await check_upload(stack, target, body or b"", content_type)
    elif target == "/webhook/register":
        answer = await check_registration(stack, body or b"", content_type)
    else:
        answer = await send(stack, method, target, data=body)
        check_envelope(answer)
    assert answer.status in statuses, f"expected one of {sorted(statuses)}: {answer}"


@pytest.mark.parametrize(
    "stack_options", [StackOptions(registration_allow_private=False, with_dispatcher=False)]
)
@pytest.mark.parametrize(
    "url",
    [
        "http://a..b/",
        "http://" + "x" * 64 + ".com/",
        "http://exa\udcffmple.com/",
        "http://\u0080/",
        "http://[::ffff:127.0.0.1]/",
        "http://127.1/",
        "http://0x7f000001/",
    ],
)
async def test_known_urls_with_private_urls_refused(stack: Stack, url: str) -> None:
    fields = {**VALID_BASE, "url": url}
    answer = await check_registration(stack, json.dumps(fields).encode(), "application/json")
    assert answer.status == 400, f"a private or invalid host must be refused: {answer}"


# --- raw sockets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def __str__(self) -> str:
        return f"{self.status} {self.headers.get('content-type')!r} {self.body[:300]!r}"


def gateway_address(stack: Stack) -> tuple[str, int]:
    host, port = stack.gateway_url.removeprefix("http://").split(":")
    return host, int(port)


def parse_raw(raw: bytes) -> RawAnswer | None:
    if not raw:
        return None
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        decoded = b""
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            decoded += rest[:size]
            body = rest[size + 2 :]
        body = decoded
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return RawAnswer(int(status_line.split()[1]), headers, body)


async def raw_exchange(
    stack: Stack, pieces: list[bytes], *, pause: float = 0.0, half_close: bool = False
) -> RawAnswer | None:
    """Send the pieces (pausing between them), then read until the gateway closes."""
    reader, writer = await asyncio.open_connection(*gateway_address(stack))
    try:
        started = time.monotonic()
        for piece in pieces:
            try:
                writer.write(piece)
                await writer.drain()
            except ConnectionError:
                break  # the gateway may answer and close before it has it all
            if pause:
                await asyncio.sleep(pause)
        if half_close and not writer.is_closing():
            writer.write_eof()
        remaining = REQUEST_TIMEOUT_SECONDS - (time.monotonic() - started)
        try:
            raw = await asyncio.wait_for(reader.read(-1), max(remaining, 1.0))
        except ConnectionResetError:
            raw = b""
        except TimeoutError:
            raise AssertionError("the gateway neither answered nor closed in time") from None
        return parse_raw(raw)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def check_raw_envelope(answer: RawAnswer | None, statuses: set[int]) -> None:
    assert answer is not None, "the gateway closed the connection without an answer"
    assert answer.status in statuses, f"expected one of {sorted(statuses)}: {answer}"
    content_type = answer.headers.get("content-type", "").split(";")[0]
    check_envelope(
        Answer("RAW", "", answer.status, content_type, answer.body),
        protocol_5xx=frozenset(statuses) & {501, 505},
    )


def request(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body


BAD_HEADS = [
    pytest.param(
        request(f"GET /event_type HTTP/1.1\nHost: x\nX-Huge: {'a' * 65536}\nConnection: close\n"),
        {400, 431, 494},
        id="64KiB-header-line",
    ),
    pytest.param(
        request(
            "GET /event_type HTTP/1.1\nHost: x\n"
            + "".join(f"X-H{i}: {'v' * 1000}\n" for i in range(200))
            + "Connection: close\n"
        ),
        {400, 431, 494},
        id="200KiB-of-headers",
    ),
    pytest.param(
        request(f"GET /event_type HTTP/1.1\nHost: x\nX-Big: {'a' * 12000}\nConnection: close\n"),
        {200, 400, 431, 494},
        id="12KiB-header-line",
    ),
    pytest.param(
        request(
            "GET /event_type HTTP/1.1\nHost: x\n"
            + "".join(f"X-H{i}: v\n" for i in range(300))
            + "Connection: close\n"
        ),
        {200, 400, 431, 494},
        id="300-headers",
    ),
    pytest.param(
        request(f"GET /event_type?name={'a' * 20000} HTTP/1.1\nHost: x\nConnection: close\n"),
        {400, 414, 494},
        id="20KiB-uri",
    ),
    pytest.param(
        request(f"GET /event_type?name={'a' * 10000} HTTP/1.1\nHost: x\nConnection: close\n"),
        {200, 400, 414},
        id="10KiB-uri",
    ),
    pytest.param(request("GARBAGE\n"), {400}, id="garbage-request-line"),
    pytest.param(
        request("get /event_type HTTP/1.1\nHost: x\nConnection: close\n"),
        {400, 405},
        id="lowercase-method",
    ),
    pytest.param(
        request("TRACE /event_type HTTP/1.1\nHost: x\nConnection: close\n"), {405}, id="trace"
    ),
    pytest.param(
        request("GET /event_type HTTP/2.0\nHost: x\nConnection: close\n"),
        {400, 505},
        id="http-2.0-request-line",
    ),
    pytest.param(
        request("GET /event_type HTTP/1.1\nConnection: close\n"), {400}, id="http-1.1-without-host"
    ),
    pytest.param(
        request("GET /event_type HTTP/1.1\nHost: x\nHost: y\nConnection: close\n"),
        {400},
        id="two-hosts",
    ),
    pytest.param(
        request("GET /event_type%00 HTTP/1.1\nHost: x\nConnection: close\n"),
        {400, 404},
        id="nul-in-path",
    ),
    pytest.param(
        request("GET /event_%zz HTTP/1.1\nHost: x\nConnection: close\n"),
        {400, 404},
        id="bad-percent-escape",
    ),
    pytest.param(
        request("GET /event_type HTTP/1.1\nHost: x\nX-Nul: a\x00b\nConnection: close\n"),
        {200, 400},
        id="nul-in-header",
    ),
    pytest.param(
        request(
            "POST /webhook/register HTTP/1.1\nHost: x\nContent-Length: abc\nConnection: close\n"
        ),
        {400},
        id="content-length-not-a-number",
    ),
    pytest.param(
        request(
            "POST /webhook/register HTTP/1.1\nHost: x\nContent-Length: 2\nContent-Length: 3\n"
            "Connection: close\n",
            b"{}",
        ),
        {400},
        id="two-content-lengths",
    ),
    pytest.param(
        request(
            "POST /webhook/register HTTP/1.1\nHost: x\nTransfer-Encoding: gzip\n"
            "Connection: close\n",
            b"{}",
        ),
        {400, 501},
        id="unknown-transfer-encoding",
    ),
    pytest.param(
        request(
            "POST /webhook/register HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            "Transfer-Encoding: chunked\nConnection: close\n",
            b"zz\r\n{}\r\n0\r\n\r\n",
        ),
        {400},
        id="chunked-bad-size-register",
    ),
    pytest.param(
        request(
            "POST /webhook/register HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            "Transfer-Encoding: chunked\nConnection: close\n",
            b"2\r\n{}XX0\r\n\r\n",
        ),
        {400},
        id="chunked-missing-crlf-register",
    ),
    pytest.param(
        request(
            "POST /webhook/register HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            "Transfer-Encoding: chunked\nContent-Length: 2\nConnection: close\n",
            b"2\r\n{}\r\n0\r\n\r\n",
        ),
        {400},
        id="chunked-and-content-length",
    ),
    pytest.param(
        request(
            "POST /webhook/register HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            "Transfer-Encoding: chunked\nConnection: close\n",
            b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
        ),
        {400, 413},
        id="chunked-huge-size-register",
    ),
]


@pytest.mark.parametrize(("raw", "statuses"), BAD_HEADS)
async def test_broken_requests_get_an_envelope(
    stack: Stack, raw: bytes, statuses: set[int]
) -> None:
    check_raw_envelope(await raw_exchange(stack, [raw]), statuses)


def upload_head(webhook_id: str, extra: str) -> str:
    return (
        f"POST /upload_file/webhook_id/{webhook_id} HTTP/1.1\nHost: x\n"
        f"Content-Type: multipart/form-data; boundary=cut\n{extra}Connection: close\n"
    )


PART_HEAD = b'--cut\r\nContent-Disposition: form-data; name="file"; filename="p.bin"\r\n\r\n'


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param(b"zz\r\n" + PART_HEAD, id="bad-size"),
        pytest.param(b"%x\r\n" % len(PART_HEAD) + PART_HEAD + b"XX", id="missing-crlf"),
        pytest.param(
            b"%x\r\n" % len(PART_HEAD) + PART_HEAD + b"\r\n-5\r\nabcde\r\n", id="negative"
        ),
    ],
)
async def test_malformed_chunked_upload(stack: Stack, chunks: bytes) -> None:
    """Unbuffered at the gateway: the service has started reading when the body turns bad."""
    webhook_id = await target_webhook(stack)
    rows = await upload_count(stack)
    head = request(upload_head(webhook_id, "Transfer-Encoding: chunked\n"))
    answer = await raw_exchange(stack, [head, chunks], pause=0.2)
    check_raw_envelope(answer, {400})
    await assert_nothing_left(stack, rows)


async def assert_nothing_left(stack: Stack, rows: int, settle: float = 3.0) -> None:
    for _ in range(int(settle / 0.05)):
        if not files_under(stack.upload_dir):
            break
        await asyncio.sleep(0.05)
    assert files_under(stack.upload_dir) == set()
    assert list(stack.upload_dir.iterdir()) == []
    assert await upload_count(stack) == rows


@pytest.mark.parametrize("half_close", [False, True], ids=["close", "half-close"])
async def test_truncated_upload_leaves_nothing(stack: Stack, half_close: bool) -> None:
    """Content-Length promises more than arrives; the client then goes away (or stops sending)."""
    webhook_id = await target_webhook(stack)
    rows = await upload_count(stack)
    sent = PART_HEAD + b"z" * 1000
    head = request(upload_head(webhook_id, f"Content-Length: {len(sent) + 5000}\n"))
    reader, writer = await asyncio.open_connection(*gateway_address(stack))
    writer.write(head + sent)
    await writer.drain()
    for _ in range(100):  # until the service has started writing the file
        if files_under(stack.upload_dir):
            break
        await asyncio.sleep(0.02)
    assert files_under(stack.upload_dir), "the upload never started"
    if half_close:
        writer.write_eof()
        # The gateway sees the end of the body before its promised length: an answer or a close.
        raw = await asyncio.wait_for(reader.read(-1), REQUEST_TIMEOUT_SECONDS)
        answer = parse_raw(raw)
        if answer is not None:
            check_raw_envelope(answer, {400, 408})
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    await assert_nothing_left(stack, rows)
    # The service is still fine afterwards.
    await stack.upload(webhook_id)


async def test_slow_client_sending_byte_by_byte(stack: Stack) -> None:
    """A whole request trickled out over about two seconds still gets its answer."""
    body = json.dumps(
        {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1, "url": "https://example.com/slow"}
    ).encode()
    raw = request(
        "POST /webhook/register HTTP/1.1\nHost: x\nContent-Type: application/json\n"
        f"Content-Length: {len(body)}\nConnection: close\n",
        body,
    )
    pieces = [raw[i : i + 1] for i in range(len(raw))]
    answer = await raw_exchange(stack, pieces, pause=2.0 / len(pieces))
    check_raw_envelope(answer, {200})


async def test_slow_upload_byte_by_byte(stack: Stack) -> None:
    webhook_id = await target_webhook(stack)
    body, content_type = simple_form(b"slowly")
    raw = request(
        f"POST /upload_file/webhook_id/{webhook_id} HTTP/1.1\nHost: x\n"
        f"Content-Type: {content_type}\nContent-Length: {len(body)}\nConnection: close\n",
        body,
    )
    pieces = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    answer = await raw_exchange(stack, pieces, pause=2.0 / len(pieces))
    check_raw_envelope(answer, {200})
    assert answer is not None and json.loads(answer.body)["data"]["size"] == len(b"slowly")
