"""Delivery state: the only writer of the deliveries, delivery_attempts and error_log tables."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from . import events, ordering, system_events, waiting, webhooks
from .db import HeldConnection, columns
from .delivery_records import (
    DELIVERY_COLUMNS,
    RECOVERABLE_STATUSES,
    AttemptRecord,
    ClaimedDelivery,
    ClaimRequest,
    PlaceInLine,
    Pruned,
    RecordedAttempt,
    StalledDelivery,
    claimed_delivery,
    deleted_rows,
    recorded_attempt,
)

# Held while an attempt is under way; another copy of the message waits it out.
LEASE_MARGIN_SECONDS = 10.0
SWEEP_LOCK_KEY = 0x5EB400C  # advisory lock: one sweeper at a time across replicas

# --- create -------------------------------------------------------------------------------------


def create_from(source: str, *, once_per_event: bool = False) -> str:
    """SQL that creates a delivery for each row of `source` (a CTE or table with
    delivery_records.SOURCE_COLUMNS), due at once; to a disabled webhook it is recorded
    as not_attempted and never sent. A producer puts it in its own statement, as a CTE or
    alone, and may add a RETURNING clause. `once_per_event`: a row whose event already has
    a delivery to that webhook is skipped (a fan-out run again after a crash)."""
    conflict = (
        # created_at is the event's time, the same for each of its deliveries: the key is
        # (event, webhook), with the partition key that a partitioned unique index needs.
        "ON CONFLICT (event_id, webhook_id, created_at) WHERE event_id IS NOT NULL DO NOTHING"
        if once_per_event
        else ""
    )
    return f"""
        INSERT INTO deliveries (id, webhook_id, upload_id, event_id, event_type, event_time,
                                event_data, status, next_retry_at, request_id, created_at,
                                ordering_key, ordering_seq)
        SELECT delivery_id, webhook_id, upload_id, event_id, event_type, event_time,
               event_data, CASE WHEN disabled THEN 'not_attempted' ELSE 'pending' END,
               event_time, request_id, event_time, ordering_key, ordering_seq
        FROM {source}
        {conflict}
    """


# --- claim and attempt (the dispatcher) ---------------------------------------------------------


# Most claims are of deliveries made in the last day or two (a first attempt, a retry
# minutes later): looked for there first, in those days' partitions alone, and by id in
# every day's only when not found (bench: big-tables, where 30 days of partitions made
# every claim probe 40 primary keys).
RECENT = "AND d.created_at >= now() - interval '2 days'"


# The rows of a batch, named again beside the join on unnest: their ids (an array) and the
# range of their created_at, so the planner reads them by primary key in the partitions
# of those days alone, however out of date its statistics. (Joined alone, a table it
# thinks small was read whole for each batch: the pending deliveries through their
# index, dead entries and all, or today's partition row by row. An array of times
# instead of their range would make the index try every id with every time.)
def by_primary_key(ids: str, first: str, last: str) -> str:
    return f"d.id = ANY ({ids}) AND d.created_at BETWEEN {first} AND {last}"


def time_range(times: list[datetime]) -> tuple[datetime, datetime]:
    return min(times), max(times)


# A message that names its delivery's created_at: the whole primary key, one partition
# (the ids as an array are in every claim: `claim`).
WITHIN_ITS_DAY = (
    "AND d.created_at = m.created_at AND d.created_at BETWEEN $6::timestamptz AND $7::timestamptz"
)


async def claim_many(
    pool: asyncpg.Pool | HeldConnection, requests: list[ClaimRequest], lease_seconds: float
) -> list[ClaimedDelivery | None]:
    """Take the lease of each (delivery, attempt); None where it is not due, done, or held.

    The lease lasts the webhook's own timeout (else `lease_seconds`) plus a margin.
    Only lease_until changes (no index covers it), so the update can stay heap-only. A
    delivery with an ordering key is claimed only at the head of its line
    (ordering.at_head); one claimed there waits for nothing (waiting_for is cleared).
    The delivery ids must be distinct: one statement updates a row at most once.
    """
    claimed: dict[uuid.UUID, ClaimedDelivery] = {}
    dated = [request for request in requests if request.created_at is not None]
    if dated:
        days = time_range([request.created_at for request in dated if request.created_at])
        claimed.update(await claim(pool, dated, lease_seconds, WITHIN_ITS_DAY, *days))
    # Those not taken by their day (not due, done, held, or dated wrongly) are looked
    # for by id as before, so a message's created_at can only make a claim cheaper.
    rest = [request for request in requests if request.delivery_id not in claimed]
    if rest:
        claimed.update(await claim(pool, rest, lease_seconds, RECENT))
    rest = [request for request in rest if request.delivery_id not in claimed]
    if rest:
        claimed.update(await claim(pool, rest, lease_seconds, ""))
    return [claimed.get(request.delivery_id) for request in requests]


async def claim(
    pool: asyncpg.Pool | HeldConnection,
    requests: list[ClaimRequest],
    lease_seconds: float,
    within: str,
    *within_args: object,
) -> dict[uuid.UUID, ClaimedDelivery]:
    """claim_many's statement, for the deliveries `within` (SQL on `d`, with parameters
    from $6: `within_args`) allows."""
    rows = await pool.fetch(
        f"""
        UPDATE deliveries d
        SET lease_until = now() + make_interval(secs => coalesce(w.timeout_seconds, $3) + $4),
            waiting_for = NULL
        FROM unnest($1::uuid[], $2::int[], $5::timestamptz[]) AS m(id, attempt, created_at),
             webhook_registrations w
             JOIN webhook_configurations c ON c.webhook_id = w.id
        WHERE d.id = m.id AND d.id = ANY ($1::uuid[]) AND w.id = d.webhook_id {within}
          AND d.status = 'pending' AND d.attempt_count = m.attempt - 1
          AND (d.lease_until IS NULL OR d.lease_until < now())
          AND {ordering.at_head("d", "w.user_id")}
        RETURNING d.id, d.created_at, m.attempt, d.webhook_id, d.event_type, d.event_time,
                  d.event_data, d.request_id, w.url, w.secret, w.previous_secret,
                  (w.previous_secret_expires_at > now()) AS previous_valid,
                  w.disabled, w.deleted_at IS NOT NULL AS deleted, w.failing_since,
                  d.schedule_offset, c.custom_headers, c.custom_payload, w.user_id,
                  w.retry_schedule, w.timeout_seconds, c.auth, c.tls_client_certificate,
                  c.tls_ca, d.ordering_key
        """,
        [request.delivery_id for request in requests],
        [request.attempt for request in requests],
        lease_seconds,
        LEASE_MARGIN_SECONDS,
        [request.created_at for request in requests],
        *within_args,
    )
    return {row["id"]: claimed_delivery(row) for row in rows}


async def release_lease(pool: asyncpg.Pool, delivery_id: uuid.UUID, created_at: datetime) -> None:
    """Hand the attempt back unmade: the next copy of its message may claim it at once.
    (`created_at`, the claim's, finds the delivery's one partition.)"""
    await pool.execute(
        "UPDATE deliveries SET lease_until = NULL"
        " WHERE id = $1 AND created_at = $2 AND status = 'pending'",
        delivery_id,
        created_at,
    )


async def record_attempts(
    pool: asyncpg.Pool | HeldConnection, records: list[AttemptRecord]
) -> list[RecordedAttempt]:
    """Each attempt, its error-log row and its delivery's new state, each endpoint's
    health, and a delivery.failed event for each final failure, in one statement.

    An endpoint starts failing continuously when all of its attempts here failed, and
    is healthy again after any success. The delivery ids must be distinct.
    """
    rows = await pool.fetch(
        f"""
        WITH m AS (
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[],
                                 $5::float8[], $6::int[], $7::text[], $8::text[], $9::int[],
                                 $10::timestamptz[])
                AS m(delivery_id, webhook_id, attempt, status, retry_in, status_code,
                     error, response_body, duration_ms, delivery_created_at)
        ), updated AS (
            UPDATE deliveries d
            SET status = m.status, attempt_count = m.attempt, lease_until = NULL,
                last_error = m.error, next_retry_at = now() + make_interval(secs => m.retry_in),
                updated_at = now()
            FROM m
            -- With its partition key: one day's index, not every day's (bench: big-tables).
            WHERE d.id = m.delivery_id AND d.created_at = m.delivery_created_at
              AND {by_primary_key("$1::uuid[]", "$12::timestamptz", "$13::timestamptz")}
              AND d.attempt_count = m.attempt - 1
            RETURNING d.id, d.created_at, d.next_retry_at, m.webhook_id, m.attempt,
                      m.status_code, m.error, m.response_body, m.duration_ms, m.status,
                      d.event_type, d.request_id
        ), attempt_rows AS (
            INSERT INTO delivery_attempts (delivery_id, delivery_created_at, attempt,
                                           status_code, response_body, error, duration_ms)
            SELECT id, created_at, attempt, status_code, response_body, error, duration_ms
            FROM updated
        ), error_rows AS (
            INSERT INTO error_log (delivery_id, delivery_created_at, error_message, retry_count,
                                   next_retry_time)
            SELECT id, created_at, error, attempt, next_retry_at FROM updated
            WHERE error IS NOT NULL
        ), {webhooks.record_health_from("updated")},
        failure_source AS ({system_events.delivery_failed_source("updated", "$11")}
        ), {events.accept_from("failure_source", "failure")}
        SELECT u.id, f.outbox_id, f.event_id, u.request_id
        FROM updated u
        LEFT JOIN failure a ON (a.payload->>'delivery_id')::uuid = u.id
        LEFT JOIN failure_fanout f ON f.event_id = a.id
        """,
        *columns(records),  # in AttemptRecord's field order
        list(system_events.OPERATIONAL_EVENT_TYPES),
        *time_range([record.delivery_created_at for record in records]),
    )
    recorded = {row["id"]: row for row in rows}
    return [recorded_attempt(recorded.get(record.delivery_id)) for record in records]


async def finish_without_attempt(
    pool: asyncpg.Pool, delivery_id: uuid.UUID, created_at: datetime, status: str
) -> None:
    """A claimed delivery whose webhook was disabled (not_attempted) or deleted (cancelled)."""
    await pool.execute(
        """
        UPDATE deliveries SET status = $3, lease_until = NULL, next_retry_at = NULL,
                              waiting_for = NULL, updated_at = now()
        WHERE id = $1 AND created_at = $2
        """,
        delivery_id,
        created_at,
        status,
    )


async def reschedule_stalled(
    pool: asyncpg.Pool, overdue_seconds: float, limit: int = 500
) -> list[StalledDelivery]:
    """Pending deliveries long past due and unleased (their message was lost in a crash),
    made due now, so that the next sweep does not take them again at once."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SWEEP_LOCK_KEY):
            return []
        rows = await conn.fetch(
            """
            SELECT id, attempt_count + 1 AS attempt, request_id, webhook_id FROM deliveries
            WHERE status = 'pending' AND waiting_for IS NULL
              AND next_retry_at < now() - make_interval(secs => $1)
              AND (lease_until IS NULL OR lease_until < now())
            ORDER BY next_retry_at LIMIT $2
            """,
            overdue_seconds,
            limit,
        )
        await conn.execute(
            "UPDATE deliveries SET next_retry_at = now() WHERE id = ANY($1::uuid[])",
            [row["id"] for row in rows],
        )
    return [StalledDelivery(**dict(row)) for row in rows]


