"""Elastic IP failover time: the series of bench/failover.py with the Elastic IP moving.

20 kills at the defaults (LBF_PROBE_INTERVAL 3 with private LBs, LBF_FALL 3), timed to the address move and to the first
successful client request through the address (its stand-in: standin/eip_forwarder.py).
"""

from __future__ import annotations

from bench.failover import run_series
from bench.report import Progress, Section


def run(progress: Progress, *, quick: bool = False) -> Section:
    return run_series(progress, mode="eip", quick=quick)
