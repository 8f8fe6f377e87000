"""The schema comes only from yoyo migrations: applied, rolled back, reapplied."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from yoyo import get_backend, read_migrations

from harness.infra import create_database, database_url_for, drop_database, unique_name
from harness.processes import REPO
from services.common.event_schemas import check_schema, payload_validator, sample_payload
from services.common.migrate import (
    MIGRATIONS_DIR,
    apply_migrations,
    ensure_database,
    rollback_migrations,
)
from services.upload.fanout.db import SUBSCRIBED

TABLES = {
    "event_types",
    "webhook_registrations",
    "webhook_configurations",
    "uploads",
    "outbox",
    "deliveries",
    "delivery_attempts",
    "error_log",
    "api_keys",
    "events",
    "webhook_event_types",
    "endpoint_rates",
    "ordering_keys",
}
UPLOAD_TYPE_ID = "21f8e1f7-4142-42f9-ac30-74961702b2eb"
WEBHOOK_DISABLED_ID = "df5dcfec-ebaa-4857-8d35-862fa06d165d"
DELIVERY_FAILED_ID = "e338f936-18a7-4637-bcef-499b12cd9225"


def public_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        # Day partitions (migration 0017) are parts of their tables, not tables of their own.
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind IN ('r', 'p') AND NOT relispartition"
        ).fetchall()
    return {row[0] for row in rows if not row[0].startswith(("_yoyo", "yoyo"))}


def run_migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.common.migrate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_migrate_command_creates_database_and_schema_and_rolls_back() -> None:
    name = unique_name("webhooks_migrate")
    url = database_url_for(name)
    env = {**os.environ, "DATABASE_URL": url}
    try:
        first = run_migrate(env)
        assert first.returncode == 0, first.stderr
        assert f"created database {name}" in first.stdout
        assert public_tables(url) == TABLES
        with psycopg.connect(url) as conn:
            seeded = conn.execute(
                "SELECT id::text, name, description, event_name, schema IS NULL, archived "
                "FROM event_types ORDER BY name"
            ).fetchall()
        assert seeded == [
            (
                DELIVERY_FAILED_ID,
                "delivery.failed",
                "A delivery ended failed: it used up its retry schedule, or its endpoint "
                "answered 410 Gone",
                "delivery.failed",
                False,
                False,
            ),
            (
                UPLOAD_TYPE_ID,
                "upload file",
                "Event type for file upload operations",
                "upload.completed",
                True,
                False,
            ),
            (
                WEBHOOK_DISABLED_ID,
                "webhook.disabled",
                "A webhook was disabled automatically: it answered 410 Gone or kept failing "
                "too long",
                "webhook.disabled",
                False,
                False,
            ),
        ]
        again = run_migrate(env)
        assert again.returncode == 0 and "applied 0 migration(s)" in again.stdout

        assert rollback_migrations(url) >= 1
        assert public_tables(url) == set()
        assert apply_migrations(url) >= 1
        assert public_tables(url) == TABLES
    finally:
        drop_database(name)


def test_migrate_names_an_unreachable_database_in_one_line() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://postgres:secret@127.0.0.1:1/nowhere"}
    result = run_migrate(env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "cannot reach PostgreSQL" in lines[0] and "secret" not in lines[0]


# --- 0006.events: constraints the fan-out and the API rely on --------------------------------


@pytest.fixture(scope="module")
def events_db() -> Iterator[str]:
    name = unique_name("webhooks_migrate_events")
    yield create_database(name)
    drop_database(name)


def refused(url: str, statement: str, *params: Any) -> str:
    """Run `statement` in a transaction that must fail; the error's constraint or message."""
    with psycopg.connect(url) as conn:
        try:
            conn.execute(statement, params or None)
        except psycopg.errors.IntegrityError as exc:
            return exc.diag.constraint_name or str(exc)
    raise AssertionError(f"accepted: {statement} {params}")


def new_webhook(conn: psycopg.Connection[Any], user_id: int, **columns: Any) -> uuid.UUID:
    names = ["user_id", "event_type_id", "url", "secret", *columns]
    values = [user_id, WEBHOOK_DISABLED_ID, "https://example.com/hook", "s", *columns.values()]
    row = conn.execute(
        f"INSERT INTO webhook_registrations ({', '.join(names)}) "
        f"VALUES ({', '.join(['%s'] * len(names))}) RETURNING id",
        values,
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def new_event(conn: psycopg.Connection[Any], user_id: int, key: str | None = None) -> uuid.UUID:
    event_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO events (id, event_type_id, user_id, payload, idempotency_key) "
        "VALUES (%s, %s, %s, %s, %s)",
        (event_id, WEBHOOK_DISABLED_ID, user_id, Jsonb({"a": 1}), key),
    )
    return event_id


