"""Follow one upload across the services by its request id; metrics and logs tell the truth."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from harness.procstack import process_stack
from harness.receiver import Receiver, Reply
from tests.test_deployment_static import dashboard_metric_names

UPLOAD_FAMILIES = {
    "webhook_uploads",
    "webhook_upload_bytes",
    "webhook_events_published",
    "webhook_outbox_pending",
}
DISPATCHER_FAMILIES = {
    "webhook_deliveries",
    "webhook_delivery_attempt_duration_seconds",
    "webhook_deliveries_in_flight",
    "webhook_delivery_end_to_end_seconds",
}
HTTP_FAMILIES = {"webhook_http_requests", "webhook_http_request_duration_seconds"}


async def scrape(http: object, url: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    async with http.get(f"{url}/metrics") as resp:  # type: ignore[attr-defined]
        text = await resp.text()
    families: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return families


async def access_log_with(log_dir: Path, text: str, timeout: float = 5.0) -> str:
    """The gateway's access log once it holds `text`: nginx writes it a second at a time."""
    log = log_dir / "access.log"
    for _ in range(int(timeout / 0.1)):
        written = log.read_text() if log.exists() else ""
        if text in written:
            return written
        await asyncio.sleep(0.1)
    return log.read_text() if log.exists() else ""


