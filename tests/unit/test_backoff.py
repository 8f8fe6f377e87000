"""services.common.backoff: retry an action through an outage, doubling the wait up to a cap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from structlog.testing import capture_logs

from services.common.backoff import Backoff, retry


class Flaky:
    """Fails with `error` the first `failures` calls, then answers `value`."""

    def __init__(self, failures: int, error: BaseException, value: str = "done") -> None:
        self.failures = failures
        self.error = error
        self.value = value
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.value


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays slept, without sleeping them."""
    slept: list[float] = []
    real_sleep: Callable[..., Coroutine[Any, Any, None]] = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return slept


async def test_a_first_success_returns_its_value_without_waiting(sleeps: list[float]) -> None:
    action = Flaky(0, OSError("down"))
    assert await retry(action, (OSError,), Backoff(first=0.5, cap=10.0), "retrying") == "done"
    assert action.calls == 1
    assert sleeps == []


async def test_the_wait_doubles_up_to_the_cap_and_each_retry_is_logged(
    sleeps: list[float],
) -> None:
    action = Flaky(6, ConnectionRefusedError("refused"))
    with capture_logs() as logs:
        result = await retry(
            action, (OSError,), Backoff(first=0.5, cap=5.0), "broker_connect_failed", url="x"
        )
    assert result == "done"
    assert action.calls == 7
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    retries = [entry for entry in logs if entry["event"] == "broker_connect_failed"]
    assert [entry["retry_in_s"] for entry in retries] == sleeps
    assert all(entry["url"] == "x" and "refused" in entry["error"] for entry in retries)


async def test_an_error_not_listed_propagates_at_once(sleeps: list[float]) -> None:
    action = Flaky(1, ValueError("a bug, not an outage"))
    with pytest.raises(ValueError, match="a bug"):
        await retry(action, (OSError, TimeoutError), Backoff(first=0.5, cap=5.0), "retrying")
    assert action.calls == 1
    assert sleeps == []


async def test_past_the_deadline_the_last_error_propagates() -> None:
    # Real (short) sleeps: the deadline is measured on the monotonic clock.
    action = Flaky(1000, TimeoutError("still down"))
    backoff = Backoff(first=0.01, cap=0.02, give_up_after=0.1)
    with pytest.raises(TimeoutError, match="still down"):
        await retry(action, (TimeoutError,), backoff, "retrying")
    assert 2 <= action.calls < 1000


async def test_no_retry_is_made_that_would_start_past_the_deadline(sleeps: list[float]) -> None:
    action = Flaky(1, OSError("down"))
    with pytest.raises(OSError, match="down"):
        await retry(action, (OSError,), Backoff(first=5.0, cap=5.0, give_up_after=1.0), "retrying")
    assert action.calls == 1
    assert sleeps == []
