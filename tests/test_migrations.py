"""The schema comes only from yoyo migrations: applied, rolled back, reapplied."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from harness.infra import database_url_for, drop_database, unique_name
from harness.processes import REPO
from services.common.migrate import apply_migrations, rollback_migrations

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
}


def public_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
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
                "SELECT id::text, name, description, event_name FROM event_types"
            ).fetchall()
        assert seeded == [
            (
                "21f8e1f7-4142-42f9-ac30-74961702b2eb",
                "upload file",
                "Event type for file upload operations",
                "upload.completed",
            )
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