def fan_out(conn: psycopg.Connection[Any], event_id: uuid.UUID, webhook_id: uuid.UUID) -> int:
    """Insert the delivery as the fan-out does (created at its event's time); the number of
    rows it made."""
    cursor = conn.execute(
        "INSERT INTO deliveries (id, webhook_id, event_id, event_type, event_time, event_data,"
        " created_at) SELECT %s, %s, id, 'webhook.disabled', created_at, '{}', created_at"
        " FROM events WHERE id = %s"
        " ON CONFLICT (event_id, webhook_id, created_at) WHERE event_id IS NOT NULL DO NOTHING",
        (uuid.uuid4(), webhook_id, event_id),
    )
    return cursor.rowcount


def test_seeded_operational_types_carry_valid_schemas(events_db: str) -> None:
    with psycopg.connect(events_db) as conn:
        rows = conn.execute(
            "SELECT name, schema FROM event_types WHERE id IN (%s, %s) ORDER BY name",
            (WEBHOOK_DISABLED_ID, DELIVERY_FAILED_ID),
        ).fetchall()
    assert [name for name, _ in rows] == ["delivery.failed", "webhook.disabled"]
    required = {
        "delivery.failed": ["delivery_id", "webhook_id", "event_type", "attempts", "last_error"],
        "webhook.disabled": ["webhook_id", "url", "reason", "disabled_at"],
    }
    for name, schema in rows:
        assert check_schema(schema) == schema
        assert schema["required"] == required[name]
        assert payload_validator(schema).first_error(sample_payload(schema)) is None
        assert payload_validator(schema).first_error({}) is not None


def test_event_type_names_are_wire_safe_except_the_original_one(events_db: str) -> None:
    insert = "INSERT INTO event_types (name, description, event_name) VALUES (%s, 'd', %s)"
    assert refused(events_db, insert, "invoice paid", "invoice paid") == "event_types_name_format"
    assert refused(events_db, insert, "x" * 101, "x" * 101) == "event_types_name_format"
    assert refused(events_db, insert, "invoice.paid", "other") == "event_types_name_format"
    assert refused(events_db, "UPDATE event_types SET schema = '[]'")
    with psycopg.connect(events_db) as conn:
        conn.execute(insert, ("invoice.paid_v-2", "invoice.paid_v-2"))
        # The original type keeps its name and can still be changed.
        updated = conn.execute(
            "UPDATE event_types SET description = description, archived = false WHERE id = %s",
            (UPLOAD_TYPE_ID,),
        )
        assert updated.rowcount == 1
        conn.rollback()


def test_a_second_fan_out_never_makes_a_second_delivery(events_db: str) -> None:
    with psycopg.connect(events_db) as conn:
        webhook_id = new_webhook(conn, 1)
        other_webhook_id = new_webhook(conn, 1)
        event_id = new_event(conn, 1)
        assert fan_out(conn, event_id, webhook_id) == 1
        assert fan_out(conn, event_id, webhook_id) == 0
        assert fan_out(conn, event_id, other_webhook_id) == 1
        conn.commit()
    plain = (
        "INSERT INTO deliveries (id, webhook_id, event_id, event_type, event_time, event_data,"
        " created_at) VALUES (%s, %s, %s, 'webhook.disabled', now(), '{}',"
        " coalesce((SELECT created_at FROM events WHERE id = %s), now()))"
    )
    # Named by the day partition's part of deliveries_event_webhook_idx.
    refusal = refused(events_db, plain, uuid.uuid4(), webhook_id, event_id, event_id)
    assert refusal.startswith("deliveries_p") and "event_id_webhook_id" in refusal
    with psycopg.connect(events_db) as conn:
        # Deliveries without an event (uploads before this migration) are not constrained.
        for _ in range(2):
            conn.execute(plain, (uuid.uuid4(), webhook_id, None, None))
        # Pruning the event keeps its deliveries (no foreign key points at a partitioned
        # table: their event_id stays, naming an event that is gone).
        conn.execute("DELETE FROM events WHERE id = %s", (event_id,))
        left = conn.execute(
            "SELECT count(*) FROM deliveries WHERE webhook_id IN (%s, %s)",
            (webhook_id, other_webhook_id),
        ).fetchone()
        assert left == (4,)


