"""Typed application keys of the upload service."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from aiohttp import web

from services.common.batch import Batcher
from services.common.cache import TtlCache

from .settings import UploadSettings

if TYPE_CHECKING:
    from services.common.events import NewEvent

    from .fanout.filters import EventMatcher
    from .fanout.inline import AcceptedHere
    from .fanout.worker import FanoutWorker
    from .ingest.db import NewUpload, RecordedUpload
    from .ingest.event_types import EventTypeForEvents
    from .relay.outbox_cleanup import OutboxCleanup
    from .relay.publishing import Announcer

SETTINGS = web.AppKey("settings", UploadSettings)
# (webhook, user) pairs that took an upload in the last few seconds, with their filter.
KNOWN_WEBHOOKS: web.AppKey[TtlCache[tuple[uuid.UUID, int | None], EventMatcher]] = web.AppKey(
    "known_webhooks"
)
# Records the uploads that arrive together in one statement; None: the webhook is gone.
RECORDER: web.AppKey[Batcher[NewUpload, RecordedUpload | None]] = web.AppKey("recorder")
# Accepts the events without an Idempotency-Key that arrive together, with their small
# fan-outs, in one statement; an Exception: that event's own error (the others were accepted).
ACCEPTOR: web.AppKey[Batcher[NewEvent, AcceptedHere | Exception]] = web.AppKey("acceptor")
OUTBOX_CLEANUP: web.AppKey[OutboxCleanup] = web.AppKey("outbox_cleanup")
# Publishes each outbox row once, however many requests recorded it.
ANNOUNCER: web.AppKey[Announcer] = web.AppKey("announcer")
FANOUT: web.AppKey[FanoutWorker] = web.AppKey("fanout")
# Event types by (name, id) as POST /event gives them, for a few seconds.
EVENT_TYPES: web.AppKey[TtlCache[tuple[str | None, uuid.UUID | None], EventTypeForEvents]] = (
    web.AppKey("event_types")
)
