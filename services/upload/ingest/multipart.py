"""Open a multipart/form-data body, using the last `boundary=` when a client sends several."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import BodyPartReader, MultipartReader, StreamReader, hdrs, web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.helpers import DEFAULT_CHUNK_SIZE, TOKEN, parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError, InvalidHeader
from aiohttp.http_parser import HeadersParser
from aiohttp.multipart import content_disposition_filename, parse_content_disposition
from multidict import CIMultiDict, CIMultiDictProxy

from services.common.web import BadRequest

FILE_FIELD = "file"


# What aiohttp's multipart reader raises on a malformed body, beyond ValueError.
MALFORMED = (ValueError, HttpProcessingError, RuntimeError, AssertionError, UnicodeDecodeError)


def last_boundary(content_type: str) -> str | None:
    """The last boundary parameter: curl appends its own after one given by hand."""
    boundary = None
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]  # quoted: spaces inside are part of it (RFC 2046)
        if key.strip().lower() == "boundary" and value:
            boundary = value
    return boundary


@dataclass
class Form:
    """A multipart body being read: by aiohttp's reader, unless it was read whole."""

    reader: MultipartReader
    boundary: str  # as that reader reads it
    headers: CIMultiDict[str]
    # Read whole, and found to end at its closing delimiter: nothing more to read.
    finished: bool = False


def open_form(request: web.Request) -> Form:
    content_type = request.headers.get(hdrs.CONTENT_TYPE, "")
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        raise BadRequest(
            "request must be multipart/form-data with the file in the field 'file', "
            f"got Content-Type {content_type or 'none'!r}"
        )
    boundary = last_boundary(content_type)
    if boundary is None:
        raise BadRequest("multipart/form-data Content-Type has no boundary")
    if len(boundary) > 70 or '"' in boundary or "\\" in boundary:
        raise BadRequest("multipart boundary must be 1 to 70 characters (RFC 2046)")
    headers = CIMultiDict(request.headers)
    # Parsed as multipart/mixed, whose parts read the same: aiohttp's form-data-only
    # handling of a leading `_charset_` part fails on boundaries over 29 characters, and
    # the file part needs no charset.
    headers[hdrs.CONTENT_TYPE] = f'multipart/mixed; boundary="{boundary}"'
    try:
        return Form(MultipartReader(headers, request.content), reader_boundary(headers), headers)
    except MALFORMED as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None


def reader_boundary(headers: CIMultiDict[str]) -> str:
    """The boundary aiohttp's reader looks for: it strips spaces around the given one."""
    return parse_mimetype(headers[hdrs.CONTENT_TYPE]).parameters["boundary"]


@dataclass(frozen=True)
class FilePart:
    filename: str | None  # as the client sent it: not yet safe to use
    content_type: str | None  # the part's Content-Type header, as sent
    # The content still to stream from the body, or None when `content` holds all of it.
    reader: BodyPartReader | None
    content: bytes = b""


def disposition(part: BodyPartReader) -> tuple[str | None, str | None]:
    """The part's field name and filename, from one parse of its Content-Disposition
    (aiohttp's `name` and `filename` would parse it once each)."""
    return disposition_of(part.headers.get(hdrs.CONTENT_DISPOSITION))


def disposition_of(header: str | None) -> tuple[str | None, str | None]:
    simple = simple_disposition(header)
    if simple is not None:
        return simple
    _, params = parse_content_disposition(header)
    return (
        content_disposition_filename(params, "name"),
        content_disposition_filename(params, "filename"),
    )


# A parameter name that aiohttp's parser reads as a plain one (not `name*` nor `name*0`).
PLAIN_KEY_CHARS = frozenset(TOKEN - {"*"})


def simple_disposition(header: str | None) -> tuple[str | None, str | None] | None:
    """Name and filename of the usual header (`form-data; name="file"; filename="a.txt"`:
    every parameter quoted, no backslash, no leading slash), read exactly as aiohttp's
    `parse_content_disposition` reads it; None for any other header, left to that parser.

    That parser costs more than the rest of the part's handling (it compiles an escaping
    pattern on every call); the usual header needs none of its cases. Measured by
    bench/multipart_fastpath.py, with small_form (see "small bodies" below).
    """
    if not header:
        return None
    disptype, *items = header.split(";")
    disptype = disptype.strip()
    if not disptype or not TOKEN.issuperset(disptype):
        return None
    params: dict[str, str] = {}
    for item in items:
        key, equals, value = item.partition("=")
        key = key.lower().strip()
        value = value.strip()
        if not equals or not key or key in params or not PLAIN_KEY_CHARS.issuperset(key):
            return None
        if len(value) < 2 or value[0] != '"' or value[-1] != '"':
            return None
        value = value[1:-1]
        if "\\" in value or value.startswith("/"):
            return None
        params[key] = value
    return params.get("name"), params.get("filename")


def malformed(exc: Exception) -> BadRequest:
    if isinstance(exc, InvalidHeader):
        # aiohttp reads every part's headers as HTTP fields (RFC 9110 §5.5), before the name
        # is known: the document's propertyNames pattern of the form says the same.
        return BadRequest(
            "malformed multipart body: a part has an invalid header line (a part's name or "
            "filename may hold no control character but HTAB)"
        )
    return BadRequest(f"malformed multipart body: {exc}")


