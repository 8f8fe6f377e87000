"""A real HTTP forward proxy (proxy.py from PyPI) in its own process, with its access log."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from harness.stack import free_port, wait_for_port


class ForwardProxy:
    """proxy.py on 127.0.0.1: plain HTTP forwarded, https tunnelled with CONNECT."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> ForwardProxy:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "proxy",
                    "--hostname", "127.0.0.1", "--port", str(self.port),
                    "--num-workers", "1", "--num-acceptors", "1",
                    "--log-level", "INFO",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        await wait_for_port(self.port, timeout=30.0)
        return self

    def access_log(self) -> list[str]:
        """The proxy's lines about requests it forwarded or tunnelled."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if "access_log" in line]

    async def wait_for_access(self, fragment: str, timeout: float = 10.0) -> str:
        return (await self.wait_for_accesses(fragment, 1, timeout))[0]

    async def wait_for_accesses(
        self, fragment: str, count: int, timeout: float = 10.0
    ) -> list[str]:
        """The access lines holding `fragment`, once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.access_log() if fragment in line]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, (fragment, count, self.access_log())
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
