"""Webhooks' stored filters as matchers of an event's data, each parsed once per version."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from services.common.filters import FilterError, parse_filter

from .db import Subscriber

log = structlog.get_logger(__name__)

MAX_CACHED_FILTERS = 10_000

# Whether an event's data passes a webhook's filter.
EventMatcher = Callable[[Mapping[str, Any]], bool]


def _matches_nothing(data: Mapping[str, Any]) -> bool:
    return False


def stored_filter(raw: object, webhook_id: uuid.UUID) -> EventMatcher:
    """A stored filter's matcher. The API stores only valid filters; one that is not
    (written by hand) matches nothing, loudly, rather than everything."""
    try:
        return parse_filter(raw).matches
    except FilterError as exc:
        log.warning("stored_filter_invalid", webhook_id=str(webhook_id), error=str(exc))
        return _matches_nothing


class FilterCache:
    """Parsed filters by (webhook id, updated_at): a fan-out to thousands of webhooks
    parses each filter once, and an edited webhook (new updated_at) is parsed afresh."""

    def __init__(self) -> None:
        self.entries: dict[tuple[uuid.UUID, datetime], EventMatcher] = {}

    def matcher(self, webhook: Subscriber) -> EventMatcher:
        key = (webhook.id, webhook.updated_at)
        matcher = self.entries.get(key)
        if matcher is None:
            if len(self.entries) >= MAX_CACHED_FILTERS:
                self.entries.clear()
            matcher = self.entries[key] = stored_filter(webhook.filter, webhook.id)
        return matcher
