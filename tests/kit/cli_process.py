"""`python -m chalicelib` run as an operator runs it: a process of its own, in the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from standin.aws import LocalAws

CHECKOUT = Path(__file__).resolve().parents[2]
# Short rounds for a command-line run against the stand-in: a `reconcile` ends in seconds.
FAST_ROUNDS = {
    "LBF_PROBE_TIMEOUT": "0.5",
    "LBF_PROBE_INTERVAL": "1",
    "LBF_PROBE_ROUNDS": "3",
    "LBF_POOL_INTERVAL": "1",  # the pool in every round, as the LBs
}


def run_cli(
    aws: LocalAws, environment: Mapping[str, str], *argv: str
) -> subprocess.CompletedProcess[str]:
    """One command against the stand-in: only PATH comes from this process, then the stand-in's
    AWS variables and `environment` (the controller's settings), so nothing a test runner set
    leaks into what is tested."""
    return subprocess.run(
        [sys.executable, "-m", "chalicelib", *argv],
        cwd=CHECKOUT,
        env={"PATH": os.environ.get("PATH", ""), **aws.environment(), **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
