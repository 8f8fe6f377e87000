"""Several brokers of one RabbitMQ cluster in AMQP_URL: parse the list, connect, fail over.

aio-pika's `connect_robust` reconnects to the one URL it was given (mosquito/aio-pika#141,
#104; the round-robin class of #680 was not merged). Two ways were open: our own reconnect
loop over plain connections, or a `RobustConnection` that changes its URL. We take the
second: the robust connection already restores channels, queues and consumers after a
reconnect, and every caller (the Broker, the dispatcher's consumer) relies on that. The
hook is `_on_connection_close`: aio-pika calls it both when an open connection is lost and
when a connection attempt fails (`UnderlayConnection.connect` hands the error to it), and
its reconnect loop reads `self.url` afresh on each attempt. So moving `url` to the next
broker there makes every reconnect attempt go round the cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aio_pika
import structlog
from aio_pika import RobustConnection
from yarl import URL

log = structlog.get_logger(__name__)

SCHEMES = ("amqp", "amqps")


def redact(url: URL) -> str:
    return str(url.with_password("***")) if url.password is not None else str(url)


def parse_broker_urls(raw: str) -> tuple[URL, ...]:
    """The brokers of a comma-separated AMQP_URL; ValueError with one line if one is bad.

    Every item is a full amqp:// or amqps:// URL with a host. They are nodes of one cluster,
    so they share the scheme, the user, the virtual host and the query; only host and port
    differ (a failover that changed account or vhost would be a different system).
    """
    items = [item.strip() for item in raw.split(",")]
    if not any(items):
        raise ValueError("must be one or more amqp:// URLs separated by commas, got nothing")
    brokers: list[URL] = []
    for position, item in enumerate(items, 1):
        where = f"item {position} of {len(items)}" if len(items) > 1 else "value"
        try:
            url = URL(item)
        except ValueError:
            url = URL()
        if url.scheme not in SCHEMES or not url.host:
            shown = redact(url) if url.host else item.split("@")[-1]
            raise ValueError(
                f"{where} must be a full {'/'.join(SCHEMES)} URL with a host, got {shown!r}"
            )
        if brokers and not same_cluster_account(brokers[0], url):
            raise ValueError(
                f"{where} ({redact(url)}) must differ from the first only in host and port: "
                "brokers of one cluster share scheme, user, password, vhost and options"
            )
        brokers.append(url)
    return tuple(brokers)


def same_cluster_account(first: URL, other: URL) -> bool:
    return (first.scheme, first.user, first.password, first.path, first.query_string) == (
        other.scheme,
        other.user,
        other.password,
        other.path,
        other.query_string,
    )


class ClusterConnection(RobustConnection):
    """A robust connection that moves on to the next broker whenever it loses the current one."""

    def __init__(self, brokers: Sequence[URL], first: int = 0, **kwargs: Any) -> None:
        if not brokers:
            raise ValueError("no brokers")
        self.brokers = tuple(brokers)
        self.current = first % len(self.brokers)
        super().__init__(self.brokers[self.current], **kwargs)

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # Our own close() also ends here; then there is nothing to fail over to.
        if not self.close_called and len(self.brokers) > 1:
            lost = self.brokers[self.current]
            self.current = (self.current + 1) % len(self.brokers)
            self.url = self.brokers[self.current]
            if self.connection_attempt:  # it was connected once: a failover, not a first try
                log.warning("broker_failover", lost=redact(lost), next=redact(self.url))
        await super()._on_connection_close(closing)


async def connect_cluster(raw_urls: str, timeout: float) -> ClusterConnection:
    """Connect to the first broker of the list that answers; raise the last error if none does.

    The returned connection then fails over by itself (see ClusterConnection).
    """
    brokers = parse_broker_urls(raw_urls)
    last_error: BaseException | None = None
    for position in range(len(brokers)):
        connection = ClusterConnection(brokers, first=position)
        try:
            await connection.connect(timeout=timeout)
        except (OSError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
            last_error = exc
            await connection.close()
            if len(brokers) > 1:
                log.warning("broker_unreachable", url=redact(brokers[position]), error=repr(exc))
            continue
        return connection
    assert last_error is not None
    raise last_error
