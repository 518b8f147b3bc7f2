"""How much memory each function needs, from the cold-start and fan-out measurements.

Lambda gives a function CPU in proportion to its memory (1,769 MB is one vCPU), so CPU work
measured here on one core takes `cpu x 1,769 / memory` seconds there. Each function's CPU work
must fit what it may add to the detection bound:

- the controller: a cold start (import of app.py, boto3 and its clients) delays the first round of
  one run, and the SPEC states the bound "plus start-up". A function invoked every minute starts
  cold rarely (after a deploy, or when Lambda replaces its execution environment); the cheapest
  size whose cold start's CPU takes at most COLD_START_S is chosen, so that the minute after a
  cold start detects within the bound plus that. Fitting it in half an INTERVAL (1 s at the defaults) would take five
  times the memory, and the controller bills for the whole minute at that size.
- the prober: the controller waits TIMEOUT + 1 s for it (the invoke's read timeout). Its cold
  start (import of app.py, no tracing) may take half of that second, and one round's probe CPU
  half of a TIMEOUT (the fan-out target: a round within 1.5 x TIMEOUT).

Pure: tests/bench/test_bench_math.py and tests/infra/test_deploy_stack.py use it on the
committed results, so the memory in .chalice/config.json stays the one these figures call for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median
from typing import Any

# Lambda allocates CPU in proportion to memory: 1,769 MB is the equivalent of one vCPU (AWS
# Lambda developer guide, "Configuring function memory"), up to 6 vCPUs at 10,240 MB.
MB_PER_VCPU = 1769
MAX_VCPUS = 6.0
MAX_MB = 10240
MIN_MB = 128
STEP_MB = 64  # sizes offered in steps people recognise; Lambda itself takes any whole MB
SLACK_SHARE = 0.5  # the part of a slack the CPU work may take; the rest is for what is not CPU
COLD_START_S = 5.0  # what a cold start's CPU may add to one minute's detection (see above)
INVOKE_EXTRA_S = 1.0  # the invoke's read timeout is TIMEOUT plus this (SPEC, the prober function)


@dataclass(frozen=True)
class Need:
    function: str
    memory_mb: int
    cpu_seconds: float
    budget_seconds: float
    why: str


def memory_for(cpu_seconds: float, budget_seconds: float) -> int:
    """The smallest size, in STEP_MB steps from MIN_MB, on which the CPU work takes at most
    `budget_seconds`."""
    if budget_seconds <= 0:
        raise ValueError("the budget must be positive")
    exact = cpu_seconds * MB_PER_VCPU / budget_seconds
    return max(MIN_MB, math.ceil(exact / STEP_MB) * STEP_MB)


def seconds_on(cpu_seconds: float, memory_mb: int) -> float:
    return cpu_seconds * MB_PER_VCPU / memory_mb


def vcpu_share(memory_mb: int) -> float:
    return min(memory_mb / MB_PER_VCPU, MAX_VCPUS)


def cold_start_cpu(coldstart: dict[str, Any], *, tracing: bool) -> float:
    """Import of app.py (with the X-Ray SDK when tracing) in seconds, median of the runs."""
    key = "tracing_enabled" if tracing else "tracing_disabled"
    return float(median(coldstart["import_ms"][key])) / 1000


def first_invocation_cpu(coldstart: dict[str, Any]) -> float:
    """boto3 and the controller's four clients, made by the first invocation."""
    return float(median(coldstart["first_invocation_clients_s"]))


def probe_cpu_per_target(fanout: dict[str, Any]) -> float:
    """CPU seconds one probe costs, from the largest measured round (the most targets)."""
    case = max(fanout["cases"], key=lambda c: (c["targets"], -c["concurrency"]))
    return float(median(case["cpu_rounds"])) / int(case["targets"])


def controller_need(coldstart: dict[str, Any], *, tracing: bool) -> Need:
    cpu = cold_start_cpu(coldstart, tracing=tracing) + first_invocation_cpu(coldstart)
    return Need(
        "controller",
        memory_for(cpu, COLD_START_S),
        cpu,
        COLD_START_S,
        f"cold start {cpu * 1000:.0f} ms of CPU (import{' with X-Ray' if tracing else ''}, "
        f"boto3 and 4 clients) within {COLD_START_S:g} s, added to the bound of the minute it "
        "happens in",
    )


def prober_need(
    coldstart: dict[str, Any], fanout: dict[str, Any], *, timeout: float, targets: int
) -> Need:
    cold = cold_start_cpu(coldstart, tracing=False)
    cold_budget = SLACK_SHARE * INVOKE_EXTRA_S
    probes = probe_cpu_per_target(fanout) * targets
    probe_budget = SLACK_SHARE * timeout
    cold_mb, probe_mb = memory_for(cold, cold_budget), memory_for(probes, probe_budget)
    if cold_mb >= probe_mb:
        return Need(
            "prober",
            cold_mb,
            cold,
            cold_budget,
            f"cold start {cold * 1000:.0f} ms of CPU within {cold_budget:g} s of the invoke's "
            f"extra {INVOKE_EXTRA_S:g} s",
        )
    return Need(
        "prober",
        probe_mb,
        probes,
        probe_budget,
        f"{targets} probes, {probes * 1000:.0f} ms of CPU, within {SLACK_SHARE:.0%} of TIMEOUT "
        f"({probe_budget:g} s)",
    )


def targets_within(memory_mb: int, fanout: dict[str, Any], *, timeout: float) -> int:
    """The most private targets one prober of this size probes within its budget per round."""
    return int(SLACK_SHARE * timeout * memory_mb / MB_PER_VCPU / probe_cpu_per_target(fanout))
