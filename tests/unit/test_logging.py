"""services.common.logging: every JSON line names its service and replica, from any thread."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from harness.processes import REPO
from services.common.logging import UtcTimestamp, redact_sensitive

# A service process in miniature: structlog and the standard library, in the main thread and
# in another one (context variables bound at start never reach a thread's lines).
PROGRAM = """
import logging, os, threading
import structlog
from services.common.logging import configure_logging

configure_logging("upload")
structlog.get_logger("x").info("from_structlog", pid=os.getpid())
logging.getLogger("aio_pika").warning("from_a_library")
thread = threading.Thread(target=lambda: (
    structlog.get_logger("x").info("from_a_thread"),
    logging.getLogger("asyncpg").warning("from_a_library_in_a_thread"),
))
thread.start()
thread.join()
"""


def run_program() -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_every_line_carries_service_and_a_per_process_instance() -> None:
    lines = run_program()
    assert [line["event"] for line in lines] == [
        "from_structlog",
        "from_a_library",
        "from_a_thread",
        "from_a_library_in_a_thread",
    ]
    pid = lines[0]["pid"]
    for line in lines:
        assert line["service"] == "upload", line
        assert line["instance"] == f"{socket.gethostname()}:{pid}", line


def test_two_processes_are_two_instances() -> None:
    first, second = run_program()[0], run_program()[0]
    assert first["service"] == second["service"] == "upload"
    assert first["instance"] != second["instance"]


# --- the processors' own work ------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=253402300799 * 10**9 + 999_999_999))
def test_the_timestamp_is_structlogs_iso_utc(nanoseconds: int) -> None:
    stamped = UtcTimestamp(lambda: nanoseconds)(None, "info", {})["timestamp"]
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanoseconds // 1000)
    assert stamped == at.isoformat().replace("+00:00", "Z")


def test_the_timestamp_follows_the_clock_across_seconds() -> None:
    now = [1_700_000_000_999_999_000]
    stamp = UtcTimestamp(lambda: now[0])
    assert stamp(None, "info", {})["timestamp"] == "2023-11-14T22:13:20.999999Z"
    now[0] += 1000
    assert stamp(None, "info", {})["timestamp"] == "2023-11-14T22:13:21Z"
    now[0] += 1_000_000
    assert stamp(None, "info", {})["timestamp"] == "2023-11-14T22:13:21.001000Z"


def test_sensitive_keys_are_redacted_in_any_case_every_time() -> None:
    for _ in range(3):  # once seen, a key is judged the same way again
        line = redact_sensitive(
            None,
            "info",
            {"event": "x", "Authorization": "Bearer t", "secret": "s", "SIGNATURE": "v", "id": 1},
        )
        assert line == {
            "event": "x",
            "Authorization": "***",
            "secret": "***",
            "SIGNATURE": "***",
            "id": 1,
        }
