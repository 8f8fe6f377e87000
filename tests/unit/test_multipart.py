"""services/upload/ingest/multipart.py: the usual Content-Disposition, and the usual small body, are
read without aiohttp's parsers, to the same result; everything else is left to them."""

from __future__ import annotations

import asyncio
import warnings

import pytest
from aiohttp import MultipartReader, hdrs
from aiohttp.multipart import content_disposition_filename, parse_content_disposition
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from services.common.web import BadRequest
from services.upload.ingest.multipart import (
    FilePart,
    Form,
    buffered,
    finish_form,
    next_file_part,
    reader_boundary,
    simple_disposition,
    small_form,
)


def by_aiohttp(header: str | None) -> tuple[str | None, str | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, params = parse_content_disposition(header)
    return (
        content_disposition_filename(params, "name"),
        content_disposition_filename(params, "filename"),
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('form-data; name="file"; filename="bench.bin"', ("file", "bench.bin")),
        ('form-data;name="file";filename="a b.txt"', ("file", "a b.txt")),
        ('Form-Data; NAME="file"; FileName="x"', ("file", "x")),
        ('form-data; name="file"', ("file", None)),
        ('form-data; name="file"; filename=""', ("file", "")),
        ('form-data; name="file"; filename="résumé.txt"', ("file", "résumé.txt")),
        ("form-data", (None, None)),
    ],
)
def test_the_usual_header_reads_as_aiohttp_reads_it(
    header: str, expected: tuple[str | None, str | None]
) -> None:
    assert simple_disposition(header) == expected == by_aiohttp(header)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        'form-data; name=file; filename="a"',  # a token, not quoted
        'form-data; name="file"; filename="a\\"b"',  # an escape
        'form-data; name="file"; filename="/etc/passwd"',  # aiohttp strips leading slashes
        "form-data; name=\"file\"; filename*=UTF-8''a%20b",  # RFC 5987
        'form-data; name="file"; filename*0="a"; filename*1="b"',  # continuations
        'form-data; name="file"; filename="a;b"',  # a semicolon inside the quotes
        'form-data; name="file"; name="other"',  # repeated
        'form-data; name="file";',  # trailing semicolon
        'form-data; name="file"; junk',  # no "="
        'form data; name="file"',  # not a token
    ],
    ids=repr,
)
def test_any_other_header_is_left_to_aiohttp(header: str | None) -> None:
    assert simple_disposition(header) is None


PIECES = st.sampled_from(
    [
        "form-data",
        "attachment",
        "Form-Data",
        ";",
        " ",
        "=",
        '"',
        "\\",
        "/",
        "*",
        "name",
        "NAME",
        "filename",
        "filename*",
        "file",
        "a.txt",
        "é",
        "\t",
        "0",
        "'",
        "\u212a",
    ]
)


@given(st.lists(PIECES, max_size=16).map("".join))
def test_whatever_it_reads_aiohttp_reads_the_same(header: str) -> None:
    simple = simple_disposition(header)
    if simple is not None:
        assert simple == by_aiohttp(header)


PARAMETER = st.tuples(
    st.sampled_from(["name", "filename", "NAME", " filename ", "x", "name*", "\u212aey"]),
    st.text(st.sampled_from('ab é"\\/;=*\t'), max_size=6),
).map(lambda pair: f'{pair[0]}="{pair[1]}"')


@given(st.lists(PARAMETER, max_size=4).map(lambda params: "; ".join(["form-data", *params])))
def test_quoted_parameters_read_as_aiohttp_reads_them(header: str) -> None:
    simple = simple_disposition(header)
    if simple is not None:
        assert simple == by_aiohttp(header)


# --- small bodies ------------------------------------------------------------------------------


async def read_by_aiohttp(body: bytes, boundary: str) -> tuple[str | None, str | None, bytes]:
    """The file part as the streaming path reads it: aiohttp's reader over the whole body."""
    headers = CIMultiDict({hdrs.CONTENT_TYPE: f'multipart/mixed; boundary="{boundary}"'})
    reader = MultipartReader(headers, buffered(body))
    part = await next_file_part(reader)
    assert part.reader is not None
    chunks = []
    while chunk := await part.reader.read_chunk(256 * 1024):
        chunks.append(chunk)
    assert part.reader.at_eof()
    await finish_form(Form(reader, boundary, headers))
    return part.filename, part.content_type, b"".join(chunks)


def same_as_aiohttp(body: bytes, boundary: str) -> FilePart | None:
    """small_form's answer, checked against aiohttp's whenever it gives one."""
    headers = CIMultiDict({hdrs.CONTENT_TYPE: f'multipart/mixed; boundary="{boundary}"'})
    fast = small_form(body, reader_boundary(headers))
    if fast is not None:
        assert fast.reader is None
        expected = asyncio.run(read_by_aiohttp(body, boundary))
        assert (fast.filename, fast.content_type, fast.content) == expected
    return fast


def form_body(boundary: str, headers: list[bytes], content: bytes, tail: bytes = b"") -> bytes:
    delimiter = b"--" + boundary.encode()
    head = b"\r\n".join(headers)
    return delimiter + b"\r\n" + head + b"\r\n\r\n" + content + b"\r\n" + delimiter + tail


FILE_HEADERS = [
    b'Content-Disposition: form-data; name="file"; filename="bench.bin"',
    b"Content-Type: application/octet-stream",
]


