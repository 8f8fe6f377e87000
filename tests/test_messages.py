"""services.common.messages: every message's body, headers and route, and the wire format
that outbox rows and queued messages written by earlier versions still have."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from services.common.messages import (
    DEAD_LETTER_QUEUE,
    DEFAULT_EXCHANGE,
    DISPATCH_QUEUE,
    DUE_AT_HEADER,
    EVENTS_EXCHANGE,
    REQUEST_ID_HEADER,
    UPLOAD_COMPLETED,
    DeliveryEvent,
    DeliveryMessage,
    MalformedMessage,
    Route,
    delay_queue_name,
    now_ms,
)

DELIVERY, UPLOAD, WEBHOOK = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


@dataclass
class Incoming:
    """What DeliveryMessage.decode reads of a consumed message."""

    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)


def received(outgoing_message: Any) -> Incoming:
    return Incoming(outgoing_message.body, dict(outgoing_message.headers))


def test_an_upload_event_has_the_body_and_headers_the_first_version_sent() -> None:
    event = DeliveryEvent.upload_completed(DELIVERY, UPLOAD, WEBHOOK, "req-1")
    outgoing = event.outgoing()
    # Key order too: the outbox of a running system holds rows of this exact shape.
    assert outgoing.message.body == orjson.dumps(
        {
            "type": UPLOAD_COMPLETED,
            "delivery_id": str(DELIVERY),
            "upload_id": str(UPLOAD),
            "webhook_id": str(WEBHOOK),
        }
    )
    assert outgoing.message.headers == {DUE_AT_HEADER: 0, REQUEST_ID_HEADER: "req-1"}
    assert outgoing.message.message_id == str(DELIVERY)
    assert outgoing.message.type == UPLOAD_COMPLETED
    assert outgoing.route == Route(EVENTS_EXCHANGE, UPLOAD_COMPLETED)


def test_an_outbox_row_written_by_the_old_code_is_read_back_as_the_same_event() -> None:
    old_payload = {
        "type": UPLOAD_COMPLETED,
        "delivery_id": str(DELIVERY),
        "upload_id": str(UPLOAD),
        "webhook_id": str(WEBHOOK),
    }
    event = DeliveryEvent.from_outbox(old_payload, UPLOAD_COMPLETED, "req-2")
    assert event == DeliveryEvent.upload_completed(DELIVERY, UPLOAD, WEBHOOK, "req-2")
    assert event.payload() == old_payload
    # A payload without its type is routed by the row's routing key.
    untyped = {key: value for key, value in old_payload.items() if key != "type"}
    assert DeliveryEvent.from_outbox(untyped, UPLOAD_COMPLETED, None).type == UPLOAD_COMPLETED


@pytest.mark.parametrize(
    "payload",
    [{}, {"delivery_id": "not-a-uuid", "webhook_id": str(WEBHOOK)}, {"delivery_id": "x"}],
)
def test_an_outbox_payload_that_is_not_an_event_is_refused(payload: dict[str, str]) -> None:
    with pytest.raises(MalformedMessage):
        DeliveryEvent.from_outbox(payload, UPLOAD_COMPLETED, None)


def test_the_dispatcher_reads_an_event_as_attempt_one_of_its_delivery() -> None:
    event = DeliveryEvent.upload_completed(DELIVERY, UPLOAD, WEBHOOK, "req-3")
    msg = DeliveryMessage.decode(received(event.outgoing().message))  # type: ignore[arg-type]
    assert msg == DeliveryMessage(DELIVERY, 1, 0, "req-3", WEBHOOK)


def test_a_delivery_message_round_trips_and_goes_where_its_intent_says() -> None:
    msg = DeliveryMessage(DELIVERY, 3, now_ms() + 900, "req-4", WEBHOOK)
    dispatch = msg.to_dispatch()
    assert dispatch.route == Route(DEFAULT_EXCHANGE, DISPATCH_QUEUE)
    assert dispatch.message.message_id == f"{DELIVERY}:3"
    assert DeliveryMessage.decode(received(dispatch.message)) == msg  # type: ignore[arg-type]
    assert msg.to_dead_letter().route == Route(DEFAULT_EXCHANGE, DEAD_LETTER_QUEUE)
    # Due in 0.9 s: the 500 ms bucket, the largest that does not bring it back late.
    assert msg.to_delay().route == Route(DEFAULT_EXCHANGE, delay_queue_name(500))


def test_a_delivery_message_without_webhook_id_or_headers_still_decodes() -> None:
    body = orjson.dumps({"delivery_id": str(DELIVERY)})
    msg = DeliveryMessage.decode(Incoming(body))  # type: ignore[arg-type]
    assert msg == DeliveryMessage(DELIVERY, 1, 0, None, None)
    with pytest.raises(MalformedMessage):
        DeliveryMessage.decode(Incoming(b"{not json"))  # type: ignore[arg-type]
