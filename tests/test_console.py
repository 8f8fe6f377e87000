"""The web console in a real browser (Debian's Chromium, driven by Playwright) against the
real stack behind the nginx gateway: sign in, watch deliveries arrive, act on a webhook, and
show whatever an endpoint answers as text without running it.

Set CONSOLE_SCREENSHOT=docs/console.png to save the webhook page as the README's picture.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Dialog, Page, async_playwright, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout
from standardwebhooks.webhooks import Webhook

from harness.receiver import Receiver, Reply
from harness.stack import Stack, StackOptions
from services.registration.commands import revoke_api_key
from tests.test_console_api import new_event_type
from tests.test_management import unique_user
from tests.test_security import create_key

CHROMIUM = "/usr/bin/chromium"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}
# The UI answers within 2 s of a change (SPEC §9); the rest is the machine's slowness.
LIVE_MS = 15000
HOSTILE = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>"]
NO_RETRIES = StackOptions(retry_schedule=())
API_KEYS = StackOptions(auth_mode="api_key", auth_cache_seconds=0)
REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(300)


@dataclass
class Watched:
    """What a page did that it must not: dialogs opened, errors logged or thrown."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        async def on_dialog(dialog: Dialog) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def new_page(browser: Browser, watched: Watched) -> Page:
    page = await browser.new_page(viewport=WIDE)
    watched.attach(page)
    return page


async def sign_in(page: Page, stack: Stack, label: str, value: str) -> None:
    await page.goto(f"{stack.gateway_url}/console")
    await page.get_by_label(label, exact=True).fill(value)
    await page.get_by_label(label, exact=True).press("Enter")


async def fits_narrow_screen(page: Page) -> None:
    """At 390 px the page scrolls only down, never sideways."""
    await page.set_viewport_size(NARROW)
    # The chart follows its container's size on the next resize callback: let it.
    fits = f"document.documentElement.scrollWidth <= {NARROW['width']}"
    with contextlib.suppress(PlaywrightTimeout):
        await page.wait_for_function(fits, timeout=5000)
    width = await page.evaluate("document.documentElement.scrollWidth")
    await page.set_viewport_size(WIDE)
    assert width <= NARROW["width"], f"{page.url} is {width} px wide at 390 px"


async def delivery_ids(stack: Stack, webhook_id: str) -> list[uuid.UUID]:
    rows = await stack.pool.fetch(
        "SELECT id FROM deliveries WHERE webhook_id = $1 ORDER BY created_at", uuid.UUID(webhook_id)
    )
    return [row["id"] for row in rows]


