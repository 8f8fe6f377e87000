"""Unknown paths and methods: still the envelope, never a 5xx."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harness.stack import Stack
from tests.fuzz.gateway import TOLERATED_WARNINGS, check_envelope, send
from tests.fuzz.strategies import FUZZ, methods, paths

pytestmark = TOLERATED_WARNINGS

DOCUMENTS = {("GET", "/openapi.json", 200), ("GET", "/docs", 200)}


@FUZZ
@given(method=methods, path=paths, body=st.none() | st.binary(max_size=64))
async def test_unknown_paths_and_methods(
    stack: Stack, method: str, path: str, body: bytes | None
) -> None:
    answer = await send(stack, method, path, data=body)
    if (method, path, answer.status) in DOCUMENTS:
        return  # the OpenAPI document and the docs page are what they are, not envelopes
    check_envelope(answer)
