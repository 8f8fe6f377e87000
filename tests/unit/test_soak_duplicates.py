"""bench/soak.py: which duplicates a kill -9 explains (SPEC section 4 allows those only)."""

from __future__ import annotations

from bench.soak import Soak, at_a_kill


def test_a_copy_read_just_after_the_kill_was_sent_is_explained_by_it() -> None:
    soak = Soak(kills=[100.0])
    assert at_a_kill(soak, 99.2)  # sent and read before the kill, not yet recorded
    assert at_a_kill(soak, 100.05)  # written before the kill, read a moment after it
    assert not at_a_kill(soak, 100.5)  # sent after the kill: by the next process
    assert not at_a_kill(soak, 98.5)  # recorded long before the kill
