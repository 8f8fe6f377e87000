"""`make run`'s process runner: deploy/local/Procfile's processes in the foreground, exiting 0
after a clean stop.

The processes write to the runner's own stdout and stderr, not through a pipe it reads:
relaying each JSON line through Python cost about a fifth of the system's CPU at full load
(issue 30), and the lines need no prefix since each carries `service` and `instance`
(host:pid). The runner's own lines name each process, its pid and its exit code.

`SCALE="dispatcher=3 upload=2"` runs that many replicas of a service, each on its own port
(deploy/local/scale.py); the gateway's config lists the same ports (deploy/gateway/render.py).
Ctrl-C or SIGTERM asks every process to stop (SIGTERM), and SIGKILLs what is left after
STOP_GRACE_SECONDS; a process that exits on its own stops the others. The exit code is 0
after a requested stop in which every process exited 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import FrameType

from honcho.environ import expand_processes, parse_procfile

from deploy.local.scale import SERVICE_PORTS, replica_ports
from services.common.settings import ConfigError

PROCFILE = Path(__file__).with_name("Procfile")
# A requested stop's codes, as a shell reports them: 128 + SIGINT, 128 + SIGTERM.
STOP_REQUESTED = frozenset({128 + signal.SIGINT, 128 + signal.SIGTERM})
# The services drain within SHUTDOWN_GRACE_SECONDS (4 s under `make run`); then SIGKILL.
STOP_GRACE_SECONDS = 5.0


def exit_status(runner_returncode: int | None, process_returncodes: Iterable[int | None]) -> int:
    """0 when a requested stop ended with every process exiting 0, else the runner's code."""
    codes = list(process_returncodes)
    if runner_returncode in STOP_REQUESTED and codes and all(code == 0 for code in codes):
        return 0
    return 1 if runner_returncode is None else runner_returncode


def replica_env(name: str, ports: dict[str, list[int]]) -> dict[str, str]:
    """The port variable of replica `name` (`upload.2`); nothing for the gateway."""
    service, _, number = name.rpartition(".")
    if service not in SERVICE_PORTS:
        return {}
    variable, _ = SERVICE_PORTS[service]
    return {variable: str(ports[service][int(number) - 1])}


class Runner:
    """The processes, each in a session of its own so that only the runner signals them."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.codes: dict[str, int] = {}
        self.stop_signal: int | None = None

    def say(self, line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    def start(self, name: str, command: str, env: dict[str, str]) -> None:
        process = subprocess.Popen(
            command, shell=True, env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.processes[name] = process
        self.say(f"{name} started (pid={process.pid})")

    def requested(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_signal = signum

    def reap(self) -> None:
        for name, process in self.processes.items():
            if name not in self.codes and process.poll() is not None:
                self.codes[name] = process.returncode
                self.say(f"{name} stopped (rc={process.returncode})")

    def signal_all(self, signum: int) -> None:
        for name, process in self.processes.items():
            if name not in self.codes:
                with contextlib.suppress(ProcessLookupError):  # exited since the last reap
                    os.killpg(process.pid, signum)

    def run(self) -> int:
        """Until a stop is asked for or a process exits; then stop the rest."""
        while self.stop_signal is None and not self.codes:
            time.sleep(0.1)
            self.reap()
        if self.stop_signal is not None:
            returncode = 128 + self.stop_signal
        else:
            first = next(iter(self.codes.values()))
            returncode = first if first > 0 else 1  # a signal's death (-9) as a failure
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while len(self.codes) < len(self.processes) and time.monotonic() < deadline:
            time.sleep(0.05)
            self.reap()
        if len(self.codes) < len(self.processes):
            self.signal_all(signal.SIGKILL)
            for process in self.processes.values():
                process.wait()
            self.reap()
        return exit_status(returncode, self.codes.values())


def main() -> int:
    try:
        ports = replica_ports(os.environ)
    except ConfigError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    for service, service_ports in ports.items():
        print(f"{service}: {len(service_ports)} on {', '.join(map(str, service_ports))}")
    runner = Runner()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, runner.requested)
    procfile = parse_procfile(PROCFILE.read_text())
    scale = {service: len(service_ports) for service, service_ports in ports.items()}
    for process in expand_processes(procfile.processes, concurrency=scale):
        env = {**os.environ, **process.env, **replica_env(process.name, ports)}
        runner.start(process.name, process.cmd, env)
    return runner.run()


if __name__ == "__main__":
    sys.exit(main())
