"""services/common/key_usage.py: a key's use is noted at most once a minute, per key."""

from __future__ import annotations

import uuid

from services.common.key_usage import MARK_EVERY_SECONDS, KeyUsage

A = uuid.UUID(int=1)
B = uuid.UUID(int=2)


def test_a_key_is_noted_once_a_minute_and_each_key_on_its_own() -> None:
    now = [100.0]
    usage = KeyUsage(clock=lambda: now[0])
    usage.seen(A)
    first = usage.pending[A]
    usage.pending.clear()
    now[0] += MARK_EVERY_SECONDS - 1
    usage.seen(A)
    assert usage.pending == {}  # within the minute: nothing to write
    usage.seen(B)
    assert set(usage.pending) == {B}
    now[0] += 1
    usage.seen(A)
    assert set(usage.pending) == {A, B} and usage.pending[A] >= first
