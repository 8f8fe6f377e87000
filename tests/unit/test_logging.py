"""services.common.logging: every JSON line names its service and replica, from any thread."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from harness.processes import REPO

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
