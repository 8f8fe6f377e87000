"""POST /upload_file/webhook_id/{webhook_id}: store the file, record the upload, answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from services.common import ordering, uploads
from services.common.api.edge import parse_path_id, respond
from services.common.api.shapes import Upload
from services.common.auth import current_user
from services.common.db import DB_POOL
from services.common.idempotency import (
    IDEMPOTENCY_HEADER,
    REPLAYED_HEADER,
    IdempotencyContention,
    parse_idempotency_key,
)
from services.common.timefmt import iso_time
from services.common.tracing import current_carrier
from services.common.web import (
    REQUEST_ID_HEADER,
    ApiError,
    BadRequest,
    NotFound,
    ServiceUnavailable,
    annotate,
    envelope,
    header_once,
)

from ..fanout.filters import EventMatcher
from ..keys import KNOWN_WEBHOOKS, RECORDER, SETTINGS
from ..metrics import UPLOAD_BYTES, UPLOADS
from ..relay.publishing import publish_now
from . import db
from .multipart import FilePart, find_file_part, finish_form, open_form
from .storage import StoredFile, content_type_of, store_part, upload_folder

log = structlog.get_logger(__name__)


class UnprocessableContent(ApiError, status=422): ...


def replay(key: str, first: uploads.ExistingUpload, repeat: dict[str, Any]) -> web.Response:
    """The first upload's response; a different file under the same key is the client's bug."""
    fields = ("filename", "sha256", "content_type")
    data = Upload.model_validate(first, from_attributes=True)
    differing = [name for name in fields if getattr(data, name) != repeat[name]]
    if differing:
        raise UnprocessableContent(
            f"{IDEMPOTENCY_HEADER} {key!r} was already used on this webhook for upload "
            f"{first.upload_id} with a different {', '.join(differing)}; "
            "send a new key for a new file"
        )
    log.info("upload_replayed", upload_id=str(first.upload_id), webhook_id=str(first.webhook_id))
    return respond(data, "ok", headers={REPLAYED_HEADER: "true"})


def webhook_missing(webhook_id: uuid.UUID) -> str:
    return f"webhook {webhook_id} does not exist"


async def check_webhook(
    app: web.Application, webhook_id: uuid.UUID, user_id: int | None
) -> EventMatcher:
    """The webhook's filter; 404 before any of the body is stored. Not looked up again
    for a webhook that took an upload a moment ago.

    Skipping the lookup for a known webhook saves a round trip per upload; the insert
    checks the webhook again, so one deleted meanwhile is still refused (a filter
    changed meanwhile applies within KNOWN_WEBHOOK_SECONDS). Another user's webhook is
    as good as missing (404): its existence is not leaked.
    """
    known = app[KNOWN_WEBHOOKS]
    found, matcher = known.get((webhook_id, user_id))
    if found and matcher is not None:
        return matcher
    matcher = await db.webhook_filter(app[DB_POOL], webhook_id, user_id)
    if matcher is None:
        raise NotFound(webhook_missing(webhook_id))
    known.put((webhook_id, user_id), matcher)
    return matcher


async def record(
    app: web.Application, upload: db.NewUpload, idempotency_key: str | None
) -> db.RecordedUpload | uploads.ExistingUpload:
    """Uploads without a key are recorded together with those arriving at the same moment."""
    if idempotency_key is not None:
        return await db.record_upload_with_key(app[DB_POOL], upload, idempotency_key)
    recorded = await app[RECORDER](upload)
    if recorded is None:
        raise db.WebhookGone(upload.webhook_id)
    return recorded


def parse_ordering_key(request: web.Request) -> str | None:
    """The optional Ordering-Key header: 1 to 200 characters, sent once (SPEC section 16)."""
    name = ordering.ORDERING_KEY_HEADER
    key = header_once(request, name)
    if key is None or 1 <= len(key) <= ordering.MAX_ORDERING_KEY_LENGTH:
        return key
    problem = "it is empty" if not key else f"it is {len(key)} characters long"
    raise BadRequest(
        f"{name} header must be 1 to {ordering.MAX_ORDERING_KEY_LENGTH} characters; {problem}"
    )


def upload_data(
    upload_id: str, webhook_id: uuid.UUID, stored: StoredFile, content_type: str
) -> dict[str, Any]:
    """The upload as the Upload shape renders it in JSON: the answer's `data`, and the
    event's data without `uploaded_at`. Built as a dict: every value is ours and already
    valid, so a model would only check it again (tests hold the two equal)."""
    return {
        "upload_id": upload_id,
        "webhook_id": str(webhook_id),
        "filename": stored.filename,
        "size": stored.size,
        "sha256": stored.sha256,
        "content_type": content_type,
    }


def new_upload(
    request: web.Request,
    upload_id: uuid.UUID,
    webhook_id: uuid.UUID,
    user_id: int | None,
    stored: StoredFile,
    part: FilePart,
    matcher: EventMatcher,
    ordering_key: str | None = None,
) -> tuple[db.NewUpload, dict[str, Any]]:
    """The upload to record, and the `data` its answer carries."""
    content_type = content_type_of(part.content_type)
    created_at = datetime.now(UTC)
    data = upload_data(str(upload_id), webhook_id, stored, content_type)
    event_data = {**data, "uploaded_at": iso_time(created_at)}
    upload = db.NewUpload(
        upload_id=upload_id,
        webhook_id=webhook_id,
        user_id=user_id,
        filename=stored.filename,
        stored_path=stored.path,
        size=stored.size,
        sha256=stored.sha256,
        content_type=content_type,
        request_id=request.headers.get(REQUEST_ID_HEADER),
        created_at=created_at,
        delivery_id=uuid.uuid4(),
        event_data=event_data,
        # An upload whose data fails the webhook's filter is recorded, with its event,
        # but gets no delivery (docs/events.md).
        matches=matcher(event_data),
        trace_context=current_carrier(),
        ordering_key=ordering_key,
    )
    return upload, data


async def upload_file(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    webhook_id = parse_path_id(request.match_info["webhook_id"], "webhook_id")
    idempotency_key = parse_idempotency_key(request)
    ordering_key = parse_ordering_key(request)
    form = open_form(request)
    user_id = current_user(request)
    matcher = await check_webhook(request.app, webhook_id, user_id)
    part = await find_file_part(request, form)

    upload_id = uuid.uuid4()
    with upload_folder(settings.upload_dir, str(upload_id)) as folder:
        stored = await store_part(part, folder.location, settings.max_upload_bytes)
        await finish_form(form)
        upload, data = new_upload(
            request, upload_id, webhook_id, user_id, stored, part, matcher, ordering_key
        )
        try:
            recorded = await record(request.app, upload, idempotency_key)
        except db.WebhookGone:
            request.app[KNOWN_WEBHOOKS].discard((webhook_id, user_id))
            raise NotFound(webhook_missing(webhook_id)) from None
        except IdempotencyContention as exc:
            raise ServiceUnavailable(str(exc), retry_after=1) from None
        if isinstance(recorded, uploads.ExistingUpload):
            # A repeat: the first upload answers, and this request's copy of the file goes.
            assert idempotency_key is not None
            return replay(idempotency_key, recorded, data)
        folder.keep()
    UPLOADS.inc()
    UPLOAD_BYTES.inc(stored.size)
    annotate(
        request,
        upload_id=data["upload_id"],
        webhook_id=data["webhook_id"],
        delivery_id=recorded.delivery_id and str(recorded.delivery_id),
        size=stored.size,
    )
    if recorded.outbox_id is not None and recorded.announcement is not None:
        publish_now(request.app, recorded.outbox_id, recorded.announcement)
    # The envelope as respond() renders it, from the dict (test_upload_answer holds them equal).
    return envelope(data, "ok")
