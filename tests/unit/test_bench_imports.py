"""bench/: its modules import one another without a cycle, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def bench_imports(source: str) -> set[str]:
    """The bench modules that `source` imports anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "bench":
            found |= {f"bench.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench."):
            found.add(str(node.module))
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("bench.")}
    return found


def test_bench_has_no_import_cycle() -> None:
    graph = {f"bench.{f.stem}": bench_imports(f.read_text()) for f in BENCH.glob("*.py")}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in graph.get(module, set()) - {module}:
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
