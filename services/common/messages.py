"""The message contract: exchange, queue and routing-key names, and the delivery message."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import aio_pika
import orjson
from pamqp.common import FieldValue

EVENTS_EXCHANGE = "webhooks.events"
DISPATCH_QUEUE = "webhooks.dispatch"
DEAD_LETTER_QUEUE = "webhooks.dead"
DELAY_QUEUE_PREFIX = "webhooks.delay."
UPLOAD_COMPLETED = "upload.completed"

# Fixed ladder of delay queues, 250 ms doubling up to ~9 h; a longer or odd delay is
# made of several hops because per-message TTL only expires at the head of a queue.
DELAY_BUCKETS_MS: tuple[int, ...] = tuple(250 * 2**k for k in range(18))

# Integer milliseconds: pamqp would encode a float header as a 32-bit float.
DUE_AT_HEADER = "x-due-at-ms"
REQUEST_ID_HEADER = "x-request-id"


class MalformedMessage(ValueError):
    """A message whose body is not a delivery message."""


@dataclass(frozen=True)
class DeliveryMessage:
    """Asks the dispatcher to make attempt `attempt` of a delivery, not before `due_at_ms`."""

    delivery_id: uuid.UUID
    attempt: int = 1
    due_at_ms: int = 0
    request_id: str | None = None
    # Lets the dispatcher apply its per-endpoint limit before touching the database.
    webhook_id: uuid.UUID | None = None

    def encode(self) -> aio_pika.Message:
        headers: dict[str, FieldValue] = {DUE_AT_HEADER: self.due_at_ms}
        if self.request_id:
            headers[REQUEST_ID_HEADER] = self.request_id
        body: dict[str, object] = {"delivery_id": str(self.delivery_id), "attempt": self.attempt}
        if self.webhook_id is not None:
            body["webhook_id"] = str(self.webhook_id)
        return aio_pika.Message(
            body=orjson.dumps(body),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=headers,
            message_id=f"{self.delivery_id}:{self.attempt}",
        )

    @classmethod
    def decode(cls, message: aio_pika.abc.AbstractIncomingMessage) -> DeliveryMessage:
        try:
            body = orjson.loads(message.body)
            delivery_id = uuid.UUID(str(body["delivery_id"]))
            attempt = int(body.get("attempt", 1))
            webhook_id = uuid.UUID(str(body["webhook_id"])) if body.get("webhook_id") else None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"not a delivery message: {exc!r}") from None
        headers = message.headers or {}
        due = headers.get(DUE_AT_HEADER, 0)
        request_id = headers.get(REQUEST_ID_HEADER)
        return cls(
            delivery_id=delivery_id,
            attempt=max(attempt, 1),
            due_at_ms=int(due) if isinstance(due, int | float) else 0,
            request_id=str(request_id) if request_id else None,
            webhook_id=webhook_id,
        )


def event_message(payload: dict[str, object], request_id: str | None) -> aio_pika.Message:
    """An event for the events exchange; its `delivery_id` makes it a first attempt."""
    headers: dict[str, FieldValue] = {DUE_AT_HEADER: 0}
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return aio_pika.Message(
        body=orjson.dumps(payload),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=headers,
        message_id=str(payload.get("delivery_id", "")),
        type=str(payload.get("type", "")),
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def delay_queue_name(bucket_ms: int) -> str:
    return f"{DELAY_QUEUE_PREFIX}{bucket_ms}"


def delay_bucket_for(remaining_ms: int) -> int:
    """The largest bucket not longer than what remains (the smallest if less remains)."""
    chosen = DELAY_BUCKETS_MS[0]
    for bucket in DELAY_BUCKETS_MS:
        if bucket <= remaining_ms:
            chosen = bucket
    return chosen
