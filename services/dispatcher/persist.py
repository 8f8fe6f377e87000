"""What follows a request already sent: written through a short outage, or left to the relay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import structlog

from services.common import outbox
from services.common.backoff import Backoff, retry
from services.common.broker import BROKER_ERRORS, Broker
from services.common.db import DATABASE_ERRORS
from services.common.messages import FanoutMessage

log = structlog.get_logger(__name__)

T = TypeVar("T")
OUTAGE_ERRORS = (*DATABASE_ERRORS, *BROKER_ERRORS)
# A write after the request was sent rides out an outage of up to a minute.
PERSIST_BACKOFF = Backoff(first=0.25, cap=5.0, give_up_after=60.0)
ANNOUNCE_TIMEOUT_SECONDS = 2.0


async def persist(write: Callable[[], Awaitable[T]]) -> T:
    """Retry a write to the database or broker through a short outage (PERSIST_BACKOFF).

    Past that the error propagates: the message goes back to the queue, and the
    sweeper republishes any delivery whose next message was never written.
    """
    return await retry(write, OUTAGE_ERRORS, PERSIST_BACKOFF, "write_retrying")


async def announce(pool: asyncpg.Pool, broker: Broker, outbox_id: int, msg: FanoutMessage) -> None:
    """Ask for an operational event's fan-out now; if that fails the relay does it."""
    try:
        await broker.request_fanout(msg, timeout=ANNOUNCE_TIMEOUT_SECONDS)
        await outbox.delete(pool, [outbox_id])
    except OUTAGE_ERRORS as exc:
        log.warning("fanout_request_deferred", event_id=str(msg.event_id), error=repr(exc))