# --- ordered delivery: waiting behind an earlier delivery of the same key (ordering.py) ---


async def wait_behind(pool: asyncpg.Pool, delivery_id: uuid.UUID, attempt: int) -> PlaceInLine:
    """Make a keyed delivery, pending at `attempt` and unleased, wait behind the latest
    earlier pending one of its webhook and key; say where it stands."""
    row = await pool.fetchrow(
        f"""
        WITH me AS (
            SELECT d.id, d.webhook_id, d.ordering_key, d.ordering_seq, w.user_id
            FROM deliveries d JOIN webhook_registrations w ON w.id = d.webhook_id
            WHERE d.id = $1 AND d.status = 'pending' AND d.attempt_count = $2 - 1
              AND d.ordering_key IS NOT NULL
              AND (d.lease_until IS NULL OR d.lease_until < now())
        ), ahead AS (
            SELECT p.id FROM me d CROSS JOIN LATERAL (
                SELECT p.id, p.ordering_seq FROM {ordering.earlier_pending("d")}
                ORDER BY p.ordering_seq DESC LIMIT 1
            ) p
        ), held AS (
            UPDATE deliveries d SET waiting_for = (SELECT id FROM ahead)
            FROM me WHERE d.id = me.id
            RETURNING d.waiting_for
        )
        SELECT (SELECT waiting_for FROM held) AS waiting_for,
               EXISTS (SELECT 1 FROM me) AS found,
               EXISTS (SELECT 1 FROM me d WHERE {ordering.earlier_unfanned("d", "d.user_id")})
                   AS behind_fanout
        """,
        delivery_id,
        attempt,
    )
    assert row is not None
    if not row["found"]:
        return PlaceInLine()
    ahead: uuid.UUID | None = row["waiting_for"]
    if ahead is None:
        behind_fanout: bool = row["behind_fanout"]
        return PlaceInLine(at_head=not behind_fanout, behind_fanout=behind_fanout)
    # Read after our write is committed: if the one ahead has ended meanwhile, the
    # publish that followed its end may not have seen us, so we go on ourselves.
    if await waiting.still_pending(pool, ahead):
        return PlaceInLine(waiting_for=ahead)
    return PlaceInLine(at_head=True)