def test_event_rows_are_checked(events_db: str) -> None:
    """(An Idempotency-Key's one holder per user is the claim's to keep, under a lock:
    events is partitioned by day. tests/test_events_api.py races it.)"""
    insert = (
        "INSERT INTO events (id, event_type_id, user_id, payload, idempotency_key) "
        "VALUES (gen_random_uuid(), %s, %s, '{}', %s)"
    )
    assert (
        refused(events_db, insert, WEBHOOK_DISABLED_ID, 5, "\n") == "events_idempotency_key_check"
    )
    assert refused(events_db, insert, WEBHOOK_DISABLED_ID, 0, None) == "events_user_id_check"
    assert refused(events_db, insert, str(uuid.uuid4()), 5, None) == "events_event_type_id_fkey"
    assert (
        refused(
            events_db,
            "INSERT INTO events (id, event_type_id, user_id, payload) "
            "VALUES (gen_random_uuid(), %s, 5, '[1]')",
            WEBHOOK_DISABLED_ID,
        )
        == "events_payload_check"
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("timeout_seconds", 0),
        ("timeout_seconds", 61),
        ("max_concurrency", 0),
        ("max_concurrency", 1001),
        ("retry_schedule", [0]),
        ("retry_schedule", [1, 604801]),
        ("retry_schedule", [1] * 21),
        ("retry_schedule", [1, None]),
        ("retry_schedule", [[1, 2], [3, 4]]),
        ("filter", Jsonb([1])),
    ],
)
def test_webhook_delivery_settings_are_bounded(events_db: str, column: str, value: Any) -> None:
    with psycopg.connect(events_db) as conn:
        webhook_id = new_webhook(conn, 9)
        conn.commit()
    constraint = refused(
        events_db,
        f"UPDATE webhook_registrations SET {column} = %s WHERE id = %s",
        value,
        webhook_id,
    )
    assert constraint.startswith(f"webhook_registrations_{column}_check")


def test_webhook_delivery_settings_in_range_are_stored(events_db: str) -> None:
    settings = {
        "timeout_seconds": 60,
        "max_concurrency": 1000,
        "retry_schedule": [1, 60, 604800],
        "filter": Jsonb({"customer.country": {"$in": ["NL"]}}),
    }
    with psycopg.connect(events_db) as conn:
        webhook_id = new_webhook(conn, 10, **settings)
        empty_schedule = new_webhook(conn, 10, retry_schedule=[], timeout_seconds=1)
        row = conn.execute(
            "SELECT timeout_seconds, max_concurrency, retry_schedule, filter"
            " FROM webhook_registrations WHERE id = %s",
            (webhook_id,),
        ).fetchone()
        assert row == (60, 1000, [1, 60, 604800], {"customer.country": {"$in": ["NL"]}})
        assert empty_schedule != webhook_id
        # The fan-out's query can use the subscribers index (forced: the table is tiny).
        conn.execute("SET enable_seqscan = off")
        forced = conn.execute(
            f"EXPLAIN SELECT w.id FROM {SUBSCRIBED} WHERE s.user_id = 10 "
            "AND s.event_type_id = %s AND s.webhook_id > %s ORDER BY s.webhook_id LIMIT 500",
            (WEBHOOK_DISABLED_ID, uuid.UUID(int=0)),
        ).fetchall()
    assert "webhook_event_types_subscribers_idx" in " ".join(line for (line,) in forced)


# --- 0012.webhook-event-types: a webhook registered before it keeps its one type -------------


def migrate_to(url: str, last: str) -> None:
    """Apply the migrations up to and including `last` (by id)."""
    backend = get_backend(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        wanted = read_migrations(str(MIGRATIONS_DIR)).filter(lambda m: m.id <= last)
        with backend.lock():
            backend.apply_migrations(backend.to_apply(wanted))
    finally:
        backend.connection.close()


def test_a_webhook_made_before_event_type_lists_subscribes_to_its_type() -> None:
    name = unique_name("webhooks_migrate_types")
    url = database_url_for(name)
    ensure_database(url)
    try:
        migrate_to(url, "0010.deliveries-claim-room")
        with psycopg.connect(url) as conn:
            webhook_id = new_webhook(conn, 7)
            new_webhook(conn, 7, deleted_at="2026-01-01")
        apply_migrations(url)
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT webhook_id, event_type_id::text, user_id, position FROM webhook_event_types"
            ).fetchall()
        # A deleted webhook subscribes to nothing: the fan-out's index holds live ones only.
        assert rows == [(webhook_id, WEBHOOK_DISABLED_ID, 7, 0)]
    finally:
        drop_database(name)
