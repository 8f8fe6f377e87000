"""Hypothesis strategies for what a client may send: JSON, registrations, URLs, multipart
forms, query strings, paths and methods; and the settings every property runs under."""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, assume, settings
from hypothesis import strategies as st

from harness.stack import UPLOAD_EVENT_TYPE_ID

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

# --- JSON -------------------------------------------------------------------------------------

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

# --- multipart --------------------------------------------------------------------------------


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


# --- query strings, path segments, paths and methods ------------------------------------------

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

path_segments = st.one_of(
    st.text(max_size=40).map(lambda s: quote(s, safe="")),
    st.binary(max_size=40).map(lambda raw: quote(raw, safe="")),
    st.text(alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@", max_size=40),
    st.uuids().flatmap(
        lambda u: st.sampled_from([str(u), u.hex, str(u).upper(), "{" + str(u) + "}", u.urn])
    ),
    st.sampled_from(["..", ".", "", "%2e%2e", "..%2F..%2Fevent_type", "a%2Fb", "%00", "%25"]),
)

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
