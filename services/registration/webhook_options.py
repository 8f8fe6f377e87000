"""Request shapes of a webhook's optional filter and delivery settings (SPEC §8)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from services.common.api.edge import refuse
from services.common.api.json_values import (
    contains_nul,
    integral_number,
    nullable_json_object,
)
from services.common.filters import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_IN_VALUES,
    MAX_PATH_LENGTH,
    FilterError,
    parse_filter,
)

MAX_RETRY_DELAYS = 20
MAX_RETRY_DELAY_SECONDS = 604800
MAX_TIMEOUT_SECONDS = 60
MAX_CONCURRENCY = 1000
MAX_RATE_LIMIT_PER_SECOND = 10000
FILTER_HELP = (
    "Matched against each event's `data`; null or {} matches every event. A key is a "
    "dotted path (`customer.country`) whose value is a literal (equality) or an object of "
    "operators `$eq $ne $gt $gte $lt $lte $in $nin $exists $startsWith`; `$and` and `$or` "
    "take a non-empty array of filters, `$not` one filter. A path missing from the data "
    "matches only `$exists: false`, `$ne` and `$nin`. At most "
    f"{MAX_DEPTH} levels, {MAX_CONDITIONS} conditions and {MAX_IN_VALUES} values in one "
    "`$in`/`$nin`. An unknown operator or a wrongly typed operand is a 400 naming it, and "
    "nothing is stored."
)
# A filter's key: a combinator, or a dotted path of non-empty segments that does not start
# with `$` (an operator's mark); parse_filter refuses any other key.
FILTER_KEY_PATTERN = r"^(?:\$(?:and|or|not)|[^.$\x00][^.\x00]*(?:\.[^.\x00]+)*)$"


def check_filter(value: Any) -> Any:
    """null or {} is no filter; anything else must parse (services/common/filters.py)."""
    if value is None or value == {}:
        return None
    if isinstance(value, dict) and contains_nul(value):
        raise refuse("filter must not contain the NUL character (\\u0000)")
    try:
        parse_filter(value)
    except FilterError as exc:
        raise refuse(str(exc)) from None
    return value


EventFilter = Annotated[
    dict[str, Any] | None,
    BeforeValidator(check_filter),
    nullable_json_object(
        FILTER_HELP,
        {"amount": {"$gt": 100}, "customer.country": {"$in": ["FR", "DE"]}},
        {"pattern": FILTER_KEY_PATTERN, "maxLength": MAX_PATH_LENGTH},
    ),
]
RetryDelay = Annotated[
    int,
    Field(strict=True, ge=1, le=MAX_RETRY_DELAY_SECONDS),
    BeforeValidator(integral_number),
]
RetrySchedule = Annotated[
    list[RetryDelay] | None,
    Field(
        max_length=MAX_RETRY_DELAYS,
        description="Seconds to wait before each retry after the first attempt (each 1 to "
        f"{MAX_RETRY_DELAY_SECONDS}, at most {MAX_RETRY_DELAYS}; [] is no retries); null is "
        "RETRY_SCHEDULE.",
        examples=[[10, 60, 600]],
    ),
]


def whole_number_option(maximum: int, description: str, example: int) -> tuple[Any, ...]:
    """The metadata of an option that is a whole number from 1 to `maximum`, or null (the
    service's default), for `Annotated[int | None, *whole_number_option(...)]`."""
    return (
        Field(strict=True, ge=1, le=maximum, description=description, examples=[example]),
        BeforeValidator(integral_number),
    )


TimeoutSeconds = Annotated[
    int | None,
    *whole_number_option(
        MAX_TIMEOUT_SECONDS, "Seconds an attempt may take; null is DELIVERY_TIMEOUT_SECONDS.", 5
    ),
]
MaxConcurrency = Annotated[
    int | None,
    *whole_number_option(
        MAX_CONCURRENCY,
        f"Deliveries in flight to this webhook at once (1 to {MAX_CONCURRENCY}); null is "
        "DISPATCH_PER_ENDPOINT_CONCURRENCY.",
        8,
    ),
]
RateLimitPerSecond = Annotated[
    int | None,
    *whole_number_option(
        MAX_RATE_LIMIT_PER_SECOND,
        "At most this many requests a second start to this webhook, across every dispatcher "
        f"replica (1 to {MAX_RATE_LIMIT_PER_SECOND}); the rest wait, parked, not failed and not "
        "counted as attempts. null is no limit.",
        50,
    ),
]
