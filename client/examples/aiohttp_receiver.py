"""An aiohttp endpoint for webhook deliveries: verify, drop duplicates, answer fast.

    WEBHOOK_SECRET=whsec_... PORT=8000 python client/examples/aiohttp_receiver.py

Register http://<this host>:8000/callback as the webhook URL. WEBHOOK_SECRET is the secret
the registration returned; while you rotate it, give both secrets separated by a space.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

try:
    from webhooks_receiver import Deduplicator, Event, InvalidSignature, MalformedEvent, Verifier
except ModuleNotFoundError:
    # Run from a checkout without `pip install ./client`: use the package next to this folder.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from webhooks_receiver import Deduplicator, Event, InvalidSignature, MalformedEvent, Verifier

log = logging.getLogger("receiver")

EventHandler = Callable[[Event], Awaitable[None]]

VERIFIER = web.AppKey("verifier", Verifier)
DEDUPLICATOR = web.AppKey("deduplicator", Deduplicator)
EVENTS = web.AppKey[asyncio.Queue[Event]]("events")
HANDLE_EVENT = web.AppKey[EventHandler]("handle_event")


@dataclass(frozen=True)
class Settings:
    secrets: tuple[str, ...]
    port: int

    @classmethod
    def from_env(cls) -> Settings:
        secrets = tuple(os.environ.get("WEBHOOK_SECRET", "").split())
        if not secrets:
            raise SystemExit("Set WEBHOOK_SECRET to the secret returned by POST /webhook/register")
        return cls(secrets=secrets, port=int(os.environ.get("PORT", "8000")))


async def log_event(event: Event) -> None:
    """The real work goes here (idempotently, if you can: see Deduplicator)."""
    if event.type == "upload.completed":
        log.info(
            "upload_processed delivery_id=%s upload_id=%s filename=%r size=%s sha256=%s",
            event.id,
            event.data.get("upload_id"),
            event.data.get("filename"),
            event.data.get("size"),
            event.data.get("sha256"),
        )
    else:
        log.info("event_processed delivery_id=%s type=%s", event.id, event.type)


async def receive_delivery(request: web.Request) -> web.Response:
    # Verify the exact bytes received: re-serialised JSON would not match the signature.
    body = await request.read()
    try:
        event = request.app[VERIFIER].verify(body, request.headers)
    except InvalidSignature as error:
        log.warning("delivery_rejected reason=%r", str(error))
        return web.Response(status=401)
    except MalformedEvent as error:
        log.warning("delivery_malformed reason=%r", str(error))
        return web.Response(status=400)

    deduplicator = request.app[DEDUPLICATOR]
    if deduplicator.seen_before(event.id):
        # A 2xx, so that the sender stops retrying what was already handled.
        log.info("delivery_duplicate delivery_id=%s", event.id)
        return web.Response(status=200)
    try:
        # Acknowledge now and work afterwards: the sender times out after 10 s and retries.
        request.app[EVENTS].put_nowait(event)
    except asyncio.QueueFull:
        deduplicator.forget(event.id)
        log.warning("delivery_deferred delivery_id=%s reason='queue full'", event.id)
        return web.Response(status=503, headers={"Retry-After": "30"})
    log.info("delivery_accepted delivery_id=%s type=%s", event.id, event.type)
    return web.Response(status=204)


async def process_events(app: web.Application) -> AsyncIterator[None]:
    """A worker that handles accepted events one by one, for as long as the app runs."""

    async def work() -> None:
        events = app[EVENTS]
        while True:
            event = await events.get()
            try:
                await app[HANDLE_EVENT](event)
            except Exception:
                # Already acknowledged, so the sender will not retry: a real receiver would
                # keep accepted events in durable storage rather than in this memory queue.
                log.exception("event_failed delivery_id=%s", event.id)
            finally:
                events.task_done()

    worker = asyncio.create_task(work())
    yield
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker


def create_app(
    secrets: str | Sequence[str],
    *,
    handle_event: EventHandler = log_event,
    deduplicator: Deduplicator | None = None,
    queue_size: int = 1000,
) -> web.Application:
    app = web.Application()
    app[VERIFIER] = Verifier(secrets)
    app[DEDUPLICATOR] = deduplicator or Deduplicator()
    app[EVENTS] = asyncio.Queue(maxsize=queue_size)
    app[HANDLE_EVENT] = handle_event
    app.cleanup_ctx.append(process_events)
    app.router.add_post("/callback", receive_delivery)
    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    web.run_app(create_app(settings.secrets), port=settings.port)


if __name__ == "__main__":
    main()
