"""HTTP handler of the upload service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from aiohttp import web

from services.common.broker import BROKER, BrokerUnavailable
from services.common.db import DB_POOL
from services.common.messages import UPLOAD_COMPLETED, event_message
from services.common.timefmt import iso_time
from services.common.web import REQUEST_ID_HEADER, BadRequest, NotFound, envelope

from . import db
from .keys import SETTINGS
from .metrics import EVENTS_PUBLISHED, UPLOAD_BYTES, UPLOADS
from .multipart import find_file_part, open_form
from .storage import remove_upload, store_part

log = structlog.get_logger(__name__)
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def parse_webhook_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadRequest(f"webhook_id must be a UUID, got {raw!r}") from None


async def upload_file(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    pool = request.app[DB_POOL]
    webhook_id = parse_webhook_id(request.match_info["webhook_id"])
    reader = open_form(request)
    webhook = await db.find_webhook(pool, webhook_id)
    if webhook is None:
        raise NotFound(f"webhook {webhook_id} does not exist")
    part = await find_file_part(reader)

    upload_id = uuid.uuid4()
    stored = await store_part(part, settings.upload_dir, str(upload_id), settings.max_upload_bytes)
    content_type = part.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
    created_at = datetime.now(UTC)
    data = {
        "upload_id": str(upload_id),
        "webhook_id": str(webhook_id),
        "filename": stored.filename,
        "size": stored.size,
        "sha256": stored.sha256,
        "content_type": content_type,
    }
    request_id = request.headers.get(REQUEST_ID_HEADER)
    try:
        recorded = await db.record_upload(
            pool,
            upload_id=upload_id,
            webhook=webhook,
            filename=stored.filename,
            stored_path=str(stored.path),
            size=stored.size,
            sha256=stored.sha256,
            content_type=content_type,
            request_id=request_id,
            event_data={**data, "uploaded_at": iso_time(created_at)},
            created_at=created_at,
        )
    except BaseException:
        remove_upload(settings.upload_dir, str(upload_id))
        raise
    UPLOADS.inc()
    UPLOAD_BYTES.inc(stored.size)
    log.info(
        "upload_recorded",
        upload_id=str(upload_id),
        webhook_id=str(webhook_id),
        delivery_id=str(recorded.delivery_id),
        size=stored.size,
    )
    if recorded.outbox_id is not None:
        await publish_now(request.app, recorded.outbox_id, recorded.event, request_id)
    return envelope(data, "ok")


async def publish_now(
    app: web.Application, outbox_id: int, event: dict[str, object], request_id: str | None
) -> None:
    """Publish right away; if the broker is slow or down the outbox relay publishes later."""
    settings = app[SETTINGS]
    try:
        await app[BROKER].publish(
            event_message(event, request_id),
            UPLOAD_COMPLETED,
            timeout=settings.publish_timeout_seconds,
        )
    except (BrokerUnavailable, TimeoutError, OSError, Exception) as exc:
        log.warning("event_publish_deferred", outbox_id=outbox_id, error=repr(exc))
        return
    EVENTS_PUBLISHED.labels("request").inc()
    await db.delete_outbox_rows(app[DB_POOL], [outbox_id])
