"""The asyncpg pool: short timeouts, jsonb as Python objects, opened in a cleanup context."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg
import orjson
import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
CONNECT_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 10.0
ACQUIRE_TIMEOUT_SECONDS = 5.0
# What a database outage or failover raises: the request gets a 503, never a 500.
# A failover (SPEC section 18) adds: the server shut down under the connection; no host of a
# multi-host DATABASE_URL accepts writes yet (TargetServerAttributeNotMatched: the standby is
# up, not yet promoted); a write reached a server that has become read-only.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.TargetServerAttributeNotMatched,
)
# What any statement may raise when the database is down, slow or refuses: worth a retry.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.TargetServerAttributeNotMatched,
    TimeoutError,
)
# An idle connection is closed after this; see create_pool on failovers.
IDLE_CONNECTION_LIFETIME_SECONDS = 60.0
# How long a HeldConnection is kept without a statement before it goes back to its pool.
HELD_IDLE_SECONDS = 1.0
# How long a connection keeps a prepared statement (asyncpg's default: 300 s) when its
# pool asks for generic plans (see create_pool): the plan is then made again from the
# tables as they are, so one made while a table was nearly empty does not last.
GENERIC_PLAN_LIFETIME_SECONDS = 2.0


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + orjson.dumps(value)


def _decode_jsonb(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb as Python objects: for every pooled connection, and a command's own."""
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )


def server_read_only(conn: asyncpg.Connection) -> bool:
    """What the server last reported of itself; PostgreSQL 14+ reports both settings to every
    session whenever they change, so this costs no round trip."""
    settings = conn.get_settings()
    reported = (
        getattr(settings, "default_transaction_read_only", "off"),
        getattr(settings, "in_hot_standby", "off"),
    )
    return "on" in reported


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Roll back what a failed request left open, and drop a connection to a server that
    no longer accepts writes (asyncpg terminates a connection whose reset fails, and the
    next one goes to the writable host); nothing else needs resetting.

    asyncpg's default reset costs a round trip on every release (RESET ALL, UNLISTEN,
    advisory-unlock); we keep no session state: no SET, LISTEN or session locks.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")
    if server_read_only(conn):
        raise asyncpg.ReadOnlySQLTransactionError("the server no longer accepts writes")


async def create_pool(dsn: str, max_size: int = 10, generic_plans: bool = False) -> asyncpg.Pool:
    """A pool that opens connections lazily, so a service starts while the database is down.

    `generic_plans`: for a pool whose statements look rows up by key, often over arrays of
    ids (`unnest($1::uuid[])`): each prepared statement keeps one plan, made afresh every
    GENERIC_PLAN_LIFETIME_SECONDS. Left to itself PostgreSQL may plan such a statement on
    every run (a generic plan's guess of ten array elements looks dearer than a custom
    plan for one or two), which costs more CPU than running it.

    Failover (SPEC section 18): every new connection goes to the host that DATABASE_URL's
    target_session_attrs=read-write picks, so the pool follows a promotion by itself. The
    connections to the lost primary fail on their next use (a 503, or a retry in the
    workers), and the pool replaces a closed connection on its next acquire. A server
    leaves read-write only by restarting, which closes them all; should one be reached
    read-only all the same (a proxy in front of a demoted server), its writes fail with
    ReadOnlySQLTransactionError, an outage too, and the connection is dropped when it is
    given back (_reset_connection).
    """
    options: dict[str, Any] = {}
    if generic_plans:
        options["server_settings"] = {"plan_cache_mode": "force_generic_plan"}
        options["max_cached_statement_lifetime"] = GENERIC_PLAN_LIFETIME_SECONDS
    pool = await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT_SECONDS,
        command_timeout=COMMAND_TIMEOUT_SECONDS,
        init=init_connection,
        reset=_reset_connection,
        max_inactive_connection_lifetime=IDLE_CONNECTION_LIFETIME_SECONDS,
        **options,
    )
    assert pool is not None
    return pool


def db_pool_ctx(
    dsn: str, max_size: int = 10, generic_plans: bool = False
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(dsn, max_size, generic_plans)
        app[DB_POOL] = pool
        yield
        await pool.close()

    return ctx


def database_check(app: web.Application) -> Callable[[], Any]:
    async def database() -> None:
        async with app[DB_POOL].acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
            await conn.fetchval("SELECT 1")

    return database


class HeldConnection:
    """A pool's connection kept by one user that runs one statement at a time (a Batcher's
    batches), from one statement to the next, and given back after HELD_IDLE_SECONDS
    without one: acquiring and releasing around each statement costs the client about as
    much CPU as the statement itself. After any error it goes back at once (a broken one
    is replaced on the next statement). `fetch` is the pool's, for its statements."""

    def __init__(self, pool: asyncpg.Pool, idle_seconds: float = HELD_IDLE_SECONDS) -> None:
        self.pool = pool
        self.idle_seconds = idle_seconds
        self.conn: Any = None  # the pool's proxy of the connection held
        self.busy = False
        self.last_used = 0.0
        self.idle_check: asyncio.TimerHandle | None = None
        self.releasing: set[asyncio.Future[None]] = set()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        if self.busy:  # not the one-at-a-time use it is for: no harm, just no gain
            rows: list[asyncpg.Record] = await self.pool.fetch(query, *args)
            return rows
        self.busy = True
        try:
            if self.conn is None:
                self.conn = await self.pool.acquire()
            rows = await self.conn.fetch(query, *args)
        except BaseException:
            await self.give_back()
            raise
        finally:
            self.busy = False
        loop = asyncio.get_running_loop()
        self.last_used = loop.time()
        if self.idle_check is None:
            self.idle_check = loop.call_later(self.idle_seconds, self.on_idle_check)
        return rows

    async def give_back(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await self.pool.release(conn)

    def on_idle_check(self) -> None:
        self.idle_check = None
        if self.conn is None:
            return
        loop = asyncio.get_running_loop()
        idle_for = loop.time() - self.last_used
        if self.busy or idle_for < self.idle_seconds:
            wait = self.idle_seconds if self.busy else self.idle_seconds - idle_for
            self.idle_check = loop.call_later(wait, self.on_idle_check)
            return
        release = asyncio.ensure_future(self.release_idle())
        self.releasing.add(release)
        release.add_done_callback(self.releasing.discard)

    async def release_idle(self) -> None:
        try:
            await self.give_back()
        except Exception as exc:  # the pool has dropped the connection: nothing to keep
            log.warning("held_connection_release_failed", error=repr(exc))


def field_arrays(rows: Sequence[Any], *names: str) -> list[list[Any]]:
    """One list per named attribute across `rows`: the arrays that a statement over
    `unnest($1::uuid[], $2::text[], ...)` takes, one row per batch item."""
    return [[getattr(row, name) for row in rows] for name in names]


def columns(rows: Sequence[Any]) -> list[list[Any]]:
    """field_arrays of every dataclass field of `rows`, in field order."""
    return field_arrays(rows, *(field.name for field in dataclasses.fields(rows[0])))
