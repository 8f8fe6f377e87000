"""services/dispatcher/retry.py: what follows an attempt; how Retry-After stretches it (SPEC §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.dispatcher.retry import (
    JITTER,
    MAX_RETRY_AFTER_SECONDS,
    AttemptResult,
    NextStep,
    next_step,
    parse_retry_after,
)

NOW = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)
SCHEDULE = (5.0, 300.0, 1800.0)


def answered(status: int | None, retry_after: str | None = None) -> AttemptResult:
    error = None if status is not None else "connection refused"
    return AttemptResult(status, error, None, 12, retry_after=retry_after)


def within_jitter(delay: float | None, scheduled: float) -> bool:
    return delay is not None and scheduled * (1 - JITTER) <= delay <= scheduled * (1 + JITTER)


# --- parse_retry_after -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("120", 120.0), ("0", 0.0), (" 7 ", 7.0), ("007", 7.0), ("86400", 86400.0)],
)
def test_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_huge_delta_seconds_are_returned_as_asked() -> None:
    """Capping is next_step's job; the parser reports what the receiver said."""
    assert parse_retry_after("99999999999", NOW) == 99999999999.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 08:27:00 GMT", 3600.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        # No zone: read as UTC, as HTTP-dates always are.
        ("Wed, 21 Oct 2015 07:27:30", 30.0),
        # Another zone is converted, not ignored.
        ("Wed, 21 Oct 2015 09:28:00 +0200", 60.0),
    ],
)
def test_http_date(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", NOW) == 0.0


def test_http_date_defaults_to_the_current_time() -> None:
    later = datetime.now(UTC) + timedelta(seconds=600)
    seconds = parse_retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert seconds is not None and 590 <= seconds <= 600


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "-5",
        "+5",
        "1.5",
        "1e3",
        "0x10",
        "soon",
        "120 seconds",
        "Mon, 99 Foo 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015",
    ],
    ids=repr,
)
def test_garbage_and_negative_values_are_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_a_superscript_digit_is_ignored_not_raised() -> None:
    assert parse_retry_after("\u00b2", NOW) is None


@given(st.text(max_size=40))
def test_any_value_gives_none_or_a_non_negative_delay(value: str) -> None:
    seconds = parse_retry_after(value, NOW)
    assert seconds is None or seconds >= 0.0


@given(st.integers(min_value=0, max_value=10**12))
def test_any_delta_seconds_round_trip(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == float(seconds)


# --- next_step ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_a_2xx_succeeds(status: int) -> None:
    assert next_step(answered(status), 1, SCHEDULE) == NextStep("succeeded", None)


@pytest.mark.parametrize("status", [199, 300, 302, 400, 404, 429, 500, 503])
def test_anything_else_is_retried_on_the_schedule(status: int) -> None:
    step = next_step(answered(status), 2, SCHEDULE)
    assert step.status == "pending"
    assert within_jitter(step.retry_in_seconds, SCHEDULE[1])


def test_a_2xx_with_an_error_is_not_a_success() -> None:
    """A body cut off by the timeout after the status line arrived is a failed attempt."""
    result = AttemptResult(200, "timeout", None, 12)
    assert not result.succeeded
    assert next_step(result, 1, SCHEDULE).status == "pending"


def test_a_connection_error_is_retried() -> None:
    step = next_step(answered(None), 1, SCHEDULE)
    assert step.status == "pending" and within_jitter(step.retry_in_seconds, SCHEDULE[0])


def test_410_gives_up_at_once_even_with_retry_after() -> None:
    assert next_step(answered(410, "60"), 1, SCHEDULE) == NextStep("failed", None)


def test_after_the_last_scheduled_delay_the_delivery_fails() -> None:
    assert next_step(answered(500), len(SCHEDULE), SCHEDULE).status == "pending"
    assert next_step(answered(500), len(SCHEDULE) + 1, SCHEDULE) == NextStep("failed", None)


def test_an_empty_schedule_means_no_retries() -> None:
    assert next_step(answered(500), 1, ()) == NextStep("failed", None)
    assert next_step(answered(200), 1, ()) == NextStep("succeeded", None)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_longer_than_the_schedule_wins(status: int) -> None:
    assert next_step(answered(status, "600"), 1, SCHEDULE) == NextStep("pending", 600.0)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_capped_at_an_hour(status: int) -> None:
    step = next_step(answered(status, "99999999"), 1, SCHEDULE)
    assert step == NextStep("pending", MAX_RETRY_AFTER_SECONDS)


def test_retry_after_shorter_than_the_schedule_does_not_shorten_it() -> None:
    step = next_step(answered(429, "1"), 2, SCHEDULE)
    assert within_jitter(step.retry_in_seconds, SCHEDULE[1])


def test_the_cap_bounds_retry_after_not_the_schedule() -> None:
    step = next_step(answered(503, "99999"), 1, (7200.0,))
    assert within_jitter(step.retry_in_seconds, 7200.0)


def test_retry_after_as_an_http_date_is_honoured() -> None:
    later = datetime.now(UTC) + timedelta(seconds=900)
    step = next_step(answered(503, later.strftime("%a, %d %b %Y %H:%M:%S GMT")), 1, SCHEDULE)
    assert step.retry_in_seconds is not None and 880 <= step.retry_in_seconds <= 900


@pytest.mark.parametrize("status", [400, 500, 502])
def test_retry_after_is_ignored_outside_429_and_503(status: int) -> None:
    step = next_step(answered(status, "600"), 1, SCHEDULE)
    assert within_jitter(step.retry_in_seconds, SCHEDULE[0])


@pytest.mark.parametrize("value", ["soon", "-5", ""])
def test_unreadable_retry_after_keeps_the_schedule(value: str) -> None:
    step = next_step(answered(429, value), 1, SCHEDULE)
    assert within_jitter(step.retry_in_seconds, SCHEDULE[0])


@given(
    schedule=st.lists(
        st.floats(min_value=0, max_value=40_000, allow_nan=False), min_size=1, max_size=8
    ).map(tuple),
    data=st.data(),
    status=st.sampled_from([None, 400, 404, 429, 500, 502, 503]),
    asked=st.none() | st.integers(min_value=0, max_value=10**9),
)
def test_every_retry_waits_the_schedule_or_what_was_asked_capped(
    schedule: tuple[float, ...], data: st.DataObject, status: int | None, asked: int | None
) -> None:
    attempt = data.draw(st.integers(min_value=1, max_value=len(schedule)))
    retry_after = None if asked is None else str(asked)
    step = next_step(answered(status, retry_after), attempt, schedule)
    assert step.status == "pending" and step.retry_in_seconds is not None
    scheduled = schedule[attempt - 1]
    floor = scheduled * (1 - JITTER)
    if status in (429, 503) and asked is not None:
        floor = max(floor, min(asked, MAX_RETRY_AFTER_SECONDS))
    assert floor <= step.retry_in_seconds <= max(floor, scheduled * (1 + JITTER))
