"""Writes webhooks_publisher/sync_client.py, the blocking client, from async_client.py.

Run from a checkout (`python client/publisher/unasync_clients.py`; `make` does it before the
tests and the lint), and by the package's build (`build_py` below, named in pyproject.toml),
so the two clients cannot drift apart and only the async one is kept in git.
"""

from __future__ import annotations

import sys
from pathlib import Path

import unasync
from setuptools.command.build_py import build_py

PACKAGE = Path(__file__).resolve().with_name("webhooks_publisher")
SOURCE = "async_client.py"
TARGET = "sync_client.py"
# What unasync's own table (async/await, __aenter__, AsyncIterator...) does not rename.
RULE = unasync.Rule(
    SOURCE,
    TARGET,
    additional_replacements={
        "AsyncWebhooksClient": "WebhooksClient",
        "AsyncClient": "Client",
        "AsyncBaseTransport": "BaseTransport",
        "aclose": "close",
    },
)
# unasync leaves prose alone: the docstrings that speak of `async` are swapped whole.
DOCSTRINGS = {
    '"""The async client: each method sends one request built by operations.py (docstrings there).'
    "\n\nsync_client.py, the blocking `WebhooksClient`, is generated from this file by unasync\n"
    "(client/publisher/unasync_clients.py, run by `make` and by the package's build): edit this\n"
    "one, and write nothing here that would not also be right without `async` and `await`.\n"
    '"""': '"""The blocking client, generated from async_client.py by unasync: do not edit.\n\n'
    "Edit async_client.py and run client/publisher/unasync_clients.py (`make` does).\n"
    '"""',
    '"""`async with AsyncWebhooksClient("http://gateway:8081", api_key=...) as client: ...`"""': (
        '"""`with WebhooksClient("http://gateway:8081", api_key=...) as client: ...` (blocking)."""'
    ),
}


def write_sync_client(package: Path = PACKAGE) -> Path:
    """Generate `package`/sync_client.py from `package`/async_client.py; its path."""
    target = package / TARGET
    unasync.unasync_files([str(package / SOURCE)], [RULE])
    text = target.read_text()
    for before, after in DOCSTRINGS.items():
        if before not in text:
            raise SystemExit(f"{SOURCE} no longer has this docstring; update DOCSTRINGS:\n{before}")
        text = text.replace(before, after)
    target.write_text(text)
    return target


class BuildPy(build_py):
    """setuptools' build_py, then the sync client beside the built async one."""

    def run(self) -> None:
        super().run()
        write_sync_client(Path(self.build_lib) / "webhooks_publisher")


if __name__ == "__main__":
    print(write_sync_client(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE))
