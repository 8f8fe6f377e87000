"""Stream an uploaded file to disk while measuring it; never leave a partial file behind."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from aiohttp import BodyPartReader

from services.common.web import BadRequest, PayloadTooLarge

from .multipart import MALFORMED, FilePart

CHUNK_BYTES = 256 * 1024
MAX_FILENAME_BYTES = 200
UNSAFE_FILENAME_CHARS = re.compile(r"[^\w.\- ]+")
# A name already made of safe ASCII characters only: NFKC and the rest leave it as it is.
SAFE_ASCII_NAME = re.compile(r"[\w.\- ]+", re.ASCII)


@dataclass(frozen=True)
class StoredFile:
    path: str
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
    if raw and raw.isascii() and SAFE_ASCII_NAME.fullmatch(raw):
        return raw.strip(" .")[:MAX_FILENAME_BYTES] or "file"
    name = unicodedata.normalize("NFKC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = UNSAFE_FILENAME_CHARS.sub("_", name).strip(" .")
    while len(name.encode()) > MAX_FILENAME_BYTES:
        name = name[:-1]
    return name or "file"


class UploadFolder:
    """The upload's new folder, removed on leaving the `with` block unless `keep()` was called.

    Whatever ends the request early (a refusal, a client gone, a cancellation, a repeated
    idempotency key) leaves nothing of the file behind. Paths are plain strings: `os` on
    a str costs less than pathlib, once per upload.
    """

    def __init__(self, upload_dir: Path | str, upload_id: str) -> None:
        self.location = os.path.join(upload_dir, upload_id)
        self.kept = False

    @property
    def path(self) -> Path:
        return Path(self.location)

    def __enter__(self) -> UploadFolder:
        try:
            os.mkdir(self.location)
        except FileNotFoundError:  # UPLOAD_DIR itself is gone: made again, as at start
            os.makedirs(os.path.dirname(self.location), exist_ok=True)
            os.mkdir(self.location)
        return self

    def __exit__(self, *_exc: object) -> None:
        if not self.kept:
            shutil.rmtree(self.location, ignore_errors=True)

    def keep(self) -> None:
        """The upload is recorded: its file must stay."""
        self.kept = True


def upload_folder(upload_dir: Path | str, upload_id: str) -> UploadFolder:
    """The upload's new folder `upload_dir/<upload_id>`, for a `with` block (see UploadFolder)."""
    return UploadFolder(upload_dir, upload_id)


# As open(path, "wb") opens a file, without the buffered file object around it.
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def write_all(fd: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]


async def store_part(file_part: FilePart, folder: str, max_bytes: int) -> StoredFile:
    """Write the part to `folder/<name>`, hashing as it goes."""
    filename = sanitise_filename(file_part.filename)
    path = os.path.join(folder, filename)
    fd = os.open(path, NEW_FILE_FLAGS, 0o666)
    try:
        if file_part.reader is None:
            size, sha256 = write_content(fd, file_part.content, max_bytes)
        else:
            size, sha256 = await stream_content(fd, file_part.reader, max_bytes)
    finally:
        os.close(fd)
    return StoredFile(path=path, filename=filename, size=size, sha256=sha256)


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"file is larger than the limit of {max_bytes} bytes")


def write_content(fd: int, content: bytes, max_bytes: int) -> tuple[int, str]:
    """A file part read whole with its body: (size, sha256)."""
    if len(content) > max_bytes:
        raise too_large(max_bytes)
    write_all(fd, content)
    return len(content), hashlib.sha256(content).hexdigest()


async def stream_content(fd: int, part: BodyPartReader, max_bytes: int) -> tuple[int, str]:
    """A file part read from the stream chunk by chunk: (size, sha256)."""
    digest = hashlib.sha256()
    size = 0
    try:
        while chunk := await part.read_chunk(CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise too_large(max_bytes)
            digest.update(chunk)
            write_all(fd, chunk)
    except MALFORMED as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    if not part.at_eof():
        raise BadRequest("multipart body ended before the end of the file part")
    return size, digest.hexdigest()
