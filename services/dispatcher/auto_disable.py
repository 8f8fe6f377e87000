"""Auto-disable: a webhook answering 410 Gone, or failing for DISABLE_AFTER_SECONDS, is
disabled, and that is announced as a webhook.disabled event."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import asyncpg
import structlog

from services.common import system_events
from services.common.broker import Broker
from services.common.delivery_records import ClaimedDelivery
from services.common.messages import FanoutMessage
from services.common.tracing import current_carrier

from . import db
from .persist import announce, persist
from .retry import AttemptResult

log = structlog.get_logger(__name__)


class AutoDisable:
    """Looks at each failed attempt's endpoint; disables (and announces) one that is gone."""

    def __init__(self, pool: asyncpg.Pool, broker: Broker, disable_after_seconds: float) -> None:
        self.pool = pool
        self.broker = broker
        self.disable_after_seconds = disable_after_seconds

    async def disable_if_failing_too_long(
        self, delivery: ClaimedDelivery, result: AttemptResult
    ) -> None:
        """410 Gone disables at once; so does failing continuously for DISABLE_AFTER_SECONDS."""
        reason = None
        if result.status_code == 410:
            reason = "endpoint answered 410 Gone"
        elif delivery.failing_since is not None:
            failing_for = time.time() - delivery.failing_since.timestamp()
            if failing_for >= self.disable_after_seconds:
                reason = f"deliveries failed continuously for {int(failing_for)} s"
        if reason is None:
            return
        # Announced, unless the failing delivery was itself an announcement (no loops).
        announcement = None
        if not delivery.operational:
            announcement = system_events.webhook_disabled(
                delivery.webhook_id,
                delivery.url,
                reason,
                delivery.user_id,
                datetime.now(UTC),
                delivery.request_id,
                current_carrier(),  # the failing attempt's trace, for the relay's publish
            )
        outbox_id = await persist(
            lambda: db.disable_webhook(self.pool, delivery.webhook_id, reason, announcement)
        )
        log.warning("webhook_disabled", webhook_id=str(delivery.webhook_id), reason=reason)
        if outbox_id is not None and announcement is not None:
            msg = FanoutMessage(announcement.id, announcement.request_id)
            await announce(self.pool, self.broker, outbox_id, msg)
