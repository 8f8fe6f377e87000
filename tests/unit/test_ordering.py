"""The ordering key as POST /event's body and an upload's Ordering-Key header give it
(services/common/ordering.py's rule, checked by the event shape and the upload handler):
1 to 200 characters, once; every refusal names it."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from services.common.api.edge import validated
from services.common.api.shapes import EventRequest
from services.common.ordering import MAX_ORDERING_KEY_LENGTH
from services.common.web import BadRequest
from services.upload.ingest.handlers import parse_ordering_key

EVENT = {"event_type": "invoice.paid", "user_id": 1, "payload": {}}


def event(**fields: Any) -> EventRequest:
    return validated(EventRequest, {**EVENT, **fields})


@pytest.mark.parametrize("key", ["a", "customer-42", "ключ 7", "k" * MAX_ORDERING_KEY_LENGTH])
def test_a_key_of_1_to_200_characters_is_kept_as_given(key: str) -> None:
    assert event(ordering_key=key).ordering_key == key


def test_without_a_key_there_is_none() -> None:
    assert event().ordering_key is None


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "at least 1 character"),
        ("k" * (MAX_ORDERING_KEY_LENGTH + 1), "at most 200 characters"),
        (None, "string"),
        (42, "string"),
        (["a"], "string"),
        ("a\x00b", "pattern"),
    ],
)
def test_a_bad_key_in_the_body_is_refused_naming_it(key: Any, problem: str) -> None:
    with pytest.raises(BadRequest) as refused:
        event(ordering_key=key)
    assert "ordering_key" in str(refused.value) and problem in str(refused.value)


def header_request(*values: str) -> Any:
    headers = CIMultiDict(("Ordering-Key", value) for value in values)
    return make_mocked_request("POST", "/upload_file/webhook_id/x", headers=headers)


def test_the_header_is_optional_and_kept_as_given() -> None:
    assert parse_ordering_key(header_request()) is None
    assert parse_ordering_key(header_request("customer-42")) == "customer-42"
    assert parse_ordering_key(header_request("k" * 200)) == "k" * 200


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (("",), "must be 1 to 200 characters; it is empty"),
        (("k" * 201,), "must be 1 to 200 characters; it is 201 characters long"),
        (("a", "b"), "must be sent once, got 2"),
    ],
)
def test_a_bad_header_is_refused_naming_it(values: tuple[str, ...], problem: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_ordering_key(header_request(*values))
    assert str(refused.value) == f"Ordering-Key header {problem}"
