"""Deliver one message: claim the delivery, send the signed request, record it, retry or finish."""

from __future__ import annotations

import asyncio
import random
import ssl
import time
import uuid
from contextvars import ContextVar
from dataclasses import replace

import aiohttp
import asyncpg
import structlog
from aio_pika.abc import AbstractIncomingMessage

from services.common import deliveries
from services.common.batch import Batcher
from services.common.broker import Broker
from services.common.consuming import Outcome
from services.common.db import HeldConnection
from services.common.delivery_records import (
    AttemptRecord,
    ClaimedDelivery,
    ClaimRequest,
    RecordedAttempt,
)
from services.common.endpoint_auth import unseal, unseal_certificate
from services.common.messages import DeliveryMessage, now_ms
from services.common.secrets import SecretBox, SecretUnavailable
from services.common.tracing import annotate_span, attempt_span, joined

from . import db
from .auto_disable import AutoDisable
from .endpoint_auth import Authorizer
from .endpoints import EndpointGate, EndpointLimits
from .lines import Lines
from .metrics import END_TO_END, ENDPOINT_BUSY, GAVE_UP, RETRYING, SUCCEEDED
from .oauth2 import TokenCache, TokenUnavailable
from .pacing import Pacer
from .persist import OUTAGE_ERRORS, announce, persist
from .places import Place, Places
from .request import ARRIVED, send_request
from .retry import AttemptResult, NextStep, next_step
from .settings import DispatcherSettings
from .tls import TlsContexts

log = structlog.get_logger(__name__)

# A message due within this many milliseconds is handled now rather than parked.
DUE_TOLERANCE_MS = 50
DB_ERROR_BACKOFF_SECONDS = 2.0
ENDPOINT_BUSY_DELAY_MS = 1000
# Attempt records gather this long before their statement runs. The request is already on
# the wire, so the wait only delays the ack, while one round trip and one commit serve
# every delivery that finished meanwhile.
RECORD_GATHER_SECONDS = 0.005
# The place the delivery being handled holds among those in flight.
PLACE: ContextVar[Place] = ContextVar("place")


