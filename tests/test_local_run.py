"""`make run`'s pieces that need no servers: the runner's exit status, the start-up check's line."""

from __future__ import annotations

import secrets
import subprocess

import asyncpg

from deploy.local.prereqs import unreachable_message
from deploy.local.run import exit_status, replica_env
from harness.processes import REPO, service_env
from services.common.api_keys import hash_api_key


def test_a_requested_stop_with_every_process_exiting_0_is_a_success() -> None:
    assert exit_status(130, [0, 0, 0, 0]) == 0  # Ctrl-C
    assert exit_status(143, [0, 0]) == 0  # SIGTERM


def test_a_crash_or_a_cut_drain_keeps_the_runners_code() -> None:
    assert exit_status(130, [0, -9, 0]) == 130  # killed after the runner's 5 s
    assert exit_status(1, [1, 0]) == 1  # a process died on its own
    assert exit_status(None, []) == 1


def test_each_replica_gets_its_own_port_and_the_gateway_none() -> None:
    ports = {"registration": [8082], "upload": [8083, 8086], "dispatcher": [8084, 8087, 8090]}
    assert replica_env("upload.2", ports) == {"UPLOAD_PORT": "8086"}
    assert replica_env("dispatcher.3", ports) == {"DISPATCHER_PORT": "8090"}
    assert replica_env("registration.1", ports) == {"REGISTRATION_PORT": "8082"}
    assert replica_env("gateway.1", ports) == {}


def test_the_start_up_check_names_what_to_start_and_how() -> None:
    one = unreachable_message(["PostgreSQL at db:5432 (DATABASE_URL)"], ["postgres"])
    assert one == (
        "PostgreSQL at db:5432 (DATABASE_URL): not reachable, and no Docker engine is available "
        "to start it. Start it yourself (with Docker: `docker compose up -d postgres`), or set "
        "the variable in brackets to a running server."
    )
    both = unreachable_message(["PostgreSQL …", "RabbitMQ …"], ["postgres", "rabbitmq"])
    assert "start them. Start them yourself" in both
    assert "`docker compose up -d postgres rabbitmq`" in both
    assert "set the variables in brackets to running servers." in both


def make(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO,
        env=service_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_make_creates_and_revokes_an_api_key(database_url: str) -> None:
    user_id = secrets.randbelow(10**9) + 10**6
    created = make("api-key", f"USER_ID={user_id}", database_url=database_url)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("whk_")
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "SELECT user_id, revoked_at FROM api_keys WHERE key_hash = $1", hash_api_key(key)
        )
        assert row is not None and row["user_id"] == user_id and row["revoked_at"] is None
        revoked = make("revoke-api-key", f"KEY={key}", database_url=database_url)
        assert revoked.returncode == 0, revoked.stderr
        row = await connection.fetchrow(
            "SELECT revoked_at FROM api_keys WHERE key_hash = $1", hash_api_key(key)
        )
        assert row is not None and row["revoked_at"] is not None
    finally:
        await connection.close()


def test_make_api_key_without_a_user_says_how(database_url: str) -> None:
    answer = make("api-key", "USER_ID=", database_url=database_url)
    assert answer.returncode != 0
    assert "usage: make api-key USER_ID=1" in answer.stderr
