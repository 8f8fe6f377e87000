"""services/upload/ingest/handlers.py: the upload's answer and event data, built as a dict, are what
the Upload shape renders, byte for byte."""

from __future__ import annotations

import hashlib
import uuid

from hypothesis import given
from hypothesis import strategies as st

from services.common.api.edge import respond
from services.common.api.shapes import Upload
from services.common.web import envelope
from services.upload.ingest.handlers import upload_data
from services.upload.ingest.storage import StoredFile


@given(
    filename=st.text(max_size=40),
    size=st.integers(min_value=0, max_value=2**63 - 1),
    content=st.binary(max_size=8),
    content_type=st.sampled_from(["application/octet-stream", "text/plain", "image/x-ä"]),
)
def test_the_dict_is_the_upload_shape(
    filename: str, size: int, content: bytes, content_type: str
) -> None:
    upload_id, webhook_id = uuid.uuid4(), uuid.uuid4()
    sha256 = hashlib.sha256(content).hexdigest()
    stored = StoredFile(path="/nowhere", filename=filename, size=size, sha256=sha256)
    data = upload_data(str(upload_id), webhook_id, stored, content_type)
    shape = Upload(
        upload_id=upload_id,
        webhook_id=webhook_id,
        filename=filename,
        size=size,
        sha256=sha256,
        content_type=content_type,
    )
    assert list(data.items()) == list(shape.model_dump(mode="json").items())
    assert envelope(data, "ok").body == respond(shape, "ok").body
