"""Retention: old finished uploads, their folders and delivery history go; the rest stays."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from harness.processes import REPO, service_env
from harness.stack import Stack, StackOptions
from services.common import partitions
from services.common.retention import prune

OLD_DAYS = 40
DAY = 86400


@pytest.fixture
def stack_options() -> StackOptions:
    """Without a dispatcher, deliveries keep the status a test gives them."""
    return StackOptions(with_dispatcher=False)


@dataclass(frozen=True)
class Made:
    upload_id: uuid.UUID
    delivery_id: uuid.UUID

    def folder(self, stack: Stack) -> Path:
        return stack.upload_dir / str(self.upload_id)


async def make_upload(
    stack: Stack,
    webhook_id: str,
    *,
    status: str,
    age_days: float,
    attempts: int = 0,
    active_days_ago: float | None = None,
) -> Made:
    """An upload through the gateway, then its delivery's outcome and age set in the database."""
    data = await stack.upload(webhook_id, b"content", "file.txt")
    upload_id = uuid.UUID(data["upload_id"])
    delivery_id = (await stack.delivery_for_upload(data["upload_id"]))["id"]
    # Ages in seconds: make_interval(days => ...) takes whole days and truncates a fraction
    # (a "noon of that day" age run before noon UTC fell on the day after).
    await stack.pool.execute(
        "UPDATE uploads SET created_at = now() - make_interval(secs => $2::float8 * 86400)"
        " WHERE id = $1",
        upload_id,
        age_days,
    )
    # The delivery moves to its day's partition (or the default one), and its attempts
    # and errors are made in that day, as the dispatcher makes them.
    delivery_created_at = await stack.pool.fetchval(
        "UPDATE deliveries SET status = $2,"
        " created_at = now() - make_interval(secs => $3::float8 * 86400),"
        " updated_at = now() - make_interval(secs => $4::float8 * 86400)"
        " WHERE id = $1 RETURNING created_at",
        delivery_id,
        status,
        age_days,
        age_days if active_days_ago is None else active_days_ago,
    )
    for attempt in range(1, attempts + 1):
        await stack.pool.execute(
            "INSERT INTO delivery_attempts (delivery_id, delivery_created_at, attempt,"
            " status_code, duration_ms, created_at) VALUES ($1, $2, $3, 500, 3, $2)",
            delivery_id,
            delivery_created_at,
            attempt,
        )
        await stack.pool.execute(
            "INSERT INTO error_log (delivery_id, delivery_created_at, error_message,"
            " retry_count, created_at) VALUES ($1, $2, 'HTTP 500', $3, $2)",
            delivery_id,
            delivery_created_at,
            attempt,
        )
    return Made(upload_id, delivery_id)


async def exists(stack: Stack, table: str, column: str, value: uuid.UUID) -> bool:
    found: bool = await stack.pool.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {column} = $1)", value
    )
    return found


async def is_kept(stack: Stack, made: Made) -> bool:
    return (
        await exists(stack, "uploads", "id", made.upload_id)
        and await exists(stack, "deliveries", "id", made.delivery_id)
        and made.folder(stack).is_dir()
    )


async def is_gone(stack: Stack, made: Made) -> bool:
    return not (
        await exists(stack, "uploads", "id", made.upload_id)
        or await exists(stack, "deliveries", "id", made.delivery_id)
        or await exists(stack, "delivery_attempts", "delivery_id", made.delivery_id)
        or await exists(stack, "error_log", "delivery_id", made.delivery_id)
        or made.folder(stack).exists()
    )


def age_path(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then), follow_symlinks=False)


@dataclass(frozen=True)
class Scene:
    old_succeeded: Made
    old_failed: Made
    old_pending: Made
    recent: Made
    old_but_redelivered: Made
    orphan: Path
    fresh_orphan: Path
    foreign_folder: Path
    link_out: Path
    outside: Path


