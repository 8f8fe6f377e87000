"""A/B of two checkouts in one sitting: `make bench` scenarios run alternately, paired medians.

    .venv/bin/python -m bench.ab /path/to/A /path/to/B --only end-to-end,events --rounds 5

Other arguments (`--uploads 4000`, `--set NAME=VALUE`) go to each bench.run as they are.

Each checkout needs its own `.venv` (`make venv` there). Round i runs A then B, round i+1
B then A, so a machine that drifts (another job, a warming disk) weighs on both alike;
each run is `python -m bench.run --only SCENARIO --repeats 1` in that checkout. Absolute
figures move from machine to machine; the ratio B/A of the medians is what to compare.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

# The product's own processes: what a delivery costs, without the load client and receivers.
PRODUCT_COMPONENTS = ("upload", "dispatcher", "registration", "postgresql", "rabbitmq", "nginx")
PRODUCT = "<product>"
WRITTEN = re.compile(r"^written to (\S+)$", re.MULTILINE)
# What each scenario is judged by: (label, path in the results JSON).
FIGURES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "end-to-end": [
        ("uploads: deliveries/s", ("end_to_end", "deliveries_per_s")),
        ("uploads: p99 ms", ("end_to_end", "latency_p99_ms")),
        ("uploads: CPU ms/delivery, upload", ("cpu_ms_per_delivery", "upload")),
        ("uploads: CPU ms/delivery, dispatcher", ("cpu_ms_per_delivery", "dispatcher")),
        ("uploads: CPU ms/delivery, postgresql", ("cpu_ms_per_delivery", "postgresql")),
        ("uploads: CPU ms/delivery, product", ("cpu_ms_per_delivery", PRODUCT)),
    ],
    "events": [
        ("events: deliveries/s", ("events", "deliveries_per_s")),
        ("events: p99 ms", ("events", "latency_p99_ms")),
        ("events: CPU ms/delivery, upload", ("events_cpu_ms_per_delivery", "upload")),
        ("events: CPU ms/delivery, dispatcher", ("events_cpu_ms_per_delivery", "dispatcher")),
        ("events: CPU ms/delivery, postgresql", ("events_cpu_ms_per_delivery", "postgresql")),
        ("events: CPU ms/delivery, product", ("events_cpu_ms_per_delivery", PRODUCT)),
    ],
    "fan-out": [
        ("fan-out of 1,000: request ms", ("fan_out", "request_ms")),
        ("fan-out of 1,000: 202 to last delivery s", ("fan_out", "delivered_after_202_s")),
        ("fan-out, 10 types each: 202 to last s", ("fan_out_10_types", "delivered_after_202_s")),
    ],
    "open-at-once": [
        ("5,000 to 1 s receivers: most open", ("open_at_once", "max_open")),
        ("5,000 to 1 s receivers: drained in s", ("open_at_once", "drain_s")),
        (
            "5,000 to 1 s receivers: dispatcher peak RSS MiB",
            ("open_at_once", "dispatcher_peak_rss_mib"),
        ),
    ],
    "isolation": [
        ("isolation: healthy p99 ms", ("isolation", "healthy_p99_ms")),
    ],
    "backlog": [
        ("backlog: drained /s", ("backlog", "drain_per_s")),
        ("backlog: dispatcher peak RSS MiB", ("backlog", "dispatcher_peak_rss_mib")),
        ("backlog: events accepted /s during the drain", ("backlog", "drain_events_per_s")),
    ],
}


def run_once(checkout: Path, scenario: str, extra: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [
            str(checkout / ".venv/bin/python"),
            *("-m", "bench.run", "--only", scenario, "--repeats", "1"),
            *extra,
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    found = WRITTEN.search(done.stdout)
    if done.returncode != 0 or found is None:
        sys.exit(f"{checkout}: bench.run --only {scenario} failed:\n{done.stdout}{done.stderr}")
    results: dict[str, Any] = json.loads((checkout / found.group(1)).read_text())
    return results


def figure(results: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = results
    if path[-1] == PRODUCT:
        parts = results.get(path[0])
        if not isinstance(parts, dict):
            return None
        return float(sum(parts.get(name, 0.0) for name in PRODUCT_COMPONENTS))
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--only", default="end-to-end,events")
    parser.add_argument("--rounds", type=int, default=5)
    # Anything else goes to each bench.run as it is (`--uploads 4000`, say).
    args, extra = parser.parse_known_args()
    scenarios = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in scenarios if name not in FIGURES]
    if unknown:
        sys.exit(f"no figures known for {', '.join(unknown)}: choose from {', '.join(FIGURES)}")
    samples: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        order = [("A", args.a), ("B", args.b)]
        if round_ % 2:
            order.reverse()
        for scenario in scenarios:
            for side, checkout in order:
                results = run_once(checkout.resolve(), scenario, extra)
                for label, path in FIGURES[scenario]:
                    value = figure(results, path)
                    if value is not None:
                        samples.setdefault((side, label), []).append(value)
                print(f"round {round_ + 1} {side} {scenario} done", flush=True)
    print(f"\nmedians of {args.rounds} alternated rounds; A = {args.a}, B = {args.b}\n")
    print("| figure | A | B | B / A | A runs | B runs |")
    print("|---|---:|---:|---:|---|---|")
    for scenario in scenarios:
        for label, _ in FIGURES[scenario]:
            a, b = samples.get(("A", label), []), samples.get(("B", label), [])
            if not a and not b:
                continue
            # A side without the figure (an older checkout) still shows the other's.
            ma = f"{statistics.median(a):.4g}" if a else "-"
            mb = f"{statistics.median(b):.4g}" if b else "-"
            ratio = f"{statistics.median(b) / statistics.median(a):.2f}" if a and b else "-"
            runs_a = " ".join(f"{v:.4g}" for v in a)
            runs_b = " ".join(f"{v:.4g}" for v in b)
            print(f"| {label} | {ma} | {mb} | {ratio} | {runs_a} | {runs_b} |")


if __name__ == "__main__":
    main()
