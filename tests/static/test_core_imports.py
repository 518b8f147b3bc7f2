"""The core is pure: held by an allowlist, not by a list of what it must not touch.

A structural test, like test_write_path.py. A module under chalicelib/core may import only the
standard-library modules on CORE_STDLIB (each pure: it computes from what it is given) and the
core itself. Everything else is refused by the rule, whatever its name: the settings, the
adapters and the jobs, boto3, and every module that reads a clock, a file, the network, the
environment or a random source (os, time, socket, urllib.request, random, importlib...), including
a core module a future change adds. On top of the imports, the few ways to reach the outside
without an import are refused by name: the builtins that open files, read the terminal or import
(`open`, `__import__`, `eval`...), and the clock of the one allowed module that has one
(`datetime.now()`, `date.today()`). Time and randomness come in as values.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE_PACKAGE = "chalicelib.core"

# The standard library the core may use: values, text, and arithmetic, nothing that looks outside.
CORE_STDLIB = frozenset(
    {
        "__future__",
        "abc",
        "bisect",
        "collections",
        "collections.abc",
        "dataclasses",
        "datetime",  # its values and arithmetic; its clock is refused below
        "enum",
        "functools",
        "hashlib",
        "heapq",
        "ipaddress",
        "itertools",
        "json",
        "math",
        "operator",
        "re",
        "string",
        "textwrap",
        "types",
        "typing",
        "urllib.parse",
    }
)
# Builtins that reach outside without an import: files, the terminal, dynamic imports and code.
FORBIDDEN_BUILTINS = frozenset(
    {
        "open",
        "input",
        "print",
        "breakpoint",
        "__import__",
        "__builtins__",
        "eval",
        "exec",
        "compile",
        "globals",
        "vars",
    }
)
# The clock of `datetime`, the one allowed module that has one.
CLOCK_CALLS = frozenset({"now", "utcnow", "today"})
CLOCK_CLASSES = frozenset({"datetime", "date"})


def _allowed(module: str) -> bool:
    return module in CORE_STDLIB or module == CORE_PACKAGE or module.startswith(f"{CORE_PACKAGE}.")


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement asks for, each as a full name."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    # Relative to the core's package: `from .. import config` is chalicelib.config.
    parts = CORE_PACKAGE.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
    module = ".".join(p for p in (base, node.module or "") if p)
    # `from urllib import request` asks for urllib.request; `from dataclasses import field` for
    # dataclasses: the name is a module's when the module itself is not allowed.
    return [module if _allowed(module) else f"{module}.{alias.name}" for alias in node.names]


def _clock_names(tree: ast.AST) -> set[str]:
    """The names under which `datetime`'s clock can be reached (`dt` in `import datetime as dt`)."""
    names = set(CLOCK_CLASSES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name.split(".")[-1] in CLOCK_CLASSES and alias.asname:
                    names.add(alias.asname)
    return names


def violations(source: str, path: str) -> list[str]:
    tree = ast.parse(source)
    clocks = _clock_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            found += [
                f"{path}:{node.lineno} imports {m}, not on the core's list"
                for m in _imported(node)
                if not _allowed(m)
            ]
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_BUILTINS:
            found.append(f"{path}:{node.lineno} uses {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in CLOCK_CALLS:
            receiver = node.value
            while isinstance(receiver, ast.Attribute) and receiver.attr not in clocks:
                receiver = receiver.value
            named = receiver.attr if isinstance(receiver, ast.Attribute) else None
            if isinstance(receiver, ast.Name):
                named = receiver.id
            if named in clocks:
                found.append(f"{path}:{node.lineno} reads the clock: {ast.unparse(node)}")
    return found


def core_sources(root: Path = REPO) -> list[Path]:
    return sorted((root / "chalicelib" / "core").rglob("*.py"))


def impurities(root: Path = REPO) -> list[str]:
    """The check on a tree: the repository, or a copy of part of it with something planted."""
    return [
        v
        for source in core_sources(root)
        for v in violations(source.read_text(), source.relative_to(root).as_posix())
    ]


def test_every_core_module_imports_only_the_allowed_standard_library_and_the_core() -> None:
    assert len(core_sources()) > 10  # the walk found the core
    assert impurities() == []


@pytest.mark.parametrize(
    "source",
    [
        "from chalicelib.config import Settings",
        "from chalicelib import config",
        "import os",
        "from os import environ",
        "import boto3",
        "import botocore.exceptions",
        "from chalicelib.services import Services",
        "from ..config import Settings",
        """
        def late():
            import time
            return time.time()
        """,
        # Not on the list, whatever they are: the rule needs no name for what it refuses.
        "import random",
        "from random import choice",
        "import secrets",
        "import uuid",
        "import urllib.request",
        "from urllib import request",
        "import urllib",
        "import importlib",
        "from importlib import import_module",
        "import socket",
        "import http.client",
        "import subprocess",
        "import pathlib",
        "import logging",
        "import sys",
        "import chalicelib",
        "from chalicelib.adapters.ec2 import Ec2Inventory",
        "import requests",
    ],
)
def test_an_import_that_makes_the_core_impure_fails_the_check(source: str) -> None:
    assert violations(textwrap.dedent(source), "chalicelib/core/plan.py") != []


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import datetime\ndef f():\n    return datetime.now()",
        "import datetime\ndef f():\n    return datetime.datetime.now(datetime.UTC)",
        "import datetime as dt\ndef f():\n    return dt.date.today()",
        "from datetime import datetime as moment\ndef f():\n    return moment.utcnow()",
        "def f(path):\n    return open(path).read()",
        "def f():\n    return __import__('os').environ",
        "def f():\n    return eval('1')",
        "def f(text):\n    print(text)",
        "def f():\n    reader = open\n    return reader",
    ],
)
def test_a_clock_a_file_or_a_dynamic_import_without_an_import_fails_the_check(source: str) -> None:
    assert violations(source, "chalicelib/core/plan.py") != []


@pytest.mark.parametrize(
    "source",
    [
        "from chalicelib.core import dns",
        "from chalicelib.core.model import World",
        "import ipaddress",
        "from dataclasses import dataclass",
        "from . import dns",
        "from collections.abc import Sequence",
        "from urllib.parse import urlsplit",
        "from urllib import parse",
        # Time as a value, and a clock handed in, are what the core is for.
        "from datetime import datetime, UTC\ndef f(t):\n    return datetime.fromtimestamp(t, UTC)",
        "def f(clock):\n    return clock.now()",
        "def f(now):\n    return now()",
        "import re\nPATTERN = re.compile('x')",
    ],
)
def test_the_core_may_import_itself_and_the_allowed_standard_library(source: str) -> None:
    assert violations(source, "chalicelib/core/plan.py") == []
