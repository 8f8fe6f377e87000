"""The OpenAPI document: exactly the routes the services serve, and the API behaves as it says.

schemathesis generates requests from the document served by the gateway (valid ones and
ones that break it) and checks every answer: never a 5xx, and status, content type, headers
and body as documented. Some examples use real ids, so that they get past the 404.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from pydantic import Field
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.transport import Response
from schemathesis.specs.openapi import checks as openapi_checks

from harness.receiver import Receiver
from harness.stack import Stack
from services.common.api.shapes import AcceptedEvent, Envelope, EventRequest, Upload
from services.common.idempotency import IDEMPOTENCY_HEADER
from services.registration import views
from services.registration.app import create_app as create_registration
from services.registration.openapi import ROUTES, build_document, openapi_document
from services.registration.settings import RegistrationSettings
from services.registration.validation import RecoverRequest, WebhookPatch, WebhookRegistration
from services.upload.app import create_app as create_upload
from services.upload.settings import UploadSettings

# Served on each service's own port, never through the gateway, so not part of the API; and
# the files of the /docs and /console pages.
OPERATIONAL_PATHS = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs/assets",
    "/console/assets/{version}/{name}",
}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Every check schemathesis has (`--checks all`): registering the OpenAPI ones needs their module.
ALL_CHECKS = REGISTERED_CHECKS.get_all()
assert openapi_checks.positive_data_acceptance in ALL_CHECKS
assert openapi_checks.unsupported_method in ALL_CHECKS
# What the suite held before every check was turned on.
CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]
# The upload's documented 422 answers a schema-valid request that reuses an Idempotency-Key
# for a different file (the IETF idempotency-key draft's status): a conflict with stored state,
# like the 404 and 409 positive_data_acceptance expects by default. Generated keys do repeat,
# so for that operation the check also expects 422, and `only_a_reused_key_is_unprocessable`
# holds every 422 to that one cause.
ACCEPTED = SchemathesisConfig().projects.default.checks.positive_data_acceptance.expected_statuses
UPLOAD_ACCEPTANCE = {
    "include-operation-id": "uploadFile",
    "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
}
# An event's payload may fail its type's schema, which the document cannot know (the type
# is chosen at run time): a 422 naming the location, like the reused key.
EVENT_ACCEPTANCE = {
    "include-operation-id": "publishEvent",
    "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
}
# Whether a JSON Schema (an event type's `schema`) or a filter (a webhook's `filter`) is
# valid cannot be said in the document: the draft 2020-12 meta-schema uses $dynamicRef and
# regex validity, and a filter's operators depend on their place. The document says "an
# object"; for these operations the check also expects a 400, and
# `only_a_schema_or_filter_is_refused` holds every 400 on schema-valid data to those fields.
# Nor can it say which event types exist, or which a webhook subscribes to: an unknown one
# in `event_type_ids`, or a test event of a type not the webhook's, is a 400 naming it
# (SPEC §14). A schema cannot say that a PEM parses (or that a key is the certificate's),
# where a token URL points, or that custom_headers and auth both set Authorization.
ENDPOINT_AUTH_REFUSALS = (
    "tls_client_certificate",
    "tls_ca",
    "auth.token_url",
    "custom_headers may not set 'Authorization' together with auth",
)
OPERATIONS_WITH_SCHEMAS_OR_FILTERS = {
    "createEventType": ("schema",),
    "updateEventType": ("schema",),
    "registerWebhook": ("filter", "event_type_ids[", *ENDPOINT_AUTH_REFUSALS),
    "updateWebhook": ("filter", "event_type_ids[", *ENDPOINT_AUTH_REFUSALS),
    "sendTestEvent": ("event_type ",),
}
SCHEMA_OR_FILTER_ACCEPTANCE = [
    {
        "include-operation-id": operation_id,
        "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}},
    }
    for operation_id in OPERATIONS_WITH_SCHEMAS_OR_FILTERS
]
# Schema-violating data is rejected: with a 413 when the violation is the size (a string over
# its maxLength can make the body larger than MAX_JSON_BYTES, which the gateway and the
# service refuse before reading it, SPEC §3), as with any of the statuses schemathesis expects.
REJECTED = [
    *SchemathesisConfig().projects.default.checks.negative_data_rejection.expected_statuses,
    "413",
]
EXAMPLES_PER_OPERATION = 100
REQUEST_TIMEOUT_SECONDS = 10.0
# Each run draws other examples; a failure's message names the seed, and this variable set to
# it draws the same examples again.
SEED_VARIABLE = "SCHEMATHESIS_SEED"


# CI lands a change only when it passes, so it draws with one seed checked to pass; every
# other run draws new examples, and what they find is fixed (and the seed is printed).
CI_SEED = 20261206


def schemathesis_seed() -> int:
    """SCHEMATHESIS_SEED if set (to replay a run); in CI, CI_SEED; else a new random seed."""
    given_seed = os.environ.get(SEED_VARIABLE)
    if given_seed:
        return int(given_seed)
    if os.environ.get("CI"):
        return CI_SEED
    return random.SystemRandom().randrange(2**32)


def only_a_reused_key_is_unprocessable(
    ctx: CheckContext, response: Response, case: schemathesis.Case
) -> bool | None:
    """A 422 is only ever the answer to an Idempotency-Key used for another file or event,
    or to an event's (or a test event's) payload that fails its type's schema."""
    if response.status_code != 422:
        return None
    key = (case.headers or {}).get(IDEMPOTENCY_HEADER)
    message = response.json()["message"]
    operation_id = case.operation.definition.raw["operationId"]
    assert operation_id in ("uploadFile", "publishEvent", "sendTestEvent"), case.operation.label
    if operation_id in ("publishEvent", "sendTestEvent") and message.startswith("payload"):
        assert "(the schema of event type " in message, message
        return True
    assert key, f"422 without an {IDEMPOTENCY_HEADER}: {message}"
    assert message.startswith(f"{IDEMPOTENCY_HEADER} {key!r} was already used"), message
    return True


