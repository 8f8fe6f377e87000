"""`make soak`: thousands of uploads while faults repeat; prints accepted/delivered/lost.

The services run as real processes and reach PostgreSQL and RabbitMQ through our TCP
proxy, which makes the outages (the shared servers are never stopped). Faults cycle:
kill -9 of the dispatcher, an 8 s broker outage, a 5 s database outage, SIGTERM of the
dispatcher. Recovery time of a fault: from its end until every upload accepted before
that moment has been delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.infra import (
    VhostAdmin,
    amqp_url_for,
    create_database,
    drop_database,
    unique_name,
)
from harness.procstack import ProcessStack, process_stack
from harness.receiver import Receiver

RESULTS = Path(__file__).with_name("results")


@dataclass
class Soak:
    accepted: dict[str, float] = field(default_factory=dict)  # upload id -> accepted at
    refused: collections.Counter[int] = field(default_factory=collections.Counter)
    recoveries: list[tuple[str, float]] = field(default_factory=list)
    kills: list[float] = field(default_factory=list)  # when each kill -9 was sent
    # Each fault's name, start and end (time.monotonic()), to place a duplicate among them.
    windows: list[tuple[str, float, float]] = field(default_factory=list)
    uploading: bool = True

    def delivered(self, receiver: Receiver) -> collections.Counter[str]:
        return collections.Counter(r.json()["data"]["upload_id"] for r in receiver.received)


async def upload_until(
    stack: ProcessStack, webhook_id: str, soak: Soak, total: int, rate: float
) -> None:
    """Upload at about `rate` per second, so that the faults cycle many times meanwhile."""
    next_slot = time.monotonic()

    async def client() -> None:
        nonlocal next_slot
        while len(soak.accepted) < total:
            next_slot = max(next_slot + 1 / rate, time.monotonic())
            await asyncio.sleep(max(0.0, next_slot - time.monotonic()))
            try:
                status, body = await stack.upload(webhook_id)
            except (TimeoutError, OSError):
                soak.refused[0] += 1
                continue
            if status == 200:
                soak.accepted[body["data"]["upload_id"]] = time.monotonic()
            else:
                soak.refused[status] += 1
                await asyncio.sleep(0.1)

    await asyncio.gather(*(client() for _ in range(8)))
    soak.uploading = False


async def recovered(soak: Soak, receiver: Receiver, since: float, timeout: float) -> float:
    """Seconds until every upload accepted before `since` has been delivered."""
    due = {upload for upload, at in soak.accepted.items() if at <= since}
    deadline = time.monotonic() + timeout
    while due - set(soak.delivered(receiver)):
        if time.monotonic() > deadline:
            return float("inf")
        await asyncio.sleep(0.1)
    return time.monotonic() - since


async def faults(stack: ProcessStack, soak: Soak, receiver: Receiver) -> None:
    cycle = 0
    while soak.uploading:
        name = ("kill -9 dispatcher", "broker 8 s", "database 5 s", "SIGTERM dispatcher")[cycle % 4]
        await asyncio.sleep(2.0)
        began = time.monotonic()
        if name == "kill -9 dispatcher":
            soak.kills.append(time.monotonic())
            await stack.kill9("dispatcher")
            await stack.start("dispatcher", wait=False)
        elif name == "broker 8 s":
            stack.broker_proxy.cut()
            await asyncio.sleep(8.0)
            stack.broker_proxy.restore()
        elif name == "database 5 s":
            stack.database_proxy.cut()
            await asyncio.sleep(5.0)
            stack.database_proxy.restore()
        else:
            await stack.terminate("dispatcher")
            await stack.start("dispatcher", wait=False)
        ended = time.monotonic()
        soak.windows.append((name, began, ended))
        soak.recoveries.append((name, await recovered(soak, receiver, ended, 120.0)))
        print(f"  {name}: recovered in {soak.recoveries[-1][1]:.1f} s", flush=True)
        cycle += 1


async def run(total: int, rate: float) -> dict[str, object]:
    database = unique_name("webhooks_soak")
    vhost = unique_name("webhooks_soak")
    admin = VhostAdmin()
    database_url = create_database(database)
    admin.create(vhost)
    receiver = await Receiver().start()
    soak = Soak()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="webhooks-soak-") as workdir:
            # Every attempt's line, so that a duplicate's two sends can be told apart.
            async with process_stack(
                database_url, amqp_url_for(vhost), Path(workdir), LOG_SUCCESS_SAMPLE="1"
            ) as stack:
                webhook = await stack.register(receiver.url)
                await asyncio.gather(
                    upload_until(stack, webhook["id"], soak, total, rate),
                    faults(stack, soak, receiver),
                )
                final = await recovered(soak, receiver, time.monotonic(), 180.0)
                explain_duplicates(soak, receiver, stack, started)
    finally:
        await receiver.stop()
        admin.delete(vhost)
        drop_database(database)
    delivered = soak.delivered(receiver)
    accepted = set(soak.accepted)
    return {
        "accepted": len(accepted),
        "refused": dict(soak.refused),
        "delivered": len(accepted & set(delivered)),
        "duplicates": sum(count - 1 for count in delivered.values()),
        "duplicates_in_flight_at_a_kill": in_flight_at_a_kill(soak, receiver, delivered),
        "lost": len(accepted - set(delivered)),
        "faults": len(soak.recoveries),
        "max_recovery_s": round(max([r for _, r in soak.recoveries] + [final]), 2),
        "recoveries": [(name, round(seconds, 2)) for name, seconds in soak.recoveries],
        "duration_s": round(time.monotonic() - started, 1),
        "rate_per_s": rate,
    }


# A delivery sent this long before a kill -9 may not have been recorded yet when it died.
IN_FLIGHT_SECONDS = 1.0
# And one the process wrote just before it died may be read by the receiver (in this
# process, whose loop was sending the kill) a moment after the kill's recorded time.
ARRIVAL_AFTER_KILL_SECONDS = 0.1


def at_a_kill(soak: Soak, first_arrival: float) -> bool:
    """Whether a delivery's first copy was in flight when a kill -9 was sent."""
    return any(
        first_arrival - ARRIVAL_AFTER_KILL_SECONDS <= kill <= first_arrival + IN_FLIGHT_SECONDS
        for kill in soak.kills
    )