async def next_file_part(reader: MultipartReader) -> FilePart:
    """Skip to the part named `file`."""
    try:
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader):
                name, filename = disposition(part)
                if name == FILE_FIELD:
                    return FilePart(filename, part.headers.get(hdrs.CONTENT_TYPE), part)
            await part.release()
    except MALFORMED as exc:
        raise malformed(exc) from None
    raise BadRequest(f"multipart field {FILE_FIELD!r} is required")


async def find_file_part(request: web.Request, form: Form) -> FilePart:
    """The part named `file`: from a small body read whole when it has the usual shape,
    else as aiohttp's reader finds it (in that copy of the body, or in the stream)."""
    if is_small(request):
        try:
            body = await request.read()
        except MALFORMED as exc:
            raise malformed(exc) from None
        part = small_form(body, form.boundary)
        if part is not None:
            form.finished = True
            return part
        form.reader = MultipartReader(form.headers, buffered(body))
    return await next_file_part(form.reader)


async def finish_form(form: Form) -> None:
    """Read past the remaining parts to the closing delimiter: a cut-off body is refused."""
    if form.finished:
        return
    reader = form.reader
    try:
        while (part := await reader.next()) is not None:
            await part.release()
    except MALFORMED as exc:
        raise malformed(exc) from None
    if not reader.at_eof():
        raise BadRequest("multipart body ended before its closing boundary")


# --- small bodies, read whole ---------------------------------------------------------------
# A body of a few KiB that has arrived in full is taken in one piece and, in the usual shape,
# its file part is cut out with a few searches: aiohttp's reader goes line by line through
# the stream and costs several times more. Any other body is read by that reader (from the
# copy), so every answer is the one it gives; tests/unit/test_multipart.py holds the two
# equal. A body still arriving is streamed by that reader.
# This and simple_disposition pay for their use of aiohttp's private modules: with them,
# `python -m bench.multipart_fastpath` serves some 30 % more 1 KiB uploads a second over
# 127.0.0.1 (no gain on a 1 MiB upload, which only simple_disposition touches).

SMALL_BODY_BYTES = 64 * 1024
MAX_SMALL_HEADER_LINES = 8
MAX_SMALL_HEADER_LINE_BYTES = 1024
# What follows the file part's content: the close delimiter, with or without its CRLF.
CLOSINGS = (b"--\r\n", b"--")


def is_small(request: web.Request) -> bool:
    """A body of a known, small length, not compressed (that could inflate past it), and
    here in full already: one still arriving is streamed to its file as it comes."""
    length = request.content_length
    return (
        length is not None
        and length <= SMALL_BODY_BYTES
        and hdrs.CONTENT_ENCODING not in request.headers
        and request.content.is_eof()
    )


def buffered(body: bytes) -> StreamReader:
    """A stream that holds `body` and ends there, for aiohttp's reader."""
    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), DEFAULT_CHUNK_SIZE, loop=loop)
    stream.feed_data(body)
    stream.feed_eof()
    return stream


def part_headers(block: bytes) -> CIMultiDictProxy[str] | None:
    """A part's header lines (CRLF between them) as aiohttp parses them; None for a block
    with a bare CR or LF, too many or too long lines, or one aiohttp would refuse."""
    lines = block.split(b"\r\n")
    if len(lines) > MAX_SMALL_HEADER_LINES:
        return None
    for line in lines:
        if not line or len(line) > MAX_SMALL_HEADER_LINE_BYTES or b"\r" in line or b"\n" in line:
            return None
    try:
        headers, _ = HeadersParser().parse_headers([*lines, b""])
    except (ValueError, HttpProcessingError):
        return None
    return headers


def plain_part(headers: CIMultiDictProxy[str]) -> bool:
    """A part aiohttp reads as plain bytes up to the next delimiter: not a nested multipart,
    not sized by its own Content-Length, not base64 (whose chunks aiohttp realigns)."""
    return (
        parse_mimetype(headers.get(hdrs.CONTENT_TYPE, "")).type != "multipart"
        and hdrs.CONTENT_LENGTH not in headers
        and hdrs.CONTENT_TRANSFER_ENCODING not in headers
    )


def small_form(body: bytes, boundary: str) -> FilePart | None:
    """The file part of `--B CRLF headers CRLF CRLF content CRLF --B--`, the one part and
    named `file`, as aiohttp's reader gives it; None for a body of any other shape."""
    if not boundary.isascii() or boundary != boundary.rstrip():
        return None  # aiohttp compares lines with their trailing whitespace stripped
    delimiter = b"--" + boundary.encode()
    if not body.startswith(delimiter + b"\r\n"):
        return None
    blank = body.find(b"\r\n\r\n", len(delimiter))
    if blank <= len(delimiter):
        return None
    # aiohttp puts back the CRLF before the content when it looks for the delimiter.
    end = body.find(b"\r\n" + delimiter, blank + 2)
    if end < 0 or body[end + 2 + len(delimiter) :] not in CLOSINGS:
        return None
    headers = part_headers(body[len(delimiter) + 2 : blank])
    if headers is None or not plain_part(headers):
        return None
    name, filename = disposition_of(headers.get(hdrs.CONTENT_DISPOSITION))
    if name != FILE_FIELD:
        return None
    return FilePart(filename, headers.get(hdrs.CONTENT_TYPE), None, body[blank + 4 : end])
