"""A smaller `make cluster-test`: a three-node RabbitMQ cluster of its own loses the leader of
webhooks.dispatch in the middle of a stream of uploads, and no accepted upload is lost.
It needs the installed rabbitmq-server (.ci/run installs it); the machine's node is not touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cluster import run


@pytest.mark.timeout(600)
async def test_stopping_the_dispatch_leader_loses_no_upload(tmp_path: Path) -> None:
    result = await run(total=120, rate=30.0, workdir=tmp_path, keep_logs=tmp_path / "logs")
    logs = tmp_path / "logs"
    assert result.accepted >= 120
    assert result.accepted_after_stop > 0, "the stream ended before the stop"
    assert result.lost == 0, result
    assert result.delivered == result.accepted
    assert result.recovery_s != float("inf"), "no upload accepted after the stop was delivered"
    # The services connect to the first node of AMQP_URL, where they declared the queue, so
    # it leads the queue and is the one stopped: they must have moved to the next broker.
    failovers = sum("broker_failover" in path.read_text() for path in logs.glob("*.log"))
    assert failovers >= 1, "no service failed over to another broker"
