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
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

from bench import events, loadgen
from bench.config import bench_env, describe
from bench.report import report
from harness.infra import (
    VhostAdmin,
    amqp_url_for,
    create_database,
    drop_database,
    unique_name,
)
from harness.processes import (
    REPO,
    curl_upload,
    peak_rss_kib,
    rss_kib,
    start_service,
    stop_process,
    wait_http_ok,
)
from harness.stack import UPLOAD_EVENT_TYPE_ID, Gateway, free_port, register_webhook
from services.upload.settings import UploadSettings

RESULTS = Path(__file__).with_name("results")
# Files go where UPLOAD_DIR is by default (./data), not to /tmp: on ext4 without a
# journal the kernel will not reuse an inode freed in the last few minutes, and /tmp,
# where test runs delete thousands of files, makes every new folder there ~10x dearer.
WORK_PARENT = REPO / "data"
SERVICES = ("registration", "upload", "dispatcher")
BOUNDARY = "benchboundary7MA4YWxkTrZu0gW"


def multipart_body(size: int) -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="file"; filename="bench.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + os.urandom(size)
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


MULTIPART_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
# The direct-POST ceiling is measured this long, in each end-to-end run.
CEILING_SECONDS = 1.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Receiver:
    port: int
    process: subprocess.Popen[bytes]
    mode: str
    # The bench's questions to the receiver (its figures, a reset), one at a time over one
    # keep-alive connection of the load client: the polls are frequent.
    link: loadgen.Connection | None = None
    asking: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ask(self, method: str, path: str) -> tuple[int, bytes]:
        async with self.asking:
            if self.link is None:
                self.link = loadgen.Connection(self.port)
            return await self.link.send(loadgen.build_request(method, self.port, path))

    async def stats(self) -> dict[str, Any]:
        status, body = await self.ask("GET", "/stats")
        assert status == 200, status
        stats: dict[str, Any] = orjson.loads(body)
        return stats

    async def summary(self) -> dict[str, Any]:
        """The counts alone, without a figure per delivery: cheap to poll."""
        status, body = await self.ask("GET", "/stats?summary=1")
        assert status == 200, status
        summary: dict[str, Any] = orjson.loads(body)
        return summary

    async def reset(self) -> None:
        status, _ = await self.ask("POST", "/reset")
        assert status == 204, status

    def close(self) -> None:
        if self.link is not None:
            self.link.close()


