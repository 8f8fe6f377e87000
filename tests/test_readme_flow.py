"""README's management story, read from README.md and run in order against one webhook.

Each command block of "One webhook, start to finish" is run with curl and its answer
compared with the JSON block that follows it, so the test fails when the README drifts.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any

from harness.processes import REPO
from harness.receiver import Receiver
from harness.stack import UPLOAD_EVENT_TYPE_ID, Stack, free_port, wait_for_port
from tests.test_original_flow import STEP_1, STEP_2, STEP_3, curl

STORY_HEADING = "#### One webhook, start to finish"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# An elided value in the README's answers: `…` alone is anything, inside a string a wildcard.
ELLIPSIS = "…"
BARE_ELLIPSIS = re.compile(r"(?<=[:\[,] )…(?=[,}\]])")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
# Addresses of the README that this test replaces with its own receiver's.
README_URLS = ("https://webhook-test.com/callback", "https://example.com/hooks/v2")


def story_steps(readme: str) -> list[tuple[str, dict[str, Any] | str]]:
    """(command, expected answer) pairs, in README order."""
    start = readme.index(STORY_HEADING)
    end = readme.index("\n### ", start)
    blocks = FENCE.findall(readme[start:end])
    assert len(blocks) % 2 == 0, "every command block is followed by its answer"
    steps = []
    for (language, command), (answer_language, answer) in zip(
        blocks[::2], blocks[1::2], strict=True
    ):
        assert language == "" and answer_language == "json", (command, answer)
        steps.append((command.strip(), BARE_ELLIPSIS.sub(f'"{ELLIPSIS}"', answer.strip())))
    return steps


def matches(expected: Any, actual: Any, where: str = "answer", depth: int = 0) -> None:
    """Every field the README shows is in the answer, with its value (or its shape).

    The envelope and its `data` may hold more than the README shows; objects inside them
    (`custom_headers`, a listed delivery, an attempt) must be shown whole.
    """
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        if depth >= 2:
            assert actual.keys() == expected.keys(), f"{where}: {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: no {key!r} in {actual!r}"
            matches(value, actual[key], f"{where}.{key}", depth + 1)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) >= len(expected), f"{where}: {actual!r}"
        for index, (item, got) in enumerate(zip(expected, actual[: len(expected)], strict=True)):
            matches(item, got, f"{where}[{index}]", depth + 1)
    elif expected == ELLIPSIS:
        pass
    elif isinstance(expected, str) and ELLIPSIS in expected:
        pattern = ".*".join(map(re.escape, expected.split(ELLIPSIS)))
        assert re.fullmatch(pattern, str(actual), re.DOTALL), f"{where}: {actual!r}"
    elif isinstance(expected, str) and TIMESTAMP.fullmatch(expected):
        assert isinstance(actual, str) and TIMESTAMP.fullmatch(actual), f"{where}: {actual!r}"
    else:
        assert actual == expected, f"{where}: {actual!r}, README shows {expected!r}"


def test_the_story_runs_in_the_order_the_issue_asks() -> None:
    commands = [command for command, _ in story_steps((REPO / "README.md").read_text())]
    order = [
        next(i for i, c in enumerate(commands) if c.startswith("curl http") and "/delivery/" in c),
        next(i for i, c in enumerate(commands) if '"custom_headers"' in c),
        next(i for i, c in enumerate(commands) if '{"disabled": true}' in c),
        next(i for i, c in enumerate(commands) if "/recover" in c),
        next(i for i, c in enumerate(commands) if "/redeliver" in c),
        next(i for i, c in enumerate(commands) if "/secret/rotate" in c),
        next(i for i, c in enumerate(commands) if "--request DELETE" in c),
    ]
    assert order == sorted(order), "inspect, patch, disable, recover, redeliver, rotate, delete"


async def test_the_management_story_gives_what_the_readme_shows(
    stack: Stack, receiver: Receiver, tmp_path: Path
) -> None:
    registered = await curl(
        STEP_2.replace(README_URLS[0], receiver.url),
        stack.gateway_url,
        **{"<event_type_id>": "21f8e1f7-4142-42f9-ac30-74961702b2eb"},
    )
    webhook_id = registered["data"]["id"]
    picture = tmp_path / "file.jpg"
    picture.write_bytes(b"jpeg-ish")
    uploaded = await curl(
        STEP_3,
        stack.gateway_url,
        **{"<webhook_id>": webhook_id, "/path/to/your/file.jpg": str(picture)},
    )
    delivery = await stack.delivery_for_upload(uploaded["data"]["upload_id"])
    await stack.wait_for_status(delivery["id"], "succeeded")
    replacements = {
        "<webhook_id>": webhook_id,
        "<delivery_id>": str(delivery["id"]),
        README_URLS[0]: receiver.url,
        README_URLS[1]: f"{receiver.url}/v2",
    }

    steps = story_steps((REPO / "README.md").read_text())
    assert len(steps) >= 10
    for command, answer in steps:
        assert len(shlex.split(command.replace("\\\n", " "))) > 1, command
        for placeholder, value in replacements.items():
            answer = answer.replace(placeholder, value)
        got = await curl(command, stack.gateway_url, **replacements)
        matches(json.loads(answer), got, command.splitlines()[0])

    # The story really ran against one webhook, which is now deleted.
    deleted_at = await stack.pool.fetchval(
        "SELECT deleted_at FROM webhook_registrations WHERE id = $1", uuid.UUID(webhook_id)
    )
    assert deleted_at is not None


QUICKSTART_HEADING = "## How to test it by hand"
LOCAL_RECEIVER_URL = "http://127.0.0.1:8000/callback"


def quickstart_blocks() -> list[str]:
    readme = (REPO / "README.md").read_text()
    start = readme.index(QUICKSTART_HEADING)
    end = readme.index("\n## ", start + 1)
    return [body.strip() for _, body in FENCE.findall(readme[start:end])]


def test_the_quickstart_says_where_deliveries_go_before_any_is_made() -> None:
    """A newcomer who follows it in order starts the stack able to reach a local receiver
    before the original design's command registers a third-party site."""
    blocks = quickstart_blocks()
    allow = next(i for i, b in enumerate(blocks) if b == "ALLOW_PRIVATE_URLS=true make run")
    first_list = next(i for i, b in enumerate(blocks) if b == STEP_1)
    remote = next(i for i, b in enumerate(blocks) if README_URLS[0] in b)
    assert allow < first_list < remote
    assert blocks[remote] == STEP_2, "the original design's command stays verbatim"


