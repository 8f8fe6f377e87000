"""`--only big-tables` (SPEC section 18): 10 million deliveries over 30 days and 1,000 webhooks,
with their events, attempts and errors; then the list, stats and event routes' p99, the
end-to-end rate beside the same run on the empty database, and one day's retention: its
time and how long ingest waits meanwhile.

The rows are made in SQL in the bench's own database, a day at a time into a table of its
own that is then attached as that day's partition (its indexes built once, sorted, rather
than row by row)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench import loadgen
from bench.measure import MULTIPART_HEADERS, multipart_body, percentile
from bench.scenarios import end_to_end
from bench.stack import Bench
from services.common import partitions
from services.common.retention import prune

DAYS = 30
WEBHOOKS = 1000
USER_ID = 42
# Each event fans out to this many webhooks; a delivery in FAILED_EVERY failed after
# three attempts (each with its error-log row), the rest succeeded at the first.
DELIVERIES_PER_EVENT = 4
FAILED_EVERY = 25
REQUESTS_PER_ROUTE = 400
CLIENTS = 4
INGEST_CLIENTS = 4

SEED_WEBHOOKS = """
    WITH t AS (
        INSERT INTO event_types (name, description, event_name)
        VALUES ('bench.big', 'big-tables bench', 'bench.big') RETURNING id
    ), w AS (
        INSERT INTO webhook_registrations (user_id, event_type_id, url, secret)
        SELECT $1, t.id, 'http://127.0.0.1:9/big/' || n, 'c2VjcmV0LXNlY3JldC1zZWNyZXQ='
        FROM t, generate_series(1, $2) n
        RETURNING id, event_type_id, user_id
    ), c AS (
        INSERT INTO webhook_configurations (webhook_id) SELECT id FROM w
    )
    INSERT INTO webhook_event_types (webhook_id, event_type_id, user_id, position)
    SELECT id, event_type_id, user_id, 0 FROM w
