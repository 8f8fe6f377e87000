"""services/common/broker.py: the dead-letter queue's bound."""

from __future__ import annotations

from services.common.broker import dead_letter_arguments
from services.common.messages import DEAD_LETTER_QUEUE, UNBOUNDED_DEAD_LETTER_QUEUE


def test_the_dead_letter_queue_is_bounded_by_length_and_age_dropping_the_oldest() -> None:
    assert dead_letter_arguments(1000, 60) == {
        "x-queue-type": "quorum",
        "x-max-length": 1000,
        "x-overflow": "drop-head",
        "x-message-ttl": 60000,
    }
    assert "x-message-ttl" not in dead_letter_arguments(1000, 0)  # 0: no age limit
    # A name of its own: the unbounded queue of the same purpose cannot take a bound.
    assert DEAD_LETTER_QUEUE != UNBOUNDED_DEAD_LETTER_QUEUE
