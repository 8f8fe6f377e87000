"""What the delivery writer (deliveries.py) takes and gives back, as objects: a claim asked
for and granted, an attempt to record and what recording it wrote, a stalled delivery, and
what a prune batch deleted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from . import system_events
from .messages import FanoutMessage

# The columns a producer's source rows give `create_from`: one delivery per row.
SOURCE_COLUMNS = (
    "delivery_id, webhook_id, upload_id, event_id, event_type, event_time, event_data, "
    "disabled, request_id, ordering_key, ordering_seq"
)
# What a recover restarts.
RECOVERABLE_STATUSES = ["failed", "not_attempted"]
# What the API shows of a delivery.
DELIVERY_COLUMNS = """
    d.id, d.webhook_id, d.upload_id, d.event_id, d.status, d.attempt_count, d.next_retry_at,
    d.created_at, d.updated_at, d.ordering_key, d.waiting_for
"""


# --- claim and attempt (the dispatcher) ---------------------------------------------------------


@dataclass(frozen=True)
class ClaimRequest:
    delivery_id: uuid.UUID
    attempt: int
    # Its partition key when the message says it (DeliveryMessage.created_at).
    created_at: datetime | None = None


@dataclass(frozen=True)
class ClaimedDelivery:
    id: uuid.UUID
    # Its partition key: the statements after the claim name its one day partition.
    created_at: datetime
    webhook_id: uuid.UUID
    attempt: int
    event_type: str
    event_time: datetime
    event_data: dict[str, Any]
    request_id: str | None
    url: str
    secrets: list[str]
    custom_headers: dict[str, str]
    custom_payload: dict[str, Any]
    disabled: bool
    deleted: bool
    schedule_offset: int
    failing_since: datetime | None
    user_id: int
    # The webhook's own settings; None: the service's RETRY_SCHEDULE / timeout.
    retry_schedule: tuple[float, ...] | None
    timeout_seconds: float | None
    # How to authenticate to the endpoint (services/common/endpoint_auth.py); None: not at all.
    auth: dict[str, Any] | None = None
    # {"client_certificate": stored tls_client_certificate or None, "ca": PEM or None};
    # None: neither, the system's TLS defaults.
    tls: dict[str, Any] | None = None
    # Its line (SPEC section 16): its end releases the deliveries waiting behind it.
    ordering_key: str | None = None

    @property
    def operational(self) -> bool:
        """A delivery of an operational event: its failures announce nothing (no loops)."""
        return self.event_type in system_events.OPERATIONAL_EVENT_TYPES


def claimed_delivery(row: asyncpg.Record) -> ClaimedDelivery:
    fields = dict(row)
    secrets = [fields.pop("secret")]
    previous, previous_valid = fields.pop("previous_secret"), fields.pop("previous_valid")
    if previous and previous_valid:
        secrets.append(previous)
    schedule = fields.pop("retry_schedule")
    timeout = fields.pop("timeout_seconds")
    certificate, ca = fields.pop("tls_client_certificate"), fields.pop("tls_ca")
    return ClaimedDelivery(
        **fields,
        tls=None
        if certificate is None and ca is None
        else {"client_certificate": certificate, "ca": ca},
        secrets=secrets,
        retry_schedule=None if schedule is None else tuple(float(delay) for delay in schedule),
        timeout_seconds=None if timeout is None else float(timeout),
    )


@dataclass(frozen=True)
class AttemptRecord:
    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    attempt: int
    status: str  # succeeded | pending (retry in retry_in_seconds) | failed
    retry_in_seconds: float | None
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int
    # The delivery's created_at (ClaimedDelivery.created_at), which finds its one partition.
    delivery_created_at: datetime


@dataclass(frozen=True)
class RecordedAttempt:
    """`recorded`: False when the attempt's delivery had moved on (nothing written).
    `failure_event`: the `delivery.failed` event recorded with a final failure, whose
    fan-out message waits in the outbox as row `outbox_id` (publish it, or the relay will)."""

    recorded: bool
    failure_event: FanoutMessage | None = None
    outbox_id: int | None = None


def recorded_attempt(row: asyncpg.Record | None) -> RecordedAttempt:
    if row is None:
        return RecordedAttempt(False)
    if row["event_id"] is None:
        return RecordedAttempt(True)
    return RecordedAttempt(
        True, FanoutMessage(row["event_id"], row["request_id"]), row["outbox_id"]
    )


# --- ordered delivery ----------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceInLine:
    """Where a keyed delivery that could not be claimed stands (deliveries.wait_behind).

    `waiting_for`: the earlier delivery it now waits behind (its end releases it);
    `at_head`: nothing is ahead any more, try again; `behind_fanout`: an earlier event of
    its key is still making its deliveries, look again shortly; none: it moved on.
    """

    waiting_for: uuid.UUID | None = None
    at_head: bool = False
    behind_fanout: bool = False


# --- stalled deliveries, prune (the sweep, retention) ------------------------------------------


@dataclass(frozen=True)
class StalledDelivery:
    id: uuid.UUID
    attempt: int
    request_id: str | None
    webhook_id: uuid.UUID


@dataclass(frozen=True)
class Pruned:
    """What one prune batch examined and deleted."""

    examined: int = 0
    deliveries: int = 0
    delivery_attempts: int = 0
    error_log: int = 0


def deleted_rows(status: str) -> int:
    """The row count of a `DELETE n` command status."""
    return int(status.rsplit(" ", 1)[-1])
