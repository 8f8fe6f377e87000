"""What follows an attempt: success, a retry at some time, or giving up."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_SECONDS = 3600.0
JITTER = 0.10
HONOURS_RETRY_AFTER = frozenset({429, 503})


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int
    retry_after: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class NextStep:
    status: str  # succeeded | pending | failed
    retry_in_seconds: float | None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    # isascii: str.isdigit() also accepts digits like "²" that float() refuses.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def jittered(seconds: float) -> float:
    return max(0.0, seconds * (1 + random.uniform(-JITTER, JITTER)))


def next_step(result: AttemptResult, attempt: int, schedule: tuple[float, ...]) -> NextStep:
    """`attempt` counts from 1; the schedule holds the delays after attempts 1, 2, ..."""
    if result.succeeded:
        return NextStep("succeeded", None)
    if result.status_code == 410 or attempt > len(schedule):
        return NextStep("failed", None)
    delay = jittered(schedule[attempt - 1])
    if result.status_code in HONOURS_RETRY_AFTER:
        asked = parse_retry_after(result.retry_after)
        if asked is not None:
            delay = max(delay, min(asked, MAX_RETRY_AFTER_SECONDS))
    return NextStep("pending", delay)