async def build_scene(stack: Stack, outside_root: Path) -> Scene:
    webhook = (await stack.register("http://127.0.0.1:9/unused"))["id"]
    old_succeeded = await make_upload(stack, webhook, status="succeeded", age_days=OLD_DAYS)
    old_failed = await make_upload(stack, webhook, status="failed", age_days=OLD_DAYS, attempts=3)
    old_pending = await make_upload(stack, webhook, status="pending", age_days=OLD_DAYS, attempts=2)
    recent = await make_upload(stack, webhook, status="succeeded", age_days=1, attempts=1)
    old_but_redelivered = await make_upload(
        stack, webhook, status="succeeded", age_days=OLD_DAYS, attempts=2, active_days_ago=1
    )

    # Folders without an upload row: an old one (a crash's leftover) and one being written.
    orphan = stack.upload_dir / str(uuid.uuid4())
    (orphan / "partial.bin").parent.mkdir()
    (orphan / "partial.bin").write_bytes(b"partial")
    age_path(orphan, OLD_DAYS)
    fresh_orphan = stack.upload_dir / str(uuid.uuid4())
    fresh_orphan.mkdir()
    # Not named by the upload service: never ours to remove.
    foreign_folder = stack.upload_dir / "notes"
    foreign_folder.mkdir()
    (foreign_folder / "readme.txt").write_text("mine")
    age_path(foreign_folder, OLD_DAYS)
    # An old upload-like name that links out of UPLOAD_DIR: the link may go, its target not.
    outside = outside_root / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    link_out = stack.upload_dir / str(uuid.uuid4())
    link_out.symlink_to(outside, target_is_directory=True)
    age_path(link_out, OLD_DAYS)
    return Scene(
        old_succeeded,
        old_failed,
        old_pending,
        recent,
        old_but_redelivered,
        orphan,
        fresh_orphan,
        foreign_folder,
        link_out,
        outside,
    )


async def assert_pruned(stack: Stack, scene: Scene) -> None:
    assert await is_gone(stack, scene.old_succeeded)
    assert await is_gone(stack, scene.old_failed)
    # Pending: kept whole, however old, with its attempts.
    assert await is_kept(stack, scene.old_pending)
    assert await exists(stack, "delivery_attempts", "delivery_id", scene.old_pending.delivery_id)
    assert await is_kept(stack, scene.recent)
    assert await exists(stack, "error_log", "delivery_id", scene.recent.delivery_id)
    # An old upload goes; its delivery, active yesterday, stays with its history.
    redelivered = scene.old_but_redelivered
    assert not await exists(stack, "uploads", "id", redelivered.upload_id)
    assert not redelivered.folder(stack).exists()
    delivery = await stack.pool.fetchrow(
        "SELECT upload_id FROM deliveries WHERE id = $1", redelivered.delivery_id
    )
    assert delivery is not None and delivery["upload_id"] is None
    assert await exists(stack, "delivery_attempts", "delivery_id", redelivered.delivery_id)

    assert not scene.orphan.exists()
    assert scene.fresh_orphan.is_dir()
    assert (scene.foreign_folder / "readme.txt").read_text() == "mine"
    assert not scene.link_out.exists() and not scene.link_out.is_symlink()
    assert (scene.outside / "keep.txt").read_text() == "keep"


async def test_prune_removes_old_finished_work_in_batches(stack: Stack, tmp_path: Path) -> None:
    scene = await build_scene(stack, tmp_path)
    result = await prune(stack.pool, stack.upload_dir, retention_days=30, batch_size=1)
    await assert_pruned(stack, scene)
    # Other tests share the database: at least this scene's rows were counted.
    assert result.deliveries >= 2
    assert result.delivery_attempts >= 3 and result.error_log >= 3
    assert result.uploads >= 3 and result.upload_folders >= 3
    assert result.orphan_folders >= 2  # the old orphan and the link
    assert result.folder_errors == 0

    again = await prune(stack.pool, stack.upload_dir, retention_days=30)
    assert (again.uploads, again.upload_folders, again.orphan_folders) == (0, 0, 0)


async def test_zero_days_prunes_nothing(stack: Stack, tmp_path: Path) -> None:
    scene = await build_scene(stack, tmp_path)
    result = await prune(stack.pool, stack.upload_dir, retention_days=0)
    assert result.uploads == result.deliveries == result.orphan_folders == 0
    assert await is_kept(stack, scene.old_succeeded)
    assert scene.orphan.is_dir()


async def run_cli(**env: str) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.common.retention",
        cwd=REPO,
        env=service_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return subprocess.CompletedProcess([], process.returncode, out.decode(), err.decode())


