"""The OpenAPI document: exactly the routes the services serve, and the API behaves as it says.

schemathesis generates requests from the document served by the gateway (valid ones and
ones that break it) and checks every answer: never a 5xx, and status, content type, headers
and body as documented. Some examples use real ids, so that they get past the 404.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from harness.receiver import Receiver
from harness.stack import Stack
from services.registration.app import create_app as create_registration
from services.registration.openapi import openapi_document
from services.registration.settings import RegistrationSettings
from services.upload.app import create_app as create_upload
from services.upload.settings import UploadSettings

# Served on each service's own port, never through the gateway, so not part of the API.
OPERATIONAL_PATHS = {"/healthz", "/readyz", "/metrics"}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 100
REQUEST_TIMEOUT_SECONDS = 10.0


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every public route; HEAD comes with each GET."""
    routes = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":
            continue
        if resource.canonical in OPERATIONAL_PATHS:
            continue
        routes.add((route.method.lower(), resource.canonical))
    return routes


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def test_the_document_lists_every_route_and_nothing_else() -> None:
    served = served_routes(create_registration(RegistrationSettings())) | served_routes(
        create_upload(UploadSettings())
    )
    documented = documented_routes(openapi_document())
    assert served - documented == set(), "routes missing from the OpenAPI document"
    assert documented - served == set(), "documented routes that no service serves"
    # Path parameters are named as SPEC §7 says.
    names = {name for _, path in served for name in re.findall(r"{(\w+)}", path)}
    assert names == {"webhook_id", "delivery_id"}


def test_every_operation_documents_its_answers() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    operation_ids = []
    for path, item in document["paths"].items():
        for method in set(item) & set(METHODS):
            operation = item[method]
            operation_ids.append(operation["operationId"])
            assert operation.get("summary"), (method, path)
            statuses = set(operation["responses"])
            assert statuses & {"200", "202"}, (method, path)
            if "{" in path:
                assert {"400", "404"} <= statuses, (method, path)
            if path not in ("/openapi.json", "/docs"):
                assert "503" in statuses, (method, path)
    assert len(operation_ids) == len(set(operation_ids))
    # Lists carry next_cursor in their envelope.
    for path in ("/webhook", "/webhook/{webhook_id}/deliveries"):
        schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert "next_cursor" in schema["schema"]["required"]


async def test_document_and_docs_page_through_the_gateway(stack: Stack) -> None:
    async with stack.http.get(f"{stack.gateway_url}/openapi.json") as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        served = await resp.json()
    assert served == openapi_document()
    async with stack.http.get(f"{stack.gateway_url}/docs") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
    assert page.startswith("<!doctype html>")
    # Self-contained: no scripts, styles or fonts from elsewhere.
    assert "<script" not in page and "<link" not in page and "http://" not in page
    assert "https://" not in page.replace("https://example.com", "")
    for path, item in served["paths"].items():
        assert f"<code>{path}</code>" in page
        for method in set(item) & set(METHODS):
            assert html.escape(item[method]["summary"]) in page
    for name in served["components"]["schemas"]:
        assert f'id="schema-{name}"' in page


# --- schemathesis ---------------------------------------------------------------------------------


def run_examples(
    operation: schemathesis.APIOperation,
    strategy: st.SearchStrategy[schemathesis.Case],
    base_url: str,
    session: requests.Session,
) -> Counter[int]:
    """Call and check up to EXAMPLES_PER_OPERATION examples; the first failure raises."""
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def examples(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            base_url=base_url, session=session, checks=CHECKS, timeout=REQUEST_TIMEOUT_SECONDS
        )
        statuses[response.status_code] += 1

    examples()
    return statuses


def describe(exc: BaseException) -> str:
    """The failure with what it groups (hypothesis and schemathesis nest them)."""
    if isinstance(exc, BaseExceptionGroup):
        inner = "\n".join(describe(sub) for sub in exc.exceptions)
        return f"{exc}\n{inner}"
    return f"{type(exc).__name__}: {exc}"


def fuzz_operations(
    document: dict[str, Any], base_url: str, real_ids: dict[str, str]
) -> tuple[list[str], dict[str, Counter[int]]]:
    """Run every operation's examples (blocking: call it in a thread); failures as text.

    Returns the failures and, per operation, how many answers of each status it got.
    """
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deleting the real webhook first would turn every later example into a 404.
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")
    failures: list[str] = []
    counts: dict[str, Counter[int]] = {}
    with requests.Session() as session:
        for operation in operations:
            names = {parameter.name for parameter in operation.path_parameters}
            real = {name: real_ids[name] for name in names}
            strategies = []
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategies.append(operation.as_strategy(mode))
                if real:
                    strategies.append(operation.as_strategy(mode, path_parameters=real))
            try:
                counts[operation.label] = run_examples(
                    operation, st.one_of(strategies), base_url, session
                )
            except (Exception, BaseExceptionGroup) as exc:
                counts[operation.label] = Counter()
                failures.append(f"{operation.label}:\n{describe(exc)}")
    return failures, counts


@pytest.mark.timeout(240)
# schemathesis draws multipart boundaries with `random`; hypothesis deprecates that.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
async def test_schemathesis_finds_nothing_through_the_gateway(
    stack: Stack, receiver: Receiver
) -> None:
    webhook = await stack.register(receiver.url)
    upload = await stack.upload(webhook["id"])
    delivery = await stack.delivery_for_upload(upload["upload_id"])
    await stack.wait_for_status(delivery["id"], "succeeded")
    async with stack.http.get(f"{stack.gateway_url}/openapi.json") as resp:
        document = await resp.json()
    real_ids = {"webhook_id": webhook["id"], "delivery_id": str(delivery["id"])}
    assert uuid.UUID(real_ids["delivery_id"])

    started = time.monotonic()
    failures, counts = await asyncio.to_thread(
        fuzz_operations, document, stack.gateway_url, real_ids
    )
    elapsed = time.monotonic() - started
    total = sum(sum(statuses.values()) for statuses in counts.values())
    print(f"schemathesis: {total} requests in {elapsed:.1f} s")
    for label, statuses in counts.items():
        print(f"  {label}: {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(failures)
    assert len(counts) == len(documented_routes(document))
    # The real ids got examples past validation and lookup: every operation succeeded at times.
    for label, statuses in counts.items():
        assert statuses[200] + statuses[202] > 0, (label, statuses)
