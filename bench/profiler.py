"""py-spy on the bench's services while a scenario runs: one speedscope file a process."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid)]
    command += ["--format", "speedscope", "--output", f"{output}.speedscope.json", "--rate", "200"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Profiler:
    """py-spy on each service (speedscope files), and on any service restarted meanwhile."""

    def __init__(self, folder: Path, processes: Mapping[str, subprocess.Popen[bytes]]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.recorders = [py_spy(p.pid, folder / service) for service, p in processes.items()]

    def follow(self, service: str, pid: int) -> None:
        """Record a service started after the others (a restart): a file of its own."""
        self.recorders.append(py_spy(pid, self.folder / f"{service}-{pid}"))

    def stop(self) -> None:
        for recorder in self.recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            recorder.wait(30)
