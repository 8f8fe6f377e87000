"""services/common/messages.py: the delay ladder a retry climbs down."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.messages import DELAY_BUCKETS_MS, delay_bucket_for

SMALLEST, LARGEST = DELAY_BUCKETS_MS[0], DELAY_BUCKETS_MS[-1]


def test_the_ladder_doubles_from_250_ms() -> None:
    assert SMALLEST == 250
    assert all(b == 2 * a for a, b in itertools.pairwise(DELAY_BUCKETS_MS))
    assert LARGEST == 32_768_000  # about 9 h: the default schedule's 10 h delays take several hops


@pytest.mark.parametrize("bucket", DELAY_BUCKETS_MS)
def test_a_delay_equal_to_a_bucket_takes_that_bucket(bucket: int) -> None:
    assert delay_bucket_for(bucket) == bucket


@pytest.mark.parametrize(
    ("remaining_ms", "bucket"),
    [(251, 250), (499, 250), (500, 500), (999, 500), (5_000, 4_000), (300_000, 256_000)],
)
def test_the_largest_bucket_not_longer_than_what_remains(remaining_ms: int, bucket: int) -> None:
    assert delay_bucket_for(remaining_ms) == bucket


@pytest.mark.parametrize("remaining_ms", [-(10**12), -1, 0, 1, 249])
def test_less_than_the_smallest_bucket_takes_the_smallest(remaining_ms: int) -> None:
    assert delay_bucket_for(remaining_ms) == SMALLEST


@pytest.mark.parametrize("remaining_ms", [LARGEST, LARGEST + 1, 36_000_000 * 10, 2**62])
def test_more_than_the_largest_bucket_takes_the_largest(remaining_ms: int) -> None:
    assert delay_bucket_for(remaining_ms) == LARGEST


@given(st.integers(min_value=SMALLEST, max_value=2**62))
def test_a_hop_never_overshoots_and_never_wastes_a_longer_bucket(remaining_ms: int) -> None:
    bucket = delay_bucket_for(remaining_ms)
    assert bucket in DELAY_BUCKETS_MS
    assert bucket <= remaining_ms
    longer = [b for b in DELAY_BUCKETS_MS if b > bucket]
    assert not longer or longer[0] > remaining_ms


@given(st.integers(min_value=0, max_value=30 * 3600 * 1000))
def test_hops_reach_the_due_time_within_one_smallest_bucket(remaining_ms: int) -> None:
    """What the dispatcher does with a delay: hop until less than the smallest bucket remains."""
    hops = 0
    while remaining_ms >= SMALLEST:
        remaining_ms -= delay_bucket_for(remaining_ms)
        hops += 1
    assert 0 <= remaining_ms < SMALLEST
    assert hops <= len(DELAY_BUCKETS_MS) + 30 * 3600 * 1000 // LARGEST
