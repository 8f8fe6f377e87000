"""Retry an action through an outage: exponential backoff, capped, with an optional deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Waits `first` seconds after the first failure, doubling up to `cap`.

    With `give_up_after`, a retry that would start past that many seconds from the
    first try is not made: the last error propagates. Without it, retries go on forever.
    """

    first: float
    cap: float
    give_up_after: float | None = None


async def retry(
    action: Callable[[], Awaitable[T]],
    errors: tuple[type[BaseException], ...],
    backoff: Backoff,
    event: str,
    **log_fields: Any,
) -> T:
    """`await action()` until it returns, retrying on `errors` (each logged as `event`)."""
    deadline = None if backoff.give_up_after is None else time.monotonic() + backoff.give_up_after
    delay = backoff.first
    while True:
        try:
            return await action()
        except errors as exc:
            if deadline is not None and time.monotonic() + delay > deadline:
                raise
            log.warning(event, error=repr(exc), retry_in_s=delay, **log_fields)
            await asyncio.sleep(delay)
            delay = min(delay * 2, backoff.cap)
