"""A read never reaches the writer: observing imports neither the executor nor the Report.

chalicelib/observe.py reads the world (and health_checks.py, the Route 53 checks and their
checkers, for it); what a read finds goes back to the loop as values, errors included. If either
module imported, even through another module of the project, chalicelib.executor (the one caller
of a write) or chalicelib.report (the run's bookkeeping), a read could start writing or reporting
on its own again. The test follows the project's imports from each reading module, the way Python
would load them, and names the chain that reaches one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
READERS = ("chalicelib.observe", "chalicelib.health_checks")
WRITERS = ("chalicelib.executor", "chalicelib.report")


def _path(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _imports(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from chalicelib.core import dns` loads chalicelib.core.dns too.
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("chalicelib")}


def chain_to_writer(start: str, sources: dict[str, str]) -> list[str] | None:
    """The import chain from `start` to a writer module, or None."""
    paths: dict[str, list[str]] = {start: [start]}
    todo = [start]
    while todo:
        module = todo.pop()
        if module in WRITERS:
            return paths[module]
        source = sources.get(module)
        if source is None:
            path = _path(module)
            if path is None:
                continue
            source = path.read_text()
        for imported in sorted(_imports(source)):
            if imported not in paths:
                paths[imported] = [*paths[module], imported]
                todo.append(imported)
    return None


@pytest.mark.parametrize("reader", READERS)
def test_a_reading_module_reaches_neither_the_executor_nor_the_report(reader: str) -> None:
    assert chain_to_writer(reader, {}) is None


def test_the_check_names_the_chain_of_a_read_that_reaches_the_writer() -> None:
    planted = {"chalicelib.observe": "from chalicelib.health_checks import ask_checkers\n"}
    planted["chalicelib.health_checks"] = "from chalicelib.executor import Executor\n"
    assert chain_to_writer("chalicelib.observe", planted) == [
        "chalicelib.observe",
        "chalicelib.health_checks",
        "chalicelib.executor",
    ]
