"""The message contract: exchange, queue and routing-key names, every message we publish
(built, encoded, decoded), and where each one goes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aio_pika
import orjson
from pamqp.common import FieldValue

EVENTS_EXCHANGE = "webhooks.events"
# RabbitMQ's default exchange routes a message straight to the queue its key names.
DEFAULT_EXCHANGE = ""
DISPATCH_QUEUE = "webhooks.dispatch"
# Accepted events wait here for the fan-out worker (services/upload/fanout/worker.py).
FANOUT_QUEUE = "webhooks.fanout"
# Deliveries given up on, for an operator to look at; bounded in length and age
# (DEAD_LETTER_MAX_LENGTH, DEAD_LETTER_MAX_AGE_SECONDS), the database keeping every failed
# delivery anyway. A queue's arguments cannot change once it exists, and deployments hold
# an unbounded queue named UNBOUNDED_DEAD_LETTER_QUEUE: a name of its own makes the bound
# hold from the first start on any deployment, with no manual step.
DEAD_LETTER_QUEUE = "webhooks.dead-letter"
# Takes no more messages; the dispatcher warns at start while it exists (it is the
# operator's to read and delete: services/dispatcher/dead_letters.py).
UNBOUNDED_DEAD_LETTER_QUEUE = "webhooks.dead"
DELAY_QUEUE_PREFIX = "webhooks.delay."
UPLOAD_COMPLETED = "upload.completed"
# Binds the dispatch queue to every event type (a type's name is dot-separated words).
EVERY_EVENT_TYPE = "#"

# Fixed ladder of delay queues, 250 ms doubling up to ~9 h; a longer or odd delay is
# made of several hops because per-message TTL only expires at the head of a queue.
DELAY_BUCKETS_MS: tuple[int, ...] = tuple(250 * 2**k for k in range(18))

# Deliveries announced by one message at most. A message through a quorum queue costs the
# broker, the publisher and the consumer about as much as a delivery's own database work,
# so deliveries recorded together (one statement) share one; the bound keeps a message
# small and what one redelivery repeats short.
MAX_DELIVERIES_PER_MESSAGE = 64

# Integer milliseconds: pamqp would encode a float header as a 32-bit float.
DUE_AT_HEADER = "x-due-at-ms"
REQUEST_ID_HEADER = "x-request-id"


class MalformedMessage(ValueError):
    """A message (or a stored outbox payload) whose body is not one of ours."""


@dataclass(frozen=True)
class Route:
    """Where a message goes: an exchange (DEFAULT_EXCHANGE: a queue by name) and a key."""

    exchange: str
    routing_key: str


@dataclass(frozen=True)
class Outgoing:
    """An encoded message and its route: what the broker publishes."""

    message: aio_pika.Message
    route: Route


def encode(
    body: Mapping[str, object],
    due_at_ms: int,
    request_id: str | None,
    message_id: str,
    message_type: str | None = None,
) -> aio_pika.Message:
    headers: dict[str, FieldValue] = {DUE_AT_HEADER: due_at_ms}
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return aio_pika.Message(
        body=orjson.dumps(body),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=headers,
        message_id=message_id,
        type=message_type,
    )


@dataclass(frozen=True)
class DeliveryEvent:
    """An event that created a delivery: asks the dispatcher for the delivery's first attempt.

    Announced as an entry (`item()`) of a DeliveryBatch. An outbox row may also hold one
    alone (`payload()`), and nothing but its publish removes such a row (no migration
    rewrites outbox rows), so the relay reads it (`from_outbox`) and publishes it to the
    events exchange with the event type as routing key (`outgoing`). The dispatcher reads
    either as a DeliveryMessage for attempt 1 (ids only: it reads the rest from the database).
    """

    type: str
    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    upload_id: uuid.UUID | None = None
    request_id: str | None = None
    # The W3C context of the request that recorded it: its delivery continues that trace
    # when it travels in a batch published in another request's (DeliveryBatch).
    trace_context: Mapping[str, str] | None = field(default=None, compare=False)
    # The delivery's created_at (its partition key): the claim looks in that day alone.
    created_at: datetime | None = field(default=None, compare=False)

    @classmethod
    def upload_completed(
        cls,
        delivery_id: uuid.UUID,
        upload_id: uuid.UUID,
        webhook_id: uuid.UUID,
        request_id: str | None,
        trace_context: Mapping[str, str] | None = None,
        created_at: datetime | None = None,
    ) -> DeliveryEvent:
        return cls(
            UPLOAD_COMPLETED,
            delivery_id,
            webhook_id,
            upload_id,
            request_id,
            trace_context,
            created_at,
        )

    def payload(self) -> dict[str, str]:
        """Its body as a message of its own: what an outbox row of one delivery holds."""
        body = {"type": self.type, "delivery_id": str(self.delivery_id)}
        if self.upload_id is not None:
            body["upload_id"] = str(self.upload_id)
        body["webhook_id"] = str(self.webhook_id)
        return body

    def item(self) -> dict[str, Any]:
        """Its entry in a DeliveryBatch's `deliveries` (the batch says the type)."""
        body: dict[str, Any] = {
            "delivery_id": str(self.delivery_id),
            "webhook_id": str(self.webhook_id),
        }
        if self.upload_id is not None:
            body["upload_id"] = str(self.upload_id)
        if self.request_id:
            body["request_id"] = self.request_id
        if self.trace_context:
            body["trace"] = dict(self.trace_context)
        if self.created_at is not None:
            body["created_at"] = self.created_at.isoformat()
        return body

    @classmethod
    def from_outbox(
        cls, payload: Mapping[str, Any], routing_key: str, request_id: str | None
    ) -> DeliveryEvent:
        """The event an outbox row of one delivery holds (its `type` may be left to the
        row's routing key)."""
        try:
            upload_id = payload.get("upload_id")
            return cls(
                type=str(payload.get("type") or routing_key),
                delivery_id=uuid.UUID(str(payload["delivery_id"])),
                webhook_id=uuid.UUID(str(payload["webhook_id"])),
                upload_id=uuid.UUID(str(upload_id)) if upload_id else None,
                request_id=request_id,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedMessage(f"not a delivery event: {exc!r}") from None

    def outgoing(self) -> Outgoing:
        message = encode(self.payload(), 0, self.request_id, str(self.delivery_id), self.type)
        return Outgoing(message, Route(EVENTS_EXCHANGE, self.type))


@dataclass(frozen=True)
class FanoutMessage:
    """Asks the fan-out worker to create (and publish) the deliveries of one accepted event.

    Kept in the outbox (routing key FANOUT_QUEUE) until the broker confirms it; published
    straight to the fan-out queue. A second copy is harmless: the fan-out never creates a
    delivery twice.
    """

    event_id: uuid.UUID
    request_id: str | None = None

    def payload(self) -> dict[str, str]:
        """The body, and what the outbox keeps (see fanout_payload_sql)."""
        return {"event_id": str(self.event_id)}

    def outgoing(self) -> Outgoing:
        message = encode(self.payload(), 0, self.request_id, f"fanout:{self.event_id}")
        return Outgoing(message, Route(DEFAULT_EXCHANGE, FANOUT_QUEUE))

    @classmethod
    def decode(cls, message: aio_pika.abc.AbstractIncomingMessage) -> FanoutMessage:
        try:
            body = orjson.loads(message.body)
            event_id = uuid.UUID(str(body["event_id"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"not a fan-out message: {exc!r}") from None
        request_id = (message.headers or {}).get(REQUEST_ID_HEADER)
        return cls(event_id, str(request_id) if request_id else None)


def fanout_payload_sql(event_id: str) -> str:
    """SQL building FanoutMessage.payload() from the column `event_id`, for a statement
    that creates events and their outbox rows together."""
    return f"jsonb_build_object('event_id', {event_id})"


@dataclass(frozen=True)
class DeliveryBatch:
    """Deliveries of one event type recorded by one statement, announced by one message
    (at most MAX_DELIVERIES_PER_MESSAGE): the dispatcher reads it as attempt 1 of each.

    Its outbox row holds `payload()`, which the producing statement builds in SQL from
    each delivery's `DeliveryEvent.item()` (see `payload_sql`). Published to the events
    exchange with the event type as routing key, like a DeliveryEvent of its own.
    """

    type: str
    events: tuple[DeliveryEvent, ...]

    def payload(self) -> dict[str, object]:
        return {"type": self.type, "deliveries": [event.item() for event in self.events]}

    @staticmethod
    def payload_sql(event_type: str, items: str) -> str:
        """SQL (an aggregate) building `payload()` from the jsonb column `items`."""
        return f"jsonb_build_object('type', {event_type}, 'deliveries', jsonb_agg({items}))"

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], routing_key: str) -> DeliveryBatch:
        try:
            event_type = str(payload.get("type") or routing_key)
            events = tuple(
                DeliveryEvent(
                    type=event_type,
                    delivery_id=uuid.UUID(str(item["delivery_id"])),
                    webhook_id=uuid.UUID(str(item["webhook_id"])),
                    upload_id=uuid.UUID(str(item["upload_id"])) if item.get("upload_id") else None,
                    request_id=str(item["request_id"]) if item.get("request_id") else None,
                    trace_context=carrier_of(item),
                    created_at=time_of(item),
                )
                for item in payload["deliveries"]
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedMessage(f"not a batch of deliveries: {exc!r}") from None
        if not events:
            raise MalformedMessage("not a batch of deliveries: it announces none")
        return cls(event_type, events)

    def outgoing(self) -> Outgoing:
        first = self.events[0]
        # The header names the request only when every delivery came from that one.
        shared = first.request_id
        if any(event.request_id != shared for event in self.events):
            shared = None
        message_id = f"deliveries:{first.delivery_id}"
        message = encode(self.payload(), 0, shared, message_id, self.type)
        return Outgoing(message, Route(EVENTS_EXCHANGE, self.type))


# What an outbox row holds: deliveries' first attempts (a batch, or one delivery alone:
# see DeliveryEvent), or an event's fan-out.
RecordedMessage = DeliveryBatch | DeliveryEvent | FanoutMessage


def from_outbox(
    payload: Mapping[str, Any], routing_key: str, request_id: str | None
) -> RecordedMessage:
    """The message an outbox row holds; raises MalformedMessage."""
    if routing_key == FANOUT_QUEUE:
        try:
            return FanoutMessage(uuid.UUID(str(payload["event_id"])), request_id)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedMessage(f"not a fan-out message: {exc!r}") from None
    if isinstance(payload, Mapping) and "deliveries" in payload:
        return DeliveryBatch.from_payload(payload, routing_key)
    return DeliveryEvent.from_outbox(payload, routing_key, request_id)


@dataclass(frozen=True)
class DeliveryMessage:
    """Asks the dispatcher to make attempt `attempt` of a delivery, not before `due_at_ms`."""

    delivery_id: uuid.UUID
    attempt: int = 1
    due_at_ms: int = 0
    request_id: str | None = None
    # Lets the dispatcher apply its per-endpoint limit before touching the database. Every
    # message we publish has it, but a queue may hold messages without it for a long time
    # (a retry parked for hours, a dead letter replayed), so one without it is limited
    # after its claim.
    webhook_id: uuid.UUID | None = None
    # The start (epoch ms) reserved for the attempt under its webhook's
    # rate_limit_per_second (endpoint_rates.py): it is sent then, without reserving
    # again; 0: none reserved.
    rate_slot_ms: int = 0
    # Attempt 1 of a delivery in a batch: its request's trace (DeliveryEvent.trace_context).
    # Not sent on: a retry is published in the attempt's span, so in that trace already.
    trace_context: Mapping[str, str] | None = field(default=None, compare=False)
    # The delivery's created_at, its partition key (DeliveryEvent.created_at); a message
    # without it (published before it was added) is claimed by its id alone.
    created_at: datetime | None = field(default=None, compare=False)

    def encode(self) -> aio_pika.Message:
        body: dict[str, object] = {"delivery_id": str(self.delivery_id), "attempt": self.attempt}
        if self.webhook_id is not None:
            body["webhook_id"] = str(self.webhook_id)
        if self.rate_slot_ms:
            body["rate_slot_ms"] = self.rate_slot_ms
        if self.created_at is not None:
            body["created_at"] = self.created_at.isoformat()
        return encode(body, self.due_at_ms, self.request_id, f"{self.delivery_id}:{self.attempt}")

    @classmethod
    def decode(cls, message: aio_pika.abc.AbstractIncomingMessage) -> DeliveryMessage:
        """A message asking for one delivery (a batch of several is refused)."""
        decoded = cls.decode_all(message)
        if len(decoded) != 1:
            raise MalformedMessage(f"asks for {len(decoded)} deliveries, not one")
        return decoded[0]

    @classmethod
    def decode_all(cls, message: aio_pika.abc.AbstractIncomingMessage) -> list[DeliveryMessage]:
        """What a consumed message asks for: one delivery message, or attempt 1 of each
        delivery of a DeliveryBatch (a DeliveryEvent: of its one delivery)."""
        headers = message.headers or {}
        due = headers.get(DUE_AT_HEADER, 0)
        due_at_ms = int(due) if isinstance(due, int | float) else 0
        shared = headers.get(REQUEST_ID_HEADER)
        try:
            body = orjson.loads(message.body)
            items = body.get("deliveries", [body])
            decoded = [
                cls(
                    delivery_id=uuid.UUID(str(item["delivery_id"])),
                    attempt=max(int(item.get("attempt", 1)), 1),
                    due_at_ms=due_at_ms,
                    request_id=str(item.get("request_id") or shared or "") or None,
                    webhook_id=uuid.UUID(str(item["webhook_id"]))
                    if item.get("webhook_id")
                    else None,
                    rate_slot_ms=int(item.get("rate_slot_ms", 0)),
                    trace_context=carrier_of(item),
                    created_at=time_of(item),
                )
                for item in items
            ]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedMessage(f"not a delivery message: {exc!r}") from None
        if not decoded:
            raise MalformedMessage("not a delivery message: it asks for no delivery")
        return decoded

    def to_dispatch(self) -> Outgoing:
        """Straight to the dispatch queue: a redeliver, a recover, a stalled delivery."""
        return Outgoing(self.encode(), Route(DEFAULT_EXCHANGE, DISPATCH_QUEUE))

    def to_delay(self) -> Outgoing:
        """Round the delay ladder: the bucket that brings it back soonest without being early."""
        bucket = delay_bucket_for(self.due_at_ms - now_ms())
        return Outgoing(self.encode(), Route(DEFAULT_EXCHANGE, delay_queue_name(bucket)))

    def to_dead_letter(self) -> Outgoing:
        """Given up: kept in the dead-letter queue for an operator."""
        return Outgoing(self.encode(), Route(DEFAULT_EXCHANGE, DEAD_LETTER_QUEUE))


def carrier_of(item: Mapping[str, Any]) -> dict[str, str] | None:
    """A batch entry's W3C trace context, if it has a well-formed one."""
    carrier = item.get("trace")
    if not isinstance(carrier, dict):
        return None
    return {str(key): str(value) for key, value in carrier.items()}


def time_of(item: Mapping[str, Any]) -> datetime | None:
    """A message entry's `created_at` (ISO 8601 with its offset), if it has one; raises
    ValueError for one that is not such a time."""
    text = item.get("created_at")
    if text is None:
        return None
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"created_at {text!r} has no UTC offset")
    return moment


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
