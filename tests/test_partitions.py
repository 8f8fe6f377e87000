"""Day partitions (migration 0017): an existing database is converted with its rows readable
through the API, and the services make the days ahead."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from yoyo import get_backend, read_migrations

from harness.infra import create_database, drop_database, unique_name
from harness.stack import StackOptions, running_stack
from services.common import partitions
from services.common.migrate import MIGRATIONS_DIR, _yoyo_url, apply_migrations

PARTITIONING = "0017.partition-by-day"
UPLOAD_TYPE_ID = "21f8e1f7-4142-42f9-ac30-74961702b2eb"


def around_partitioning(url: str, *, rollback: bool = False) -> None:
    """Apply every migration before 0017 (or roll 0017 back)."""
    backend = get_backend(_yoyo_url(url))
    try:
        with backend.lock():
            migrations = read_migrations(str(MIGRATIONS_DIR))
            if rollback:
                chosen = backend.to_rollback(migrations).filter(lambda m: m.id == PARTITIONING)
                backend.rollback_migrations(chosen)
            else:
                chosen = backend.to_apply(migrations).filter(lambda m: m.id < PARTITIONING)
                backend.apply_migrations(chosen)
    finally:
        backend.connection.close()


@pytest.fixture
def old_database() -> Iterator[str]:
    name = unique_name("webhooks_partitioning")
    url = create_database(name, migrate=False)
    around_partitioning(url)
    yield url
    drop_database(name)


def seed_old_schema(url: str) -> dict[str, Any]:
    """A webhook with an event and a delivery (with an attempt) today, 3 days ago and
    100 days ago (older than the days the migration partitions: the default partition)."""
    made: dict[str, Any] = {"events": [], "deliveries": []}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname = 'deliveries' AND relkind = 'r'"
        ).fetchone()
        assert tables == (1,)  # the old schema, unpartitioned
        row = conn.execute(
            "INSERT INTO webhook_registrations (user_id, event_type_id, url, secret)"
            " VALUES (7, %s, 'https://example.com/hook', 'c2VjcmV0') RETURNING id",
            (UPLOAD_TYPE_ID,),
        ).fetchone()
        assert row is not None
        made["webhook_id"] = webhook_id = row[0]
        conn.execute("INSERT INTO webhook_configurations (webhook_id) VALUES (%s)", (webhook_id,))
        for days in (0, 3, 100):
            event_id, delivery_id = uuid.uuid4(), uuid.uuid4()
            conn.execute(
                "INSERT INTO events (id, event_type_id, user_id, payload, fanned_out_at,"
                " created_at) VALUES (%s, %s, 7, %s, now(), now() - %s)",
                (event_id, UPLOAD_TYPE_ID, Jsonb({"days": days}), timedelta(days=days)),
            )
            conn.execute(
                "INSERT INTO deliveries (id, webhook_id, event_id, event_type, event_time,"
                " event_data, status, attempt_count, created_at)"
                " SELECT %s, %s, id, 'upload.completed', created_at, payload, 'failed', 1,"
                " created_at FROM events WHERE id = %s",
                (delivery_id, webhook_id, event_id),
            )
            conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, attempt, status_code, error,"
                " duration_ms) VALUES (%s, 1, 500, 'HTTP 500', 12)",
                (delivery_id,),
            )
            conn.execute(
                "INSERT INTO error_log (delivery_id, error_message, retry_count)"
                " VALUES (%s, 'HTTP 500', 1)",
                (delivery_id,),
            )
            made["events"].append(str(event_id))
            made["deliveries"].append(str(delivery_id))
    return made


async def test_an_existing_database_is_converted_and_its_rows_read_through_the_api(
    old_database: str, amqp_url: str, tmp_path: Path
) -> None:
    made = seed_old_schema(old_database)
    assert apply_migrations(old_database) >= 1
    with psycopg.connect(old_database) as conn:
        kinds = conn.execute(
            "SELECT relname, relkind FROM pg_class WHERE relname IN"
            " ('events', 'deliveries', 'delivery_attempts', 'error_log') ORDER BY relname"
        ).fetchall()
        assert {kind for _, kind in kinds} == {"p"} and len(kinds) == 4
        in_default = conn.execute("SELECT count(*) FROM deliveries_default").fetchone()
        assert in_default == (1,)  # the 100-day-old one

    options = StackOptions(with_dispatcher=False)
    async with running_stack(old_database, amqp_url, tmp_path, options) as stack:
        base, webhook_id = stack.gateway_url, made["webhook_id"]

        async def get(path: str) -> Any:
            async with stack.http.get(f"{base}{path}") as resp:
                assert resp.status == 200, await resp.text()
                return (await resp.json())["data"]

        listed = await get(f"/webhook/{webhook_id}/deliveries?limit=10")
        assert [d["id"] for d in listed] == made["deliveries"]  # newest first
        for delivery_id, event_id in zip(made["deliveries"], made["events"], strict=True):
            delivery = await get(f"/delivery/{delivery_id}")
            assert delivery["event_id"] == event_id and delivery["status"] == "failed"
            assert [(a["attempt"], a["status_code"]) for a in delivery["attempts"]] == [(1, 500)]
            event = await get(f"/event/{event_id}")
            assert [d["id"] for d in event["deliveries"]] == [delivery_id]
        events = await get("/event?user_id=7&limit=10")
        assert [e["id"] for e in events] == made["events"]
        stats = await get(f"/webhook/{webhook_id}/stats?hours=168")
        assert stats["totals"]["failed"] == 2  # today's and 3 days ago
        errors = await stack.pool.fetchval(
            "SELECT count(*) FROM error_log WHERE delivery_id = ANY($1::uuid[])",
            made["deliveries"],
        )
        assert errors == 3

        # The upload service made the days ahead (the migration had too): each exists.
        today = await stack.pool.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
        days = await partitions.partition_days(stack.pool, attached=True)
        for offset in range(partitions.DAYS_AHEAD + 1):
            assert days[today + timedelta(days=offset)] == set(partitions.PARTITIONED)


def test_the_rollback_keeps_every_row_in_plain_tables(old_database: str) -> None:
    made = seed_old_schema(old_database)
    assert apply_migrations(old_database) >= 1
    with psycopg.connect(old_database) as conn:
        # A link to an event that retention removed: the restored foreign key must hold.
        conn.execute("DELETE FROM events WHERE id = %s", (made["events"][2],))
        conn.commit()
    around_partitioning(old_database, rollback=True)
    with psycopg.connect(old_database) as conn:
        kinds = conn.execute(
            "SELECT relkind, count(*) FROM pg_class WHERE relname IN"
            " ('events', 'deliveries', 'delivery_attempts', 'error_log') GROUP BY relkind"
        ).fetchall()
        assert kinds == [("r", 4)]
        leftovers = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname ~ '_(p[0-9]{8}|default)$'"
        ).fetchone()
        assert leftovers == (0,)
        rows = conn.execute(
            "SELECT id::text, event_id::text FROM deliveries ORDER BY created_at DESC"
        ).fetchall()
        assert [row[0] for row in rows] == made["deliveries"]
        assert [row[1] for row in rows] == [*made["events"][:2], None]
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM delivery_attempts), (SELECT count(*) FROM error_log),"
            " (SELECT count(*) FROM events)"
        ).fetchone()
        assert counts == (3, 3, 2)
        keys = conn.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid IN"
            " ('deliveries'::regclass, 'delivery_attempts'::regclass, 'error_log'::regclass)"
            " ORDER BY conname"
        ).fetchall()
        assert ("deliveries_event_id_fkey",) in keys
        assert ("delivery_attempts_delivery_id_fkey",) in keys
    # And forward again.
    assert apply_migrations(old_database) == 1
