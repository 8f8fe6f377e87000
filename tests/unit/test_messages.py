"""services/common/messages.py: the delay ladder, and each message encoded and read back."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.messages import (
    DEAD_LETTER_QUEUE,
    DEFAULT_EXCHANGE,
    DELAY_BUCKETS_MS,
    DISPATCH_QUEUE,
    DUE_AT_HEADER,
    EVENTS_EXCHANGE,
    REQUEST_ID_HEADER,
    UPLOAD_COMPLETED,
    DeliveryBatch,
    DeliveryEvent,
    DeliveryMessage,
    MalformedMessage,
    Route,
    delay_bucket_for,
    delay_queue_name,
    from_outbox,
    now_ms,
)

SMALLEST, LARGEST = DELAY_BUCKETS_MS[0], DELAY_BUCKETS_MS[-1]


def test_the_ladder_doubles_from_250_ms() -> None:
    assert SMALLEST == 250
    assert all(b == 2 * a for a, b in itertools.pairwise(DELAY_BUCKETS_MS))
    assert LARGEST == 32_768_000  # about 9 h: the default schedule's 10 h delays take several hops


@pytest.mark.parametrize("bucket", DELAY_BUCKETS_MS)
def test_a_delay_equal_to_a_bucket_takes_that_bucket(bucket: int) -> None:
    assert delay_bucket_for(bucket) == bucket


@pytest.mark.parametrize(
    ("remaining_ms", "bucket"),
    [(251, 250), (499, 250), (500, 500), (999, 500), (5_000, 4_000), (300_000, 256_000)],
)
def test_the_largest_bucket_not_longer_than_what_remains(remaining_ms: int, bucket: int) -> None:
    assert delay_bucket_for(remaining_ms) == bucket


@pytest.mark.parametrize("remaining_ms", [-(10**12), -1, 0, 1, 249])
def test_less_than_the_smallest_bucket_takes_the_smallest(remaining_ms: int) -> None:
    assert delay_bucket_for(remaining_ms) == SMALLEST


@pytest.mark.parametrize("remaining_ms", [LARGEST, LARGEST + 1, 36_000_000 * 10, 2**62])
def test_more_than_the_largest_bucket_takes_the_largest(remaining_ms: int) -> None:
    assert delay_bucket_for(remaining_ms) == LARGEST


@given(st.integers(min_value=SMALLEST, max_value=2**62))
def test_a_hop_never_overshoots_and_never_wastes_a_longer_bucket(remaining_ms: int) -> None:
    bucket = delay_bucket_for(remaining_ms)
    assert bucket in DELAY_BUCKETS_MS
    assert bucket <= remaining_ms
    longer = [b for b in DELAY_BUCKETS_MS if b > bucket]
    assert not longer or longer[0] > remaining_ms


@given(st.integers(min_value=0, max_value=30 * 3600 * 1000))
def test_hops_reach_the_due_time_within_one_smallest_bucket(remaining_ms: int) -> None:
    """What the dispatcher does with a delay: hop until less than the smallest bucket remains."""
    hops = 0
    while remaining_ms >= SMALLEST:
        remaining_ms -= delay_bucket_for(remaining_ms)
        hops += 1
    assert 0 <= remaining_ms < SMALLEST
    assert hops <= len(DELAY_BUCKETS_MS) + 30 * 3600 * 1000 // LARGEST


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


def test_an_outbox_row_of_one_delivery_is_read_back_as_the_same_event() -> None:
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


def batch_of(count: int, request_ids: list[str | None]) -> DeliveryBatch:
    events = tuple(
        DeliveryEvent(
            "order.paid", uuid.uuid4(), uuid.uuid4(), None, request_ids[n % len(request_ids)]
        )
        for n in range(count)
    )
    return DeliveryBatch("order.paid", events)


def test_a_batch_is_read_as_attempt_one_of_each_of_its_deliveries() -> None:
    batch = batch_of(3, ["req-a", "req-b", None])
    outgoing = batch.outgoing()
    assert outgoing.route == Route(EVENTS_EXCHANGE, "order.paid")
    # Requests differ: no request id in the header, each delivery keeps its own.
    assert REQUEST_ID_HEADER not in outgoing.message.headers
    decoded = DeliveryMessage.decode_all(received(outgoing.message))  # type: ignore[arg-type]
    assert decoded == [
        DeliveryMessage(event.delivery_id, 1, 0, event.request_id, event.webhook_id)
        for event in batch.events
    ]
    with pytest.raises(MalformedMessage):  # one delivery was asked for, three are announced
        DeliveryMessage.decode(received(outgoing.message))  # type: ignore[arg-type]


def test_a_batch_of_one_request_names_it_in_the_header() -> None:
    outgoing = batch_of(2, ["req-c"]).outgoing()
    assert outgoing.message.headers[REQUEST_ID_HEADER] == "req-c"


def test_an_outbox_row_of_a_batch_is_read_back_as_the_same_batch() -> None:
    batch = batch_of(4, ["req-d", None])
    payload = orjson.loads(orjson.dumps(batch.payload()))
    assert from_outbox(payload, "order.paid", None) == batch
    # A row of one delivery alone reads as that delivery's event.
    single = DeliveryEvent.upload_completed(DELIVERY, UPLOAD, WEBHOOK, "req-e")
    assert from_outbox(single.payload(), UPLOAD_COMPLETED, "req-e") == single


@pytest.mark.parametrize(
    "body",
    [
        {"type": "x", "deliveries": []},
        {"type": "x", "deliveries": [{"delivery_id": "nope", "webhook_id": str(WEBHOOK)}]},
        {"type": "x", "deliveries": "not a list"},
        {"type": "x", "deliveries": [{"webhook_id": str(WEBHOOK)}]},
    ],
)
def test_a_batch_that_is_not_one_of_ours_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(MalformedMessage):
        DeliveryMessage.decode_all(Incoming(orjson.dumps(body)))  # type: ignore[arg-type]
    with pytest.raises(MalformedMessage):
        from_outbox(body, "x", None)


def test_each_delivery_of_a_batch_carries_its_own_trace_context() -> None:
    carrier = {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    traced = DeliveryEvent.upload_completed(DELIVERY, UPLOAD, WEBHOOK, "req-f", carrier)
    untraced = DeliveryEvent.upload_completed(uuid.uuid4(), UPLOAD, WEBHOOK, "req-g")
    batch = DeliveryBatch(UPLOAD_COMPLETED, (traced, untraced))
    read = from_outbox(orjson.loads(orjson.dumps(batch.payload())), UPLOAD_COMPLETED, None)
    assert isinstance(read, DeliveryBatch)
    assert [event.trace_context for event in read.events] == [carrier, None]
    decoded = DeliveryMessage.decode_all(received(batch.outgoing().message))  # type: ignore[arg-type]
    assert [msg.trace_context for msg in decoded] == [carrier, None]
    # A retry is published in the attempt's span: the context is not sent on.
    assert b"traceparent" not in decoded[0].encode().body


def test_a_reserved_rate_slot_goes_round_the_delay_ladder_with_the_message() -> None:
    parked = DeliveryMessage(DELIVERY, 2, 1234, "req", WEBHOOK, rate_slot_ms=1434)
    assert DeliveryMessage.decode(received(parked.to_delay().message)) == parked
    plain = DeliveryMessage(DELIVERY, 2, 1234, "req", WEBHOOK)
    assert b"rate_slot_ms" not in plain.encode().body
    assert DeliveryMessage.decode(received(plain.encode())).rate_slot_ms == 0


def test_a_delivery_s_created_at_travels_in_its_batch_and_its_retries_to_the_claim() -> None:
    """The day of a delivery's partition (its created_at), exact to the microsecond."""
    made = datetime(2026, 12, 6, 16, 20, 49, 106123, tzinfo=UTC)
    event = DeliveryEvent("order.paid", DELIVERY, WEBHOOK, None, "req-t", None, made)
    batch = DeliveryBatch("order.paid", (event,))
    again = DeliveryBatch.from_payload(batch.payload(), "order.paid")
    assert again.events[0].created_at == made
    (first,) = DeliveryMessage.decode_all(received(again.outgoing().message))  # type: ignore[arg-type]
    assert first.created_at == made and first.attempt == 1
    retry = DeliveryMessage(DELIVERY, 2, 0, "req-t", WEBHOOK, created_at=made)
    decoded = DeliveryMessage.decode(received(retry.to_delay().message))  # type: ignore[arg-type]
    assert decoded.created_at == made and decoded.attempt == 2
    # Without one (a message published before it was added), it is None.
    plain = DeliveryMessage.decode(received(DeliveryMessage(DELIVERY).to_dispatch().message))  # type: ignore[arg-type]
    assert plain.created_at is None


@pytest.mark.parametrize("created_at", ["yesterday", "2026-12-06T16:20:49", 12])
def test_a_delivery_message_with_a_created_at_that_is_not_a_utc_time_is_refused(
    created_at: object,
) -> None:
    body = orjson.dumps({"delivery_id": str(DELIVERY), "created_at": created_at})
    with pytest.raises(MalformedMessage):
        DeliveryMessage.decode(Incoming(body))  # type: ignore[arg-type]
