"""services/common/timefmt.py: the event body's time, in UTC with milliseconds and a Z."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from services.common.timefmt import api_time, iso_time

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(minutes=-330))])


@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=ZONES)
)
def test_any_aware_time_is_written_in_utc_with_milliseconds(value: datetime) -> None:
    expected = value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert iso_time(value) == expected


def test_an_example() -> None:
    value = datetime(2026, 11, 29, 17, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert iso_time(value) == "2026-11-29T16:00:00.123Z"


@given(
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 1, 1), timezones=ZONES)
)
def test_an_answer_s_time_is_utc_to_the_second(value: datetime) -> None:
    assert api_time(value) == value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
