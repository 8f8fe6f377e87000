"""Prune stored files, events and delivery history older than RETENTION_DAYS: whole days of
partitions where it can, else in small batches.

`python -m services.common.retention` (or `make prune`) runs it once; schedule it
with cron, a systemd timer or a Kubernetes CronJob. A day is detached with lock waits of
a few milliseconds (services/common/partitions.py); each batch is one short transaction
that skips rows someone else holds (SKIP LOCKED), so uploads and deliveries running
meanwhile never wait on it for more than a moment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from . import deliveries, events, partitions, uploads
from .db import DATABASE_ERRORS, create_pool
from .settings import DEFAULT_DATABASE_URL, ConfigError, Env, redact_url

DEFAULT_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 36500
DEFAULT_UPLOAD_DIR = "./data/uploads"
# Rows per transaction: small enough that each batch holds its locks for milliseconds.
BATCH_SIZE = 500


@dataclass(frozen=True)
class RetentionSettings:
    database_url: str = DEFAULT_DATABASE_URL
    upload_dir: Path = Path(DEFAULT_UPLOAD_DIR)
    # 0 disables pruning.
    retention_days: int = DEFAULT_RETENTION_DAYS

    @classmethod
    def from_env(cls, env: Env | None = None) -> RetentionSettings:
        env = env or Env()
        settings = cls(
            database_url=env.url("DATABASE_URL", DEFAULT_DATABASE_URL, ("postgresql", "postgres")),
            upload_dir=Path(env.text("UPLOAD_DIR", DEFAULT_UPLOAD_DIR)),
            retention_days=env.integer(
                "RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 0, MAX_RETENTION_DAYS
            ),
        )
        if settings.retention_days and not settings.upload_dir.is_dir():
            # Pruning rows while their files sit in another folder would orphan the files.
            raise ConfigError(f"UPLOAD_DIR {str(settings.upload_dir)!r} is not a directory")
        return settings


@dataclass
class PruneResult:
    """What one run removed."""

    uploads: int = 0
    upload_folders: int = 0
    orphan_folders: int = 0
    deliveries: int = 0
    delivery_attempts: int = 0
    error_log: int = 0
    events: int = 0
    folder_errors: int = 0
    # Whole days whose partitions were dropped (their rows are counted above too).
    days_dropped: int = 0

    def summary(self, retention_days: int) -> str:
        counts = " ".join(f"{name}={value}" for name, value in vars(self).items())
        return f"retention: pruned what is older than {retention_days} day(s): {counts}"


async def prune_deliveries_batch(
    pool: asyncpg.Pool, cutoff: datetime, batch_size: int, result: PruneResult
) -> int:
    """One batch of deliveries.prune_batch, counted into `result`; how many it examined."""
    pruned = await deliveries.prune_batch(pool, cutoff, batch_size)
    result.deliveries += pruned.deliveries
    result.delivery_attempts += pruned.delivery_attempts
    result.error_log += pruned.error_log
    return pruned.examined


def remove_upload_folder(upload_dir: Path, upload_id: uuid.UUID) -> bool:
    """Remove `upload_dir/<upload_id>`; True if there was one. Never leaves `upload_dir`."""
    # A UUID's text has no separator and no "..": the folder is a direct child.
    folder = upload_dir / str(upload_id)
    if folder.is_symlink():
        folder.unlink()  # the link only, never what it points at
        return True
    if not folder.is_dir():
        return False
    # rmtree unlinks symlinks inside the folder rather than following them.
    shutil.rmtree(folder)
    return True


def remove_folders(upload_dir: Path, upload_ids: list[uuid.UUID], result: PruneResult) -> int:
    removed = 0
    for upload_id in upload_ids:
        try:
            removed += remove_upload_folder(upload_dir, upload_id)
        except OSError as exc:
            result.folder_errors += 1
            print(f"retention: could not remove upload folder {upload_id}: {exc}", file=sys.stderr)
    return removed


def old_upload_folders(upload_dir: Path, cutoff: datetime) -> list[uuid.UUID]:
    """Direct children named like an upload id and not modified since `cutoff`."""
    found: list[uuid.UUID] = []
    if not upload_dir.is_dir():
        return found
    with os.scandir(upload_dir) as entries:
        for entry in entries:
            try:
                upload_id = uuid.UUID(entry.name)
            except ValueError:
                continue
            if str(upload_id) != entry.name:
                continue  # not a name the upload service writes
            if entry.stat(follow_symlinks=False).st_mtime < cutoff.timestamp():
                found.append(upload_id)
    return found


async def prune_orphan_folders(
    pool: asyncpg.Pool, upload_dir: Path, cutoff: datetime, batch_size: int, result: PruneResult
) -> None:
    """Old upload folders without an upload row: left by a crash mid-upload or mid-prune."""
    candidates = old_upload_folders(upload_dir, cutoff)
    for start in range(0, len(candidates), batch_size):
        chunk = candidates[start : start + batch_size]
        rows = await pool.fetch("SELECT id FROM uploads WHERE id = ANY($1)", chunk)
        known = {row["id"] for row in rows}
        orphans = [upload_id for upload_id in chunk if upload_id not in known]
        result.orphan_folders += remove_folders(upload_dir, orphans, result)


async def prune(
    pool: asyncpg.Pool, upload_dir: Path, retention_days: int, batch_size: int = BATCH_SIZE
) -> PruneResult:
    """Remove finished deliveries, uploads, upload folders and events older than
    `retention_days` (an event only once none of its deliveries is pending): whole days of
    partitions where it can, else in batches."""
    result = PruneResult()
    if retention_days <= 0:
        return result
    cutoff: datetime = await pool.fetchval(
        "SELECT now() - make_interval(days => $1)", retention_days
    )
    # Delivery history and events go by whole UTC days, once the whole day is older than
    # retention_days (a row stays up to a day longer): the day's partitions are dropped,
    # no row-by-row delete, no bloat. Batches delete what that leaves: days holding a row
    # to keep, and the default partitions.
    history_cutoff = partitions.day_start(cutoff.astimezone(UTC).date())
    dropped = await partitions.drop_days_before(pool, history_cutoff)
    result.days_dropped = len(dropped.days)
    result.deliveries += dropped.rows.get("deliveries", 0)
    result.delivery_attempts += dropped.rows.get("delivery_attempts", 0)
    result.error_log += dropped.rows.get("error_log", 0)
    result.events += dropped.rows.get("events", 0)
    while await prune_deliveries_batch(pool, history_cutoff, batch_size, result) == batch_size:
        pass
    while True:
        examined, deleted = await uploads.prune_batch(pool, cutoff, batch_size)
        # Rows first, files after the commit: a crash in between leaves an orphan
        # folder, which the next run removes, never a row without its file.
        result.uploads += len(deleted)
        result.upload_folders += remove_folders(upload_dir, deleted, result)
        if examined < batch_size or not deleted:
            break
    await prune_orphan_folders(pool, upload_dir, cutoff, batch_size, result)
    while True:
        examined, pruned = await events.prune_batch(pool, history_cutoff, batch_size)
        result.events += pruned
        if examined < batch_size or not pruned:
            break
    return result


async def run(settings: RetentionSettings) -> PruneResult:
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        # The days ahead too, in case no upload service has run to make them.
        await partitions.create_ahead(pool)
        return await prune(pool, settings.upload_dir, settings.retention_days)
    finally:
        await pool.close()


def main() -> int:
    try:
        settings = RetentionSettings.from_env()
    except ConfigError as exc:
        print(f"retention: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if settings.retention_days == 0:
        print("retention: RETENTION_DAYS=0, pruning is disabled; nothing removed")
        return 0
    try:
        result = asyncio.run(run(settings))
    except DATABASE_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        print(
            f"retention: cannot prune the database at {redact_url(settings.database_url)}: "
            f"{reason}",
            file=sys.stderr,
        )
        return 1
    print(result.summary(settings.retention_days))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
