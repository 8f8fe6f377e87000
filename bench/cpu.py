"""Where the CPU goes while the bench runs: each component's CPU time from /proc, the
machine's busy and idle shares, and the CPU an upload's folder costs on this disk."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

from bench.stack import Bench


def another_databases_backend(entry: Path, database: str) -> bool:
    """A PostgreSQL backend serving another database (a shared server: the tests or other
    benches beside this one); the server's own processes count for everyone."""
    try:
        title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeDecodeError):
        return False
    client = re.search(r"\(\d+\)|\[local\]", title) is not None
    return client and f" {database} " not in title


def cpu_seconds_by_component(bench: Bench) -> dict[str, float]:
    """CPU time (user + system) used so far by each part of the system, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    owners = {str(p.pid): name for name, p in bench.processes.items()}
    owners.update({str(r.process.pid): f"receiver-{r.mode}" for r in bench.receivers})
    owners[str(os.getpid())] = "load client"
    totals: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        name = owners.get(entry.name)
        if name is None:
            if command.startswith("postgres"):
                if another_databases_backend(entry, bench.database):
                    continue
                name = "postgresql"
            elif command.startswith("beam"):
                name = "rabbitmq"
            elif command.startswith("nginx"):
                name = "nginx"
            else:
                continue
        totals[name] = totals.get(name, 0.0) + seconds
    return totals


def folder_cost_ms(parent: Path, count: int = 200) -> float:
    """CPU ms to create one upload's folder and a 1 KiB file in it, as the service does.

    Left in place (removed with the bench's folder): deleting them now would make the
    next folders dearer, which is what this looks for. On ext4 without a journal the
    kernel skips inodes freed in the last minutes, so right after many deletions
    nearby (a previous bench run, a test run) this costs ~10x its usual ~0.05 ms.
    """
    parent.mkdir()
    started = time.process_time()
    for _ in range(count):
        folder = parent / str(uuid.uuid4())
        folder.mkdir()
        (folder / "probe.bin").write_bytes(b"x" * 1024)
    return (time.process_time() - started) * 1000 / count


def machine_cpu_ticks() -> dict[str, int]:
    """The machine's CPU time so far by kind (all cores), from /proc/stat."""
    kinds = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    with open("/proc/stat") as stat:
        values = stat.readline().split()[1 : 1 + len(kinds)]
    return dict(zip(kinds, map(int, values), strict=True))


def machine_cpu_shares(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """Busy, iowait and idle as shares of all cores' time between two readings."""
    spent = {kind: after[kind] - before[kind] for kind in after}
    total = sum(spent.values()) or 1
    idle = spent["idle"] + spent["iowait"]
    return {
        "busy": round((total - idle) / total, 3),
        "iowait": round(spent["iowait"] / total, 3),
        "idle": round(spent["idle"] / total, 3),
    }


def cpu_ms_per(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    """CPU ms per delivery by component between two cpu_seconds_by_component readings;
    exited processes (a finished postgres backend) are missed, so a lower bound."""
    return {
        name: round((after.get(name, 0.0) - before.get(name, 0.0)) * 1000 / count, 3)
        for name in sorted(after)
    }
