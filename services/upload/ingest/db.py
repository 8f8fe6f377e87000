"""SQL of uploads: the webhook an upload goes to, and the statement that records uploads.

An upload is an event with one delivery: its statement composes the SQL of the owners of
those rows (services.common.events, deliveries, outbox), one statement and one round trip
for a whole batch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import asyncpg

from services.common import deliveries, events, outbox, system_events, uploads
from services.common.db import columns
from services.common.messages import (
    MAX_DELIVERIES_PER_MESSAGE,
    UPLOAD_COMPLETED,
    DeliveryBatch,
    DeliveryEvent,
)

from ..fanout.filters import EventMatcher, stored_filter
from .event_types import EventTypeForEvents


class WebhookGone(Exception):
    """The webhook was deleted (or never was this user's) before the upload was recorded."""


@dataclass(frozen=True)
class RecordedUpload:
    """`delivery_id` is None when the upload's data did not pass the webhook's filter.
    `outbox_id` and `announcement`: the message announcing its delivery, with those of
    the uploads recorded by the same statement (None if nothing is to be sent)."""

    delivery_id: uuid.UUID | None
    outbox_id: int | None
    announcement: DeliveryBatch | None
    created_at: datetime


async def webhook_filter(
    pool: asyncpg.Pool, webhook_id: uuid.UUID, user_id: int | None = None
) -> EventMatcher | None:
    """The filter of a webhook that can take uploads (with `user_id`, only that user's);
    None if there is no such webhook."""
    row = await pool.fetchrow(
        """
        SELECT filter FROM webhook_registrations
        WHERE id = $1 AND deleted_at IS NULL AND ($2::bigint IS NULL OR user_id = $2)
        """,
        webhook_id,
        user_id,
    )
    return None if row is None else stored_filter(row["filter"], webhook_id)


@dataclass(frozen=True)
class NewUpload:
    """An upload to record, with its delivery and event."""

    upload_id: uuid.UUID
    webhook_id: uuid.UUID
    user_id: int | None
    filename: str
    stored_path: str
    size: int
    sha256: str
    content_type: str
    request_id: str | None
    created_at: datetime
    delivery_id: uuid.UUID
    event_data: dict[str, Any]
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    # Whether event_data passes the webhook's filter: else no delivery is made.
    matches: bool = True
    # The request's W3C trace context, kept in the outbox for the relay's publish.
    trace_context: dict[str, str] | None = None
    # The Ordering-Key header: its delivery waits for the earlier ones of that key.
    ordering_key: str | None = None

    @cached_property
    def event(self) -> DeliveryEvent:
        """The message that asks the dispatcher for the delivery's first attempt."""
        return DeliveryEvent.upload_completed(
            self.delivery_id,
            self.upload_id,
            self.webhook_id,
            self.request_id,
            self.trace_context,
            self.created_at,  # the event's time, its delivery's created_at
        )

    def recorded(self, outbox_id: int | None, announcement: DeliveryBatch | None) -> RecordedUpload:
        delivery_id = self.delivery_id if self.matches else None
        return RecordedUpload(delivery_id, outbox_id, announcement, self.created_at)


async def record_uploads(
    pool: asyncpg.Pool | asyncpg.Connection,
    uploads: list[NewUpload],
    statement: str | None = None,
) -> list[RecordedUpload | None]:
    """Each upload with its event, its delivery (if its data passes the webhook's filter),
    all in one statement, so one commit serves every upload that arrived together; and
    one outbox row, a DeliveryBatch announcing every delivery to be sent (not those to
    disabled webhooks), so one message does too. At most MAX_DELIVERIES_PER_MESSAGE.

    The webhook is looked up in that statement, so one deleted since the request began
    is refused (None) even when the caller skipped its own lookup.
    """
    if len(uploads) > MAX_DELIVERIES_PER_MESSAGE:
        raise ValueError(f"at most {MAX_DELIVERIES_PER_MESSAGE} uploads per statement")
    rows = await pool.fetch(
        statement or RECORD_UPLOADS,
        *columns(uploads),  # in NewUpload's field order
        [upload.event.item() for upload in uploads],
        system_events.UPLOAD_EVENT_TYPE_ID,
        UPLOAD_COMPLETED,
    )
    found = {row["upload_id"]: row for row in rows}
    announced = [u.event for u in uploads if u.upload_id in found and found[u.upload_id]["sent"]]
    announcement = DeliveryBatch(UPLOAD_COMPLETED, tuple(announced)) if announced else None
    recorded: list[RecordedUpload | None] = []
    for upload in uploads:
        row = found.get(upload.upload_id)
        if row is None:
            recorded.append(None)
        elif row["sent"]:
            recorded.append(upload.recorded(row["outbox_id"], announcement))
        else:
            recorded.append(upload.recorded(None, None))
    return recorded


def born_fanned_out(target: str, *, test: bool = False) -> str:
    """CTEs (for a WITH list) recording each row of `target` as an event born fanned out:
    the event (`test`, see events.insert_from), its one delivery if the row `matches`, and
    one outbox row, a DeliveryBatch announcing those to be sent (not to a disabled webhook:
    see deliveries.create_from; such a delivery is never published). `announced` returns
    the outbox row's `id`.

    `target` gives event_id, event_type_id, event_type (the name on the wire; one per
    statement), owner_id (the webhook's user), event_data, request_id, created_at (the
    event's time) and event_time (the same), delivery_id, webhook_id, upload_id (or
    NULL), disabled, matches, trace_context, message (its DeliveryEvent's item()) and
    ordering_key (or NULL)."""
    event_source = f"""(
        SELECT event_id, event_type_id, owner_id AS user_id, event_data AS payload,
               NULL::text AS idempotency_key, request_id, created_at, ordering_key
        FROM {target}) AS event_source"""
    announce = (
        f"SELECT min(event_type), {DeliveryBatch.payload_sql('min(event_type)', 'message')}, "
        f"(array_agg(request_id))[1], (array_agg(trace_context))[1] FROM {target} "
        "WHERE matches AND NOT disabled HAVING count(*) > 0"
    )
    # The event's place in its key's order is given as it is inserted, above.
    delivery_source = f"""(
        SELECT t.*, b.ordering_seq FROM {target} t JOIN born_event b ON b.id = t.event_id
        WHERE t.matches) AS m"""
    return f"""
    born_event AS ({events.insert_from(event_source, fanned_out=True, test=test)}
        RETURNING id, ordering_seq
    ), delivery AS ({deliveries.create_from(delivery_source)}
    ), announced AS ({outbox.insert_from(announce)})
    """


def record_uploads_sql(insert_uploads: bool) -> str:
    """The upload statement; without `insert_uploads` for uploads whose rows exist (an
    Idempotency-Key claim inserted them). The upload's event is born fanned out: its one
    delivery is made here. The webhook's `disabled` decides the delivery's first status."""
    upload_rows = f"upload AS ({uploads.insert_from('target')}),"
    return f"""
    WITH target AS (
        SELECT m.*, w.disabled, w.user_id AS owner_id, $18::uuid AS event_type_id,
               $19::text AS event_type, m.created_at AS event_time
        FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[],
                    $6::bigint[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                    $11::uuid[], $12::jsonb[], $13::uuid[], $14::bool[], $15::jsonb[],
                    $16::text[], $17::jsonb[])
            AS m(upload_id, webhook_id, user_id, filename, stored_path, size, sha256,
                 content_type, request_id, created_at, delivery_id, event_data, event_id,
                 matches, trace_context, ordering_key, message)
        JOIN webhook_registrations w ON w.id = m.webhook_id
        WHERE w.deleted_at IS NULL AND (m.user_id IS NULL OR w.user_id = m.user_id)
    ), {upload_rows if insert_uploads else ""}
    {born_fanned_out("target")}
    SELECT t.upload_id, t.matches AND NOT t.disabled AS sent,
           (SELECT id FROM announced) AS outbox_id
    FROM target t
"""


RECORD_UPLOADS = record_uploads_sql(insert_uploads=True)
RECORD_CLAIMED_UPLOAD = record_uploads_sql(insert_uploads=False)


async def record_upload_with_key(
    pool: asyncpg.Pool, upload: NewUpload, idempotency_key: str
) -> RecordedUpload | uploads.ExistingUpload:
    """Record `upload` as the holder of `idempotency_key`, or return the upload of this
    webhook from the last 24 h that already holds it (and write nothing).

    Raises WebhookGone, writing nothing, if the webhook was deleted meanwhile.
    """
    upload_row = (
        upload.upload_id,
        upload.webhook_id,
        upload.filename,
        upload.stored_path,
        upload.size,
        upload.sha256,
        upload.content_type,
        idempotency_key,
        upload.request_id,
        upload.created_at,
    )
    async with pool.acquire() as conn, conn.transaction():
        holder = await uploads.claim_idempotency_key(
            conn, upload.webhook_id, idempotency_key, upload_row
        )
        if holder is not None:
            return holder
        (recorded,) = await record_uploads(conn, [upload], RECORD_CLAIMED_UPLOAD)
        if recorded is None:
            raise WebhookGone(upload.webhook_id)  # rolls the upload row back
    return recorded


# --- test events (POST /webhook/{webhook_id}/test) ---------------------------------------


TYPE_FIELDS = ("id", "name", "event_name", "schema", "archived")


@dataclass(frozen=True)
class TargetWebhook:
    """A webhook a test event is for: its types in order (the first is the default)."""

    user_id: int
    disabled: bool
    types: list[EventTypeForEvents]


async def target_webhook(
    pool: asyncpg.Pool, webhook_id: uuid.UUID, user_id: int | None
) -> TargetWebhook | None:
    """The webhook (with `user_id`, only that user's); None if there is no such webhook."""
    rows = await pool.fetch(
        """
        SELECT w.user_id, w.disabled, t.id, t.name, t.event_name, t.schema, t.archived
        FROM webhook_registrations w
        JOIN webhook_event_types s ON s.webhook_id = w.id
        JOIN event_types t ON t.id = s.event_type_id
        WHERE w.id = $1 AND w.deleted_at IS NULL AND ($2::bigint IS NULL OR w.user_id = $2)
        ORDER BY s.position
        """,
        webhook_id,
        user_id,
    )
    if not rows:
        return None
    types = [EventTypeForEvents(**{name: row[name] for name in TYPE_FIELDS}) for row in rows]
    return TargetWebhook(rows[0]["user_id"], rows[0]["disabled"], types)


@dataclass(frozen=True)
class NewTestEvent:
    """A test event to record with its one delivery."""

    event_id: uuid.UUID
    event_type: EventTypeForEvents
    payload: dict[str, Any]
    request_id: str | None
    created_at: datetime
    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    trace_context: dict[str, str] | None

    @cached_property
    def event(self) -> DeliveryEvent:
        """The message that asks the dispatcher for the delivery's first attempt."""
        return DeliveryEvent(
            self.event_type.event_name,
            self.delivery_id,
            self.webhook_id,
            None,
            self.request_id,
            self.trace_context,
            self.created_at,
        )


# As an upload's, but of any type and marked `test`; the webhook's filter does not apply.
RECORD_TEST_EVENT = f"""
    WITH target AS (
        SELECT $1::uuid AS event_id, $2::uuid AS event_type_id, $3::text AS event_type,
               w.user_id AS owner_id, $4::jsonb AS event_data, $5::text AS request_id,
               $6::timestamptz AS created_at, $6::timestamptz AS event_time,
               $7::uuid AS delivery_id, w.id AS webhook_id, NULL::uuid AS upload_id,
               w.disabled, true AS matches, $8::jsonb AS trace_context, $9::jsonb AS message,
               NULL::text AS ordering_key
        FROM webhook_registrations w
        WHERE w.id = $10 AND w.deleted_at IS NULL AND NOT w.disabled
    ), {born_fanned_out("target", test=True)}
    SELECT (SELECT id FROM announced) AS outbox_id FROM target
"""


async def record_test_event(pool: asyncpg.Pool, test: NewTestEvent) -> int | None:
    """The event and its delivery in one statement; the id of the outbox row announcing it,
    or None (nothing written) if the webhook was disabled or deleted meanwhile."""
    outbox_id: int | None = await pool.fetchval(
        RECORD_TEST_EVENT,
        test.event_id,
        test.event_type.id,
        test.event_type.event_name,
        test.payload,
        test.request_id,
        test.created_at,
        test.delivery_id,
        test.trace_context,
        test.event.item(),
        test.webhook_id,
    )
    return outbox_id
