"""services/common/auth.py: what a user key, an admin key and AUTH_MODE=none may act for
and see."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from services.common.auth import (
    CALLER,
    Caller,
    Forbidden,
    acting_user,
    current_user,
    is_admin,
    may_see,
    parse_acting,
    require_admin,
)


def request_of(caller: Caller | None) -> web.Request:
    request = make_mocked_request("GET", "/webhook")
    if caller is not None:
        request[CALLER] = caller
    return request


def test_a_user_key_acts_only_for_its_user() -> None:
    request = request_of(Caller(user_id=7))
    assert current_user(request) == 7
    assert acting_user(request, None) == 7
    assert acting_user(request, 7) == 7
    with pytest.raises(Forbidden, match="user_id 8"):
        acting_user(request, 8)
    assert is_admin(request) is False
    with pytest.raises(Forbidden, match="admin"):
        require_admin(request)


@pytest.mark.parametrize("caller", [Caller(user_id=None, admin=True), None])
def test_an_admin_key_and_auth_off_act_for_whoever_is_named(caller: Caller | None) -> None:
    request = request_of(caller)
    assert current_user(request) is None
    assert acting_user(request, 8) == 8
    assert acting_user(request, None) is None  # the handler must ask which user
    assert is_admin(request) is True
    require_admin(request)


class Named:
    def __init__(self, fields: dict[str, object]) -> None:
        self.user_id = int(str(fields["user_id"]))


def test_parse_acting_fills_in_the_key_user_and_refuses_another() -> None:
    request = request_of(Caller(user_id=7))
    assert parse_acting(request, lambda given: Named(given)).user_id == 7
    assert parse_acting(request, lambda given: Named({**given, "user_id": 7})).user_id == 7
    with pytest.raises(Forbidden, match="user_id 8"):
        parse_acting(request, lambda given: Named({**given, "user_id": 8}))


@pytest.mark.parametrize("caller", [Caller(user_id=None, admin=True), None])
def test_parse_acting_lets_an_admin_name_anyone_and_fills_in_nothing(
    caller: Caller | None,
) -> None:
    request = request_of(caller)
    seen: list[dict[str, object]] = []

    def parse(given: dict[str, object]) -> Named:
        seen.append(given)
        return Named({**given, "user_id": 8})

    assert parse_acting(request, parse).user_id == 8
    assert seen == [{}]


def test_may_see_only_the_key_users_objects() -> None:
    assert may_see(request_of(Caller(user_id=7)), 7) is True
    assert may_see(request_of(Caller(user_id=7)), 8) is False
    for caller in (Caller(user_id=None, admin=True), None):
        assert may_see(request_of(caller), 8) is True
        assert may_see(request_of(caller), None) is False
