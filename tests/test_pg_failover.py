"""A smaller `make pg-failover-test`: the PostgreSQL primary dies (`-m immediate`) in the
middle of a stream of uploads and events and its synchronous standby is promoted; no 2xx
item is lost, and the services follow the new primary by themselves (pools and the
key-revocation LISTEN connections). It needs the installed PostgreSQL server binaries;
the machine's own server is not touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.pg_failover import run


@pytest.mark.timeout(300)
async def test_a_primary_failover_loses_no_accepted_item(tmp_path: Path) -> None:
    result = await run(total=120, rate=30.0, workdir=tmp_path, keep_logs=tmp_path / "logs")
    assert result.accepted >= 120
    assert result.accepted_after_promotion > 0, "the stream ended before the promotion"
    assert result.lost == 0, result
    assert result.delivered == result.accepted
    assert result.recovery_s != float("inf"), "nothing accepted after the promotion arrived"
    # While no server accepts writes the services answer 503 (never a 500 or a hang).
    assert set(result.refused) <= {503}, result.refused
    assert result.listeners_back == {"registration": True, "upload": True}, result
