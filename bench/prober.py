"""The prober function's size: its cold start and probe CPU, and the cheapest memory that keeps
the detection bound.

Lambda gives a function CPU in proportion to its memory (1,769 MB = one vCPU), so a smaller
prober function is cheaper per second but stretches its CPU-bound work. The bound counts the
invoke at most PROBER_INVOKE_SECONDS (1 s) beyond the probe timeout: the invoke client waits no
longer, and a later answer voids the round. So the size must let one round's CPU (the contract's
decode and encode and the probes of the answering targets; black holes only wait) fit in that
second, on its share of a vCPU, with the invoke's own latency beside it, the cold start (import
app.py, first invocation) included, as bench/sizing.py sizes the deployed function. Below that
size only a cold round overruns: it voids one round, once per execution environment (one
INTERVAL, once); the smallest size for warm rounds alone is reported beside it.

Measured here in fresh processes (bench/prober_run.py) for the cost table's pool sizes, 2 LBs + 20
web servers, 2 + 100, 4 + 500, every target answering (served by bench/fanout_server.py on
loopback addresses). The CPU seconds are this machine's (see the machine line), not Graviton's:
the per-size figures are estimates by the proportional share.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fanout import target_addresses, target_server
from bench.report import REPO, Figure, Progress, Section, table
from bench.sizing import MAX_MB, MB_PER_VCPU, memory_for, vcpu_share
from bench.stats import median
from chalicelib.core.timing import PROBER_INVOKE_SECONDS

TIMEOUT = 2.0  # the default LBF_PROBE_TIMEOUT
POOLS = ((2, 20), (2, 100), (4, 500))
COLD_RUNS, ROUNDS = 5, 5
SIZES_MB = (128, 192, 256, 384, 512, 768, 1024)
# The invoke's latency beside the probes, from the failover benchmark's stand-in figure; a
# production invoke in the same region is of the same order (AWS publishes no figure).
INVOKE_LATENCY_S = 0.1
FIRST_OCTET = 40  # 127.0.40.0 and up: clear of the other benchmarks' addresses


@dataclass(frozen=True)
class Pool:
    lbs: int
    webs: int
    import_cpu: float  # median over fresh processes
    import_wall: float
    first_cpu: float
    round_cpu: float  # median warm round
    round_wall: float
    peak_rss_kib: int
    loaded: list[str]

    @property
    def targets(self) -> int:
        return self.lbs + self.webs

    @property
    def cold_cpu(self) -> float:
        return self.import_cpu + self.first_cpu


def _measure(lbs: int, webs: int, runs: int, rounds: int, workdir: Path) -> Pool:
    count = lbs + webs
    addresses = target_addresses(count, first_octet=FIRST_OCTET)
    targets: list[list[Any]] = [[a, False] for a in addresses]
    found: list[dict[str, Any]] = []
    with target_server(targets, workdir / f"server-{count}.json", lifetime=600) as port:
        spec = workdir / f"prober-{count}.json"
        spec.write_text(
            json.dumps(
                {
                    "urls": [f"http://{a}:{port}/health" for a in addresses],
                    "timeout": TIMEOUT,
                    "rounds": rounds,
                }
            )
        )
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-m", "bench.prober_run", str(spec)],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            found.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return Pool(
        lbs=lbs,
        webs=webs,
        import_cpu=median([f["import_cpu_seconds"] for f in found]),
        import_wall=median([f["import_seconds"] for f in found]),
        first_cpu=median([f["first_cpu_seconds"] for f in found]),
        round_cpu=median([r["cpu_seconds"] for f in found for r in f["rounds"]]),
        round_wall=median([r["seconds"] for f in found for r in f["rounds"]]),
        peak_rss_kib=max(f["peak_rss_kib"] for f in found),
        loaded=sorted({m for f in found for m in f["loaded"]}),
    )


def cheapest(cpu_seconds: float, *, budget: float) -> int | None:
    """`sizing.memory_for`, or None beyond the largest size measured here (SIZES_MB)."""
    memory = memory_for(cpu_seconds, budget)
    return memory if memory <= SIZES_MB[-1] else None


def run(progress: Progress, *, quick: bool = False) -> Section:
    runs, rounds = (2, 2) if quick else (COLD_RUNS, ROUNDS)
    pools = []
    with tempfile.TemporaryDirectory(prefix="lbf-prober-") as workdir:
        for lbs, webs in POOLS:
            pool = _measure(lbs, webs, runs, rounds, Path(workdir))
            progress(
                f"prober: {lbs} + {webs}: import {pool.import_cpu * 1000:.0f} ms CPU, "
                f"round {pool.round_cpu * 1000:.0f} ms CPU"
            )
            pools.append(pool)
    return _section(pools)


def _section(pools: list[Pool]) -> Section:
    section = Section(name="prober", title="Prober function size")
    budget = PROBER_INVOKE_SECONDS - INVOKE_LATENCY_S
    rows = []
    for pool in pools:
        memory = memory_for(pool.cold_cpu + pool.round_cpu, budget)
        warm = cheapest(pool.round_cpu, budget=budget)
        name = f"{pool.lbs} LBs + {pool.webs} web servers"
        section.figures.append(
            Figure(
                f"{name}: cheapest memory keeping the bound",
                f"{memory} MB",
                target=f"a cold round's CPU within {budget:g} s, at most {MAX_MB:,} MB",
                met=memory <= MAX_MB,
                note=(
                    f"a cold round {(pool.cold_cpu + pool.round_cpu) * 1000:.0f} ms CPU here "
                    f"(import {pool.import_cpu * 1000:.0f}, first invocation "
                    f"{pool.first_cpu * 1000:.0f}, probes {pool.round_cpu * 1000:.0f}); "
                    + (
                        f"warm rounds alone fit from {warm} MB, where a cold start voids one "
                        "round once per environment"
                        if warm
                        else f"warm rounds alone fit no size up to {SIZES_MB[-1]} MB"
                    )
                    + (
                        f"; beyond the sizes measured ({SIZES_MB[-1]} MB): an estimate by the "
                        "proportional share"
                        if memory > SIZES_MB[-1]
                        else ""
                    )
                ),
            )
        )
        for mb in SIZES_MB:
            share = vcpu_share(mb)
            rows.append(
                (
                    name,
                    mb,
                    f"{share:.3f}",
                    f"{pool.round_cpu / share:.2f}",
                    f"{(pool.cold_cpu + pool.round_cpu) / share:.2f}",
                    "yes" if (pool.cold_cpu + pool.round_cpu) / share <= budget else "NO",
                )
            )
    first = pools[0] if pools else None
    if first is not None:
        section.figures.append(
            Figure(
                "prober function cold start (this machine)",
                f"import app.py {first.import_wall * 1000:.0f} ms "
                f"({first.import_cpu * 1000:.0f} ms CPU), first invocation "
                f"{first.first_cpu * 1000:.0f} ms CPU; peak RSS "
                f"{max(p.peak_rss_kib for p in pools) / 1024:.0f} MiB",
                target="no boto3, no X-Ray SDK",
                met=not any(p.loaded for p in pools),
                note="loaded: "
                + (", ".join(sorted({m for p in pools for m in p.loaded})) or "none")
                + "; with _HANDLER=app.probe_private and the prod stage's tracing on, as deployed",
            )
        )
    section.details += [
        "Fresh processes of bench/prober_run.py as Lambda starts the prober function "
        "(`_HANDLER=app.probe_private`, `POWERTOOLS_TRACE_DISABLED=false` as the prod stage "
        "sets it, so the test is that app.py leaves the tracer out): `import app` timed (wall "
        "and CPU), then `probe_private` invoked once cold and "
        f"{ROUNDS} times warm with every target of the pool (all answering, on loopback "
        f"addresses served by one process; TIMEOUT {TIMEOUT:g} s), {COLD_RUNS} processes per "
        "pool, medians shown. A size keeps the detection bound when a round's CPU, the cold "
        f"start included, stretched by Lambda's share of a vCPU (memory / {MB_PER_VCPU:,} MB), "
        f"fits in the invoke term ({PROBER_INVOKE_SECONDS:g} s) less the invoke's own latency "
        f"({INVOKE_LATENCY_S:g} s): the invoke client waits TIMEOUT + {PROBER_INVOKE_SECONDS:g} s "
        "and no longer. Below it only warm rounds fit, and a cold start voids one round once "
        "per environment. Black holes add waiting (the TIMEOUT), not CPU. For a larger pool, "
        "take the smallest size whose row says yes, or measure that pool with this benchmark "
        "(`python -m bench --only prober`, POOLS in bench/prober.py).",
        table(
            ("pool", "MB", "vCPU", "warm round s", "cold round s", "keeps the bound"),
            rows,
        ),
    ]
    section.data = {
        "timeout": TIMEOUT,
        "invoke_margin": PROBER_INVOKE_SECONDS,
        "invoke_latency": INVOKE_LATENCY_S,
        "sizes_mb": list(SIZES_MB),
        "pools": [p.__dict__ | {"cold_cpu": p.cold_cpu} for p in pools],
    }
    return section