class Dispatcher:
    """Turns delivery messages into attempts; every outcome is recorded before the ack."""

    def __init__(
        self,
        settings: DispatcherSettings,
        pool: asyncpg.Pool,
        broker: Broker,
        session: aiohttp.ClientSession,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.broker = broker
        self.session = session
        self.endpoints = EndpointGate(
            settings.per_endpoint_concurrency, max_wait_seconds=ENDPOINT_BUSY_DELAY_MS / 1000
        )
        self.limits = EndpointLimits(
            settings.per_endpoint_concurrency,
            lambda ids: db.limits_of(pool, ids, "max_concurrency"),
        )
        self.pacer = Pacer(pool, self.park)
        self.secret_box = SecretBox(settings.secrets_keys)
        self.tls = TlsContexts()
        self.authorizer = Authorizer(
            TokenCache(
                session,
                settings.delivery_timeout_seconds,
                settings.allow_private_urls,
                via_proxy=bool(settings.delivery_proxy_url),
            )
        )
        self.auto_disable = AutoDisable(pool, broker, settings.disable_after_seconds)
        # Deliveries in flight at most, and of those not yet sending (see `handle`).
        self.places = Places(settings.prefetch)
        lease = settings.delivery_timeout_seconds
        # Claims and attempt records of deliveries in flight together share round trips,
        # each batcher on a connection of its own while it has work.
        claiming, recording = HeldConnection(pool), HeldConnection(pool)
        self.claims: Batcher[ClaimRequest, ClaimedDelivery | None] = Batcher(
            lambda requests: deliveries.claim_many(claiming, requests, lease),
            key=lambda request: request.delivery_id,
        )
        self.recording = recording
        self.last_record_batch = 0
        self.records: Batcher[AttemptRecord, RecordedAttempt] = Batcher(
            self.record_attempts, key=lambda record: record.delivery_id
        )
        self.lines = Lines(pool, broker, self.park)

    async def record_attempts(self, records: list[AttemptRecord]) -> list[RecordedAttempt]:
        """One batch of the records Batcher. While records come together it waits, and the
        next batch fills; a lone one goes at once: a crash between a request and its
        record sends the request again."""
        if self.last_record_batch > 1:
            await asyncio.sleep(RECORD_GATHER_SECONDS)
        self.last_record_batch = len(records)
        return await deliveries.record_attempts(self.recording, records)

    async def handle(
        self, message: AbstractIncomingMessage, msgs: list[DeliveryMessage]
    ) -> Outcome:
        """ACK once every delivery the message asks for has its outcome recorded; else
        REQUEUE the message (the claim turns away the copies of those already done).

        Each delivery runs in a task of its own once one of DISPATCH_PREFETCH places is
        free (`places.py`): a message may ask for many (a DeliveryBatch), so the prefetch
        window alone would not bound the deliveries in flight.
        """
        ARRIVED.set(time.perf_counter())
        if len(msgs) == 1:
            place = await self.places.take()
            try:
                return await self.handle_one(msgs[0], place)
            finally:
                place.leave()
        tasks: list[asyncio.Task[Outcome]] = []
        try:
            for msg in msgs:
                place = await self.places.take()
                task = asyncio.create_task(self.handle_one(msg, place))
                task.add_done_callback(place.left)
                tasks.append(task)
            outcomes = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # stopping: none may outlive the message
                task.cancel()
            raise
        return Outcome.REQUEUE if Outcome.REQUEUE in outcomes else Outcome.ACK

    async def handle_one(self, msg: DeliveryMessage, place: Place) -> Outcome:
        """ACK once the outcome is recorded; REQUEUE (after a pause) if it could not be."""
        PLACE.set(place)
        structlog.contextvars.bind_contextvars(
            delivery_id=str(msg.delivery_id), attempt=msg.attempt, request_id=msg.request_id
        )
        # On the consumer span, so that a delivery's messages can be found by its id.
        annotate_span({"delivery_id": msg.delivery_id, "attempt": msg.attempt})
        try:
            with joined(msg.trace_context):
                await self.process(msg)
        except OUTAGE_ERRORS as exc:
            # Database (or broker) trouble: back off before handing the message back,
            # so an outage does not spin through redeliveries.
            log.warning("delivery_postponed", error=repr(exc))
            await asyncio.sleep(DB_ERROR_BACKOFF_SECONDS)
            return Outcome.REQUEUE
        except Exception:
            log.exception("delivery_crashed")
            await asyncio.sleep(DB_ERROR_BACKOFF_SECONDS)
            return Outcome.REQUEUE
        # A lost ack (the channel died) is redelivered; the claim turns the copy away.
        return Outcome.ACK

    async def process(self, msg: DeliveryMessage) -> None:
        if msg.due_at_ms > now_ms() + DUE_TOLERANCE_MS:
            await self.park(msg)
            return
        limit = None  # without the webhook's id (see DeliveryMessage.webhook_id): after the claim
        start: int | None = 0  # under a rate limit, the reserved start (pacing.py)
        if msg.webhook_id is not None:
            limit = await self.limits.of(msg.webhook_id)
            if self.endpoints.crowded(msg.webhook_id, limit):
                await self.defer(msg, msg.webhook_id)  # parked before a claim it would undo
                return
            start = await self.pacer.reserve(msg, msg.webhook_id)
            if start is None:
                return
        delivery = await self.claim(msg)
        if delivery is None:
            return
        if msg.webhook_id is None:
            start = await self.pacer.reserve(msg, delivery.webhook_id)
        if start is None or (
            start and not await self.pacer.started(msg, delivery.webhook_id, start)
        ):
            await deliveries.release_lease(self.pool, delivery.id, delivery.created_at)
            return
        await self.deliver_in_slot(msg, delivery, limit)

    async def deliver_in_slot(
        self, msg: DeliveryMessage, delivery: ClaimedDelivery, limit: int | None
    ) -> None:
        """Deliver in one of the endpoint's slots, then record the outcome.

        The slot covers only the request: claimed before, recorded after, so that an
        endpoint's limit counts its requests in flight. A slow or dead endpoint may hold
        only so many: the rest hand their lease back and are parked for a moment instead
        of filling the prefetch window everyone shares.
        """
        webhook_id = delivery.webhook_id
        if limit is None:
            limit = await self.limits.of(webhook_id)
        async with self.endpoints.slot(webhook_id, limit) as granted:
            if granted:
                PLACE.get().sending()
                result = await self.send(msg, delivery)
        if granted:
            await self.conclude(msg, delivery, result)
            return
        await deliveries.release_lease(self.pool, delivery.id, delivery.created_at)
        await self.defer(msg, webhook_id)

    async def defer(self, msg: DeliveryMessage, webhook_id: uuid.UUID) -> None:
        """Park for a moment a delivery whose endpoint has its limit in flight."""
        ENDPOINT_BUSY.inc()
        due = now_ms() + ENDPOINT_BUSY_DELAY_MS
        # A start reserved under a rate limit is given up: it reserves another when back.
        await self.park(replace(msg, due_at_ms=due, webhook_id=webhook_id, rate_slot_ms=0))

    async def claim(self, msg: DeliveryMessage) -> ClaimedDelivery | None:
        """The lease of this attempt, with the secrets decrypted; None if nothing is to send."""
        delivery = await self.claims(ClaimRequest(msg.delivery_id, msg.attempt, msg.created_at))
        if delivery is None:
            await self.not_claimed(msg)
            return None
        if delivery.deleted or delivery.disabled:
            status = "cancelled" if delivery.deleted else "not_attempted"
            await deliveries.finish_without_attempt(
                self.pool, delivery.id, delivery.created_at, status
            )
            log.info("delivery_skipped", status=status)
            await self.lines.publish_next(delivery)
            return None
        try:
            secrets = [self.secret_box.decrypt(secret) for secret in delivery.secrets]
            auth = None if delivery.auth is None else unseal(delivery.auth, self.secret_box)
            tls = delivery.tls
            if tls is not None and tls["client_certificate"] is not None:
                opened = unseal_certificate(tls["client_certificate"], self.secret_box)
                delivery = replace(delivery, tls={**tls, "client_certificate": opened})
        except SecretUnavailable:
            # SECRETS_KEY lacks the key these were encrypted with: an operator's fix, so
            # hand the attempt back (the message is requeued) rather than send it unsigned.
            await deliveries.release_lease(self.pool, delivery.id, delivery.created_at)
            raise
        if auth is not None:
            delivery = replace(delivery, auth=auth)
        if secrets == delivery.secrets:  # stored in plaintext: nothing to replace
            return delivery
        return replace(delivery, secrets=secrets)

    async def send(self, msg: DeliveryMessage, delivery: ClaimedDelivery) -> AttemptResult:
        with attempt_span("POST", delivery.url, delivery.id, msg.attempt) as span:
            if delivery.auth is None and delivery.tls is None:
                result = await send_request(self.session, self.settings, delivery)
            else:
                result = await self.send_authenticated(delivery)
            span.outcome(result.status_code, result.error)
        return result

    async def send_authenticated(self, delivery: ClaimedDelivery) -> AttemptResult:
        """Send with the `Authorization` the webhook's `auth` makes and its TLS settings; a
        token or certificate that cannot be had is a failed attempt, and a token the
        endpoint refuses (401) is not used again."""
        started = time.perf_counter()
        authorization = context = None
        try:
            if delivery.auth is not None:
                authorization = await self.authorizer.authorization(delivery)
            if delivery.tls is not None:
                context = self.tls.context_for(delivery.webhook_id, delivery.tls)
        except TokenUnavailable as exc:
            duration_ms = int((time.perf_counter() - started) * 1000)
            return AttemptResult(None, str(exc), None, duration_ms)
        except (ssl.SSLError, ValueError) as exc:
            duration_ms = int((time.perf_counter() - started) * 1000)
            error = f"TLS settings could not be loaded: {exc}"
            return AttemptResult(None, error, None, duration_ms)
        result = await send_request(self.session, self.settings, delivery, authorization, context)
        if authorization is not None and result.status_code == 401:
            self.authorizer.refused(delivery, authorization)
        return result

    async def conclude(
        self, msg: DeliveryMessage, delivery: ClaimedDelivery, result: AttemptResult
    ) -> None:
        """Record the attempt, then retry later, give up, or finish."""
        schedule = delivery.retry_schedule
        if schedule is None:
            schedule = self.settings.retry_schedule
        # A redeliver restarts the schedule: count attempts from the start of this round.
        step = next_step(result, msg.attempt - delivery.schedule_offset, schedule)
        # The request was sent: keep the outcome through a short outage rather than
        # hand the message back and send again.
        record = AttemptRecord(
            delivery_id=delivery.id,
            webhook_id=delivery.webhook_id,
            attempt=msg.attempt,
            status=step.status,
            retry_in_seconds=step.retry_in_seconds,
            status_code=result.status_code,
            error=result.error,
            response_body=result.response_body,
            duration_ms=result.duration_ms,
            delivery_created_at=delivery.created_at,
        )
        recorded = await persist(lambda: self.records(record))
        self.log_attempt(delivery, result, step)
        if recorded.failure_event is not None and recorded.outbox_id is not None:
            await announce(self.pool, self.broker, recorded.outbox_id, recorded.failure_event)
        if step.status != "pending":
            await self.lines.publish_next(delivery)
        if not result.succeeded:
            await self.auto_disable.disable_if_failing_too_long(delivery, result)
        if step.status == "succeeded":
            SUCCEEDED.inc()
            END_TO_END.observe(max(0.0, time.time() - delivery.event_time.timestamp()))
        elif step.status == "pending" and step.retry_in_seconds is not None:
            RETRYING.inc()
            # Published within this attempt's consumer span, so the trace context in its
            # headers puts the next attempt, even hours later, in the same trace as the
            # request: one trace shows every attempt of the event (see SPEC section 11).
            due = now_ms() + int(step.retry_in_seconds * 1000)
            await self.park(
                DeliveryMessage(
                    delivery.id,
                    msg.attempt + 1,
                    due,
                    delivery.request_id,
                    delivery.webhook_id,
                    created_at=delivery.created_at,
                )
            )
        else:
            GAVE_UP.inc()
            await persist(lambda: self.broker.dead_letter(msg))

    async def not_claimed(self, msg: DeliveryMessage) -> None:
        """Unknown, finished, stale, leased by another copy in flight, or behind an
        earlier delivery of its ordering key."""
        state = await db.delivery_state(self.pool, msg.delivery_id)
        if state is None:
            log.warning("delivery_unknown")
            return
        leased = (
            state.status == "pending"
            and state.attempt_count == msg.attempt - 1
            and state.lease_until is not None
            and state.lease_until > state.now
        )
        if leased and state.lease_until is not None:
            # Look again when the lease ends: if its holder died, the attempt is ours.
            wait_ms = int((state.lease_until - state.now).total_seconds() * 1000) + 1
            await self.park(replace(msg, due_at_ms=now_ms() + wait_ms))
            return
        if (
            state.status == "pending"
            and state.attempt_count == msg.attempt - 1
            and state.ordering_key is not None
        ):
            await self.lines.wait(msg)
            return
        log.info("message_stale", status=state.status, attempt_count=state.attempt_count)

    async def park(self, msg: DeliveryMessage) -> None:
        """Send the message round the delay ladder until it is due."""
        await persist(lambda: self.broker.park(msg))

    def log_attempt(self, delivery: ClaimedDelivery, result: AttemptResult, step: NextStep) -> None:
        """Every attempt that did not succeed; of those that did, LOG_SUCCESS_SAMPLE's share
        (a sampled line says so: `sampled` is that share)."""
        sample = self.settings.log_success_sample
        sampled = {}
        if step.status == "succeeded" and sample < 1:
            if random.random() >= sample:
                return
            sampled = {"sampled": sample}
        log.info(
            "delivery_attempt",
            webhook_id=str(delivery.webhook_id),
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
            outcome=step.status,
            next_retry_in_s=None
            if step.retry_in_seconds is None
            else round(step.retry_in_seconds, 3),
            **sampled,
        )