@pytest.mark.parametrize("stack_options", [NO_RETRIES])
async def test_a_webhook_seen_and_fixed_from_the_console(
    stack: Stack, browser: Browser, receiver: Receiver
) -> None:
    user = unique_user()
    webhook = await stack.register(receiver.url, user_id=user, custom_payload={"team": "ops"})
    watched = Watched()
    page = await new_page(browser, watched)

    await sign_in(page, stack, "User id", str(user))
    link = page.get_by_role("link", name=receiver.url)
    await expect(link).to_be_visible()
    await expect(page.get_by_role("row", name=re.compile("upload file"))).to_contain_text("enabled")
    await fits_narrow_screen(page)
    await link.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(receiver.url)

    # An upload's delivery appears on the open page without a reload.
    upload = await stack.upload(webhook["id"])
    delivery = await stack.delivery_for_upload(upload["upload_id"])
    short = str(delivery["id"])[:8]
    await expect(page.get_by_role("link", name=short)).to_be_visible(timeout=LIVE_MS)
    await stack.wait_for_status(delivery["id"], "succeeded")
    row = page.get_by_role("row", name=re.compile(short))
    await expect(row).to_contain_text("succeeded", timeout=LIVE_MS)
    await expect(page.get_by_text("Success rate over the last 24 h: 100 %")).to_be_visible(
        timeout=LIVE_MS
    )
    await fits_narrow_screen(page)
    if os.environ.get("CONSOLE_SCREENSHOT"):
        await page.screenshot(path=REPO / os.environ["CONSOLE_SCREENSHOT"], full_page=True)

    # The delivery: the body as the endpoint got it, its attempt, and Redeliver.
    await page.get_by_role("link", name=short).click()
    await expect(page.get_by_role("heading", name="Attempt 1: HTTP 200")).to_be_visible()
    (received,) = await receiver.wait_for(1)
    body_shown = await page.locator("pre.body").text_content()
    # The body as sent: what the endpoint received, indented for reading.
    assert body_shown is not None and json.loads(body_shown) == received.json()
    assert '"team": "ops"' in body_shown and upload["upload_id"] in body_shown
    await fits_narrow_screen(page)
    await page.get_by_role("button", name="Redeliver", exact=True).click()
    await expect(page.get_by_role("heading", name="Attempt 2: HTTP 200")).to_be_visible(
        timeout=LIVE_MS
    )
    await receiver.wait_for(2)

    # Back on the webhook: Disable, then Enable.
    await page.get_by_role("link", name="← Its webhook").click()
    await page.get_by_role("button", name="Disable", exact=True).click()
    await expect(page.get_by_role("button", name="Enable", exact=True)).to_be_visible()
    assert (await stack.pool.fetchval(
        "SELECT disabled FROM webhook_registrations WHERE id = $1", uuid.UUID(webhook["id"])
    )) is True  # fmt: skip
    await page.get_by_role("button", name="Enable", exact=True).click()
    await expect(page.get_by_role("button", name="Disable", exact=True)).to_be_visible()

    # Rotate secret: shown once, and it verifies the next delivery.
    await page.get_by_role("button", name="Rotate secret", exact=True).click()
    secret = await page.locator("#new-secret code").text_content()
    assert secret is not None and secret.startswith("whsec_")
    await stack.upload(webhook["id"])
    third = (await receiver.wait_for(3))[2]
    Webhook(secret).verify(third.body, third.headers)

    # Recover resends what failed.
    receiver.replies = [Reply(500)]
    failing = await stack.upload(webhook["id"])
    failed = await stack.delivery_for_upload(failing["upload_id"])
    await stack.wait_for_status(failed["id"], "failed")
    await page.get_by_label("Status", exact=True).select_option("failed")
    await expect(page.get_by_role("link", name=str(failed["id"])[:8])).to_be_visible(
        timeout=LIVE_MS
    )
    receiver.replies = [Reply(200)]
    await page.get_by_role("button", name="Recover", exact=True).click()
    await expect(page.get_by_role("status").filter(has_text="Recovering 1")).to_be_visible()
    await stack.wait_for_status(failed["id"], "succeeded")
    assert watched.dialogs == [] and watched.errors == [], watched


async def test_send_test_event_delivers_a_sample_of_the_webhooks_type(
    stack: Stack, browser: Browser, receiver: Receiver
) -> None:
    """Needs POST /event (the events API, SPEC §8)."""
    user = unique_user()
    event_type_id = await new_event_type(
        stack,
        {
            "type": "object",
            "required": ["order_id"],
            "properties": {"order_id": {"type": "string"}},
        },
    )
    webhook = await stack.register(receiver.url, user_id=user, event_type_id=str(event_type_id))
    watched = Watched()
    page = await new_page(browser, watched)
    await sign_in(page, stack, "User id", str(user))
    await page.get_by_role("link", name=receiver.url).click()
    await page.get_by_role("button", name="Send test event", exact=True).click()
    await expect(page.get_by_role("status").filter(has_text="accepted")).to_be_visible(
        timeout=LIVE_MS
    )
    (received,) = await receiver.wait_for(1)
    sent = received.json()
    assert sent["type"].startswith("order.paid.") and isinstance(sent["data"]["order_id"], str)
    await expect(page.locator("table.cards tbody tr")).to_have_count(1, timeout=LIVE_MS)
    assert webhook["id"] and watched.dialogs == [] and watched.errors == [], watched


