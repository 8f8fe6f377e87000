"""The stalled sweep: pending deliveries whose message was lost, and keyed deliveries left
waiting behind one that ended (a crash between its end and their release), found and
published again."""

from __future__ import annotations

import asyncpg
import structlog

from services.common import deliveries, waiting
from services.common.broker import Broker
from services.common.messages import DeliveryMessage

log = structlog.get_logger(__name__)


async def sweep_stalled(pool: asyncpg.Pool, broker: Broker, delivery_timeout_seconds: float) -> int:
    """Republish deliveries whose message was lost between recording and publishing, and
    those left waiting behind a delivery of their key that ended; how many."""
    if not broker.connected:
        return 0
    overdue = max(60.0, delivery_timeout_seconds * 2)
    stalled = await deliveries.reschedule_stalled(pool, overdue)
    stranded = await waiting.stranded(pool)
    if stranded:
        log.warning("stranded_deliveries_republished", count=len(stranded))
    for delivery in [*stalled, *stranded]:
        await broker.send_to_dispatch(
            DeliveryMessage(
                delivery.id, delivery.attempt, 0, delivery.request_id, delivery.webhook_id
            )
        )
    if stalled:
        log.warning("stalled_deliveries_republished", count=len(stalled))
    return len(stalled) + len(stranded)
