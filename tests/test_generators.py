"""Client generators on the live OpenAPI document (SPEC §19): openapi-python-client and
openapi-typescript generate every operation, with no warning that drops a schema or an
operation, and the document's defaults fit their own schemas.

openapi-python-client is a dev dependency (pyproject.toml); openapi-typescript and the
TypeScript compiler are the TypeScript SDK's, pinned in client/typescript
(`npm ci --prefix client/typescript`; the Makefile's `test` runs it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from services.registration.openapi import openapi_document

REPO = Path(__file__).resolve().parent.parent
TS_TOOLS = REPO / "client" / "typescript" / "node_modules" / ".bin"
METHODS = ("get", "put", "post", "delete", "patch")
# What the generators say when they leave something out, skip it, or fail.
PROBLEM_WORDS = re.compile(r"warn|error|unable|invalid|not valid|skipp|fail|⚠", re.I)


@pytest.fixture(scope="module")
def document_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(json.dumps(openapi_document()))
    return path


def operation_ids() -> set[str]:
    return {
        operation["operationId"]
        for item in openapi_document()["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    }


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def run(command: list[str], cwd: Path) -> str:
    """The command's output (stdout and stderr); a non-zero exit fails the test with it."""
    # The Python generator formats its output with ruff, from the same environment.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command[0]} exited {done.returncode}:\n{output}"
    return output


def test_openapi_python_client_generates_every_operation(document_file: Path) -> None:
    out = document_file.parent / "python-client"
    output = run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path", str(document_file),
            "--output-path", str(out),
            "--meta", "none",
        ],
        cwd=document_file.parent,
    )  # fmt: skip
    problems = [line for line in output.splitlines() if PROBLEM_WORDS.search(line)]
    assert not problems, output
    modules = {path.stem for path in (out / "api").rglob("*.py") if path.stem != "__init__"}
    assert modules == {snake_case(name) for name in operation_ids()}
    for path in out.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    # A body the generator could not model would be a bare Any: every body keeps its model.
    for path in (out / "api").rglob("*.py"):
        assert not re.search(r"\bbody: Any\b", path.read_text()), path


def test_openapi_typescript_generates_every_operation(document_file: Path) -> None:
    tool = TS_TOOLS / "openapi-typescript"
    assert tool.exists(), "openapi-typescript is missing: npm ci --prefix client/typescript"
    out = document_file.parent / "schema.d.ts"
    output = run([str(tool), str(document_file), "--output", str(out)], document_file.parent)
    problems = [line for line in output.splitlines() if PROBLEM_WORDS.search(line)]
    assert not problems, output
    types = out.read_text()
    operations = types.split("export interface operations {", 1)[1]
    declared = set(re.findall(r"^    (\w+): \{$", operations, re.M))
    assert declared == operation_ids()
    # The types compile on their own, strictly.
    run(
        [str(TS_TOOLS / "tsc"), "--noEmit", "--strict", "--skipLibCheck", str(out)],
        document_file.parent,
    )


def schemas_with_defaults(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if "default" in node and isinstance(node.get("type", ""), (str, list)):
            yield where, node
        for key, value in node.items():
            yield from schemas_with_defaults(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from schemas_with_defaults(value, f"{where}/{index}")


def test_every_default_fits_its_own_schema() -> None:
    """A default a property's type does not admit (`{}` on a nullable object said as null
    elsewhere, null on a non-null type) makes generators drop the model."""
    document = openapi_document()
    found = list(schemas_with_defaults(document["components"]))
    assert found
    for where, schema in found:
        own = {key: value for key, value in schema.items() if key != "default"}
        validator = jsonschema_rs.validator_for({**own, "components": document["components"]})
        assert validator.is_valid(schema["default"]), (where, schema)
