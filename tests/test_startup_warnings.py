"""Every service warns at start about what leaves a deployment open (README, Authentication)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from harness.stack import StackOptions, running_stack


async def start_up_events(
    database_url: str, amqp_url: str, workdir: Path, auth_mode: str
) -> list[dict[str, Any]]:
    with capture_logs() as events:
        async with running_stack(
            database_url, amqp_url, workdir, StackOptions(auth_mode=auth_mode)
        ):
            pass
    return events


async def test_each_service_warns_that_auth_mode_none_leaves_the_api_open(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    events = await start_up_events(database_url, amqp_url, tmp_path, "none")
    warnings = [event for event in events if event["event"] == "auth_disabled"]
    assert sorted(event["service"] for event in warnings) == [
        "dispatcher",
        "registration",
        "upload",
    ]
    for warning in warnings:
        assert warning["log_level"] == "warning"
        assert "AUTH_MODE=none" in warning["detail"]


async def test_no_warning_with_api_keys(database_url: str, amqp_url: str, tmp_path: Path) -> None:
    events = await start_up_events(database_url, amqp_url, tmp_path, "api_key")
    assert any(event["event"] == "secrets_key_missing" for event in events), "nothing captured"
    assert not [event for event in events if event["event"] == "auth_disabled"]
