"""Stream an uploaded file to disk while measuring it; never leave a partial file behind."""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import unicodedata
from collections.abc import Iterator
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


class UploadFolder:
    """Where one upload's file goes; see `upload_folder`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kept = False

    def keep(self) -> None:
        """The upload is recorded: its file must stay."""
        self.kept = True


@contextlib.contextmanager
def upload_folder(upload_dir: Path, upload_id: str) -> Iterator[UploadFolder]:
    """The upload's new folder, removed on leaving the block unless `keep()` was called.

    Whatever ends the request early (a refusal, a client gone, a cancellation, a repeated
    idempotency key) leaves nothing of the file behind.
    """
    folder = UploadFolder(upload_dir / upload_id)
    folder.path.mkdir(parents=True, exist_ok=False)
    try:
        yield folder
    finally:
        if not folder.kept:
            shutil.rmtree(folder.path, ignore_errors=True)


async def store_part(file_part: FilePart, folder: Path, max_bytes: int) -> StoredFile:
    """Write the part to `folder/<name>`, hashing as it goes."""
    part = file_part.reader
    filename = sanitise_filename(file_part.filename)
    path = folder / filename
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("wb") as out:
            while chunk := await part.read_chunk(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"file is larger than the limit of {max_bytes} bytes")
                digest.update(chunk)
                out.write(chunk)
    except MALFORMED as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    if not part.at_eof():
        raise BadRequest("multipart body ended before the end of the file part")
    return StoredFile(path=path, filename=filename, size=size, sha256=digest.hexdigest())