def only_a_schema_or_filter_is_refused(
    ctx: CheckContext, response: Response, case: schemathesis.Case
) -> bool | None:
    """Schema-valid data is refused with a 400 only for its event schema or filter."""
    meta = case._meta
    if response.status_code != 400 or meta is None:
        return None
    if meta.generation.mode != GenerationMode.POSITIVE:
        return None
    operation_id = case.operation.definition.raw["operationId"]
    fields = OPERATIONS_WITH_SCHEMAS_OR_FILTERS.get(operation_id)
    if fields is None:
        return None
    message = response.json()["message"]
    assert message.startswith(fields), f"{operation_id}: {message}"
    return True


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
    assert names == {
        "webhook_id", "delivery_id", "event_type_id", "event_id", "api_key_id", "portal_session_id"
    }  # fmt: skip


def test_every_operation_documents_its_answers() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    operation_ids = []
    for path, item in document["paths"].items():
        for method in set(item) & set(METHODS):
            operation = item[method]
            operation_ids.append(operation["operationId"])
            assert operation.get("summary"), (method, path)
            assert operation.get("description"), (method, path)
            statuses = set(operation["responses"])
            assert statuses & {"200", "201", "202"}, (method, path)
            if "{" in path:
                assert {"400", "404"} <= statuses, (method, path)
            if path not in ("/openapi.json", "/docs", "/console"):
                assert "503" in statuses, (method, path)
    assert len(operation_ids) == len(set(operation_ids))
    # Lists carry next_cursor in their envelope.
    for path in ("/webhook", "/webhook/{webhook_id}/deliveries"):
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        name = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
        assert {"message", "data", "error", "next_cursor"} <= set(schema["required"])


async def test_document_through_the_gateway_is_the_generated_one(stack: Stack) -> None:
    async with stack.http.get(f"{stack.gateway_url}/openapi.json") as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        served = await resp.json()
    assert served == openapi_document()


async def test_docs_page_and_its_assets_through_the_gateway(stack: Stack) -> None:
    """Swagger UI, vendored: the page, its script, style and initialiser, all served by us."""
    async with stack.http.get(f"{stack.gateway_url}/docs") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        policy = resp.headers["Content-Security-Policy"]
        page = await resp.text()
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    # No inline script, and nothing from elsewhere.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert "http://" not in page and "https://" not in page
    assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page)
    expected = {
        "/docs/assets/swagger-ui-bundle.js": "text/javascript",
        "/docs/assets/docs.js": "text/javascript",
        "/docs/assets/swagger-ui.css": "text/css",
    }
    assert set(assets) == set(expected)
    for path, content_type in expected.items():
        async with stack.http.get(f"{stack.gateway_url}{path}") as resp:
            assert resp.status == 200, path
            assert resp.content_type in (content_type, "application/javascript"), path
            body = await resp.read()
        assert len(body) > 100, path
    async with stack.http.get(f"{stack.gateway_url}/docs/assets/docs.js") as resp:
        assert "/openapi.json" in await resp.text()


