"""The core is pure: nothing under chalicelib/core reads the settings, the environment or AWS.

A structural test, like test_write_path.py: the core is handed plain rule objects per concern
(built from Settings in one place, `Settings.rules`), so a core module that imports
chalicelib.config, os or boto3 has started to reach for what it should be given. It walks the
syntax tree of every module under chalicelib/core and reports each such import, wherever it
sits (a function's body included).
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "chalicelib" / "core"
# The settings, the environment, AWS, the network and the clock come in as values, never imported.
FORBIDDEN = ("chalicelib.config", "os", "boto3", "botocore", "socket", "time")
# Inside the project the core reaches only itself: adapters, services and jobs are outside it.
OWN_PACKAGE = "chalicelib"
CORE_PACKAGE = "chalicelib.core"


def _forbidden(module: str) -> bool:
    if any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN):
        return True
    inside = module == CORE_PACKAGE or module.startswith(f"{CORE_PACKAGE}.")
    return (module == OWN_PACKAGE or module.startswith(f"{OWN_PACKAGE}.")) and not inside


def violations(source: str, path: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # Relative to the core's package: `from .. import config` is chalicelib.config.
            parts = CORE_PACKAGE.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            # `from chalicelib import config` names the module in the alias.
            modules = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found += [f"{path}:{node.lineno} imports {m}" for m in modules if _forbidden(m)]
    return found


def test_no_core_module_imports_the_settings_the_environment_or_aws() -> None:
    sources = sorted(CORE.glob("*.py"))
    assert len(sources) > 10  # the walk found the core
    found = [
        v
        for source in sources
        for v in violations(source.read_text(), str(source.relative_to(REPO)))
    ]
    assert found == []


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
    ],
)
def test_an_import_that_makes_the_core_impure_fails_the_check(source: str) -> None:
    assert violations(textwrap.dedent(source), "chalicelib/core/plan.py") != []


@pytest.mark.parametrize(
    "source",
    [
        "from chalicelib.core import dns",
        "from chalicelib.core.model import World",
        "import ipaddress",
        "from dataclasses import dataclass",
        "from . import dns",
    ],
)
def test_the_core_may_import_itself_and_the_standard_library(source: str) -> None:
    assert violations(source, "chalicelib/core/plan.py") == []