# --- cancel, restart (the management API) -------------------------------------------------------


async def cancel_for_webhook(conn: asyncpg.Connection, webhook_id: uuid.UUID) -> None:
    """Cancel the webhook's pending deliveries, in the caller's transaction that deletes it."""
    await conn.execute(
        """
        UPDATE deliveries
        SET status = 'cancelled', next_retry_at = NULL, lease_until = NULL, waiting_for = NULL,
            updated_at = now()
        WHERE webhook_id = $1 AND status = 'pending'
        """,
        webhook_id,
    )


# A new round of attempts: the dispatcher claims attempt attempt_count + 1 of a pending
# delivery, and counts the retry schedule from schedule_offset.
RESTART = """
    status = 'pending', schedule_offset = d.attempt_count, next_retry_at = now(),
    lease_until = NULL, waiting_for = NULL, updated_at = now()
"""


async def restart(pool: asyncpg.Pool, delivery_id: uuid.UUID) -> asyncpg.Record | None:
    """Make a delivery pending and due again whatever its status; None if unknown or its
    webhook is deleted. The row has DELIVERY_COLUMNS and request_id."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"""
        UPDATE deliveries d SET {RESTART}
        FROM webhook_registrations w
        WHERE d.id = $1 AND w.id = d.webhook_id AND w.deleted_at IS NULL
        RETURNING {DELIVERY_COLUMNS}, d.request_id
        """,
        delivery_id,
    )
    return row


async def restart_recoverable(
    pool: asyncpg.Pool,
    webhook_id: uuid.UUID,
    since: datetime,
    until: datetime,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> tuple[list[asyncpg.Record], tuple[datetime, uuid.UUID] | None]:
    """Restart the next batch of failed and not_attempted deliveries created between
    `since` and `until`, oldest first, in one transaction.

    Returns the restarted rows and the position to continue after (None when done). The
    position moves forward by creation time and id, so a delivery that fails again while
    the recover runs is not taken a second time.
    """
    async with pool.acquire() as conn, conn.transaction():
        batch = await conn.fetch(
            """
            SELECT d.id, d.created_at FROM deliveries d
            JOIN webhook_registrations w ON w.id = d.webhook_id AND w.deleted_at IS NULL
            WHERE d.webhook_id = $1 AND d.status = ANY($2::text[])
              AND d.created_at >= $3 AND d.created_at <= $4
              AND ($5::timestamptz IS NULL OR (d.created_at, d.id) > ($5, $6::uuid))
            ORDER BY d.created_at, d.id
            LIMIT $7
            FOR UPDATE OF d
            """,
            webhook_id,
            RECOVERABLE_STATUSES,
            since,
            until,
            after and after[0],
            after and after[1],
            limit,
        )
        if not batch:
            return [], None
        restarted: list[asyncpg.Record] = await conn.fetch(
            f"""
            UPDATE deliveries d SET {RESTART}
            WHERE d.id = ANY($1::uuid[]) AND d.status = ANY($2::text[])
            RETURNING d.id, d.webhook_id, d.attempt_count, d.request_id
            """,
            [row["id"] for row in batch],
            RECOVERABLE_STATUSES,
        )
    last = batch[-1]
    return restarted, (last["created_at"], last["id"])


# --- prune (retention) --------------------------------------------------------------------------


async def prune_batch(pool: asyncpg.Pool, cutoff: datetime, batch_size: int) -> Pruned:
    """Delete finished deliveries untouched since `cutoff`, with their attempts and errors:
    what retention cannot drop as whole days (services/common/partitions.py).

    A delivery's `updated_at` moves on every attempt, lease and redelivery, so one
    redelivered yesterday keeps its whole history however old it is. Pending ones are
    never touched, and rows someone else holds are skipped (SKIP LOCKED).
    """
    async with pool.acquire() as conn, conn.transaction():
        ids = [
            row["id"]
            for row in await conn.fetch(
                """
                SELECT id FROM deliveries
                WHERE status <> 'pending' AND updated_at < $1 AND created_at < $1
                ORDER BY updated_at LIMIT $2
                FOR UPDATE SKIP LOCKED
                """,
                cutoff,
                batch_size,
            )
        ]
        if not ids:
            return Pruned()
        # No foreign key cascades to a partitioned table's rows: delete the history here.
        attempts = await conn.execute(
            "DELETE FROM delivery_attempts WHERE delivery_id = ANY($1)", ids
        )
        errors = await conn.execute("DELETE FROM error_log WHERE delivery_id = ANY($1)", ids)
        deliveries = await conn.execute("DELETE FROM deliveries WHERE id = ANY($1)", ids)
    return Pruned(len(ids), deleted_rows(deliveries), deleted_rows(attempts), deleted_rows(errors))
