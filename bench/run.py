"""`make bench`: the system's throughput, latency, concurrency, isolation and memory.

Starts its own stack (three services as processes, the nginx gateway, a database and a
RabbitMQ vhost of its own, removed afterwards), receivers in processes of their own,
and an async load client with prebuilt request bodies. Prints a table and writes
bench/results/bench.json. Figures are medians over `--repeats` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop

from bench import events, floor
from bench.big_tables import big_tables
from bench.config import describe
from bench.cpu import (
    cpu_ms_per,
    cpu_seconds_by_component,
    folder_cost_ms,
    machine_cpu_shares,
    machine_cpu_ticks,
)
from bench.measure import median_of
from bench.ordered import ordered
from bench.report import report
from bench.scenarios import api, big_file, direct_ceiling, end_to_end, isolation, slow_receivers
from bench.stack import Bench
from harness.processes import REPO
from services.upload.settings import UploadSettings

RESULTS = Path(__file__).with_name("results")
# Files go where UPLOAD_DIR is by default (./data), not to /tmp: on ext4 without a
# journal the kernel will not reuse an inode freed in the last few minutes, and /tmp,
# where test runs delete thousands of files, makes every new folder there ~10x dearer.
WORK_PARENT = REPO / "data"


def overrides(args: argparse.Namespace) -> dict[str, str]:
    """Settings asked for on the command line; none by default (the bench runs the defaults)."""
    changed = {}
    if args.log_level != "info":
        changed["LOG_LEVEL"] = args.log_level
    big_file_bytes = args.big_file_mib * 1024**2
    if big_file_bytes > UploadSettings.max_upload_bytes:
        changed["MAX_UPLOAD_BYTES"] = str(big_file_bytes)
    changed.update(args.settings)
    return changed


def setting(text: str) -> tuple[str, str]:
    """`--set LOG_SUCCESS_SAMPLE=0.01`: a service setting, as NAME=VALUE."""
    name, equals, value = text.partition("=")
    if not equals or not name.isupper():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


SCENARIOS = (
    "end-to-end",
    "events",
    "fan-out",
    "open-at-once",
    "backlog",
    "slow-receivers",
    "isolation",
    "api",
    "big-file",
    "floor",
    "ordered",
    "big-tables",
)


def scenario_list(text: str) -> list[str]:
    """`--only end-to-end,events`: the scenarios named, each one we have."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if not names or unknown:
        given = ", ".join(unknown) or repr(text)
        raise argparse.ArgumentTypeError(
            f"unknown scenario {given}: choose from {', '.join(SCENARIOS)}"
        )
    return names


