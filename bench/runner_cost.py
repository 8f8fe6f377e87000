"""What `make run`'s process runner costs in CPU per delivery: one child writes `--lines`
JSON log lines (three per delivery, as at full load), under honcho's manager (which reads
each line and writes it again with a prefix) and under deploy/local/run.py's runner (whose
children write to its stdout themselves). Only the runner's own CPU is counted.

    .venv/bin/python -m bench.runner_cost --lines 30000 --rounds 3 | cat >/dev/null

(stdout is where the children's lines go: a pipe here, as a terminal or a log collector is.)
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys

from honcho.manager import Manager
from honcho.printer import Printer

from deploy.local.run import Runner

LINE = (
    '{"webhook_id":"3f1c0f1e-9f0a-4a8e-bb7e-123456789abc","status_code":200,"error":null,'
    '"duration_ms":3.2,"outcome":"succeeded","next_retry_in_s":null,"event":"delivery_attempt",'
    '"service":"dispatcher","instance":"host:1234","level":"info",'
    '"timestamp":"2026-12-06T13:50:00.123456Z"}'
)
LINES_PER_DELIVERY = 3


def child_command(lines: int) -> str:
    program = f"import sys\nfor _ in range({lines}): print(sys.argv[1], flush=True)"
    return f"exec {shlex.quote(sys.executable)} -c {shlex.quote(program)} {shlex.quote(LINE)}"


def runner_cpu_ms(kind: str, lines: int) -> float:
    """The runner's own CPU ms per delivery while its one child writes `lines` lines."""
    command, env = child_command(lines), dict(os.environ)
    before = os.times()
    if kind == "honcho":
        manager = Manager(Printer(sys.stdout))
        manager.add_process("dispatcher.1", command, env=env)
        manager.loop()
    else:
        runner = Runner()
        runner.start("dispatcher.1", command, env)
        runner.run()
    after = os.times()
    spent = (after.user - before.user) + (after.system - before.system)
    return spent * 1000 / (lines / LINES_PER_DELIVERY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"honcho": [], "runner": []}
    for _ in range(args.rounds):
        for kind, runs in figures.items():
            runs.append(runner_cpu_ms(kind, args.lines))
    for kind, runs in figures.items():
        shown = " ".join(f"{ms:.3f}" for ms in runs)
        median = statistics.median(runs)
        print(f"{kind}: {median:.3f} ms CPU per delivery ({shown})", file=sys.stderr)


if __name__ == "__main__":
    main()
