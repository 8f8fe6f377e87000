"""A service started with a bad variable exits 2 at once with one stderr line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Variables the services read: cleared so the outer environment cannot change the outcome.
SERVICE_VARIABLES = (
    "DATABASE_URL",
    "AMQP_URL",
    "UPLOAD_DIR",
    "GATEWAY_PORT",
    "REGISTRATION_PORT",
    "UPLOAD_PORT",
    "DISPATCHER_PORT",
    "MAX_UPLOAD_BYTES",
    "DELIVERY_TIMEOUT_SECONDS",
    "RETRY_SCHEDULE",
    "ALLOW_PRIVATE_URLS",
    "MAX_JSON_BYTES",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "LOG_SUCCESS_SAMPLE",
    "BIND_HOST",
    "SHUTDOWN_GRACE_SECONDS",
    "AUTH_MODE",
    "SECRETS_KEY",
    "DEAD_LETTER_MAX_LENGTH",
    "DEAD_LETTER_MAX_AGE_SECONDS",
    "PUBLIC_URL",
)


def start_service(service: str, variable: str, value: str) -> subprocess.CompletedProcess[str]:
    env = {key: val for key, val in os.environ.items() if key not in SERVICE_VARIABLES}
    env[variable] = value
    return subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("service", "variable", "value"),
    [
        ("dispatcher", "RETRY_SCHEDULE", "1,abc"),
        ("dispatcher", "LOG_SUCCESS_SAMPLE", "1.5"),
        ("registration", "REGISTRATION_PORT", "notanumber"),
        ("upload", "DATABASE_URL", "mysql://x"),
        ("dispatcher", "DEAD_LETTER_MAX_LENGTH", "0"),
        ("dispatcher", "DEAD_LETTER_MAX_AGE_SECONDS", "7d"),
        ("registration", "PUBLIC_URL", "https://webhooks.example.com/?next=1"),
    ],
)
def test_invalid_variable_stops_the_service_with_one_line(
    service: str, variable: str, value: str
) -> None:
    result = start_service(service, variable, value)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert service in lines[0]
    assert "Traceback" not in result.stderr
