"""A 1 GiB upload is streamed: the upload service's memory stays flat."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg

from harness.processes import (
    curl_upload,
    peak_rss_kib,
    rss_kib,
    service_env,
    start_service,
    stop_process,
    wait_http_ok,
)
from harness.stack import free_port, purge_queues

GIB = 1024**3
# The bound for the 1 GiB upload; in practice it grows by a few MiB.
MAX_GROWTH_KIB = 64 * 1024


async def test_one_gib_upload_keeps_memory_flat(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    await purge_queues(amqp_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    webhook_id = await pool.fetchval(
        "INSERT INTO webhook_registrations (user_id, event_type_id, url, secret)"
        " VALUES (1, '21f8e1f7-4142-42f9-ac30-74961702b2eb', 'http://127.0.0.1:9/', 'whsec_eA==')"
        " RETURNING id"
    )
    await pool.execute("INSERT INTO webhook_configurations (webhook_id) VALUES ($1)", webhook_id)
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:  # sparse: no disk used on the sending side
        handle.truncate(GIB)
    port = free_port()
    upload_dir = tmp_path / "uploads"
    process = start_service(
        "upload",
        service_env(
            DATABASE_URL=database_url,
            AMQP_URL=amqp_url,
            UPLOAD_PORT=str(port),
            UPLOAD_DIR=str(upload_dir),
            MAX_UPLOAD_BYTES=str(2 * GIB),
        ),
        tmp_path / "upload.log",
    )
    try:
        await wait_http_ok(f"http://127.0.0.1:{port}/readyz")
        baseline = rss_kib(process.pid)
        response = await curl_upload(
            f"http://127.0.0.1:{port}/upload_file/webhook_id/{webhook_id}", big
        )
        peak = peak_rss_kib(process.pid)
    finally:
        stop_process(process)
        await pool.close()
    assert response["error"] is False, response
    assert response["data"]["size"] == GIB
    stored = upload_dir / response["data"]["upload_id"] / "big.bin"
    assert stored.stat().st_size == GIB
    stored.unlink()
    growth = peak - baseline
    print(f"upload service RSS: baseline {baseline} KiB, peak {peak} KiB, growth {growth} KiB")
    assert growth < MAX_GROWTH_KIB, f"peak RSS grew by {growth} KiB"
    assert uuid.UUID(response["data"]["upload_id"])