class Bench:
    def __init__(self, workdir: Path, env_overrides: dict[str, str]) -> None:
        self.workdir = workdir
        self.database = unique_name("webhooks_bench")
        self.vhost = unique_name("webhooks_bench")
        self.admin = VhostAdmin()
        self.ports = {service: free_port() for service in SERVICES}
        self.env_overrides = env_overrides
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.receivers: list[Receiver] = []
        self.gateway: Gateway | None = None
        self.http: aiohttp.ClientSession | None = None
        self.profiling: Path | None = None
        self.profilers: list[subprocess.Popen[bytes]] = []

    @property
    def gateway_url(self) -> str:
        assert self.gateway is not None
        return f"http://127.0.0.1:{self.gateway.port}"

    def env(self) -> dict[str, str]:
        return bench_env(
            DATABASE_URL=self.database_url,
            AMQP_URL=amqp_url_for(self.vhost),
            UPLOAD_DIR=str(self.workdir / "uploads"),
            REGISTRATION_PORT=str(self.ports["registration"]),
            UPLOAD_PORT=str(self.ports["upload"]),
            DISPATCHER_PORT=str(self.ports["dispatcher"]),
            **self.env_overrides,
        )

    async def start(self) -> None:
        self.database_url = create_database(self.database)
        self.admin.create(self.vhost)
        for service in SERVICES:
            await self.start_service(service)
        self.gateway = Gateway(
            self.workdir / "gateway", {**self.env(), "GATEWAY_PORT": str(free_port())}
        )
        await self.gateway.start()
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256), timeout=aiohttp.ClientTimeout(total=120)
        )

    async def start_service(self, service: str) -> None:
        self.processes[service] = start_service(
            service, self.env(), self.workdir / f"{service}.log"
        )
        await wait_http_ok(f"http://127.0.0.1:{self.ports[service]}/readyz", timeout=30)
        if self.profiling is not None:  # follow the new process
            process = self.processes[service]
            self.profilers.append(py_spy(process.pid, self.profiling / f"{service}-{process.pid}"))

    async def restart_service(self, service: str) -> None:
        await asyncio.to_thread(stop_process, self.processes[service], 30)
        await self.start_service(service)

    async def dispatcher_metrics(self) -> dict[str, float]:
        """Means of the dispatcher's timings since it (last) started, in ms, and its deferrals."""
        assert self.http is not None
        url = f"http://127.0.0.1:{self.ports['dispatcher']}/metrics"
        async with self.http.get(url) as resp:
            text = await resp.text()
        sums: dict[str, float] = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name.endswith(("_seconds_sum", "_seconds_count", "_deferred_total")):
                sums[name] = float(value)
        means = {}
        for name in ("webhook_delivery_dispatch", "webhook_delivery_attempt_duration"):
            count = sums.get(f"{name}_seconds_count", 0.0)
            if count:
                means[f"{name}_mean_ms"] = sums[f"{name}_seconds_sum"] / count * 1000
        # Deliveries parked because their endpoint had its limit in flight (each ~1 s late).
        deferred = "webhook_deliveries_deferred_total"
        means[deferred] = sums.get(deferred, 0.0)
        return means

    async def receiver(self, mode: str, delay: float = 1.0) -> Receiver:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.receiver",
                "--port",
                str(port),
                "--mode",
                mode,
                "--delay",
                str(delay),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        receiver = Receiver(port, process, mode)
        await wait_http_ok(f"{receiver.url}/stats")
        self.receivers.append(receiver)
        return receiver

    async def stop(self) -> None:
        """Every step runs even if one before it failed: nothing may outlive the bench."""
        steps: list[Callable[[], Awaitable[object]]] = []
        if self.http is not None:
            steps.append(self.http.close)
        for receiver in self.receivers:
            receiver.close()
            receiver.process.kill()  # the dead one never answers: no graceful stop to wait for
            steps.append(lambda r=receiver: asyncio.to_thread(r.process.wait, 10))
        if self.gateway is not None:
            steps.append(self.gateway.stop)
        for process in self.processes.values():
            steps.append(lambda p=process: asyncio.to_thread(stop_process, p, 30))
        steps.append(lambda: asyncio.to_thread(self.admin.delete, self.vhost))
        steps.append(lambda: asyncio.to_thread(drop_database, self.database))
        errors = []
        for step in steps:
            try:
                await step()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    async def register(self, url: str) -> str:
        assert self.http is not None
        return str((await register_webhook(self.http, self.gateway_url, url))["id"])

    @property
    def gateway_port(self) -> int:
        assert self.gateway is not None
        return self.gateway.port

    async def upload_many(
        self, webhook_ids: list[str], count: int, concurrency: int, body: bytes
    ) -> tuple[dict[str, float], float, float]:
        """Upload `count` files round-robin over the webhooks; (accepted-at by id, t0, t1)."""
        accepted: dict[str, float] = {}
        next_index = 0
        port = self.gateway_port
        requests = [
            loadgen.build_request(
                "POST", port, f"/upload_file/webhook_id/{w}", body, MULTIPART_HEADERS
            )
            for w in webhook_ids
        ]

        async def client(connection: loadgen.Connection) -> None:
            nonlocal next_index
            while next_index < count:
                request = requests[next_index % len(requests)]
                next_index += 1
                status, answer = await connection.send(request)
                if status == 200:
                    accepted[orjson.loads(answer)["data"]["upload_id"]] = time.time()

        async with loadgen.connections(port, concurrency) as opened:
            started = time.time()
            await asyncio.gather(*(client(connection) for connection in opened))
        return accepted, started, time.time()

    async def requests_per_second(
        self, request: bytes, seconds: float, concurrency: int, success: int = 200
    ) -> float:
        """The same prebuilt request to the gateway, from `concurrency` clients for
        `seconds`: answers `success` a second."""
        done = 0
        errors = 0

        async def client(connection: loadgen.Connection) -> None:
            nonlocal done, errors
            while time.monotonic() < stop_at:
                status, _ = await connection.send(request)
                if status == success:
                    done += 1
                else:
                    errors += 1

        async with loadgen.connections(self.gateway_port, concurrency) as opened:
            started = time.monotonic()
            stop_at = started + seconds
            await asyncio.gather(*(client(connection) for connection in opened))
        if errors:
            print(f"    ({errors} answers other than {success})", flush=True)
        return done / (time.monotonic() - started)


