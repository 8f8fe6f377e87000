"""Writes the parts of webhooks_publisher that are generated, none of them kept in git.

From the API document's snapshot (client/openapi.json; `make sdk-snapshot` refreshes it):
- `generated/`: openapi-python-client's client, one module per operation, attrs models;
- `async_client.py`: `AsyncWebhooksClient`, one method per operation, each handing the
  generated request to the thin layer in async_base.py (envelope, typed errors, paging);
- `sync_base.py` and `sync_client.py`: the blocking forms of those two, by unasync.

Run from a checkout (`python client/publisher/build_client.py`; `make` does it before the
tests and the lint), and by the package's build (`BuildPy` below, named in pyproject.toml).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import unasync
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "webhooks_publisher"
# Beside this file in an sdist (Sdist copies it there); one level up in a checkout, where
# the TypeScript client (client/typescript) reads the same snapshot.
SNAPSHOTS = (HERE / "openapi.json", HERE.parent / "openapi.json")
GENERATED = "generated"
# What unasync's own table (async/await, __aenter__, AsyncIterator...) does not rename.
SYNC_NAMES = {
    "AsyncWebhooksClient": "WebhooksClient",
    "AsyncBaseClient": "BaseClient",
    "async_base": "sync_base",
    "AsyncBaseTransport": "BaseTransport",
    "asyncio_detailed": "sync_detailed",
    "get_async_httpx_client": "get_httpx_client",
    "AsyncAnswer": "Answer",
    "aclose": "close",
}
SYNC_FILES = {"async_base.py": "sync_base.py", "async_client.py": "sync_client.py"}


@dataclass(frozen=True)
class Operation:
    """One generated endpoint module, as the method that calls it needs it."""

    module: str  # e.g. "webhooks.register_webhook"
    name: str
    docstring: str  # with its quotes
    positional: list[str]  # the path parameters, as "name: type" source
    keywords: list[str]  # query, body and header parameters, with their defaults
    needs_key: bool  # typed as taking an AuthenticatedClient (admin routes)
    answer: str  # the envelope's class name
    data: str  # its `data` annotation

    @property
    def is_page(self) -> bool:
        return self.answer.startswith("Page")

    def call(self, cursor: str | None = None) -> str:
        client = "cast(AuthenticatedClient, self.api)" if self.needs_key else "self.api"
        names = [param_name(p) for p in self.positional + self.keywords]
        arguments = [f"{n}={cursor if n == 'cursor' and cursor else n}" for n in names]
        return f"{self.name}.asyncio_detailed({', '.join([f'client={client}', *arguments])})"


def param_name(source: str) -> str:
    return source.split(":", 1)[0].strip()


def read_operation(path: Path) -> Operation | None:
    source = path.read_text()
    tree = ast.parse(source)
    function = next(
        node
        for node in tree.body
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "asyncio_detailed"
    )
    assert function.returns is not None
    returns = ast.get_source_segment(source, function.returns) or ""
    answer = next(
        (name for name in returns.removeprefix("Response[").rstrip("]").split(" | ")
         if name.startswith(("Envelope", "Page"))),
        None,
    )  # fmt: skip
    if answer is None:
        return None

    def parameter(argument: ast.arg, default: ast.expr | None) -> str:
        text = ast.get_source_segment(source, argument) or argument.arg
        return text if default is None else f"{text} = {ast.get_source_segment(source, default)}"

    keywords = [
        parameter(argument, default)
        for argument, default in zip(
            function.args.kwonlyargs, function.args.kw_defaults, strict=True
        )
    ]
    client = next(k for k in keywords if param_name(k) == "client")
    docstring = ast.get_docstring(function) or path.stem
    return Operation(
        module=f"{path.parent.name}.{path.stem}",
        name=path.stem,
        docstring=documented(docstring),
        positional=[parameter(argument, None) for argument in function.args.args],
        keywords=[k for k in keywords if k is not client],
        needs_key="| Client" not in client,
        answer=answer,
        data=data_annotation(path.parents[2] / "models", answer),
    )


def documented(docstring: str) -> str:
    """A method's docstring, quotes included: the generated one's summary and description
    (what the document says of the operation), without its Args, Raises and Returns."""
    text = docstring.split("\n\nArgs:", 1)[0].split("\n\nRaises:", 1)[0].strip()
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = [f"        {line}".rstrip() for line in text.splitlines()]
    return '"""' + "\n".join(lines).lstrip() + ("\n        " if len(lines) > 1 else "") + '"""'


def data_annotation(models: Path, answer: str) -> str:
    """The annotation of `data` on the envelope class `answer`, e.g. `list[Webhook]`."""
    for path in models.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == answer:
                for item in node.body:
                    if (
                        isinstance(item, ast.AnnAssign)
                        and isinstance(item.target, ast.Name)
                        and item.target.id == "data"
                    ):
                        return ast.unparse(item.annotation)
    raise SystemExit(f"no `data` on {answer}: is it still our envelope?")


def method(operation: Operation) -> str:
    """The async method for an operation, and `iter_...` for a paged list."""
    signature = ", ".join(
        ["self", *operation.positional, *(["*", *operation.keywords] if operation.keywords else [])]
    )
    if operation.is_page:
        item = operation.data.removeprefix("list[").removesuffix("]")
        lines = [
            f"    async def {operation.name}({signature}) -> Page[{item}]:",
            f"        {operation.docstring}",
            f"        return await self.page({operation.call()})",
        ]
        without_cursor = [k for k in operation.keywords if param_name(k) != "cursor"]
        iter_signature = ", ".join(
            ["self", *operation.positional, *(["*", *without_cursor] if without_cursor else [])]
        )
        plural = operation.name.removeprefix("list_")
        lines += [
            "",
            f"    def iter_{plural}({iter_signature}) -> AsyncIterator[{item}]:",
            f'        """Every item of `{operation.name}`, page after page."""',
            "        return self.every_item(",
            f"            lambda cursor: {operation.call(cursor='cursor')}",
            "        )",
        ]
        return "\n".join(lines)
    return "\n".join(
        [
            f"    async def {operation.name}({signature}) -> {operation.data}:",
            f"        {operation.docstring}",
            f"        return cast({operation.data}, await self.data({operation.call()}))",
        ]
    )


def client_source(operations: list[Operation]) -> str:
    imports = sorted({f"from .{GENERATED}.api.{op.module.split('.')[0]} import {op.name}"
                      for op in operations})  # fmt: skip
    methods = "\n\n".join(method(op) for op in operations)
    return f'''"""`AsyncWebhooksClient`: one method per operation of the API document.

