"""The PostgreSQL primary dies while retention drops old days and a fan-out to 1,000 webhooks
is under way (SPEC section 18, issue 29): after the standby is promoted every webhook gets
its delivery, no webhook gets a second one (a delivery may arrive twice, with one
webhook-id, only if it was in flight when the database died: SPEC section 4), and the next
retention run finishes what the interrupted one began. It needs the installed PostgreSQL
server binaries; the machine's own server is not touched."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from bench.big_tables import SEED_WEBHOOKS, USER_ID, seed_day
from bench.cluster import services
from bench.pg_failover import registration_command
from deploy.local.postgres_pair import running_pair
from harness.events import create_event_type, fresh_user_id, insert_webhooks, new_secret
from harness.infra import VhostAdmin, amqp_url_for, unique_name
from harness.processes import REPO, service_env
from harness.receiver import Receiver
from services.common import partitions
from services.common.migrate import apply_migrations, ensure_database

FAN_OUT = 1000
OLD_DAYS = (45, 44, 43)  # whole days of history past a 30-day retention, one partition each
EVENTS_PER_OLD_DAY = 1500
# Rows in the default partition (their day has none): pruned in batches, which keeps the
# retention run busy for a while.
DEFAULT_PARTITION_DELIVERIES = 40_000


async def seed_history(pool: asyncpg.Pool, today: date) -> None:
    await pool.execute(SEED_WEBHOOKS, USER_ID, 50)
    for age in OLD_DAYS:
        await seed_day(pool, today - timedelta(days=age), EVENTS_PER_OLD_DAY)
    await pool.execute(
        """
        INSERT INTO deliveries (id, webhook_id, event_type, event_time, event_data, status,
                                attempt_count, created_at, updated_at)
        SELECT gen_random_uuid(), w.id, 'bench.big', at, '{}', 'succeeded', 1, at, at
        FROM (SELECT id FROM webhook_registrations WHERE user_id = $1 LIMIT 1) w,
             generate_series(1, $2) n,
             LATERAL (SELECT now() - interval '50 days' - n * interval '1 second' AS at) m
        """,
        USER_ID,
        DEFAULT_PARTITION_DELIVERIES,
    )


def start_retention(database_url: str, upload_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.common.retention"],
        cwd=REPO,
        env=service_env(DATABASE_URL=database_url, UPLOAD_DIR=str(upload_dir), RETENTION_DAYS="30"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def default_rows(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM deliveries_default")
    return count


async def under_way(pool: asyncpg.Pool, before: int, retention: subprocess.Popen[str]) -> None:
    """Until the retention run has begun deleting from the default partition (or ended)."""
    while retention.poll() is None:
        if await default_rows(pool) != before:
            return
        await asyncio.sleep(0.05)


async def publish(http: aiohttp.ClientSession, url: str, key: str, body: object) -> str:
    """POST /event until it is accepted (503 while no server accepts writes); its id."""
    deadline = time.monotonic() + 60
    while True:
        headers = {"Authorization": f"Bearer {key}"}
        async with http.post(url, json=body, headers=headers) as resp:
            answer = await resp.json(content_type=None)
            if resp.status == 202:
                return str(answer["data"]["event_id"])
            assert resp.status == 503 and time.monotonic() < deadline, (resp.status, answer)
        await asyncio.sleep(0.2)


@pytest.mark.timeout(600)
async def test_a_failover_during_retention_and_a_fan_out_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    vhosts = VhostAdmin()
    vhost = unique_name("webhooks_pg_growth")
    receiver = await Receiver().start()
    try:
        vhosts.create(vhost)
        with running_pair() as pair:
            database_url = pair.database_url("webhooks")
            await asyncio.to_thread(ensure_database, database_url)
            await asyncio.to_thread(apply_migrations, database_url)
            key = await asyncio.to_thread(
                registration_command, database_url, "create-api-key", "--admin"
            )
            pool = await asyncpg.create_pool(database_url, min_size=0, command_timeout=None)
            assert pool is not None
            try:
                today: date = await pool.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
                await seed_history(pool, today)
                type_id, type_name = await create_event_type(pool)
                user_id = fresh_user_id()
                webhooks = await insert_webhooks(
                    pool, FAN_OUT, user_id, type_id, f"{receiver.url}/hook", new_secret()
                )
            finally:
                await pool.close()

            async with (
                services(database_url, amqp_url_for(vhost), tmp_path, AUTH_MODE="api_key") as ports,
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
            ):
                pool = await asyncpg.create_pool(database_url, min_size=0, command_timeout=30)
                assert pool is not None
                try:
                    before = await default_rows(pool)
                    retention = start_retention(database_url, tmp_path / "uploads")
                    # Retention is under way (its batches have begun on the default
                    # partition) when the event comes and the primary dies.
                    await under_way(pool, before, retention)
                    event_id = await publish(
                        http,
                        f"http://127.0.0.1:{ports['upload']}/event",
                        key,
                        {"event_type": type_name, "user_id": user_id, "payload": {"n": 1}},
                    )
                    in_flight = retention.poll() is None
                    await asyncio.to_thread(pair.stop_primary)
                finally:
                    pool.terminate()
                await asyncio.sleep(1.0)
                await asyncio.to_thread(pair.promote_standby)
                interrupted = await asyncio.to_thread(retention.communicate, None, 120)
                assert in_flight, f"retention ended before the failover: {interrupted}"

                again = start_retention(database_url, tmp_path / "uploads")
                out, err = await asyncio.to_thread(again.communicate, None, 300)
                assert again.returncode == 0, err
                assert "days_dropped=" in out

                received = await receiver.wait_for(FAN_OUT, timeout=240)
                ids = {r.headers["webhook-id"] for r in received}
                deadline = time.monotonic() + 120
                while len(ids) < FAN_OUT and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    ids = {r.headers["webhook-id"] for r in receiver.received}
                await asyncio.sleep(2.0)  # time enough for a second delivery, were there one

                pool = await asyncpg.create_pool(database_url, min_size=0, command_timeout=60)
                assert pool is not None
                try:
                    rows = await pool.fetch(
                        "SELECT id::text, webhook_id, status FROM deliveries WHERE event_id = $1",
                        uuid.UUID(event_id),
                    )
                    leftover = await pool.fetchval(
                        "SELECT count(*) FROM deliveries"
                        " WHERE created_at < now() - interval '31 days'"
                    )
                    days = await partitions.partition_days(pool, attached=True)
                    detached = await partitions.partition_days(pool, attached=False)
                finally:
                    await pool.close()
    finally:
        await receiver.stop()
        vhosts.delete(vhost)

    # Nothing lost: one delivery per webhook, each arrived.
    assert sorted(row["webhook_id"] for row in rows) == sorted(webhooks)
    assert {row["status"] for row in rows} == {"succeeded"}
    assert ids == {row["id"] for row in rows}
    # Nothing doubled beyond SPEC section 4: a repeat carries the webhook-id of its first.
    print(f"received {len(receiver.received)}, deliveries {len(ids)}", flush=True)
    assert all(r.json()["data"] == {"n": 1} for r in receiver.received)
    # The retention that was cut off is finished by the next: the old days are gone whole,
    # the default partition's old rows in batches, and no detached table is left over.
    assert leftover == 0
    for age in OLD_DAYS:
        assert today - timedelta(days=age) not in days
    assert detached == {}