async def test_the_command_prunes_and_prints_one_line(stack: Stack, tmp_path: Path) -> None:
    scene = await build_scene(stack, tmp_path)
    done = await run_cli(
        DATABASE_URL=stack.database_url, UPLOAD_DIR=str(stack.upload_dir), RETENTION_DAYS="30"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("retention: pruned what is older than 30 day(s):")
    for name in ("uploads=", "upload_folders=", "deliveries=", "delivery_attempts=", "error_log="):
        assert name in lines[0]
    await assert_pruned(stack, scene)


async def test_the_command_with_zero_days_does_nothing(stack: Stack, tmp_path: Path) -> None:
    scene = await build_scene(stack, tmp_path)
    done = await run_cli(
        DATABASE_URL=stack.database_url, UPLOAD_DIR=str(stack.upload_dir), RETENTION_DAYS="0"
    )
    assert done.returncode == 0, done.stderr
    assert "disabled" in done.stdout
    assert await is_kept(stack, scene.old_succeeded)
    assert scene.orphan.is_dir()


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("RETENTION_DAYS", "thirty", "RETENTION_DAYS must be an integer"),
        ("RETENTION_DAYS", "-1", "RETENTION_DAYS must be at least 0"),
        ("UPLOAD_DIR", "/nonexistent/uploads", "UPLOAD_DIR '/nonexistent/uploads'"),
        ("DATABASE_URL", "mysql://db/x", "DATABASE_URL must be a postgresql/postgres URL"),
    ],
)
async def test_bad_configuration_is_one_line_and_exit_2(
    stack: Stack, variable: str, value: str, words: str
) -> None:
    env = {"DATABASE_URL": stack.database_url, "UPLOAD_DIR": str(stack.upload_dir)}
    done = await run_cli(**{**env, variable: value})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr
    assert lines[0].startswith("retention: invalid configuration:")


async def test_an_unreachable_database_is_one_line_and_exit_1(stack: Stack) -> None:
    done = await run_cli(
        DATABASE_URL="postgresql://postgres:secret@127.0.0.1:1/nowhere",
        UPLOAD_DIR=str(stack.upload_dir),
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot prune the database" in lines[0], done.stderr
    assert "secret" not in lines[0]


def test_make_prune_runs_the_command() -> None:
    done = subprocess.run(
        ["make", "-n", "prune"], cwd=REPO, capture_output=True, text=True, check=True, timeout=30
    )
    assert "-m services.common.retention" in done.stdout


async def test_two_prunes_at_once_share_the_work(stack: Stack, tmp_path: Path) -> None:
    """Retention scheduled beside every replica: two runs at once skip each other's rows
    (SKIP LOCKED) and folders, and together leave what one run leaves."""
    scene = await build_scene(stack, tmp_path)
    await asyncio.gather(
        *(prune(stack.pool, stack.upload_dir, retention_days=30, batch_size=1) for _ in range(2))
    )
    await assert_pruned(stack, scene)


async def partition_exists(stack: Stack, table: str, day: date) -> bool:
    found: bool = await stack.pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = $1)",
        partitions.partition_name(table, day),
    )
    return found


async def test_whole_old_days_are_dropped_and_a_day_with_work_is_kept(
    stack: Stack, tmp_path: Path
) -> None:
    """A day of partitions past the cutoff with nothing to keep goes whole; a day holding
    a pending delivery stays, and only its finished rows are deleted (in batches)."""
    today: date = await stack.pool.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    # Days no other test writes (they use OLD_DAYS), whole and past the cutoff.
    gone_day, kept_day = today - timedelta(days=50), today - timedelta(days=55)
    for day in (gone_day, kept_day):
        await partitions.create_day(stack.pool, day)
    now: datetime = await stack.pool.fetchval("SELECT now()")

    def age_at_noon(day: date) -> float:
        return (now - partitions.day_start(day) - timedelta(hours=12)).total_seconds() / DAY

    webhook = (await stack.register("http://127.0.0.1:9/unused"))["id"]
    gone = await make_upload(
        stack, webhook, status="succeeded", age_days=age_at_noon(gone_day), attempts=2
    )
    kept_age = age_at_noon(kept_day)
    pending = await make_upload(stack, webhook, status="pending", age_days=kept_age, attempts=1)
    finished = await make_upload(stack, webhook, status="failed", age_days=kept_age, attempts=1)
    in_day = "SELECT count(*) FROM {} WHERE id = $1"
    assert (
        await stack.pool.fetchval(
            in_day.format(partitions.partition_name("deliveries", gone_day)), gone.delivery_id
        )
        == 1
    )

    result = await prune(stack.pool, stack.upload_dir, retention_days=30)

    assert result.days_dropped >= 1
    for table in partitions.PARTITIONED:
        assert not await partition_exists(stack, table, gone_day)
        assert await partition_exists(stack, table, kept_day)
    assert await is_gone(stack, gone)
    assert await exists(stack, "deliveries", "id", pending.delivery_id)
    assert await exists(stack, "delivery_attempts", "delivery_id", pending.delivery_id)
    assert await is_gone(stack, finished)
    assert result.delivery_attempts >= 3