async def test_the_quickstarts_local_variant_delivers_to_the_example_receiver(
    stack: Stack, tmp_path: Path
) -> None:
    blocks = quickstart_blocks()
    register = next(b for b in blocks if LOCAL_RECEIVER_URL in b and b.startswith("curl"))
    start_receiver = next(b for b in blocks if "aiohttp_receiver.py" in b)
    port = free_port()

    registered = await curl(
        register.replace("8000", str(port)),
        stack.gateway_url,
        **{"<event_type_id>": UPLOAD_EVENT_TYPE_ID},
    )
    assert registered["error"] is False, registered
    *assignments, python, script = shlex.split(start_receiver)
    assert python == ".venv/bin/python"
    env = dict(assignment.split("=", 1) for assignment in assignments)
    env.update(
        {"WEBHOOK_SECRET": registered["data"]["secret"], "PORT": str(port)},
        PATH=os.environ.get("PATH", ""),
    )
    receiver = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / script),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await wait_for_port(port)
        picture = tmp_path / "file.jpg"
        picture.write_bytes(b"jpeg-ish")
        uploaded = await curl(
            STEP_3,
            stack.gateway_url,
            **{
                "<webhook_id>": registered["data"]["id"],
                "/path/to/your/file.jpg": str(picture),
            },
        )
        delivery = await stack.delivery_for_upload(uploaded["data"]["upload_id"])
        await stack.wait_for_status(delivery["id"], "succeeded")
        await asyncio.sleep(0.5)  # the receiver's worker logs the upload after its 204
    finally:
        receiver.terminate()
        output = (await receiver.communicate())[0].decode()
    assert f"delivery_accepted delivery_id={delivery['id']}" in output, output
    assert f"upload_processed delivery_id={delivery['id']}" in output, output
    assert "filename='file.jpg'" in output, output
