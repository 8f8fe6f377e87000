"""The TypeScript SDK in client/typescript, against the real stack: its types generated from
client/openapi.json and compiled with tsc, then its tests run by node's test runner
(client/typescript/test) with the gateway's URL (and a key, a receiver) in the environment.

`make test` installs its pinned packages (`npm ci --prefix client/typescript`)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.receiver import Receiver
from harness.stack import Stack, StackOptions
from services.registration.commands import create_api_key

PACKAGE = Path(__file__).resolve().parents[1] / "client" / "typescript"


async def run(command: list[str], env: dict[str, str]) -> str:
    """The command's output; a non-zero exit fails the test with it."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=PACKAGE,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await asyncio.wait_for(process.communicate(), timeout=240))[0].decode()
    assert process.returncode == 0, f"{' '.join(command)} exited {process.returncode}:\n{out}"
    return out


@pytest.fixture(scope="module")
def built() -> None:
    """Generated and compiled once for the module (`npm run build`: openapi-typescript, tsc)."""
    npm = shutil.which("npm")
    assert npm is not None, "npm is missing (.ci/run installs it)"
    steps = [[npm, "run", "build"]]
    if not (PACKAGE / "node_modules" / ".bin" / "tsc").exists():
        steps.insert(0, [npm, "ci", "--no-audit", "--no-fund"])
    for step in steps:
        done = subprocess.run(step, cwd=PACKAGE, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, f"{' '.join(step)}:\n{done.stdout}{done.stderr}"


async def node_test(test_file: str, env: dict[str, str]) -> str:
    out = await run(["node", "--test", f"dist/test/{test_file}"], env)
    assert "# fail 0" in out and "# pass 0" not in out, out
    return out


@pytest.mark.usefixtures("built")
async def test_register_publish_deliveries_redeliver_and_errors(
    stack: Stack, receiver: Receiver
) -> None:
    env = {"WEBHOOKS_URL": stack.gateway_url, "WEBHOOKS_RECEIVER_URL": receiver.url}
    out = await node_test("flow.test.js", env)
    assert "# pass 2" in out, out
    # The endpoint got both events and the redelivery, through the real dispatcher.
    assert len(await receiver.wait_for(3)) >= 3


@pytest.mark.usefixtures("built")
@pytest.mark.parametrize(
    "stack_options",
    [StackOptions(auth_mode="api_key", auth_cache_seconds=0, rate_limit_per_second=1)],
)
async def test_unauthorized_and_rate_limited_with_retry_after(stack: Stack) -> None:
    async with stack.pool.acquire() as conn:
        key = await create_api_key(conn, 1)
    out = await node_test(
        "limits.test.js", {"WEBHOOKS_URL": stack.gateway_url, "WEBHOOKS_API_KEY": key}
    )
    assert "# pass 2" in out, out
