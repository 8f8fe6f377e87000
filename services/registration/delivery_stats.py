"""A webhook's deliveries counted by outcome, per hour and in all, over the last hours
(GET /webhook/{webhook_id}/stats): the console's chart and its 24 h success rate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, get_args

import asyncpg
from aiohttp import web
from pydantic import BaseModel, Field

from services.common.api.edge import query_of, respond
from services.common.api.shapes import ApiTime, Shape
from services.common.db import DB_POOL

from . import db
from .access import visible_to, webhook_id_of, webhook_not_found
from .queries import DeliveryStatus
from .views import OutcomeCounts

MAX_HOURS = 7 * 24
HOUR = timedelta(hours=1)


class StatsQuery(BaseModel):
    hours: Annotated[int, Field(ge=1, le=MAX_HOURS)] = Field(
        24, description="How far back, in hours (at most a week)."
    )


class HourOfDeliveries(OutcomeCounts):
    start: ApiTime = Field(description="The start of the hour (UTC).")


class DeliveryStats(Shape):
    webhook_id: uuid.UUID
    hours: int
    since: ApiTime = Field(description="Deliveries created at or after this time are counted.")
    until: ApiTime
    totals: OutcomeCounts
    attempted: Annotated[int, Field(ge=0)] = Field(
        description="Counted deliveries with at least one attempt made."
    )
    success_rate: Annotated[float, Field(ge=0, le=1)] | None = Field(
        description="succeeded / attempted (a delivery still retrying counts as not yet "
        "succeeded); null when nothing was attempted."
    )
    buckets: list[HourOfDeliveries] = Field(
        description="One per hour, oldest first, from the hour holding `since` to the current "
        "one; hours without deliveries are zeros."
    )


async def count_by_hour(
    pool: asyncpg.Pool, webhook_id: uuid.UUID, hours: int
) -> tuple[datetime, list[asyncpg.Record]]:
    """(now, rows of hour, status, count, attempted) for deliveries of the last `hours`."""
    async with pool.acquire() as conn:
        now: datetime = await conn.fetchval("SELECT now()")
        rows: list[asyncpg.Record] = await conn.fetch(
            """
            SELECT date_trunc('hour', created_at, 'UTC') AS hour, status, count(*) AS count,
                   count(*) FILTER (WHERE attempt_count > 0) AS attempted
            FROM deliveries
            WHERE webhook_id = $1 AND created_at >= $2
            GROUP BY 1, 2
            """,
            webhook_id,
            now - timedelta(hours=hours),
        )
    return now, rows


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def delivery_stats(
    webhook_id: uuid.UUID, hours: int, now: datetime, rows: list[asyncpg.Record]
) -> DeliveryStats:
    since = now - timedelta(hours=hours)
    first = hour_of(since)
    counts: dict[datetime, dict[str, int]] = {}
    start = first
    while start <= hour_of(now):
        counts[start] = dict.fromkeys(get_args(DeliveryStatus), 0)
        start += HOUR
    totals = dict.fromkeys(get_args(DeliveryStatus), 0)
    attempted = 0
    for row in rows:
        hour = hour_of(row["hour"])
        counts.setdefault(hour, dict.fromkeys(get_args(DeliveryStatus), 0))[row["status"]] += row[
            "count"
        ]
        totals[row["status"]] += row["count"]
        attempted += row["attempted"]
    return DeliveryStats(
        webhook_id=webhook_id,
        hours=hours,
        since=since,
        until=now,
        totals=OutcomeCounts(**totals),
        attempted=attempted,
        success_rate=totals["succeeded"] / attempted if attempted else None,
        buckets=[HourOfDeliveries(start=hour, **by) for hour, by in sorted(counts.items())],
    )


async def webhook_stats(request: web.Request) -> web.Response:
    webhook_id = webhook_id_of(request)
    hours = query_of(request, StatsQuery).hours
    pool = request.app[DB_POOL]
    if visible_to(request, await db.get_webhook(pool, webhook_id)) is None:
        raise webhook_not_found(webhook_id)
    now, rows = await count_by_hour(pool, webhook_id, hours)
    return respond(delivery_stats(webhook_id, hours, now, rows))
