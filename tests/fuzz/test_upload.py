"""POST /upload_file/webhook_id/{webhook_id} with any form, bytes and path segment."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from harness.stack import Stack
from tests.fuzz.cases import simple_form
from tests.fuzz.gateway import TOLERATED_WARNINGS, check_upload, target_webhook
from tests.fuzz.strategies import FUZZ, Form, content_types, forms, path_segments

pytestmark = TOLERATED_WARNINGS


@FUZZ
@given(form=forms())
async def test_upload_any_multipart(stack: Stack, form: Form) -> None:
    target = f"/upload_file/webhook_id/{await target_webhook(stack)}"
    answer, envelope = await check_upload(stack, target, form.body, form.content_type)
    if form.file_end == -1:
        assert answer.status >= 400, f"a file part that never ended was accepted: {answer}"
    elif form.well_formed and form.file is not None:
        assert answer.status == 200, f"a well-formed upload was refused: {answer}"
        assert envelope["data"]["size"] == len(form.file)
        assert envelope["data"]["sha256"] == hashlib.sha256(form.file).hexdigest()
    elif form.well_formed:
        assert answer.status == 400, f"a form without a file field: {answer}"


@FUZZ
@given(raw=st.binary(max_size=2048), content_type=content_types)
async def test_upload_any_bytes_any_content_type(
    stack: Stack, raw: bytes, content_type: str | None
) -> None:
    target = f"/upload_file/webhook_id/{await target_webhook(stack)}"
    await check_upload(stack, target, raw, content_type)


@FUZZ
@given(segment=path_segments)
async def test_upload_any_path_segment(stack: Stack, segment: str) -> None:
    body, content_type = simple_form()
    answer, _ = await check_upload(stack, f"/upload_file/webhook_id/{segment}", body, content_type)
    assert answer.status in (400, 404, 405), f"upload to an unknown webhook: {answer}"
