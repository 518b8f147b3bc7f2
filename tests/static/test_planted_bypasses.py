"""Each bypass issue 20 lists, planted in a copy of the code: the structural checks must fail on it.

Each test copies the module it plants into (only that one: the checks read each file on its own)
to a temporary tree, shows that the check passes on the copy as it is, plants one realistic
bypass, and shows that the check fails naming it. The type-level guard is planted the same way:
mypy, run on a small job that writes through the services it is given, refuses the write.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.static.test_core_imports import impurities
from tests.static.test_write_path import writes_outside_the_executor

REPO = Path(__file__).resolve().parents[2]

# name -> (the module planted into, the code appended to it, what the check's failure names)
WRITE_PATH_BYPASSES = {
    "a boto3 resource's action": (
        "chalicelib/jobs.py",
        """
        import boto3

        def _retire(instance_id: str) -> None:
            boto3.resource("ec2").Instance(instance_id).terminate()
        """,
        "boto3 write terminate",
    ),
    "CloudFormation's delete_stack outside the executor": (
        "chalicelib/commands.py",
        """
        import boto3

        def _tear_down(stack: str) -> None:
            boto3.client("cloudformation").delete_stack(StackName=stack)
        """,
        "boto3 write delete_stack",
    ),
    "a services write outside the executor": (
        "chalicelib/jobs.py",
        """
        def _quick_fix(services, changes):
            return services.records.change(changes, comment="quick fix")
        """,
        "services.records.change",
    ),
    "a boto3 client write": (
        "chalicelib/jobs.py",
        """
        from chalicelib.adapters.clients import client

        def _store(name: str, value: str) -> None:
            client("ssm").put_parameter(Name=name, Value=value, Overwrite=True)
        """,
        "boto3 write put_parameter",
    ),
}

CORE_BYPASSES = {
    "the clock": (
        "chalicelib/core/plan.py",
        """
        from datetime import datetime

        def _planted_now() -> float:
            return datetime.now().timestamp()
        """,
        "reads the clock: datetime.now",
    ),
    "a file": (
        "chalicelib/core/plan.py",
        """
        def _planted_rules(path: str) -> str:
            with open(path) as rules:
                return rules.read()
        """,
        "uses open",
    ),
    "the environment through __import__": (
        "chalicelib/core/plan.py",
        """
        def _planted_cluster() -> str:
            return __import__("os").environ["LBF_CLUSTER"]
        """,
        "uses __import__",
    ),
    "the network through urllib.request": (
        "chalicelib/core/dns.py",
        """
        import urllib.request

        def _planted_fetch(url: str) -> bytes:
            return urllib.request.urlopen(url).read()
        """,
        "imports urllib.request",
    ),
    "a socket through importlib": (
        "chalicelib/core/dns.py",
        """
        import importlib

        def _planted_socket():
            return importlib.import_module("socket").socket()
        """,
        "imports importlib",
    ),
    "randomness": (
        "chalicelib/core/plan.py",
        """
        import random

        def _planted_pick(candidates: list[str]) -> str:
            return random.choice(candidates)
        """,
        "imports random",
    ),
}


def _copy(tmp_path: Path, module: str) -> tuple[Path, Path]:
    """A temporary tree holding a copy of `module`; returns (the tree, the copied file)."""
    root = tmp_path / "copy"
    copy = root / module
    copy.parent.mkdir(parents=True)
    shutil.copyfile(REPO / module, copy)
    return root, copy


def _planted(
    tmp_path: Path, module: str, code: str, check: Callable[[Path], list[str]]
) -> list[str]:
    root, copy = _copy(tmp_path, module)
    assert check(root) == [], "the copy fails before anything is planted"
    copy.write_text(copy.read_text() + "\n" + textwrap.dedent(code))
    return check(root)


@pytest.mark.parametrize(
    ("module", "code", "named"), WRITE_PATH_BYPASSES.values(), ids=WRITE_PATH_BYPASSES.keys()
)
def test_the_write_path_check_fails_on_a_planted_write(
    tmp_path: Path, module: str, code: str, named: str
) -> None:
    found = _planted(tmp_path, module, code, writes_outside_the_executor)

    assert len(found) == 1, found
    assert found[0].startswith(f"{module}:")
    assert found[0].endswith(named)


@pytest.mark.parametrize(
    ("module", "code", "named"), CORE_BYPASSES.values(), ids=CORE_BYPASSES.keys()
)
def test_the_core_check_fails_on_a_planted_impurity(
    tmp_path: Path, module: str, code: str, named: str
) -> None:
    found = _planted(tmp_path, module, code, impurities)

    assert len(found) == 1, found
    assert found[0].startswith(f"{module}:")
    assert named in found[0]


# --- the type-level guard -----------------------------------------------------------------------

PLANTED_JOB = """
from chalicelib.core.dns import RecordChange
from chalicelib.services import Services


def planted(services: Services, changes: list[RecordChange]) -> str:
    {body}
"""


def _mypy(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """mypy --strict on one planted job, the project importable as it is (MYPYPATH)."""
    job = tmp_path / "planted_job.py"
    job.write_text(PLANTED_JOB.format(body=body))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-version",
            "3.11",
            "--follow-imports",
            "silent",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--no-error-summary",
            str(job),
        ],
        cwd=tmp_path,
        env={"MYPYPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_mypy_refuses_a_write_through_the_services_a_job_is_given(tmp_path: Path) -> None:
    done = _mypy(tmp_path, 'return services.records.change(changes, comment="planted")')

    assert done.returncode == 1, done.stdout + done.stderr
    assert 'error: "Records" has no attribute "change"  [attr-defined]' in done.stdout


def test_mypy_refuses_a_write_through_the_sealed_writers(tmp_path: Path) -> None:
    """A job does carry the writers (its executor needs them), sealed: nothing to call on them."""
    done = _mypy(tmp_path, 'return services.writers.records.change(changes, comment="planted")')

    assert done.returncode == 1, done.stdout + done.stderr
    assert 'error: "Sealed" has no attribute "records"  [attr-defined]' in done.stdout


def test_ruff_refuses_opening_the_seal_outside_the_executor(tmp_path: Path) -> None:
    job = tmp_path / "chalicelib" / "planted_job.py"
    job.parent.mkdir()
    job.write_text(
        "from chalicelib.services import Services\n\n\n"
        "def planted(services: Services) -> object:\n"
        "    return services.writers._writers.records\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--isolated",
            "--select",
            "SLF001",
            "--output-format",
            "concise",
            str(job),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert "SLF001 Private member accessed: `_writers`" in done.stdout
    # ... and `make check` holds that rule for the controller, with the executor's one exception.
    lint = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "SLF001" in lint["select"]
    assert {p for p, codes in lint["per-file-ignores"].items() if "SLF001" in codes} == {
        "!chalicelib/**"
    }
    opened = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "chalicelib").rglob("*.py"))
        if "noqa: SLF001" in path.read_text()
    ]
    assert opened == ["chalicelib/executor.py"]


def test_mypy_accepts_the_same_job_reading(tmp_path: Path) -> None:
    """The control: the planted job type-checks as soon as it only reads."""
    done = _mypy(tmp_path, 'return services.records.change_status("C1")')

    assert done.returncode == 0, done.stdout + done.stderr