"""

# $1 the day's start, $2 its events; the table names are the day's partitions.
SEED_DAY = [
    """
    INSERT INTO {events} (id, event_type_id, user_id, payload, request_id, fanned_out_at,
                          created_at)
    SELECT gen_random_uuid(), t.id, {user_id},
           jsonb_build_object('n', n, 'invoice', 'inv-' || n, 'amount', n % 1000),
           'bench', at, at
    FROM (SELECT id FROM event_types WHERE name = 'bench.big') t,
         generate_series(0, $2 - 1) n,
         LATERAL (SELECT $1::timestamptz + n * (interval '1 day' / $2) AS at) m
    """,
    """
    WITH w AS (
        SELECT array_agg(id ORDER BY id) AS ids FROM webhook_registrations
        WHERE user_id = {user_id}
    )
    INSERT INTO {deliveries} (id, webhook_id, event_id, event_type, event_time, event_data,
                              status, attempt_count, next_retry_at, last_error, request_id,
                              created_at, updated_at)
    SELECT gen_random_uuid(),
           w.ids[1 + ((e.payload->>'n')::int * {per_event} + k) % cardinality(w.ids)],
           e.id, 'bench.big', e.created_at, e.payload,
           CASE WHEN failed THEN 'failed' ELSE 'succeeded' END,
           CASE WHEN failed THEN 3 ELSE 1 END, NULL,
           CASE WHEN failed THEN 'HTTP 500' END, 'bench', e.created_at,
           e.created_at + interval '1 second'
    FROM w, {events} e, generate_series(0, {per_event} - 1) k,
         -- Spread over the webhooks: each sees one delivery in {failed_every} fail.
         LATERAL (SELECT ((e.payload->>'n')::int / cardinality(w.ids) + k) % {failed_every} = 0
                  AS failed) f
    """,
    """
    INSERT INTO {attempts} (delivery_id, delivery_created_at, attempt, status_code,
                            response_body, error, duration_ms, created_at)
    SELECT d.id, d.created_at, a, CASE WHEN d.status = 'failed' THEN 500 ELSE 200 END,
           '', CASE WHEN d.status = 'failed' THEN 'HTTP 500' END, 12,
           d.created_at + a * interval '1 second'
    FROM {deliveries} d, generate_series(1, d.attempt_count) a
    """,
    """
    INSERT INTO {errors} (delivery_id, delivery_created_at, error_message, retry_count,
                          next_retry_time, created_at)
    SELECT d.id, d.created_at, 'HTTP 500', a, NULL, d.created_at + a * interval '1 second'
    FROM {deliveries} d, generate_series(1, d.attempt_count) a
    WHERE d.status = 'failed'
    """,
]


async def seed_day(pool: asyncpg.Pool, day: date, events_per_day: int) -> None:
    """One day: its four tables made and filled on their own, then attached."""
    names = {
        table: f"bench_{partitions.partition_name(table, day)}" for table in partitions.PARTITIONED
    }
    async with pool.acquire() as conn:
        for table, storage in partitions.PARTITIONED.items():
            await conn.execute(
                f"CREATE TABLE {names[table]}"
                f" (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) {storage}"
            )
        for statement in SEED_DAY:
            sql = statement.format(
                events=names["events"],
                deliveries=names["deliveries"],
                attempts=names["delivery_attempts"],
                errors=names["error_log"],
                user_id=USER_ID,
                per_event=DELIVERIES_PER_EVENT,
                failed_every=FAILED_EVERY,
            )
            params = (partitions.day_start(day), events_per_day) if "$1" in sql else ()
            await conn.execute(sql, *params)
        for table in partitions.PARTITIONED:
            end = partitions.day_start(day + timedelta(days=1))
            await conn.execute(
                f"ALTER TABLE {table} ATTACH PARTITION {names[table]}"
                f" FOR VALUES FROM ('{partitions.day_start(day).isoformat()}')"
                f" TO ('{end.isoformat()}')"
            )
            await conn.execute(
                f"ALTER TABLE {names[table]} RENAME TO {partitions.partition_name(table, day)}"
            )


async def seed(pool: asyncpg.Pool, rows: int) -> dict[str, float]:
    """`rows` deliveries over the DAYS days before today, two days at a time."""
    started = time.monotonic()
    await pool.execute(SEED_WEBHOOKS, USER_ID, WEBHOOKS)
    today: date = await pool.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    events_per_day = max(1, rows // DAYS // DELIVERIES_PER_EVENT)
    days = [today - timedelta(days=offset) for offset in range(DAYS, 0, -1)]
    queue: asyncio.Queue[date] = asyncio.Queue()
    for day in days:
        queue.put_nowait(day)

    async def worker() -> None:
        while not queue.empty():
            day = queue.get_nowait()
            await seed_day(pool, day, events_per_day)
            print(f"    seeded {day}", flush=True)

    await asyncio.gather(worker(), worker())
    seeded = time.monotonic() - started
    # As autovacuum would have by now: statistics for the planner, the visibility map.
    for table in partitions.PARTITIONED:
        await pool.execute(f"VACUUM (ANALYZE) {table}")
    # The seed's gigabytes written back now, not during the runs measured next.
    await pool.execute("CHECKPOINT")
    counts = {
        table: await pool.fetchval(f"SELECT count(*) FROM {table}")
        for table in partitions.PARTITIONED
    }
    return {"seed_s": seeded, "vacuum_analyze_s": time.monotonic() - started - seeded, **counts}


async def latencies(port: int, requests: list[bytes]) -> list[float]:
    """Each request once, from CLIENTS keep-alive connections at once; each one's ms. Any answer
    other than 200 ends the bench: a fast error is not a fast answer."""
    taken: list[float] = []
    pending = list(reversed(requests))

    async def client(connection: loadgen.Connection) -> None:
        while pending:
            request = pending.pop()
            started = time.perf_counter()
            status, body = await connection.send(request)
            taken.append((time.perf_counter() - started) * 1000)
            assert status == 200, (status, body[:300])

    async with loadgen.connections(port, CLIENTS) as opened:
        await asyncio.gather(*(client(connection) for connection in opened))
    return taken


def summary(taken: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(taken, 0.5), "p99_ms": percentile(taken, 0.99)}


async def route_latencies(bench: Bench, pool: asyncpg.Pool) -> dict[str, dict[str, float]]:
    port = bench.gateway_port
    webhooks = [
        str(row["id"])
        for row in await pool.fetch(
            "SELECT id FROM webhook_registrations WHERE user_id = $1 ORDER BY random() LIMIT $2",
            USER_ID,
            REQUESTS_PER_ROUTE,
        )
    ]
    events = [
        str(row["id"])
        for row in await pool.fetch(
            "SELECT id FROM events TABLESAMPLE SYSTEM (1) LIMIT $1", REQUESTS_PER_ROUTE
        )
    ]

    def get(path: str) -> bytes:
        return loadgen.build_request("GET", port, path)

    # Second pages: the cursor of each webhook's first page.
    first_pages = []
    for webhook in webhooks[:50]:
        status, body = await loadgen.Connection(port).send(
            get(f"/webhook/{webhook}/deliveries?limit=50")
        )
        assert status == 200, body[:300]
        first_pages.append((webhook, orjson.loads(body)["next_cursor"]))
    routes: dict[str, list[bytes]] = {
        "GET /webhook/{id}/deliveries?limit=50": [
            get(f"/webhook/{w}/deliveries?limit=50") for w in webhooks
        ],
        "GET /webhook/{id}/deliveries?status=failed": [
            get(f"/webhook/{w}/deliveries?limit=50&status=failed") for w in webhooks
        ],
        "GET /webhook/{id}/deliveries, next page": [
            get(f"/webhook/{w}/deliveries?limit=50&cursor={c}") for w, c in first_pages * 8
        ],
        "GET /webhook/{id}/stats (24 h)": [get(f"/webhook/{w}/stats") for w in webhooks],
        "GET /webhook/{id}/stats?hours=168": [
            get(f"/webhook/{w}/stats?hours=168") for w in webhooks
        ],
        "GET /event?user_id=42&limit=50": [get(f"/event?user_id={USER_ID}&limit=50")]
        * REQUESTS_PER_ROUTE,
        "GET /event/{id}": [get(f"/event/{e}") for e in events],
        "GET /delivery/{id}": [],
    }
    deliveries = await pool.fetch(
        "SELECT id FROM deliveries TABLESAMPLE SYSTEM (0.1) LIMIT $1", REQUESTS_PER_ROUTE
    )
    routes["GET /delivery/{id}"] = [get(f"/delivery/{row['id']}") for row in deliveries]
    measured = {}
    for name, requests in routes.items():
        await latencies(port, requests[:20])  # warm the connections and the plans
        measured[name] = summary(await latencies(port, requests))
        print(f"    {name}: {measured[name]}", flush=True)
    return measured


async def while_ingesting(
    bench: Bench, pool: asyncpg.Pool, work: Callable[[], Awaitable[Any]]
) -> dict[str, float]:
    """Uploads from INGEST_CLIENTS connections before and while `work` runs, and the longest
    lock wait seen in the database meanwhile: how long retention holds ingest up."""
    port = bench.gateway_port
    webhook = await bench.register(f"{bench.receivers[0].url}/hook")
    request = loadgen.build_request(
        "POST", port, f"/upload_file/webhook_id/{webhook}", multipart_body(1024), MULTIPART_HEADERS
    )
    phase = "before"
    taken: dict[str, list[float]] = {"before": [], "during": []}
    running = True

    async def client(connection: loadgen.Connection) -> None:
        while running:
            started = time.perf_counter()
            status, _ = await connection.send(request)
            taken[phase].append((time.perf_counter() - started) * 1000)
            assert status == 200, status

    longest_lock_wait = 0.0

    async def watch_locks() -> None:
        nonlocal longest_lock_wait
        while running:
            waited = await pool.fetchval(
                """
                SELECT coalesce(max(extract(epoch FROM clock_timestamp() - state_change)), 0)
                FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock'
                """
            )
            if phase == "during":
                longest_lock_wait = max(longest_lock_wait, float(waited) * 1000)
            await asyncio.sleep(0.005)

    async with loadgen.connections(port, INGEST_CLIENTS) as opened:
        tasks = [asyncio.create_task(client(c)) for c in opened]
        watcher = asyncio.create_task(watch_locks())
        await asyncio.sleep(3.0)
        phase = "during"
        started = time.monotonic()
        outcome = await work()
        took = time.monotonic() - started
        running = False
        await asyncio.gather(*tasks, watcher)
    return {
        "retention_s": took,
        "ingest_max_ms_before": max(taken["before"]),
        "ingest_p99_ms_before": percentile(taken["before"], 0.99),
        "ingest_max_ms_during": max(taken["during"]),
        "ingest_p99_ms_during": percentile(taken["during"], 0.99),
        "uploads_during": len(taken["during"]),
        "longest_lock_wait_ms": longest_lock_wait,
        **outcome,
    }


async def big_tables(bench: Bench, rows: int, uploads: int, repeats: int) -> dict[str, Any]:
    print("  end to end on the empty database ...", flush=True)
    empty = [await end_to_end(bench, uploads, 32) for _ in range(repeats)]
    # No command timeout: a day's rows, and the VACUUM after, take longer than a request.
    pool = await asyncpg.create_pool(
        bench.database_url, min_size=0, max_size=4, command_timeout=None
    )
    assert pool is not None
    try:
        print(f"  seeding {rows:,} deliveries over {DAYS} days ...", flush=True)
        seeded = await seed(pool, rows)
        print(f"    {seeded}", flush=True)
        routes = await route_latencies(bench, pool)
        print("  end to end with them there ...", flush=True)
        loaded = [await end_to_end(bench, uploads, 32) for _ in range(repeats)]

        async def one_day() -> dict[str, float]:
            # The oldest day is past a 29-day retention whole; it goes, nothing else does.
            result = await prune(pool, Path(bench.workdir / "uploads"), DAYS - 1)
            return {
                "days_dropped": result.days_dropped,
                "deliveries_removed": result.deliveries,
                "attempts_removed": result.delivery_attempts,
                "events_removed": result.events,
            }

        print("  one day's retention while uploads come in ...", flush=True)
        retention = await while_ingesting(bench, pool, one_day)
        print(f"    {retention}", flush=True)
    finally:
        await pool.close()
    return {
        "rows": rows,
        "clients": CLIENTS,
        "seed": seeded,
        "routes": routes,
        "e2e_empty_per_s": sorted(run["deliveries_per_s"] for run in empty)[len(empty) // 2],
        "e2e_loaded_per_s": sorted(run["deliveries_per_s"] for run in loaded)[len(loaded) // 2],
        "e2e_lost": sum(run["lost"] for run in empty + loaded),
        "retention": retention,
    }
