"""Stream an uploaded file to disk while measuring it; never leave a partial file behind."""

from __future__ import annotations

import hashlib
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from services.common.web import BadRequest, PayloadTooLarge

from .multipart import MALFORMED, FilePart

CHUNK_BYTES = 256 * 1024
MAX_FILENAME_BYTES = 200
UNSAFE_FILENAME_CHARS = re.compile(r"[^\w.\- ]+")


@dataclass(frozen=True)
class StoredFile:
    path: Path
    filename: str
    size: int
    sha256: str


MIME_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def content_type_of(raw: str | None) -> str:
    """The part's media type if it is a well-formed one, else application/octet-stream."""
    media_type = (raw or "").split(";", 1)[0].strip().lower()
    if len(media_type) <= 255 and MIME_TYPE.fullmatch(media_type):
        return media_type
    return "application/octet-stream"


def sanitise_filename(raw: str | None) -> str:
    """A file name safe to create in a folder of ours: no separators, no dot-files."""
    name = unicodedata.normalize("NFKC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = UNSAFE_FILENAME_CHARS.sub("_", name).strip(" .")
    while len(name.encode()) > MAX_FILENAME_BYTES:
        name = name[:-1]
    return name or "file"


async def store_part(
    file_part: FilePart, upload_dir: Path, upload_id: str, max_bytes: int
) -> StoredFile:
    """Write the part to `upload_dir/upload_id/<name>`, hashing as it goes."""
    part = file_part.reader
    folder = upload_dir / upload_id
    filename = sanitise_filename(file_part.filename)
    path = folder / filename
    digest = hashlib.sha256()
    size = 0
    folder.mkdir(parents=True, exist_ok=False)
    try:
        with path.open("wb") as out:
            while chunk := await part.read_chunk(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"file is larger than the limit of {max_bytes} bytes")
                digest.update(chunk)
                out.write(chunk)
        if not part.at_eof():
            raise BadRequest("multipart body ended before the end of the file part")
    except MALFORMED as exc:
        remove_upload(upload_dir, upload_id)
        raise BadRequest(f"malformed multipart body: {exc}") from None
    except BaseException:
        # Over the limit, client gone, or cancelled: nothing of it may stay.
        remove_upload(upload_dir, upload_id)
        raise
    return StoredFile(path=path, filename=filename, size=size, sha256=digest.hexdigest())


def remove_upload(upload_dir: Path, upload_id: str) -> None:
    shutil.rmtree(upload_dir / upload_id, ignore_errors=True)
