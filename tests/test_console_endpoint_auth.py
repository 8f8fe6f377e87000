"""The console's endpoint authentication, mutual TLS and rate limit fields (SPEC §17) in a real
browser against the real stack: what the form sends is what the API stores, secrets are
write-only (never back in the page), and the form with those sections open passes axe-core."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from harness.receiver import Receiver
from harness.stack import Stack
from services.common.secrets import SecretBox
from tests.test_console_portal import (
    add_form_filled,
    api,
    audit,
    browser,
    new_type,
    unexpected,
    webhook_id_shown,
)
from tests.test_endpoint_auth import ENCRYPTED, issued
from tests.test_security import OLD_SECRETS_KEY

__all__ = ["browser"]  # the fixture, shared with tests/test_console.py

pytestmark = pytest.mark.timeout(300)

PASSWORD = "console password 7d1e"
CLIENT_SECRET = "console client secret 44ab"


async def stored_configuration(stack: Stack, webhook_id: str) -> Any:
    return await stack.pool.fetchrow(
        "SELECT auth, tls_client_certificate FROM webhook_configurations WHERE webhook_id = $1",
        uuid.UUID(webhook_id),
    )


async def save(page: Page) -> None:
    await page.get_by_role("button", name="Save", exact=True).click()


async def open_section(page: Page, name: str) -> None:
    """Opens a collapsed section of the form (a `details`) by its summary."""
    section = page.locator("details.section", has=page.locator("summary", has_text=name))
    if await section.get_attribute("open") is None:
        await section.locator("summary").click()
    await expect(section).to_have_attribute("open", "")


@pytest.mark.parametrize("stack_options", [ENCRYPTED])
async def test_endpoint_auth_and_rate_limit_through_the_form(
    stack: Stack, browser: Browser, receiver: Receiver
) -> None:
    box = SecretBox((OLD_SECRETS_KEY,))
    _, type_name = await new_type(stack, "Invoices sent")
    # Add: basic auth and a rate limit. The API's errors appear beside the field they name.
    page, watched, user = await add_form_filled(browser, stack, receiver.url, type_name)
    await page.get_by_label("Rate limit per second (optional)").fill("0")
    await open_section(page, "Endpoint authentication")
    await page.get_by_label("Authentication", exact=True).select_option("basic")
    await page.get_by_label("Username", exact=True).fill("hooks")
    await save(page)
    await expect(page.locator("#rate-limit-per-second-error")).to_contain_text(
        "rate_limit_per_second"
    )
    await page.get_by_label("Rate limit per second (optional)").fill("50")
    await save(page)
    await expect(page.locator("#auth-password-error")).to_contain_text("password")
    await expect(page.get_by_label("Password", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    count = "SELECT count(*) FROM webhook_registrations WHERE user_id = $1"
    assert await stack.pool.fetchval(count, user) == 0
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await save(page)
    await expect(page.get_by_text("Copy it now; it will not be shown again.")).to_be_visible()
    assert PASSWORD not in await page.content()
    webhook_id = await webhook_id_shown(page)
    status, answer = await api(stack, "GET", f"/webhook/{webhook_id}")
    assert status == 200, answer
    saved = answer["data"]
    assert saved["auth"] == {
        "type": "basic",
        "username": "hooks",
        "password": None,
        "has_password": True,
    }
    assert saved["rate_limit_per_second"] == 50 and saved["tls_client_certificate"] is None
    stored = await stored_configuration(stack, webhook_id)
    assert box.decrypt(stored["auth"]["password"]) == PASSWORD

    # Its page says what is set, never the secret; Edit shows the stored state, not the value.
    await page.get_by_role("link", name="Go to the webhook's page").click()
    facts = page.locator("dl.facts")
    await expect(facts).to_contain_text("basic, user hooks, password stored")
    await expect(facts).to_contain_text("50 a second")
    await page.get_by_role("button", name="Edit", exact=True).click()
    await expect(page.get_by_label("Authentication", exact=True)).to_have_value("basic")
    await expect(page.get_by_label("Username", exact=True)).to_have_value("hooks")
    await expect(page.get_by_label("Password", exact=True)).to_have_value("")
    await expect(page.locator("#auth-password-hint")).to_contain_text("A password is stored")
    await expect(page.get_by_label("Rate limit per second (optional)")).to_have_value("50")
    assert PASSWORD not in await page.content()
    # A new username needs the password again: the API takes auth whole.
    await page.get_by_label("Username", exact=True).fill("hooks-2")
    await save(page)
    await expect(page.locator("#auth-password-error")).to_contain_text("type it again")
    assert (await api(stack, "GET", f"/webhook/{webhook_id}"))[1]["data"]["auth"] == saved["auth"]

    # Edit to OAuth2 client credentials and a client certificate; audited with both open.
    certificate, key, _, _ = issued("console client", None)
    ca, _, _, _ = issued("console CA", None, ca=True)
    await page.get_by_label("Authentication", exact=True).select_option("oauth2_client_credentials")
    await page.get_by_label("Token URL", exact=True).fill("https://auth.example.com/token")
    await page.get_by_label("Client id", exact=True).fill("console-client")
    await page.get_by_label("Client secret", exact=True).fill(CLIENT_SECRET)
    await page.get_by_label("Scope (optional)").fill("hooks:write")
    await page.get_by_label("Rate limit per second (optional)").fill("")
    await open_section(page, "Mutual TLS")
    await page.get_by_label("Client certificate (PEM, optional)").fill(certificate)
    await page.get_by_label("CA certificate to trust (PEM, optional)").fill(ca)
    problems: list[str] = []
    await audit(page, "edit webhook with authentication and TLS open", problems)
    assert problems == [], "\n".join(problems)
    # Stricter than SPEC §15 here: no finding of any impact on these fields.
    found = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert [(v["id"], v["impact"]) for v in found["violations"]] == []
    # Half a certificate is refused beside the missing half, before the API is asked.
    await save(page)
    await expect(page.locator("#tls-private-key-error")).to_contain_text("private key")
    await page.get_by_label("Its private key (PEM)").fill(key)
    await save(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(receiver.url)
    html = await page.content()
    assert CLIENT_SECRET not in html and PASSWORD not in html
    assert key.split("\n")[1] not in html  # a line of the key's base64
    status, answer = await api(stack, "GET", f"/webhook/{webhook_id}")
    edited = answer["data"]
    assert edited["auth"] == {
        "type": "oauth2_client_credentials",
        "token_url": "https://auth.example.com/token",
        "client_id": "console-client",
        "client_secret": None,
        "has_secret": True,
        "scope": "hooks:write",
        "audience": None,
    }
    assert edited["rate_limit_per_second"] is None
    assert edited["tls_client_certificate"]["subject"] == "CN=console client"
    assert edited["tls_ca"] == ca.strip()
    stored = await stored_configuration(stack, webhook_id)
    assert box.decrypt(stored["auth"]["client_secret"]) == CLIENT_SECRET
    assert box.decrypt(stored["tls_client_certificate"]["private_key"]) == key.strip()

    # Saved again untouched: secrets left empty keep the stored ones.
    await page.get_by_role("button", name="Edit", exact=True).click()
    await expect(page.locator("#tls-stored")).to_contain_text("CN=console client")
    await expect(page.locator("#auth-client-secret-hint")).to_contain_text("is stored")
    await page.get_by_label("Max concurrency (optional)").fill("4")
    await save(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(receiver.url)
    kept = await stored_configuration(stack, webhook_id)
    assert (kept["auth"], kept["tls_client_certificate"]) == (
        stored["auth"],
        stored["tls_client_certificate"],
    )

    # None and Remove take them away (null).
    await page.get_by_role("button", name="Edit", exact=True).click()
    await page.get_by_label("Authentication", exact=True).select_option("none")
    await page.get_by_label("Remove the stored client certificate").check()
    await save(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(receiver.url)
    _, answer = await api(stack, "GET", f"/webhook/{webhook_id}")
    assert (answer["data"]["auth"], answer["data"]["tls_client_certificate"]) == (None, None)
    assert answer["data"]["max_concurrency"] == 4
    await expect(page.locator("dl.facts")).not_to_contain_text("OAuth2")
    assert unexpected(watched) == []
