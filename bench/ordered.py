"""The bench's ordered-delivery scenario (SPEC section 16): events end to end with an
ordering key spread over 100 keys, and all on one key, beside the same events without a
key, in the same run. Goal: 100 keys reach at least 70 % of the unordered rate."""

from __future__ import annotations

from bench.events import events_end_to_end
from bench.stack import Bench

# One key's deliveries go one after another: fewer of them keep the run short.
ONE_KEY_EVENTS = 300
CONCURRENCY = 32
KEPT = ("deliveries_per_s", "latency_p50_ms", "latency_p99_ms", "lost")


async def ordered(bench: Bench, count: int) -> dict[str, float]:
    """No key, 100 keys and one key, one after the other in the same run."""
    runs = {
        "unordered": await events_end_to_end(bench, count, CONCURRENCY),
        "keys_100": await events_end_to_end(bench, count, CONCURRENCY, keys=100),
        "key_1": await events_end_to_end(bench, min(count, ONE_KEY_EVENTS), CONCURRENCY, keys=1),
    }
    flat = {f"{name}_{key}": run[key] for name, run in runs.items() for key in KEPT}
    share = runs["keys_100"]["deliveries_per_s"] / runs["unordered"]["deliveries_per_s"]
    return {**flat, "keys_100_share": share}
