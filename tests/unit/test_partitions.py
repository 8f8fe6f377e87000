"""services.common.partitions: a day's partition name and bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.common import partitions


def test_a_day_is_named_and_bounded_in_utc() -> None:
    day = date(2026, 1, 5)
    assert partitions.partition_name("deliveries", day) == "deliveries_p20260105"
    assert partitions.day_start(day) == datetime(2026, 1, 5, tzinfo=UTC)
    match = partitions.DAY_PARTITION.match("delivery_attempts_p20260105")
    assert match is not None
    assert (match["table"], match["day"]) == ("delivery_attempts", "20260105")
    assert partitions.DAY_PARTITION.match("deliveries_default") is None


def test_every_partitioned_table_keeps_its_storage() -> None:
    assert set(partitions.PARTITIONED) == {"events", "deliveries", "delivery_attempts", "error_log"}
    assert "fillfactor = 60" in partitions.PARTITIONED["deliveries"]