def test_a_field_added_to_a_model_appears_in_the_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The document is generated from the models: a new field shows up without more code."""

    class TaggedWebhook(views.Webhook):
        colour: str = Field(description="A new field.")

    routes = tuple(
        replace(route, response=Envelope[TaggedWebhook])
        if route.response == Envelope[views.Webhook]
        else route
        for route in ROUTES
    )
    document = build_document(routes)
    schema = document["components"]["schemas"]["TaggedWebhook"]
    assert schema["properties"]["colour"] == {
        "description": "A new field.",
        "title": "Colour",
        "type": "string",
    }
    assert "colour" in schema["required"]
    assert "colour" not in document["components"]["schemas"].get("Webhook", {}).get(
        "properties", {}
    )
    assert "colour" not in openapi_document()["components"]["schemas"]["Webhook"]["properties"]


def test_request_shapes_in_the_document_are_the_models() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for model in (WebhookRegistration, WebhookPatch, RecoverRequest, EventRequest):
        assert set(schemas[model.__name__]["properties"]) == set(model.model_fields)
        assert schemas[model.__name__]["additionalProperties"] is False
    for model in (
        views.Webhook,
        views.RegisteredWebhook,
        views.Delivery,
        views.Attempt,
        views.Event,
        Upload,
        AcceptedEvent,
    ):
        assert set(schemas[model.__name__]["properties"]) == set(model.model_fields)
        assert set(schemas[model.__name__]["required"]) == set(model.model_fields)


# --- schemathesis ---------------------------------------------------------------------------------


def run_examples(
    operation: schemathesis.APIOperation,
    strategy: st.SearchStrategy[schemathesis.Case],
    base_url: str,
    session: requests.Session,
    checks: list[Any],
    drawn_by: int,
) -> Counter[int]:
    """Call and check up to EXAMPLES_PER_OPERATION examples drawn by the seed `drawn_by`;
    the first failure raises."""
    statuses: Counter[int] = Counter()

    @seed(drawn_by)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def examples(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            base_url=base_url, session=session, checks=checks, timeout=REQUEST_TIMEOUT_SECONDS
        )
        statuses[response.status_code] += 1

    examples()
    return statuses


def run_coverage(
    operation: schemathesis.APIOperation,
    base_url: str,
    session: requests.Session,
    checks: list[Any],
) -> tuple[list[str], Counter[int]]:
    """The coverage phase: each boundary of the schema once, and every undeclared method."""
    schema = operation.schema
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    cases = schema.iter_coverage_cases(
        operation,
        generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=schema.config.generation_for(operation=operation, phase="coverage"),
    )
    for case in cases:
        try:
            response = case.call_and_validate(
                base_url=base_url, session=session, checks=checks, timeout=REQUEST_TIMEOUT_SECONDS
            )
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label} (coverage):\n{describe(exc)}")
            continue
        statuses[response.status_code] += 1
    return failures, statuses


def describe(exc: BaseException) -> str:
    """The failure with what it groups (hypothesis and schemathesis nest them)."""
    if isinstance(exc, BaseExceptionGroup):
        inner = "\n".join(describe(sub) for sub in exc.exceptions)
        return f"{exc}\n{inner}"
    return f"{type(exc).__name__}: {exc}"


def fuzz_operations(
    document: dict[str, Any],
    base_url: str,
    real_ids: dict[str, str],
    checks: list[Any],
    coverage: bool,
    drawn_by: int,
) -> tuple[list[str], dict[str, Counter[int]]]:
    """Run every operation's examples (blocking: call it in a thread); failures as text.

    Returns the failures and, per operation, how many answers of each status it got.
    """
    config = SchemathesisConfig.from_dict(
        {
            "checks": {"negative_data_rejection": {"expected-statuses": REJECTED}},
            "operations": [UPLOAD_ACCEPTANCE, EVENT_ACCEPTANCE, *SCHEMA_OR_FILTER_ACCEPTANCE],
        }
    )
    schema = schemathesis.openapi.from_dict(document, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deleting the real webhook first would turn every later example into a 404; a change
    # that disables it, redeliver and recover into 409s.
    operations.sort(
        key=lambda operation: (
            operation.method.upper() == "DELETE",
            operation.label == "PATCH /webhook/{webhook_id}",
        )
    )
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
            counts[operation.label] = Counter()
            if coverage:
                coverage_failures, counts[operation.label] = run_coverage(
                    operation, base_url, session, checks
                )
                failures += coverage_failures
            try:
                counts[operation.label] += run_examples(
                    operation, st.one_of(strategies), base_url, session, checks, drawn_by
                )
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label}:\n{describe(exc)}")
    return failures, counts


@pytest.mark.timeout(240)
# schemathesis draws multipart boundaries with `random`; hypothesis deprecates that.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
@pytest.mark.parametrize(
    ("checks", "coverage"),
    [
        pytest.param(CHECKS, False, id="conformance"),
        pytest.param(
            [*ALL_CHECKS, only_a_reused_key_is_unprocessable, only_a_schema_or_filter_is_refused],
            True,
            id="all-checks",
        ),
    ],
)
async def test_schemathesis_finds_nothing_through_the_gateway(
    stack: Stack, receiver: Receiver, checks: list[Any], coverage: bool
) -> None:
    webhook = await stack.register(receiver.url)
    upload = await stack.upload(webhook["id"])
    delivery = await stack.delivery_for_upload(upload["upload_id"])
    await stack.wait_for_status(delivery["id"], "succeeded")
    async with stack.http.get(f"{stack.gateway_url}/openapi.json") as resp:
        document = await resp.json()
    # The publishEvent example's type, without a schema, so examples get past the 404; and
    # another type for the event-type routes, which may archive it.
    example_type = {"name": "invoice.paid", "description": "The example's"}
    async with stack.http.post(f"{stack.gateway_url}/event_type", json=example_type) as resp:
        assert resp.status in (201, 409)
    async with stack.http.post(
        f"{stack.gateway_url}/event_type", json={"name": f"fuzzed.{uuid.uuid4().hex[:8]}"}
    ) as resp:
        event_type = (await resp.json())["data"]
    # Of the type made here: another test of the session may have given invoice.paid a schema.
    async with stack.http.post(
        f"{stack.gateway_url}/event",
        json={"event_type": event_type["name"], "user_id": 1, "payload": {}},
    ) as resp:
        assert resp.status == 202, await resp.text()
        event = (await resp.json())["data"]
    real_ids = {
        "webhook_id": webhook["id"],
        "delivery_id": str(delivery["id"]),
        "event_type_id": event_type["id"],
        "event_id": event["event_id"],
        # With AUTH_MODE=none the key and portal routes answer 403 before any lookup.
        "api_key_id": str(uuid.uuid4()),
        "portal_session_id": str(uuid.uuid4()),
    }
    assert uuid.UUID(real_ids["delivery_id"])

    drawn_by = schemathesis_seed()
    replay = f"{SEED_VARIABLE}={drawn_by} draws these examples again"
    print(f"schemathesis seed {drawn_by} ({replay})")
    started = time.monotonic()
    failures, counts = await asyncio.to_thread(
        fuzz_operations, document, stack.gateway_url, real_ids, checks, coverage, drawn_by
    )
    elapsed = time.monotonic() - started
    total = sum(sum(statuses.values()) for statuses in counts.values())
    print(f"schemathesis: {total} requests in {elapsed:.1f} s")
    for label, statuses in counts.items():
        print(f"  {label}: {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join([f"seed {drawn_by}: {replay}", *failures])
    assert len(counts) == len(documented_routes(document)), replay
    # The real ids got examples past validation and lookup: every operation succeeded at times.
    for label, statuses in counts.items():
        # A 409 is a request that passed every check and lookup and met the state other
        # examples left: a name taken (both runs draw names into one database), or the
        # webhook disabled by an updateWebhook example before recoverWebhook's run.
        succeeded = statuses[200] + statuses[201] + statuses[202] + statuses[409]
        if label.split()[1].startswith(("/api_key", "/portal/")):
            # Keys and portal links are managed through the API only with AUTH_MODE=api_key,
            # and this stack runs without: 403 by design (tests/test_api_keys.py and
            # tests/test_portal_sessions.py drive them with keys).
            succeeded += statuses[403]
        assert succeeded > 0, (label, statuses, replay)