async def test_one_upload_followed_by_request_id_with_metrics(
    database_url: str, amqp_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    request_id = f"trace-{uuid.uuid4().hex}"
    # Every success writes its line (the default writes one in a hundred).
    async with process_stack(database_url, amqp_url, tmp_path, LOG_SUCCESS_SAMPLE="1") as stack:
        webhook = await stack.register(
            receiver.url, custom_headers={"Authorization": "Bearer very-secret-token"}
        )
        status, body = await stack.upload(webhook["id"], headers={"X-Request-ID": request_id})
        assert status == 200, body
        (request,) = await receiver.wait_for(1)
        delivery_id = request.headers["webhook-id"]
        await asyncio.sleep(0.5)  # let the attempt's log line and metrics land

        upload_lines = [
            line for line in stack.log_lines("upload") if line.get("request_id") == request_id
        ]
        dispatcher_lines = [
            line for line in stack.log_lines("dispatcher") if line.get("request_id") == request_id
        ]
        (canonical,) = [line for line in upload_lines if line["event"] == "http_request"]
        assert canonical["route"] == "/upload_file/webhook_id/{webhook_id}"
        assert canonical["status"] == 200 and canonical["duration_ms"] >= 0
        # The upload's one line names what it made, so an operator can follow it on.
        assert canonical["upload_id"] == body["data"]["upload_id"]
        assert canonical["webhook_id"] == webhook["id"]
        (attempt,) = [line for line in dispatcher_lines if line["event"] == "delivery_attempt"]
        assert attempt["delivery_id"] == delivery_id == canonical["delivery_id"]
        assert attempt["webhook_id"] == webhook["id"]
        assert attempt["attempt"] == 1 and attempt["status_code"] == 200
        assert attempt["outcome"] == "succeeded" and "duration_ms" in attempt
        gateway_log = await access_log_with(stack.gateway.runtime_dir / "logs", request_id)
        assert request_id in gateway_log

        # Secrets, signatures and Authorization values never reach a log.
        everything = "".join(stack.raw_logs(service) for service in ("upload", "dispatcher"))
        everything += stack.raw_logs("registration") + gateway_log
        assert webhook["secret"] not in everything
        assert webhook["secret"].removeprefix("whsec_") not in everything
        assert "very-secret-token" not in everything
        assert request.headers["webhook-signature"].split(",", 1)[1] not in everything

        upload_metrics = await scrape(stack.http, stack.url("upload"))
        dispatcher_metrics = await scrape(stack.http, stack.url("dispatcher"))
        registration_metrics = await scrape(stack.http, stack.url("registration"))

    assert set(upload_metrics) >= UPLOAD_FAMILIES | HTTP_FAMILIES
    assert set(dispatcher_metrics) >= DISPATCHER_FAMILIES
    assert set(registration_metrics) >= HTTP_FAMILIES
    successes = [
        value
        for name, labels, value in dispatcher_metrics["webhook_deliveries"]
        if name == "webhook_deliveries_total" and labels == {"outcome": "success"}
    ]
    assert successes and successes[0] >= 1
    uploads = [v for n, _, v in upload_metrics["webhook_uploads"] if n == "webhook_uploads_total"]
    assert uploads == [1.0]
    e2e_count = [
        v
        for n, _, v in dispatcher_metrics["webhook_delivery_end_to_end_seconds"]
        if n == "webhook_delivery_end_to_end_seconds_count"
    ]
    assert e2e_count == [1.0]
    requests = [
        labels
        for name, labels, _ in upload_metrics["webhook_http_requests"]
        if name == "webhook_http_requests_total"
    ]
    assert {
        "service": "upload",
        "method": "POST",
        "route": "/upload_file/webhook_id/{webhook_id}",
        "status": "200",
    } in requests
    # No ids or URLs as label values: cardinality stays bounded.
    for samples in (*upload_metrics.values(), *dispatcher_metrics.values()):
        for _, labels, _ in samples:
            assert not any(webhook["id"] in value for value in labels.values())

    # Every metric a dashboard panel plots is exported by a running service.
    exported = {
        name
        for families in (upload_metrics, dispatcher_metrics, registration_metrics)
        for samples in families.values()
        for name, _, _ in samples
    }
    ours = {name for name in dashboard_metric_names() if name.startswith("webhook_")}
    assert ours <= exported, ours - exported


def counted(families: dict[str, list[tuple[str, dict[str, str], float]]], outcome: str) -> float:
    return sum(
        value
        for name, labels, value in families.get("webhook_deliveries", [])
        if name == "webhook_deliveries_total" and labels == {"outcome": outcome}
    )


async def test_a_failed_attempt_is_always_logged_and_counted_while_successes_are_sampled(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    """With LOG_SUCCESS_SAMPLE=0 no success writes a line, yet the failed attempt before it
    does, whole, and the counters tell both (issue 30: logs that cost little still tell
    what happened to each delivery)."""
    request_id = f"failed-{uuid.uuid4().hex}"
    receiver = await Receiver([Reply(500, body="down for maintenance"), Reply(200)]).start()
    try:
        async with process_stack(
            database_url, amqp_url, tmp_path, RETRY_SCHEDULE="0.2", LOG_SUCCESS_SAMPLE="0"
        ) as stack:
            webhook = await stack.register(receiver.url)
            status, body = await stack.upload(webhook["id"], headers={"X-Request-ID": request_id})
            assert status == 200, body
            first, second = await receiver.wait_for(2, timeout=30)
            delivery_id = first.headers["webhook-id"]
            assert second.headers["webhook-id"] == delivery_id
            metrics = await scrape(stack.http, stack.url("dispatcher"))
            for _ in range(50):  # the success is recorded (and counted) after its answer
                if counted(metrics, "success") >= 1:
                    break
                await asyncio.sleep(0.1)
                metrics = await scrape(stack.http, stack.url("dispatcher"))
            lines = [
                line
                for line in stack.log_lines("dispatcher")
                if line.get("event") == "delivery_attempt"
                and line.get("delivery_id") == delivery_id
            ]
    finally:
        await receiver.stop()

    (failed,) = lines  # the success is not written: its share is 0
    assert failed["request_id"] == request_id
    assert failed["webhook_id"] == webhook["id"]
    assert failed["attempt"] == 1 and failed["status_code"] == 500
    assert failed["error"] == "HTTP 500" and failed["outcome"] == "pending"
    assert 0 < failed["next_retry_in_s"] <= 1 and failed["level"] == "info"
    assert "sampled" not in failed
    assert counted(metrics, "retry") == 1
    assert counted(metrics, "success") == 1
    assert counted(metrics, "failed") == 0
    attempts = [
        value
        for name, _, value in metrics["webhook_delivery_attempt_duration_seconds"]
        if name == "webhook_delivery_attempt_duration_seconds_count"
    ]
    assert attempts == [2.0]
