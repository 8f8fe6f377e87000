"""`make run`'s process runner: honcho over deploy/local/Procfile, exiting 0 after a clean stop.

`honcho start` exits 130 after Ctrl-C even when every process drained and exited 0, and
make reports that as "Error 130", which reads as a failure. This runner exits 0 then, and
otherwise with honcho's own code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from honcho.environ import expand_processes, parse_procfile
from honcho.manager import SIGNALS, Manager
from honcho.printer import Printer

PROCFILE = Path(__file__).with_name("Procfile")
# What honcho's manager returns when it stopped because it was asked to (SIGINT, SIGTERM).
STOP_REQUESTED = frozenset(int(signal["rc"]) for signal in SIGNALS.values())


def exit_status(manager_returncode: int | None, process_returncodes: Iterable[int | None]) -> int:
    """0 when a requested stop ended with every process exiting 0, else honcho's code."""
    codes = list(process_returncodes)
    if manager_returncode in STOP_REQUESTED and codes and all(code == 0 for code in codes):
        return 0
    return 1 if manager_returncode is None else manager_returncode


def main() -> int:
    procfile = parse_procfile(PROCFILE.read_text())
    manager = Manager(Printer(sys.stdout))
    for process in expand_processes(procfile.processes):
        manager.add_process(process.name, process.cmd, env={**os.environ, **process.env})
    manager.loop()
    # honcho keeps each process's exit code only in this table (no public accessor).
    codes = [process.get("returncode") for process in manager._processes.values()]
    return exit_status(manager.returncode, codes)


if __name__ == "__main__":
    sys.exit(main())
