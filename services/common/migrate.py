"""Create the database if missing and apply (or roll back) the yoyo migrations."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import psycopg
from psycopg import sql
from yoyo import get_backend, read_migrations

from .database_url import (
    SCHEMES,
    database_hosts,
    database_name,
    libpq_host_parameters,
    with_database,
)
from .settings import DEFAULT_DATABASE_URL, redact_url

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def _yoyo_url(dsn: str) -> str:
    scheme, rest = dsn.split("://", 1)
    if scheme not in SCHEMES:
        return dsn
    if len(database_hosts(dsn)) > 1:  # yoyo reads one host from the URL: libpq gets the list
        rest = libpq_host_parameters(dsn).split("://", 1)[1]
    return f"postgresql+psycopg://{rest}"


def ensure_database(dsn: str) -> bool:
    """Create the database named in `dsn` if it does not exist; True if it was created.

    With several hosts, libpq connects to the one the URL's target_session_attrs asks for
    (read-write: the primary), so the database is created where it can be.
    """
    name = database_name(dsn)
    with psycopg.connect(
        with_database(dsn, "postgres"), autocommit=True, connect_timeout=5
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def _migrate(dsn: str, rollback: bool) -> int:
    """Apply what is pending (or roll back what is applied) under yoyo's lock."""
    backend = get_backend(_yoyo_url(dsn))
    try:
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock():
            if rollback:
                chosen = backend.to_rollback(migrations)
                backend.rollback_migrations(chosen)
            else:
                chosen = backend.to_apply(migrations)
                backend.apply_migrations(chosen)
        return len(chosen)
    finally:
        backend.connection.close()


def apply_migrations(dsn: str) -> int:
    return _migrate(dsn, rollback=False)


def rollback_migrations(dsn: str) -> int:
    return _migrate(dsn, rollback=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.migrate", description=__doc__)
    parser.add_argument("--rollback", action="store_true", help="roll back every migration")
    args = parser.parse_args(argv)
    dsn = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    try:
        database_hosts(dsn)  # the services' own check, before libpq takes what it can
    except ValueError as exc:
        print(f"migrate: DATABASE_URL {exc}", file=sys.stderr)
        return 2
    try:
        if ensure_database(dsn):
            print(f"created database {database_name(dsn)}")
        if args.rollback:
            print(f"rolled back {rollback_migrations(dsn)} migration(s)")
        else:
            print(f"applied {apply_migrations(dsn)} migration(s)")
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        print(
            f"migrate: cannot reach PostgreSQL at {redact_url(dsn)}: {first_line}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
