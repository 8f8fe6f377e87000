"""GET /event_type with any query string."""

from __future__ import annotations

from hypothesis import given

from harness.stack import Stack
from tests.fuzz.gateway import TOLERATED_WARNINGS, check_envelope, send
from tests.fuzz.strategies import FUZZ, query_strings

pytestmark = TOLERATED_WARNINGS


@FUZZ
@given(query=query_strings)
async def test_event_type_query_strings(stack: Stack, query: str) -> None:
    answer = await send(stack, "GET", f"/event_type?{query}")
    body = check_envelope(answer)
    if answer.status == 200:
        assert isinstance(body["data"], list)
