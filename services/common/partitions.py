"""Day partitions of events, deliveries, delivery_attempts and error_log (docs/partitions.md):
made two days ahead, and dropped whole by retention once every row of the day may go.

A day is [00:00, 24:00) UTC; its partition of table T is T_pYYYYMMDD (migration 0017 made
the first ones). Attempts and error-log rows are partitioned by their delivery's
created_at, and a fan-out's deliveries have their event's time, so one day of the four
tables holds whole events with all of their history, and goes together.

Partition DDL locks the partitioned table for a moment, and while a lock request waits,
every later statement on the table queues behind it. So each DDL statement here waits for
its locks at most LOCK_TIMEOUT_MS and is tried again later: ingest is never held up for
longer than that, whatever reads or writes are running.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import asyncpg
import structlog
from aiohttp import web

from .db import DB_POOL
from .periodic import Periodic

log = structlog.get_logger(__name__)

# Each partitioned table and the storage parameters of its partitions (deliveries keeps the
# room its claims need, migration 0010). In the order ingest writes them (an event, then its
# deliveries), which is the order retention locks them in.
PARTITIONED: dict[str, str] = {
    "events": "",
    "deliveries": "WITH (fillfactor = 60)",
    "delivery_attempts": "",
    "error_log": "",
}
# Made this many days ahead, at start and every hour: two days of hourly tries before a
# day is needed. Not more: every statement on a partitioned table plans and locks each of
# its partitions that a row may be in, so nine partitions instead of four made each
# delivery's statements dearer (bench: events, about 10 % of PostgreSQL's CPU).
DAYS_AHEAD = 2
MAINTENANCE_INTERVAL_SECONDS = 3600.0
LOCK_TIMEOUT_MS = 20
# Tries of a statement refused for its lock timeout, RETRY_PAUSE_SECONDS apart, before the
# work is left for the next run.
LOCK_TRIES = 50
RETRY_PAUSE_SECONDS = 0.1
DAY_PARTITION = re.compile(r"^(?P<table>[a-z_]+)_p(?P<day>\d{8})$")

T = TypeVar("T")


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def with_short_locks(
    pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T | None:
    """`work(conn)` in a transaction whose lock waits end after LOCK_TIMEOUT_MS, tried again
    until it gets its locks; None if it never did."""
    for _ in range(LOCK_TRIES):
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
                return await work(conn)
        except asyncpg.LockNotAvailableError:
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
    return None


async def execute_with_short_locks(pool: asyncpg.Pool, statement: str) -> bool:
    """One DDL statement, as with_short_locks runs it; False if it never got its locks."""

    async def execute(conn: asyncpg.Connection) -> bool:
        await conn.execute(statement)
        return True

    return bool(await with_short_locks(pool, execute))


async def partition_days(pool: asyncpg.Pool, *, attached: bool) -> dict[date, set[str]]:
    """The day partitions that exist (`attached`), or the tables of that name a retention
    run detached and has not dropped yet (not `attached`), by day."""
    rows = await pool.fetch(
        """
        SELECT relname FROM pg_class
        WHERE relkind IN ('r', 'p') AND relnamespace = current_schema()::regnamespace
          AND relispartition = $1 AND relname ~ '_p[0-9]{8}$'
        """,
        attached,
    )
    days: dict[date, set[str]] = {}
    for row in rows:
        match = DAY_PARTITION.match(row["relname"])
        if match and match["table"] in PARTITIONED:
            day = datetime.strptime(match["day"], "%Y%m%d").date()
            days.setdefault(day, set()).add(match["table"])
    return days


# --- made ahead ----------------------------------------------------------------------------------


async def create_ahead(pool: asyncpg.Pool, days_ahead: int = DAYS_AHEAD) -> int:
    """Make the partitions of today and the next `days_ahead` days that are missing; how
    many it made. A day whose rows already sit in the default partition is left there."""
    today: date = await pool.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    existing = await partition_days(pool, attached=True)
    made = 0
    for offset in range(days_ahead + 1):
        day = today + timedelta(days=offset)
        made += await create_day(pool, day, PARTITIONED.keys() - existing.get(day, set()))
    return made


async def create_day(pool: asyncpg.Pool, day: date, tables: Iterable[str] = PARTITIONED) -> int:
    """Make the day's partition of each of `tables` unless it exists; how many it made."""
    made = 0
    for table in tables:
        statement = (
            f"CREATE TABLE IF NOT EXISTS {partition_name(table, day)} PARTITION OF {table}"
            f" FOR VALUES FROM ('{day_start(day).isoformat()}')"
            f" TO ('{day_start(day + timedelta(days=1)).isoformat()}') {PARTITIONED[table]}"
        )
        try:
            if not await execute_with_short_locks(pool, statement):
                log.warning("partition_lock_busy", table=table, day=day.isoformat())
                continue
        except asyncpg.CheckViolationError as exc:
            log.warning("partition_default_holds_day", table=table, error=str(exc))
            continue
        made += 1
    return made