async def wait_delivered(receiver: Receiver, ids: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        # The counts until there are enough; then the figures per delivery, which are
        # dearer to make and read, and return them once they hold every id.
        summary = await receiver.summary()
        if summary["delivered"] >= len(ids) or time.monotonic() > deadline:
            stats = await receiver.stats()
            if ids <= stats["arrivals"].keys() or time.monotonic() > deadline:
                return stats
        await asyncio.sleep(0.1)


async def end_to_end(bench: Bench, uploads: int, concurrency: int) -> dict[str, float]:
    receiver = bench.receivers[0]
    webhook = await bench.register(f"{receiver.url}/hook")
    await receiver.reset()
    body = multipart_body(1024)
    accepted, started, accepted_by = await bench.upload_many([webhook], uploads, concurrency, body)
    stats = await wait_delivered(receiver, set(accepted), timeout=120)
    arrivals: dict[str, float] = stats["arrivals"]
    delivered = [upload for upload in accepted if upload in arrivals]
    latencies = [stats["latencies_ms"][u] for u in delivered]
    last_delivery = max(arrivals[u] for u in delivered)
    return {
        "uploads_per_s": len(accepted) / (accepted_by - started),
        "deliveries_per_s": len(delivered) / (last_delivery - started),
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p95_ms": percentile(latencies, 0.95),
        "latency_p99_ms": percentile(latencies, 0.99),
        "accepted": len(accepted),
        "lost": len(accepted) - len(delivered),
        "duplicates": stats["duplicates"],
    }


async def direct_ceiling(bench: Bench, concurrency: int) -> float:
    """The same client POSTing the same multipart straight to the receiver, for
    CEILING_SECONDS (2,000 requests took some 30 ms, too short to be steady)."""
    receiver = bench.receivers[0]
    request = loadgen.build_request(
        "POST", receiver.port, "/direct", multipart_body(1024), MULTIPART_HEADERS
    )
    sent = 0

    async def client(connection: loadgen.Connection) -> None:
        nonlocal sent
        while time.monotonic() < stop_at:
            await connection.send(request)
            sent += 1

    async with loadgen.connections(receiver.port, concurrency) as opened:
        started = time.monotonic()
        stop_at = started + CEILING_SECONDS
        await asyncio.gather(*(client(connection) for connection in opened))
        return sent / (time.monotonic() - started)


async def slow_receivers(bench: Bench, uploads: int, endpoints: int) -> dict[str, float]:
    receiver = next(r for r in bench.receivers if r.mode == "slow")
    hooks = [await bench.register(f"{receiver.url}/hook/{n}") for n in range(endpoints)]
    await receiver.reset()
    accepted, started, _ = await bench.upload_many(hooks, uploads, 32, multipart_body(1024))
    stats = await wait_delivered(receiver, set(accepted), timeout=120)
    arrivals = stats["arrivals"]
    # Drained when the last one has been answered; the next run must not start earlier,
    # or its reset would lose count of requests still open.
    while stats["in_flight"] > 0:
        await asyncio.sleep(0.05)
        stats = await receiver.summary()
    drained = time.time() - started
    return {
        "max_open": stats["max_in_flight"],
        "drain_s": drained,
        "lost": len(set(accepted) - arrivals.keys()),
    }


async def isolation(bench: Bench, dead_uploads: int, healthy_uploads: int) -> dict[str, float]:
    healthy = bench.receivers[0]
    dead = next(r for r in bench.receivers if r.mode == "dead")
    dead_hook = await bench.register(f"{dead.url}/hook")
    healthy_hook = await bench.register(f"{healthy.url}/hook/healthy")
    await healthy.reset()
    body = multipart_body(1024)
    flood = asyncio.create_task(bench.upload_many([dead_hook], dead_uploads, 16, body))
    await asyncio.sleep(0.5)  # the dead endpoint's deliveries are hanging by now
    accepted, _, _ = await bench.upload_many([healthy_hook], healthy_uploads, 8, body)
    await flood
    stats = await wait_delivered(healthy, set(accepted), timeout=120)
    arrivals = stats["arrivals"]
    latencies = [stats["latencies_ms"][u] for u in accepted if u in arrivals]
    return {
        "healthy_p50_ms": percentile(latencies, 0.50),
        "healthy_p99_ms": percentile(latencies, 0.99),
        "lost": len(set(accepted) - arrivals.keys()),
    }


async def big_file(bench: Bench, size: int) -> dict[str, float]:
    await bench.restart_service("upload")  # a fresh process, so its peak RSS is this upload's
    pid = bench.processes["upload"].pid
    baseline = rss_kib(pid)
    webhook = await bench.register("http://127.0.0.1:9/unused")
    path = bench.workdir / "big.bin"
    with path.open("wb") as handle:
        handle.truncate(size)  # sparse: the client reads zeros without disk I/O
    started = time.monotonic()
    response = await curl_upload(f"{bench.gateway_url}/upload_file/webhook_id/{webhook}", path)
    elapsed = time.monotonic() - started
    assert response["data"]["size"] == size, response
    peak = peak_rss_kib(pid)
    stored = bench.workdir / "uploads" / response["data"]["upload_id"] / "big.bin"
    stored.unlink()
    path.unlink()
    return {
        "mb_per_s": size / 1e6 / elapsed,
        "rss_growth_mib": (peak - baseline) / 1024,
    }


async def api(bench: Bench, seconds: float) -> dict[str, float]:
    port = bench.gateway_port
    list_types = loadgen.build_request("GET", port, "/event_type")
    register_body = orjson.dumps(
        {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1, "url": "http://127.0.0.1:9/x"}
    )
    register = loadgen.build_request(
        "POST", port, "/webhook/register", register_body, {"Content-Type": "application/json"}
    )
    return {
        "event_type_per_s": await bench.requests_per_second(list_types, seconds, 32),
        "register_per_s": await bench.requests_per_second(register, seconds, 32),
    }


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


def py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid)]
    command += ["--format", "speedscope", "--output", f"{output}.speedscope.json", "--rate", "200"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_profilers(bench: Bench, folder: Path | None) -> list[subprocess.Popen[bytes]]:
    """py-spy on each service (speedscope files), and on any service restarted meanwhile."""
    if folder is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    bench.profiling = folder
    bench.profilers = [py_spy(p.pid, folder / service) for service, p in bench.processes.items()]
    return bench.profilers


def stop_profilers(bench: Bench, profilers: list[subprocess.Popen[bytes]]) -> None:
    bench.profiling = None
    for profiler in profilers:
        profiler.send_signal(2)  # SIGINT: py-spy writes its file and exits
        profiler.wait(30)


def overrides(args: argparse.Namespace) -> dict[str, str]:
    """Settings asked for on the command line; none by default (the bench runs the defaults)."""
    changed = {}
    if args.log_level != "info":
        changed["LOG_LEVEL"] = args.log_level
    big_file_bytes = args.big_file_mib * 1024**2
    if big_file_bytes > UploadSettings.max_upload_bytes:
        changed["MAX_UPLOAD_BYTES"] = str(big_file_bytes)
    return changed


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


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
)