async def end_to_end_runs(bench: Bench, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Uploads end to end, each run beside a direct-POST ceiling of the same client."""
    runs, ceilings = [], []
    for repeat in range(args.repeats):
        if repeat == 0:
            bench.start_profiling(args.profile)
        cpu_before = cpu_seconds_by_component(bench)
        machine_before = machine_cpu_ticks()
        runs.append(await end_to_end(bench, args.uploads, 32))
        machine_after = machine_cpu_ticks()
        cpu_after = cpu_seconds_by_component(bench)
        bench.stop_profiling()
        if repeat == 0:
            # Whether the machine was busy (CPU-bound) or waiting (on disk, locks).
            results["machine_cpu"] = machine_cpu_shares(machine_before, machine_after)
            # Where the CPU went, per upload delivered (ms); exited processes (a
            # finished postgres backend) are missed, so this is a lower bound.
            results["cpu_ms_per_delivery"] = cpu_ms_per(cpu_before, cpu_after, args.uploads)
        ceilings.append(await direct_ceiling(bench, 32))
        print(f"  {runs[-1]}  ceiling {ceilings[-1]:.0f}/s", flush=True)
    results["end_to_end"] = median_of(runs)
    results["ceilings"] = ceilings


async def events_runs(bench: Bench, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Events end to end; the first run's CPU per delivery by component, as for uploads."""
    runs = []
    for repeat in range(args.repeats):
        cpu_before = cpu_seconds_by_component(bench)
        runs.append(await events.events_end_to_end(bench, args.uploads, 32))
        if repeat == 0:
            cpu_after = cpu_seconds_by_component(bench)
            results["events_cpu_ms_per_delivery"] = cpu_ms_per(cpu_before, cpu_after, args.uploads)
    results["events"] = median_of(runs)


async def scenario_runs(bench: Bench, args: argparse.Namespace, results: dict[str, Any]) -> None:
    wanted = set(SCENARIOS) if args.only is None else set(args.only)
    repeats = range(args.repeats)
    if "events" in wanted:
        print("events end to end ...", flush=True)
        await events_runs(bench, args, results)
    if "fan-out" in wanted:
        print("fan-out ...", flush=True)
        type_id, user_id = await events.fan_out_webhooks(bench, 1000)
        results["fan_out"] = median_of(
            [await events.fan_out(bench, type_id, user_id, 1000) for _ in repeats]
        )
        # The same fan-out to webhooks of 10 types each: its cost must not grow with them.
        type_id, user_id = await events.fan_out_webhooks(bench, 1000, types_per_webhook=10)
        results["fan_out_10_types"] = median_of(
            [await events.fan_out(bench, type_id, user_id, 1000) for _ in repeats]
        )
    if "open-at-once" in wanted:
        print("thousands open at once ...", flush=True)
        results["open_at_once"] = median_of(
            [await events.open_at_once(bench, 5000, 100) for _ in repeats]
        )
    if "slow-receivers" in wanted:
        print("slow receivers ...", flush=True)
        results["slow_receivers"] = median_of(
            [await slow_receivers(bench, 300, 30) for _ in repeats]
        )
    if "isolation" in wanted:
        print("isolation ...", flush=True)
        # Each run floods a new dead endpoint, deleted once measured (see isolation).
        results["isolation"] = median_of([await isolation(bench, 300, 200) for _ in repeats])
    if "api" in wanted:
        print("API ...", flush=True)
        results["api"] = median_of([await api(bench, 5.0) for _ in repeats])
    if "big-file" in wanted:
        print("big file ...", flush=True)
        results["big_file"] = median_of(
            [await big_file(bench, args.big_file_mib * 1024**2) for _ in repeats]
        )
    if "floor" in wanted:
        print("product beside the floor, alternated ...", flush=True)
        results["floor"] = await floor.compare(bench, args.uploads, rounds=3)
    if "ordered" in wanted:
        print("ordered per key ...", flush=True)
        results["ordered"] = median_of([await ordered(bench, args.uploads) for _ in repeats])
    if "backlog" in wanted:
        # Last, and once: it leaves a hundred thousand deliveries behind.
        print(f"backlog of {args.backlog_events} events ...", flush=True)
        results["backlog"] = await events.backlog(bench, args.backlog_events)
    if "big-tables" in wanted:
        # Last: it leaves millions of rows behind.
        print(f"big tables: {args.big_rows:,} deliveries ...", flush=True)
        results["big_tables"] = await big_tables(bench, args.big_rows, args.uploads, args.repeats)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_average": os.getloadavg(),
        "repeats": args.repeats,
        "big_file_mib": args.big_file_mib,
    }
    args.work_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.work_parent) as workdir:
        bench = Bench(Path(workdir), overrides(args))
        try:
            await bench.start()
            results["configuration"] = describe(bench.env())
            print(results["configuration"], flush=True)
            await bench.receiver("fast")
            await bench.receiver("slow", 1.0)
            await bench.receiver("dead")
            results["folder_cost_ms"] = round(folder_cost_ms(Path(workdir) / "probe"), 3)
            print(f"upload folder + file: {results['folder_cost_ms']} ms of CPU", flush=True)
            if args.only is None or "end-to-end" in args.only:
                print("end-to-end ...", flush=True)
                await end_to_end_runs(bench, args, results)
            else:
                results["ceilings"] = [await direct_ceiling(bench, 32) for _ in range(args.repeats)]
            results["ceiling_per_s"] = statistics.median(results["ceilings"])
            # --profile records the end-to-end run, or the one scenario asked for.
            alone = args.only is not None and "end-to-end" not in args.only
            if alone:
                bench.start_profiling(args.profile)
            await scenario_runs(bench, args, results)
            bench.stop_profiling()
            results["dispatcher_metrics"] = await bench.dispatcher_metrics()
        finally:
            await bench.stop()
    results["load_average_after"] = os.getloadavg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=2000, help="uploads (and events) per run")
    parser.add_argument(
        "--big-file-mib", type=int, default=100, help="above 100, MAX_UPLOAD_BYTES is raised"
    )
    parser.add_argument("--backlog-events", type=int, default=100_000)
    parser.add_argument(
        "--big-rows",
        type=int,
        default=int(os.environ.get("BIG_TABLES_ROWS", "10000000")),
        help="deliveries big-tables seeds (default 10,000,000, or BIG_TABLES_ROWS)",
    )
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--set",
        dest="settings",
        type=setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the services other than its default (repeatable); the report says so",
    )
    parser.add_argument(
        "--only",
        type=scenario_list,
        help=f"run these scenarios (and the ceiling), comma-separated: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--work-parent",
        type=Path,
        default=WORK_PARENT,
        help="where the bench's files go, uploads included (the disk UPLOAD_DIR would be on)",
    )
    parser.add_argument(
        "--profile", type=Path, help="record py-spy profiles of the services into this folder"
    )
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    results = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    name = f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}.json"
    targets = [RESULTS / name] if args.only else [RESULTS / "bench.json", RESULTS / name]
    for target in targets:
        target.write_text(json.dumps(results, indent=2))
    print()
    print(report(results))
    print(f"\nwritten to {targets[-1]}")


if __name__ == "__main__":
    main()