@pytest.mark.parametrize("stack_options", [NO_RETRIES])
async def test_hostile_answers_and_payloads_show_as_text(stack: Stack, browser: Browser) -> None:
    receiver = await Receiver(
        [Reply(400, {"Content-Type": "text/html"}, " ".join(HOSTILE))]
    ).start()
    try:
        user = unique_user()
        webhook = await stack.register(
            receiver.url, user_id=user, custom_payload={"note": HOSTILE[0], "html": HOSTILE[1]}
        )
        upload = await stack.upload(webhook["id"], filename="<img src=x onerror=alert(3)>.txt")
        delivery = await stack.delivery_for_upload(upload["upload_id"])
        await stack.wait_for_status(delivery["id"], "failed")
    finally:
        await receiver.stop()
    watched = Watched()
    page = await new_page(browser, watched)
    await sign_in(page, stack, "User id", str(user))
    await page.get_by_role("link", name=receiver.url).click()
    await expect(page.locator("main")).to_contain_text(HOSTILE[0])  # the custom payload
    await page.get_by_role("link", name=str(delivery["id"])[:8]).click()
    response = page.locator("pre.response")
    await expect(response).to_have_text(" ".join(HOSTILE))
    body = await page.locator("pre.body").text_content()
    assert body is not None and HOSTILE[0] in body and HOSTILE[1] in body
    assert await page.locator("main img, main script").count() == 0
    await page.wait_for_timeout(500)
    assert watched.dialogs == [] and watched.errors == [], watched
    await fits_narrow_screen(page)


@pytest.mark.parametrize("stack_options", [API_KEYS])
async def test_with_api_keys_a_key_sees_only_its_users_webhooks(
    stack: Stack, browser: Browser
) -> None:
    alice, bob = unique_user(), unique_user()
    alice_key, bob_key = create_key(stack.database_url, alice), create_key(stack.database_url, bob)
    hooks: dict[str, dict[str, Any]] = {}
    for name, key in (("alice", alice_key), ("bob", bob_key)):
        async with stack.http.post(
            f"{stack.gateway_url}/webhook/register",
            json={
                "event_type_id": "21f8e1f7-4142-42f9-ac30-74961702b2eb",
                "url": f"https://example.com/{name}",
            },
            headers={"Authorization": f"Bearer {key}"},
        ) as resp:
            assert resp.status == 200
            hooks[name] = (await resp.json())["data"]
    page = await new_page(browser, Watched())
    await page.goto(f"{stack.gateway_url}/console")
    await expect(page.get_by_label("API key", exact=True)).to_be_visible()
    assert await page.get_by_label("User id").count() == 0
    await fits_narrow_screen(page)
    await page.get_by_label("API key", exact=True).fill("whk_not-a-real-key")
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("unknown or revoked")

    await page.get_by_label("API key", exact=True).fill(alice_key)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("link", name="https://example.com/alice")).to_be_visible()
    assert await page.get_by_text("https://example.com/bob").count() == 0
    assert alice_key not in page.url
    stored = await page.evaluate("JSON.stringify(sessionStorage)")
    assert alice_key in stored and await page.evaluate("document.cookie") == ""

    await page.goto(f"{stack.gateway_url}/console#/webhooks/{hooks['bob']['id']}")
    await expect(page.get_by_role("alert")).to_contain_text("does not exist")
    assert await page.get_by_text("https://example.com/bob").count() == 0

    # A key revoked meanwhile: the next call answers 401 and the console asks again, saying why.
    await page.goto(f"{stack.gateway_url}/console#/")
    async with stack.pool.acquire() as conn:  # as revoke-api-key does: with its NOTIFY
        await revoke_api_key(conn, alice_key)
    await page.reload()
    await expect(page.get_by_label("API key", exact=True)).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("unknown or revoked")
