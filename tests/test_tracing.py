"""Tracing (SPEC section 11): one trace from the upload request to every delivery attempt.

The services run as real processes exporting OTLP/HTTP to a collector of this test's own,
which decodes each ExportTraceServiceRequest with opentelemetry-proto.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from harness.procstack import ProcessStack, process_stack
from harness.receiver import Receiver, Reply, serve_on_loopback
from harness.stack import StackOptions, running_stack
from services.common import tracing
from services.common.settings import CommonSettings, ConfigError, Env

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # opentelemetry.proto.trace.v1 Span.SpanKind
EXPORTER_THREAD = "OtelBatch"
HEX_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
HEX_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")


def plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [plain(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    attributes: dict[str, Any]


class Collector:
    """An OTLP/HTTP trace receiver on 127.0.0.1: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _export(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            resource = {a.key: plain(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            service=resource["service.name"],
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=span.kind,
                            attributes={a.key: plain(a.value) for a in span.attributes},
                        )
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def start(self) -> Collector:
        app = web.Application()
        app.router.add_post("/v1/traces", self._export)
        self._runner, self.port = await serve_on_loopback(app, shutdown_timeout=60.0)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(
        self, what: str, found: Callable[[list[ReceivedSpan]], bool], timeout: float = 30.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not found(self.spans):
            if time.monotonic() > deadline:
                names = sorted({(s.service, s.name) for s in self.spans})
                raise AssertionError(f"no {what} within {timeout} s; spans seen: {names}")
            await asyncio.sleep(0.1)


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    server = await Collector().start()
    yield server
    await server.stop()


def exporter_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(EXPORTER_THREAD)]


def attempt_spans(spans: list[ReceivedSpan], delivery_id: str) -> list[ReceivedSpan]:
    return sorted(
        (
            s
            for s in spans
            if s.kind == CLIENT and s.attributes.get("webhooks.delivery_id") == delivery_id
        ),
        key=lambda s: s.attributes["webhooks.attempt"],
    )


def upload_server_span(spans: list[ReceivedSpan], upload_id: str) -> ReceivedSpan:
    (span,) = [
        s
        for s in spans
        if s.service == "upload"
        and s.kind == SERVER
        and s.attributes.get("webhooks.upload_id") == upload_id
    ]
    return span


def secrets_absent(spans: list[ReceivedSpan], forbidden: list[str]) -> None:
    for span in spans:
        for key, value in span.attributes.items():
            text = str(value)
            for secret in forbidden:
                assert secret not in text, f"{span.service} {span.name}: {key} carries a secret"


@dataclass
class TracedRun:
    stack: ProcessStack
    collector: Collector
    receiver: Receiver
    marker: str
    query_marker: str
    webhook: dict[str, Any]


@pytest.fixture
async def traced(
    database_url: str, amqp_url: str, tmp_path: Path, collector: Collector
) -> AsyncIterator[TracedRun]:
    receiver = await Receiver([Reply(500), Reply(200)]).start()
    marker, query_marker = f"marker-{uuid.uuid4().hex}", f"query-{uuid.uuid4().hex}"
    try:
        async with process_stack(
            database_url,
            amqp_url,
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
        ) as stack:  # its RETRY_SCHEDULE retries after 1 s
            webhook = await stack.register(
                f"{receiver.url}?token={query_marker}",
                custom_headers={"X-Trace-Marker": marker, "Authorization": f"Bearer {marker}"},
            )
            yield TracedRun(stack, collector, receiver, marker, query_marker, webhook)
    finally:
        await receiver.stop()


async def test_one_trace_from_the_upload_to_each_attempt(traced: TracedRun) -> None:
    stack, collector, receiver = traced.stack, traced.collector, traced.receiver
    status, answer = await stack.upload(traced.webhook["id"], content=b"traced" * 100)
    assert status == 200, answer
    upload_id = answer["data"]["upload_id"]
    received = await receiver.wait_for(2, timeout=30)
    delivery_id = received[0].headers["webhook-id"]
    await collector.wait_for(
        "successful attempt span",
        lambda spans: any(
            s.attributes.get("http.response.status_code") == 200
            for s in attempt_spans(spans, delivery_id)
        ),
    )

    server = upload_server_span(collector.spans, upload_id)
    assert server.name == "POST /upload_file/webhook_id/{webhook_id}"
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["webhooks.size"] == 600
    trace = [s for s in collector.spans if s.trace_id == server.trace_id]
    assert {"upload", "dispatcher"} <= {s.service for s in trace}

    # The publish, in the upload's trace, is the parent of the first attempt's consume.
    (producer,) = [s for s in trace if s.service == "upload" and s.kind == PRODUCER]
    consumers = [s for s in trace if s.service == "dispatcher" and s.kind == CONSUMER]
    assert producer.span_id in {c.parent_id for c in consumers}
    assert {c.attributes.get("webhooks.attempt") for c in consumers} >= {1, 2}
    assert any(s.attributes.get("db.system") == "postgresql" for s in trace), "no database span"

    failed, succeeded = attempt_spans(trace, delivery_id)
    for number, span in enumerate((failed, succeeded), 1):
        assert span.service == "dispatcher"
        assert span.attributes["http.request.method"] == "POST"
        assert span.attributes["url.full"] == receiver.url  # no query string
        assert span.attributes["webhooks.attempt"] == number
    assert failed.attributes["http.response.status_code"] == 500
    assert failed.attributes["error.type"] == "500"
    assert succeeded.attributes["http.response.status_code"] == 200
    assert "error.type" not in succeeded.attributes

    signatures = [r.headers["webhook-signature"] for r in received]
    secret = traced.webhook["secret"]
    assert secret.startswith("whsec_")
    secrets_absent(
        collector.spans, [traced.marker, traced.query_marker, secret, "whsec_", *signatures]
    )

    for service in ("upload", "dispatcher"):
        joined = [line for line in stack.log_lines(service) if line.get("trace_id")]
        assert any(line["trace_id"] == server.trace_id for line in joined), service
        for line in joined:
            assert HEX_TRACE_ID.match(line["trace_id"]), line
            assert HEX_SPAN_ID.match(line["span_id"]), line


async def test_uploads_announced_together_each_keep_their_own_trace(traced: TracedRun) -> None:
    """Uploads recorded by one statement share one message (a DeliveryBatch), published in
    one request's trace: each delivery's attempt still joins its own upload's trace."""
    stack, collector = traced.stack, traced.collector
    traced.receiver.replies = [Reply(200)]
    answers = await asyncio.gather(*(stack.upload(traced.webhook["id"]) for _ in range(12)))
    assert [status for status, _ in answers] == [200] * 12, answers
    received = await traced.receiver.wait_for(12, timeout=30)
    delivery_ids = {r.headers["webhook-id"] for r in received}
    await collector.wait_for(
        "an attempt span of each delivery",
        lambda spans: all(attempt_spans(spans, d) for d in delivery_ids),
    )
    traces = {
        upload_server_span(collector.spans, answer["data"]["upload_id"]).trace_id
        for _, answer in answers
    }
    attempts = [attempt_spans(collector.spans, d)[0] for d in delivery_ids]
    # Each upload's trace holds exactly one attempt: its own delivery's.
    assert sorted(a.trace_id for a in attempts) == sorted(traces)
    producers = [s for s in collector.spans if s.service == "upload" and s.kind == PRODUCER]
    print(f"{len(producers)} messages announced 12 uploads")


async def test_an_event_published_later_by_the_outbox_relay_keeps_its_trace(
    traced: TracedRun,
) -> None:
    stack, collector = traced.stack, traced.collector
    traced.receiver.replies = [Reply(200)]
    stack.broker_proxy.cut()
    await wait_status(stack, "upload", 503)
    status, answer = await stack.upload(traced.webhook["id"])
    assert status == 200, answer
    stack.broker_proxy.restore()
    received = await traced.receiver.wait_for(1, timeout=60)
    delivery_id = received[0].headers["webhook-id"]
    await collector.wait_for(
        "relayed attempt span", lambda spans: bool(attempt_spans(spans, delivery_id))
    )

    server = upload_server_span(collector.spans, answer["data"]["upload_id"])
    (attempt,) = attempt_spans(collector.spans, delivery_id)
    assert attempt.trace_id == server.trace_id
    producers = [
        s
        for s in collector.spans
        if s.trace_id == server.trace_id and s.service == "upload" and s.kind == PRODUCER
    ]
    assert producers, "the relay's publish is not in the request's trace"


async def event_webhook(traced: TracedRun) -> tuple[str, dict[str, Any]]:
    """An event type of its own, through the API, and a webhook for it to the receiver."""
    stack = traced.stack
    name = f"invoice.paid.{uuid.uuid4().hex[:8]}"
    async with stack.http.post(
        f"{stack.gateway_url}/event_type", json={"name": name, "description": "traced"}
    ) as resp:
        answer = await resp.json()
        assert resp.status == 201, answer
    webhook = await stack.register(
        f"{traced.receiver.url}?token={traced.query_marker}",
        event_type_id=answer["data"]["id"],
        custom_headers={"X-Trace-Marker": traced.marker},
    )
    return name, webhook


async def publish_event(stack: ProcessStack, name: str) -> str:
    async with stack.http.post(
        f"{stack.gateway_url}/event",
        json={"event_type": name, "user_id": 1, "payload": {"amount": 7}},
    ) as resp:
        answer = await resp.json()
        assert resp.status == 202, answer
        return str(answer["data"]["event_id"])


def event_spans(spans: list[ReceivedSpan], event_id: str) -> tuple[ReceivedSpan, ReceivedSpan]:
    """The POST /event server span and the span that fanned the event out: the request
    itself for a few webhooks (docs/events.md), else the fan-out worker's consumer span."""
    (server,) = [
        s for s in spans if s.kind == SERVER and s.attributes.get("webhooks.event_id") == event_id
    ]
    (fanout,) = [
        s
        for s in spans
        if s.attributes.get("webhooks.event_id") == event_id
        and "webhooks.deliveries" in s.attributes
    ]
    return server, fanout


async def test_one_trace_from_an_event_through_its_fan_out_to_each_attempt(
    traced: TracedRun,
) -> None:
    stack, collector, receiver = traced.stack, traced.collector, traced.receiver
    name, webhook = await event_webhook(traced)
    event_id = await publish_event(stack, name)
    received = await receiver.wait_for(2, timeout=30)
    delivery_id = received[0].headers["webhook-id"]
    await collector.wait_for(
        "successful attempt span",
        lambda spans: any(
            s.attributes.get("http.response.status_code") == 200
            for s in attempt_spans(spans, delivery_id)
        ),
    )

    server, fanout = event_spans(collector.spans, event_id)
    assert (server.service, server.name) == ("upload", "POST /event")
    assert server.attributes["http.response.status_code"] == 202
    assert server.attributes["webhooks.event_type"] == name
    assert fanout.service == "upload"
    assert fanout.trace_id == server.trace_id
    assert fanout.attributes["webhooks.deliveries"] == 1
    trace = [s for s in collector.spans if s.trace_id == server.trace_id]
    assert {"upload", "dispatcher"} <= {s.service for s in trace}

    # Request → (publish) → fan-out → (publish) → the first attempt's consume; a fan-out
    # to one webhook happens in the request itself (no hop through the worker).
    producers = {s.span_id: s for s in trace if s.service == "upload" and s.kind == PRODUCER}
    assert fanout.span_id == server.span_id or fanout.parent_id in producers
    consumers = [s for s in trace if s.service == "dispatcher" and s.kind == CONSUMER]
    first = [c for c in consumers if c.attributes.get("webhooks.attempt") == 1]
    assert first and first[0].parent_id in producers
    assert producers[first[0].parent_id].parent_id == fanout.span_id

    failed, succeeded = attempt_spans(trace, delivery_id)
    assert [failed.service, succeeded.service] == ["dispatcher", "dispatcher"]
    assert failed.attributes["url.full"] == succeeded.attributes["url.full"] == receiver.url
    assert [failed.attributes["webhooks.attempt"], succeeded.attributes["webhooks.attempt"]] == [
        1,
        2,
    ]
    assert failed.attributes["http.response.status_code"] == 500
    assert succeeded.attributes["http.response.status_code"] == 200

    signatures = [r.headers["webhook-signature"] for r in received]
    secrets_absent(
        collector.spans,
        [traced.marker, traced.query_marker, webhook["secret"], "whsec_", *signatures],
    )
    # Fanned out in the request: its one line says so, in the request's trace.
    fanned_out = [line for line in stack.log_lines("upload") if line.get("fanned_out_inline")]
    assert [line["event"] for line in fanned_out] == ["http_request"]
    assert [line.get("trace_id") for line in fanned_out] == [server.trace_id]
    assert fanned_out[0]["deliveries"] == 1
    dispatched = [line for line in stack.log_lines("dispatcher") if line.get("trace_id")]
    assert any(line["trace_id"] == server.trace_id for line in dispatched)


async def test_an_event_fanned_out_after_a_broker_outage_keeps_its_trace(
    traced: TracedRun,
) -> None:
    stack, collector = traced.stack, traced.collector
    traced.receiver.replies = [Reply(200)]
    name, _ = await event_webhook(traced)
    stack.broker_proxy.cut()
    await wait_status(stack, "upload", 503)
    event_id = await publish_event(stack, name)
    stack.broker_proxy.restore()
    received = await traced.receiver.wait_for(1, timeout=60)
    delivery_id = received[0].headers["webhook-id"]
    await collector.wait_for(
        "relayed attempt span", lambda spans: bool(attempt_spans(spans, delivery_id))
    )

    # The relay published the fan-out message in the request's trace, however late.
    server, fanout = event_spans(collector.spans, event_id)
    assert fanout.trace_id == server.trace_id
    assert fanout.attributes["webhooks.deliveries"] == 1
    (attempt,) = attempt_spans(collector.spans, delivery_id)
    assert attempt.trace_id == server.trace_id


async def wait_status(stack: ProcessStack, service: str, status: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        async with stack.http.get(f"{stack.url(service)}/readyz") as resp:
            if resp.status == status:
                return
        assert time.monotonic() < deadline, f"{service} /readyz never answered {status}"
        await asyncio.sleep(0.1)


async def test_without_an_endpoint_nothing_is_installed(
    database_url: str, amqp_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    receiver = await Receiver().start()
    try:
        async with running_stack(database_url, amqp_url, tmp_path, StackOptions()) as stack:
            webhook = await stack.register(receiver.url)
            data = await stack.upload(webhook["id"])
            (request,) = await receiver.wait_for(1)
            assert request.json()["data"]["upload_id"] == data["upload_id"]
            assert exporter_threads() == []
            assert tracing.active_tracer() is None
            assert "traceparent" not in request.headers
    finally:
        await receiver.stop()


async def test_with_an_endpoint_spans_are_flushed_when_the_app_stops(
    database_url: str,
    amqp_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    collector: Collector,
) -> None:
    """The control for the test above; and the batch is flushed on stop, not lost."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
    # Longer than the test: spans can only arrive through the flush at shutdown.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    receiver = await Receiver().start()
    try:
        async with running_stack(database_url, amqp_url, tmp_path, StackOptions()) as stack:
            webhook = await stack.register(receiver.url)
            await stack.upload(webhook["id"])
            await receiver.wait_for(1)
            assert len(exporter_threads()) == 1
            assert collector.spans == []
    finally:
        await receiver.stop()
    assert exporter_threads() == []
    assert tracing.active_tracer() is None
    kinds = {span.kind for span in collector.spans}
    assert {SERVER, PRODUCER, CONSUMER, CLIENT} <= kinds


def test_an_endpoint_turns_tracing_on_and_the_standard_off_switches_win() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}
    assert not tracing.tracing_requested({})
    assert not tracing.tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})
    assert tracing.tracing_requested(endpoint)
    assert tracing.tracing_requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://j/v1/traces"})
    assert not tracing.tracing_requested({**endpoint, "OTEL_SDK_DISABLED": "true"})
    assert not tracing.tracing_requested({**endpoint, "OTEL_TRACES_EXPORTER": "none"})
    # Without a collector: spans on stderr.
    assert tracing.tracing_requested({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing.tracing_requested(
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}
    )


async def test_the_console_exporter_writes_each_span_to_stderr(
    database_url: str,
    amqp_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    receiver = await Receiver().start()
    try:
        async with running_stack(database_url, amqp_url, tmp_path, StackOptions()) as stack:
            webhook = await stack.register(receiver.url)
            await stack.upload(webhook["id"])
            await receiver.wait_for(1)
    finally:
        await receiver.stop()
    err = capfd.readouterr().err
    for kind in ("SpanKind.SERVER", "SpanKind.PRODUCER", "SpanKind.CONSUMER", "SpanKind.CLIENT"):
        assert kind in err


def test_only_the_otlp_http_protobuf_exporter_is_accepted() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}
    for name in tracing.PROTOCOL_VARIABLES:
        with pytest.raises(ConfigError, match=f"{name} must be one of http/protobuf"):
            CommonSettings.common_from_env(Env({**endpoint, name: "grpc"}))
        CommonSettings.common_from_env(Env({**endpoint, name: "http/protobuf"}))
        # Tracing off: the variable is someone else's business.
        CommonSettings.common_from_env(Env({name: "grpc"}))


def test_the_service_name_defaults_to_the_service_and_otel_service_name_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    names = []
    for configured in (None, "webhooks-upload-eu"):
        if configured is None:
            monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        else:
            monkeypatch.setenv("OTEL_SERVICE_NAME", configured)
        started = tracing.start_tracing("upload")
        names.append(started.provider.resource.attributes["service.name"])
        started.shutdown()
    assert names == ["upload", "webhooks-upload-eu"]
    assert exporter_threads() == []


def test_attempt_urls_lose_credentials_query_and_fragment() -> None:
    assert (
        tracing.without_query("https://user:pw@hooks.example.com:8443/in/x?token=abc#frag")
        == "https://hooks.example.com:8443/in/x"
    )
    assert tracing.without_query("http://[::1]:9000/hook?a=1") == "http://[::1]:9000/hook"
