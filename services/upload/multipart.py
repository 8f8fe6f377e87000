"""Open a multipart/form-data body, using the last `boundary=` when a client sends several."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.helpers import TOKEN
from aiohttp.http_exceptions import HttpProcessingError, InvalidHeader
from aiohttp.multipart import content_disposition_filename, parse_content_disposition
from multidict import CIMultiDict

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


def open_form(request: web.Request) -> MultipartReader:
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
        return MultipartReader(headers, request.content)
    except MALFORMED as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None


@dataclass(frozen=True)
class FilePart:
    reader: BodyPartReader
    filename: str | None  # as the client sent it: not yet safe to use


def disposition(part: BodyPartReader) -> tuple[str | None, str | None]:
    """The part's field name and filename, from one parse of its Content-Disposition
    (aiohttp's `name` and `filename` would parse it once each)."""
    header = part.headers.get(hdrs.CONTENT_DISPOSITION)
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
    pattern on every call); the usual header needs none of its cases.
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


async def find_file_part(reader: MultipartReader) -> FilePart:
    """Skip to the part named `file`."""
    try:
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader):
                name, filename = disposition(part)
                if name == FILE_FIELD:
                    return FilePart(part, filename)
            await part.release()
    except MALFORMED as exc:
        raise malformed(exc) from None
    raise BadRequest(f"multipart field {FILE_FIELD!r} is required")


async def finish_form(reader: MultipartReader) -> None:
    """Read past the remaining parts to the closing delimiter: a cut-off body is refused."""
    try:
        while (part := await reader.next()) is not None:
            await part.release()
    except MALFORMED as exc:
        raise malformed(exc) from None
    if not reader.at_eof():
        raise BadRequest("multipart body ended before its closing boundary")
