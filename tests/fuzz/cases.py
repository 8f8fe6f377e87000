"""Known cases, kept so they run on every run: found by the properties (or close to what they
found) and the broken requests only a raw socket can send."""

from __future__ import annotations

import json

import pytest

from tests.fuzz.rawhttp import request
from tests.fuzz.strategies import VALID_BASE

# --- through an HTTP client (test_upload, test_known_cases) ------------------------------------


def simple_form(content: bytes = b"hello") -> tuple[bytes, str]:
    body = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + content + b"\r\n--b0undary--\r\n"
    )
    return body, "multipart/form-data; boundary=b0undary"


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

# URLs the production default (private URLs refused) answers with a 400, never a 5xx.
PRIVATE_OR_INVALID_URLS = [
    "http://a..b/",
    "http://" + "x" * 64 + ".com/",
    "http://exa\udcffmple.com/",
    "http://\u0080/",
    "http://[::ffff:127.0.0.1]/",
    "http://127.1/",
    "http://0x7f000001/",
]

# --- over a bare socket (test_raw_http) ----------------------------------------------------------

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

PART_HEAD = b'--cut\r\nContent-Disposition: form-data; name="file"; filename="p.bin"\r\n\r\n'

MALFORMED_CHUNKS = [
    pytest.param(b"zz\r\n" + PART_HEAD, id="bad-size"),
    pytest.param(b"%x\r\n" % len(PART_HEAD) + PART_HEAD + b"XX", id="missing-crlf"),
    pytest.param(b"%x\r\n" % len(PART_HEAD) + PART_HEAD + b"\r\n-5\r\nabcde\r\n", id="negative"),
]
