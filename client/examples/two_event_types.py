"""An aiohttp endpoint for two event types: your own `invoice.paid` and the system's
`webhook.disabled`, each to its own handler; anything else is acknowledged and logged.

    WEBHOOK_SECRET=whsec_... PORT=8000 python client/examples/two_event_types.py

Register http://<this host>:8000/callback for both event types (two registrations, one per
type: give both secrets to WEBHOOK_SECRET separated by a space). Verification,
deduplication and the queue are aiohttp_receiver.py's; only the handling differs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aiohttp_receiver import Event, Settings, create_app

log = logging.getLogger("receiver")


async def invoice_paid(event: Event) -> None:
    """`data` is the payload your application published with POST /event."""
    log.info(
        "invoice_paid delivery=%s invoice_id=%s amount=%s",
        event.id,
        event.data.get("invoice_id"),
        event.data.get("amount"),
    )


async def webhook_disabled(event: Event) -> None:
    """The system disabled one of your webhooks: fix the endpoint, then re-enable it with
    PATCH /webhook/{webhook_id} {"disabled": false} and POST /webhook/{webhook_id}/recover."""
    log.warning(
        "webhook_disabled webhook_id=%s url=%s reason=%r",
        event.data.get("webhook_id"),
        event.data.get("url"),
        event.data.get("reason"),
    )


HANDLERS: dict[str, Callable[[Event], Awaitable[None]]] = {
    "invoice.paid": invoice_paid,
    "webhook.disabled": webhook_disabled,
}


async def handle_by_type(event: Event) -> None:
    handler = HANDLERS.get(event.type)
    if handler is None:
        # Acknowledged all the same: a new type registered here must not cause retries.
        log.info("event_ignored delivery=%s type=%s", event.id, event.type)
        return
    await handler(event)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    web.run_app(create_app(settings.secrets, handle_event=handle_by_type), port=settings.port)


if __name__ == "__main__":
    main()