async def maintenance_ctx(app: web.Application) -> AsyncIterator[None]:
    """An aiohttp cleanup context: the partitions ahead, made at start and every hour."""
    pool = app[DB_POOL]
    async with Periodic(
        lambda: create_ahead(pool),
        MAINTENANCE_INTERVAL_SECONDS,
        "partition_maintenance_failed",
        immediately=True,
    ):
        yield


# --- dropped by retention ------------------------------------------------------------------------


@dataclass
class DroppedDays:
    """What dropping whole days removed."""

    days: list[date] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


# A day may go when nothing in it must stay: no pending delivery, none active since the
# cutoff (a redelivery keeps a delivery's whole history), no event still fanning out. Each
# is one probe of a partial index.
KEEPS = {
    "deliveries": """
        SELECT EXISTS (SELECT 1 FROM {name} WHERE status = 'pending')
            OR EXISTS (SELECT 1 FROM {name} WHERE status <> 'pending' AND updated_at >= $1)
    """,
    "events": "SELECT EXISTS (SELECT 1 FROM {name} WHERE fanned_out_at IS NULL)",
}


async def day_keeps_rows(
    conn: asyncpg.Connection | asyncpg.Pool, tables: set[str], day: date, cutoff: datetime
) -> bool:
    for table, query in KEEPS.items():
        if table in tables:
            statement = query.format(name=partition_name(table, day))
            if await conn.fetchval(statement, *([cutoff] if "$1" in statement else [])):
                return True
    return False


async def detach_day(pool: asyncpg.Pool, day: date, tables: set[str], cutoff: datetime) -> bool:
    """Detach the day's partitions in one transaction, if nothing in them must stay (checked
    again under the detach's lock, so that a redelivery a moment earlier keeps its day)."""

    async def detach(conn: asyncpg.Connection) -> bool:
        for table in PARTITIONED:
            if table in tables:
                await conn.execute(
                    f"ALTER TABLE {table} DETACH PARTITION {partition_name(table, day)}"
                )
        if await day_keeps_rows(conn, tables, day, cutoff):
            raise KeptDay
        return True

    try:
        detached = await with_short_locks(pool, detach)
    except KeptDay:
        return False
    return bool(detached)


class KeptDay(Exception):
    """Rolls back a detach: a row of the day must stay."""


async def drop_detached(pool: asyncpg.Pool, result: DroppedDays) -> None:
    """Drop the tables that were detached (this run's, or a run's that stopped before)."""
    for day, tables in sorted((await partition_days(pool, attached=False)).items()):
        for table in PARTITIONED:
            if table not in tables:
                continue
            name = partition_name(table, day)
            rows: int = await pool.fetchval(f"SELECT count(*) FROM {name}")
            # The drop locks the tables its foreign keys point at (uploads, webhooks) too.
            if await execute_with_short_locks(pool, f"DROP TABLE {name}"):
                result.rows[table] = result.rows.get(table, 0) + rows
            else:
                log.warning("partition_lock_busy", table=table, day=day.isoformat())


async def drop_days_before(pool: asyncpg.Pool, cutoff: datetime) -> DroppedDays:
    """Drop every day that ends at or before `cutoff` and has nothing that must stay. The
    rest (a day with a row to keep, the cutoff's own day, the default partitions) is left
    to the batched deletes."""
    result = DroppedDays()
    for day, tables in sorted((await partition_days(pool, attached=True)).items()):
        if day_start(day + timedelta(days=1)) > cutoff:
            continue
        if await day_keeps_rows(pool, tables, day, cutoff):
            continue
        if await detach_day(pool, day, tables, cutoff):
            result.days.append(day)
        else:
            log.info("partition_day_kept", day=day.isoformat())
    await drop_detached(pool, result)
    return result
