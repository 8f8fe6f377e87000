"""The dead-letter queue: declared with its bound before anything is consumed; its depth a metric.

Only the dispatcher dead-letters, so only it declares the queue, with the bound its
settings give. A queue's arguments cannot change: if the queue exists with another bound
(the settings changed since), RabbitMQ refuses the declare, and the queue keeps the bound
it has until an operator deletes it (the next round declares it again with these
settings) or sets a policy (README, "The dead-letter queue").
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from services.common.broker import BROKER_ERRORS, dead_letter_arguments, declared_depth
from services.common.messages import DEAD_LETTER_QUEUE, UNBOUNDED_DEAD_LETTER_QUEUE
from services.common.periodic import Periodic

from .metrics import DEAD_LETTER_MESSAGES
from .settings import DispatcherSettings

log = structlog.get_logger(__name__)

# Below Prometheus' usual scrape interval; a passive declare costs the broker next to nothing.
DEPTH_REFRESH_SECONDS = 5.0


class DeadLetters:
    """Declares the bounded dead-letter queue at connect and every round; keeps the metric."""

    def __init__(self, settings: DispatcherSettings) -> None:
        self.arguments = dead_letter_arguments(
            settings.dead_letter_max_length, settings.dead_letter_max_age_seconds
        )
        self.connection: AbstractRobustConnection | None = None
        # The queue exists with another bound: read it passively rather than fail each round.
        self.bound_differs = False

    async def on_connected(self, connection: AbstractRobustConnection) -> None:
        """The broker's first connection, before the consumer starts."""
        self.connection = connection
        try:
            await self.refresh()
            await self.warn_if_unbounded_queue_left(connection)
        except BROKER_ERRORS as exc:
            # Never keep the broker from becoming ready: the next round declares it.
            log.warning("dead_letter_queue_declare_failed", error=repr(exc))

    async def refresh(self) -> None:
        connection = self.connection
        if connection is None:
            return
        if self.bound_differs:
            try:
                depth = await declared_depth(connection, DEAD_LETTER_QUEUE)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                # Deleted to take the new bound: declare it with this one.
                self.bound_differs = False
                depth = await declared_depth(connection, DEAD_LETTER_QUEUE, self.arguments)
        else:
            try:
                depth = await declared_depth(connection, DEAD_LETTER_QUEUE, self.arguments)
            except aio_pika.exceptions.ChannelPreconditionFailed as exc:
                self.bound_differs = True
                log.warning(
                    "dead_letter_queue_bound_differs",
                    queue=DEAD_LETTER_QUEUE,
                    error=str(exc),
                    detail="the queue was declared with other DEAD_LETTER_MAX_LENGTH or "
                    "DEAD_LETTER_MAX_AGE_SECONDS values and keeps them; to apply these, delete "
                    f"it (rabbitmqctl delete_queue {DEAD_LETTER_QUEUE}; every failed delivery "
                    "stays in the database) and it is declared again within seconds",
                )
                depth = await declared_depth(connection, DEAD_LETTER_QUEUE)
        DEAD_LETTER_MESSAGES.set(depth)

    async def warn_if_unbounded_queue_left(self, connection: AbstractRobustConnection) -> None:
        try:
            depth = await declared_depth(connection, UNBOUNDED_DEAD_LETTER_QUEUE)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return
        log.warning(
            "unbounded_dead_letter_queue_left",
            queue=UNBOUNDED_DEAD_LETTER_QUEUE,
            messages=depth,
            detail=f"deliveries given up on go to {DEAD_LETTER_QUEUE}, which is bounded; this "
            "queue takes no more, and every failed delivery is in the database: delete it "
            f"(rabbitmqctl delete_queue {UNBOUNDED_DEAD_LETTER_QUEUE}) once its messages are "
            "of no more use",
        )

    async def ctx(self, _app: web.Application) -> AsyncIterator[None]:
        async with Periodic(self.refresh, DEPTH_REFRESH_SECONDS, "dead_letter_depth_failed"):
            yield