async def end_to_end_runs(bench: Bench, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Uploads end to end, each run beside a direct-POST ceiling of the same client."""
    runs, ceilings = [], []
    for repeat in range(args.repeats):
        profilers = start_profilers(bench, args.profile) if repeat == 0 else []
        cpu_before = cpu_seconds_by_component(bench)
        machine_before = machine_cpu_ticks()
        runs.append(await end_to_end(bench, args.uploads, 32))
        machine_after = machine_cpu_ticks()
        cpu_after = cpu_seconds_by_component(bench)
        stop_profilers(bench, profilers)
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


def cpu_ms_per(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    """CPU ms per delivery by component between two cpu_seconds_by_component readings;
    exited processes (a finished postgres backend) are missed, so a lower bound."""
    return {
        name: round((after.get(name, 0.0) - before.get(name, 0.0)) * 1000 / count, 3)
        for name in sorted(after)
    }


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
    wanted = set(SCENARIOS) if args.only is None else {args.only}
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
        # Each run floods a new dead endpoint; the earlier ones are still retrying.
        results["isolation"] = median_of([await isolation(bench, 300, 200) for _ in repeats])
    if "api" in wanted:
        print("API ...", flush=True)
        results["api"] = median_of([await api(bench, 5.0) for _ in repeats])
    if "big-file" in wanted:
        print("big file ...", flush=True)
        results["big_file"] = median_of(
            [await big_file(bench, args.big_file_mib * 1024**2) for _ in repeats]
        )
    if "backlog" in wanted:
        # Last, and once: it leaves a hundred thousand deliveries behind.
        print(f"backlog of {args.backlog_events} events ...", flush=True)
        results["backlog"] = await events.backlog(bench, args.backlog_events)


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
            if args.only in (None, "end-to-end"):
                print("end-to-end ...", flush=True)
                await end_to_end_runs(bench, args, results)
            else:
                results["ceilings"] = [await direct_ceiling(bench, 32) for _ in range(args.repeats)]
            results["ceiling_per_s"] = statistics.median(results["ceilings"])
            # --profile records the end-to-end run, or the one scenario asked for.
            alone = args.only not in (None, "end-to-end")
            profilers = start_profilers(bench, args.profile) if alone else []
            await scenario_runs(bench, args, results)
            stop_profilers(bench, profilers)
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
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--only", choices=SCENARIOS, help="run one scenario (and the ceiling)")
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
