"""The original design's README test flow, with its curl commands verbatim, through the gateway."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from harness.receiver import Receiver
from harness.stack import Stack

# Verbatim from the original design (only the address differs: the gateway of this test).
STEP_1 = """curl --request GET \\
  --url http://0.0.0.0:8081/event_type"""

STEP_2 = """curl --request POST \\
  --url http://0.0.0.0:8081/webhook/register \\
  --header 'Content-Type: application/json' \\
  --data '{
    "event_type_id": "<event_type_id>",
    "user_id": 1,
    "url": "https://webhook-test.com/callback",
    "custom_headers": {
        "Content-Type": "application/json",
        "Authorization": "Bearer yourtokenhere"
    },
    "custom_payload": {
        "key1": "value1",
        "key2": "value2"
    }
}'"""

STEP_3 = """curl --request POST \\
  --url http://0.0.0.0:8081/upload_file/webhook_id/<webhook_id> \\
  --header 'Content-Type: multipart/form-data; boundary=---011000010111000001101001' \\
  --form file=@/path/to/your/file.jpg"""


async def curl(command: str, gateway_url: str, **replacements: str) -> dict[str, Any]:
    command = command.replace("http://0.0.0.0:8081", gateway_url)
    for placeholder, value in replacements.items():
        command = command.replace(placeholder, value)
    args = shlex.split(command.replace("\\\n", " "))
    process = await asyncio.create_subprocess_exec(
        *args, "--silent", "--show-error", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return json.loads(out)  # type: ignore[no-any-return]


async def test_three_steps_deliver_a_signed_webhook(
    stack: Stack, receiver: Receiver, tmp_path: Path
) -> None:
    listed = await curl(STEP_1, stack.gateway_url)
    assert listed["error"] is False
    assert listed["message"] == "Successfully !"
    upload_type = next(item for item in listed["data"] if item["name"] == "upload file")
    assert upload_type["description"] == "Event type for file upload operations"

    registered = await curl(
        STEP_2.replace("https://webhook-test.com/callback", receiver.url),
        stack.gateway_url,
        **{"<event_type_id>": upload_type["id"]},
    )
    assert registered["message"] == "Register Webhook Successfully!"
    assert registered["error"] is False
    webhook = registered["data"]
    assert webhook["user_id"] == 1
    assert webhook["url"] == receiver.url
    assert webhook["secret"].startswith("whsec_")

    picture = tmp_path / "file.jpg"
    picture.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg " * 100)
    uploaded = await curl(
        STEP_3,
        stack.gateway_url,
        **{"<webhook_id>": webhook["id"], "/path/to/your/file.jpg": str(picture)},
    )
    assert uploaded["error"] is False, uploaded
    data = uploaded["data"]
    assert data["filename"] == "file.jpg"
    assert data["size"] == picture.stat().st_size
    assert data["sha256"] == hashlib.sha256(picture.read_bytes()).hexdigest()

    (request,) = await receiver.wait_for(1)
    event = Webhook(webhook["secret"]).verify(request.body, request.headers)
    assert event["type"] == "upload.completed"
    assert event["key1"] == "value1" and event["key2"] == "value2"
    assert event["data"]["upload_id"] == data["upload_id"]
    assert event["data"]["sha256"] == data["sha256"]
    assert request.headers["Authorization"] == "Bearer yourtokenhere"
    assert request.headers["Content-Type"] == "application/json"

    stored = next((stack.upload_dir / data["upload_id"]).iterdir())
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == event["data"]["sha256"]


async def test_registration_example_with_original_event_type_id(stack: Stack) -> None:
    """The API section's example uses a fixed event_type_id; it is the seeded one."""
    example = STEP_2.replace("<event_type_id>", "21f8e1f7-4142-42f9-ac30-74961702b2eb")
    registered = await curl(example, stack.gateway_url)
    assert registered["error"] is False
    assert registered["data"]["event_type_id"] == "21f8e1f7-4142-42f9-ac30-74961702b2eb"
