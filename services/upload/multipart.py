"""Open a multipart/form-data body, using the last `boundary=` when a client sends several."""

from __future__ import annotations

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from multidict import CIMultiDict

from services.common.web import BadRequest

FILE_FIELD = "file"


def last_boundary(content_type: str) -> str | None:
    """The last boundary parameter: curl appends its own after one given by hand."""
    boundary = None
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary" and value.strip():
            boundary = value.strip().strip('"')
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
    headers = CIMultiDict(request.headers)
    headers[hdrs.CONTENT_TYPE] = f'multipart/form-data; boundary="{boundary}"'
    return MultipartReader(headers, request.content)


async def find_file_part(reader: MultipartReader) -> BodyPartReader:
    """Skip to the part named `file`."""
    try:
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name == FILE_FIELD:
                return part
            await part.release()
    except ValueError as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    raise BadRequest(f"multipart field {FILE_FIELD!r} is required")