Generated by client/publisher/build_client.py from the generated client: do not edit.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import cast
from uuid import UUID

from .async_base import AsyncBaseClient
from .envelope import Page
from .{GENERATED}.client import AuthenticatedClient
from .{GENERATED}.models import *  # noqa: F403
from .{GENERATED}.types import UNSET, Unset
{chr(10).join(imports)}

__all__ = ["AsyncWebhooksClient"]


class AsyncWebhooksClient(AsyncBaseClient):
    """One method per operation; the connection, the envelope, the errors and paging are
    the base class's."""

{methods}
'''


def snapshot() -> Path:
    found = next((path for path in SNAPSHOTS if path.exists()), None)
    if found is None:
        raise SystemExit(f"no API document snapshot at {' or '.join(map(str, SNAPSHOTS))}")
    return found


def generate(package: Path = PACKAGE, document: Path | None = None) -> None:
    """Write `package`/generated, async_client.py, sync_base.py and sync_client.py."""
    document = document or snapshot()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / GENERATED
        config = Path(scratch) / "config.yaml"
        # No formatting hooks: the output is not kept, and ruff may not be on PATH here.
        config.write_text("post_hooks: []\n")
        done = subprocess.run(
            [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document),
             "--output-path", str(out), "--meta", "none", "--config", str(config)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"openapi-python-client failed:\n{done.stdout}{done.stderr}")
        shutil.rmtree(package / GENERATED, ignore_errors=True)
        shutil.copytree(out, package / GENERATED)
    found = [
        read_operation(path)
        for path in sorted((package / GENERATED / "api").glob("*/*.py"))
        if path.stem != "__init__"
    ]
    # The document's pages (this document, /docs, /console) answer no envelope: no method.
    operations = [op for op in found if op is not None]
    (package / "async_client.py").write_text(client_source(operations))
    for source, target in SYNC_FILES.items():
        rule = unasync.Rule(source, target, additional_replacements=SYNC_NAMES)
        unasync.unasync_files([str(package / source)], [rule])
        # The module's docstring speaks of the async file: say what this one is instead.
        text = (package / target).read_text()
        body = text.split('"""', 2)[2]
        header = f"The blocking form of {source}, written by unasync: do not edit."
        (package / target).write_text(f'"""{header}\n\nEdit {source} (build_client.py)."""{body}')


class BuildPy(build_py):
    """setuptools' build_py, with the generated parts written into the built package."""

    def run(self) -> None:
        super().run()
        generate(Path(self.build_lib) / "webhooks_publisher")


class Sdist(sdist):
    """An sdist carries the snapshot beside this file, where a build from it finds it."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        shutil.copyfile(snapshot(), Path(base_dir) / "openapi.json")


if __name__ == "__main__":
    generate()
    print(PACKAGE)