def in_flight_at_a_kill(soak: Soak, receiver: Receiver, delivered: collections.Counter[str]) -> int:
    """Duplicates whose first copy arrived just before a kill -9: sent, but the process died
    before recording it, so it is sent again. SPEC section 4 allows exactly these (a receiver
    may see a delivery twice only if it was in flight when a process died); any other
    duplicate is a bug."""
    first: dict[str, float] = {}
    for received in receiver.received:
        upload = received.json()["data"]["upload_id"]
        if delivered[upload] > 1:
            first[upload] = min(first.get(upload, received.at), received.at)
    return sum(delivered[upload] - 1 for upload, at in first.items() if at_a_kill(soak, at))


def explain_duplicates(soak: Soak, receiver: Receiver, stack: ProcessStack, started: float) -> None:
    """For each duplicate not in flight at a kill -9: when each copy arrived, the faults
    around it and the dispatcher's lines of that delivery (times from the soak's start)."""
    delivered = soak.delivered(receiver)
    copies: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
    for received in receiver.received:
        upload = received.json()["data"]["upload_id"]
        if delivered[upload] > 1:
            copies[upload].append((received.at, received.headers.get("webhook-id", "")))
    lines = stack.log_lines("dispatcher")
    for upload, arrivals in copies.items():
        first = min(at for at, _ in arrivals)
        if at_a_kill(soak, first):
            continue
        delivery_id = arrivals[0][1]
        print(f"  duplicate {delivery_id} (upload {upload}) arrived at", end="")
        print(", ".join(f" {at - started:.2f} s" for at, _ in sorted(arrivals)))
        for name, began, ended in soak.windows:
            if began - 15 <= first <= ended + 15:
                print(f"    {name}: {began - started:.2f}-{ended - started:.2f} s")
        for line in lines:
            if line.get("delivery_id") == delivery_id:
                print(f"    dispatcher: {json.dumps(line)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uploads", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=50.0, help="uploads per second")
    args = parser.parse_args()
    print(f"soak: {args.uploads} uploads at {args.rate:g}/s while faults repeat ...", flush=True)
    result = asyncio.run(run(args.uploads, args.rate))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2))
    print()
    print(
        "| accepted | refused (503) | delivered | duplicates (in flight at a kill -9) | lost "
        "| faults | max recovery |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {result['accepted']} | {sum(result['refused'].values())} | {result['delivered']} "  # type: ignore[attr-defined]
        f"| {result['duplicates']} ({result['duplicates_in_flight_at_a_kill']}) "
        f"| {result['lost']} | {result['faults']} | {result['max_recovery_s']} s |"
    )
    # Lost, or sent twice other than by a process dying mid-delivery: a failure.
    if result["lost"] or result["duplicates"] != result["duplicates_in_flight_at_a_kill"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
