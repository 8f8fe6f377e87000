"""The body of a delivery's request: the one rule, used by the dispatcher to send it and by
the management API to show it (SPEC §4, §8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from .timefmt import iso_time


def request_body(
    custom_payload: dict[str, Any], event_type: str, event_time: datetime, event_data: Any
) -> bytes:
    """custom_payload plus the reserved keys, which always win."""
    return orjson.dumps(
        {
            **custom_payload,
            "type": event_type,
            "timestamp": iso_time(event_time),
            "data": event_data,
        }
    )