@pytest.mark.parametrize(
    ("headers", "content", "tail"),
    [
        (FILE_HEADERS, b"\x00\x01 payload \r\n--not-it", b"--\r\n"),
        (FILE_HEADERS, b"", b"--"),
        (FILE_HEADERS[:1], b"x", b"--\r\n"),  # no Content-Type
        (
            [b'content-disposition:form-data; name="file"; filename="r\xc3\xa9sum\xc3\xa9.txt"'],
            b"caf\xc3\xa9",
            b"--\r\n",
        ),
    ],
)
def test_the_usual_small_body_reads_as_aiohttp_reads_it(
    headers: list[bytes], content: bytes, tail: bytes
) -> None:
    boundary = "benchboundary7MA4YWxkTrZu0gW"
    part = same_as_aiohttp(form_body(boundary, headers, content, tail), boundary)
    assert part is not None and part.content == content


@pytest.mark.parametrize(
    ("boundary", "body"),
    [
        ("b", b"preamble\r\n" + form_body("b", FILE_HEADERS, b"x", b"--\r\n")),
        ("b", form_body("b", FILE_HEADERS, b"x", b"--\r\nepilogue")),
        ("b", form_body("b", FILE_HEADERS, b"x", b"\r\n") + b"second part"),  # not the close
        ("b", form_body("b", FILE_HEADERS, b"x\r\n--b", b"--\r\n")),  # an earlier delimiter
        ("b", form_body("b", [b'Content-Disposition: form-data; name="other"'], b"x", b"--")),
        ("b", form_body("b", [*FILE_HEADERS, b"Content-Length: 1"], b"x", b"--")),
        (
            "b",
            form_body("b", [*FILE_HEADERS, b"Content-Transfer-Encoding: base64"], b"eA==", b"--"),
        ),
        (
            "b",
            form_body(
                "b", [FILE_HEADERS[0], b"Content-Type: multipart/mixed; boundary=c"], b"", b"--"
            ),
        ),
        ("b", form_body("b", [FILE_HEADERS[0], b"X-Bad: a\x01b"], b"x", b"--")),  # aiohttp: 400
        ("b", form_body("b", [FILE_HEADERS[0], b" folded"], b"x", b"--")),
        ("b", b"--b\n" + b"\r\n".join(FILE_HEADERS) + b"\r\n\r\nx\r\n--b--"),  # LF only
        ("b ", form_body("b ", FILE_HEADERS, b"x", b"--")),  # a boundary ending in a space
        ("b", form_body("b", FILE_HEADERS, b"x")),  # cut off before the close
        ("b", b""),
    ],
    ids=repr,
)
def test_any_other_body_is_left_to_aiohttp(boundary: str, body: bytes) -> None:
    assert small_form(body, boundary) is None


BOUNDARIES = st.sampled_from(["b", "abc", "a b", "x" * 70, "t ", " b", "\tb", "'()+_,-./:=?"])
# Mostly the usual shape, so that small_form reads many of them; sometimes anything else.
FILE_DISPOSITIONS = st.sampled_from(
    [
        FILE_HEADERS[0],
        b'Content-Disposition: form-data; name="file"',
        b'CONTENT-DISPOSITION:form-data;name="file";filename="a b"',
        b'Content-Disposition: form-data; name="file"; filename="\xc3\xa9\xff"',
        b'Content-Disposition: form-data; name="file"; filename="/etc/x"',
        b'Content-Disposition: form-data; name="other"',
    ]
)
OTHER_HEADERS = st.sampled_from(
    [
        FILE_HEADERS[1],
        b"Content-Type: text/plain; charset=utf-8",
        b"content-type:image/png",
        b"X-Other:  spaced value  ",
        b"X-Tab: a\tb",
        b"Content-Type: multipart/mixed; boundary=c",
        b"Content-Length: 1",
        b"Content-Transfer-Encoding: base64",
        b"X-Ctl: a\x01",
        b" folded",
        b"no colon",
        b"",
    ]
)
PIECES_OF_CONTENT = st.sampled_from(
    [b"x", b"\r", b"\n", b"\r\n", b"--", b"-", b"b", b"abc", b"\x00", b"\r\n--b"]
)
USUAL = 6  # weight of the usual choice among the unusual ones


@given(
    boundary=BOUNDARIES,
    preamble=st.sampled_from([b""] * USUAL + [b"\r\n", b"junk\r\n"]),
    opening=st.sampled_from([b"\r\n"] * USUAL + [b"\n", b" \r\n", b"--\r\n"]),
    headers=st.tuples(FILE_DISPOSITIONS, st.lists(OTHER_HEADERS, max_size=2)).map(
        lambda pair: [pair[0], *pair[1]]
    ),
    separator=st.sampled_from([b"\r\n"] * USUAL + [b"\n"]),
    content=st.lists(PIECES_OF_CONTENT, max_size=12).map(b"".join),
    tail=st.sampled_from(
        [b"\r\n--{B}--\r\n", b"\r\n--{B}--"] * USUAL
        + [b"\r\n--{B}--\r\nafter", b"\r\n--{B}\r\n", b"", b"--{B}--", b"\r\n--{B}-"]
    ),
)
def test_whatever_small_body_it_reads_aiohttp_reads_the_same(
    boundary: str,
    preamble: bytes,
    opening: bytes,
    headers: list[bytes],
    separator: bytes,
    content: bytes,
    tail: bytes,
) -> None:
    delimiter = b"--" + boundary.encode()
    body = (
        preamble
        + delimiter
        + opening
        + separator.join(headers)
        + b"\r\n\r\n"
        + content
        + tail.replace(b"{B}", boundary.encode())
    )
    try:
        same_as_aiohttp(body, boundary)
    except BadRequest as exc:  # aiohttp refuses the body: small_form must have left it
        raise AssertionError(f"small_form read a body aiohttp refuses: {exc.message}") from exc
