"""Small, pure statistics for the benchmarks (unit-tested in tests/bench/test_bench_math.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), interpolated linearly between closest ranks.

    The same definition as numpy's default and `statistics.quantiles(method="inclusive")`, so a
    p95 of 20 kills lies between the 19th and the 20th value rather than being the maximum.
    """
    if not values:
        raise ValueError("no values")
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ratio(value: float, reference: float) -> float:
    if reference <= 0:
        raise ValueError("the reference must be positive")
    return value / reference
