"""`make run`'s process runner: honcho over deploy/local/Procfile, exiting 0 after a clean stop.

`SCALE="dispatcher=3 upload=2"` runs that many replicas of a service, each on its own port
(deploy/local/scale.py); the gateway's config lists the same ports (deploy/gateway/render.py).
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

from deploy.local.scale import SERVICE_PORTS, replica_ports
from services.common.settings import ConfigError

PROCFILE = Path(__file__).with_name("Procfile")
# What honcho's manager returns when it stopped because it was asked to (SIGINT, SIGTERM).
STOP_REQUESTED = frozenset(int(signal["rc"]) for signal in SIGNALS.values())


def exit_status(manager_returncode: int | None, process_returncodes: Iterable[int | None]) -> int:
    """0 when a requested stop ended with every process exiting 0, else honcho's code."""
    codes = list(process_returncodes)
    if manager_returncode in STOP_REQUESTED and codes and all(code == 0 for code in codes):
        return 0
    return 1 if manager_returncode is None else manager_returncode


def replica_env(name: str, ports: dict[str, list[int]]) -> dict[str, str]:
    """The port variable of replica `name` (honcho's `upload.2`); nothing for the gateway."""
    service, _, number = name.rpartition(".")
    if service not in SERVICE_PORTS:
        return {}
    variable, _ = SERVICE_PORTS[service]
    return {variable: str(ports[service][int(number) - 1])}


def main() -> int:
    try:
        ports = replica_ports(os.environ)
    except ConfigError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    for service, service_ports in ports.items():
        print(f"{service}: {len(service_ports)} on {', '.join(map(str, service_ports))}")
    procfile = parse_procfile(PROCFILE.read_text())
    manager = Manager(Printer(sys.stdout))
    scale = {service: len(service_ports) for service, service_ports in ports.items()}
    for process in expand_processes(procfile.processes, concurrency=scale):
        env = {**os.environ, **process.env, **replica_env(process.name, ports)}
        manager.add_process(process.name, process.cmd, env=env)
    manager.loop()
    # honcho keeps each process's exit code only in this table (no public accessor).
    codes = [process.get("returncode") for process in manager._processes.values()]
    return exit_status(manager.returncode, codes)


if __name__ == "__main__":
    sys.exit(main())
