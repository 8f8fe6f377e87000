"""The body of a delivery's request (services/common/delivery_body.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson

from services.common.delivery_body import request_body

EVENT_TIME = datetime(2026, 11, 28, 10, 52, 51, 15000, tzinfo=UTC)


def test_custom_payload_then_the_reserved_keys() -> None:
    body = request_body({"key1": "value1"}, "upload.completed", EVENT_TIME, {"size": 3})
    assert orjson.loads(body) == {
        "key1": "value1",
        "type": "upload.completed",
        "timestamp": "2026-11-28T10:52:51.015Z",
        "data": {"size": 3},
    }
    assert list(orjson.loads(body)) == ["key1", "type", "timestamp", "data"]


def test_reserved_keys_win_and_the_time_is_utc() -> None:
    local = EVENT_TIME.astimezone(timezone(timedelta(hours=5)))
    body = orjson.loads(request_body({"type": "mine", "data": 1}, "order.paid", local, {}))
    assert body["type"] == "order.paid" and body["data"] == {}
    assert body["timestamp"] == "2026-11-28T10:52:51.015Z"
