"""Probe fan-out: one probe round over 100, 1,000 and 2,000 web targets, 10% of them black holes.

Targets are distinct loopback addresses (127.0.8.1, 127.0.8.2, ...) on one port, served by one
process (bench/fanout_server.py); the prober runs in another fresh process
(bench/fanout_probe.py) with Lambda's limit of 1,024 descriptors, so its peak RSS is its own.

The probe client is the project's own `chalicelib.adapters.probe.SocketProber`: asyncio on raw sockets,
one `asyncio.timeout` deadline per probe covering connect, request and status line, and a
semaphore that bounds the probes in flight (default 256). That is the client the Lambda runs,
and it is chosen over `requests` in a thread pool because a `requests` timeout bounds each
socket operation, not the probe (a server dripping a byte at a time never times out), and a
thread per probe in flight would run into Lambda's 1,024 threads long before 2,000 targets.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.deployment import lambda_memory_mb
from bench.report import REPO, Figure, Progress, Section, table
from bench.sizing import MB_PER_VCPU, memory_for, vcpu_share
from bench.stats import median, ratio
from chalicelib.core.timing import DEFAULT_PROBE_TIMEOUT

TIMEOUT = DEFAULT_PROBE_TIMEOUT
BLACK_HOLE_SHARE = 0.10
TARGET = 1.5  # rounds at 2,000 targets under 1.5 x TIMEOUT
ROUNDS = 3
SEED = 6
FIRST_OCTET = 8  # 127.0.8.0 and up: clear of the tests' 127.0.1.0/24 and the other benchmarks
CASES = ((100, 256), (1000, 256), (2000, 256), (2000, 768))
QUICK_CASES = ((100, 256), (2000, 256))


def target_addresses(count: int, *, first_octet: int = FIRST_OCTET) -> list[str]:
    """`count` distinct loopback addresses, 250 per /24, skipping .0 and the top of each /24."""
    if count > 250 * (256 - first_octet):
        raise ValueError("not that many loopback addresses in 127.0.0.0/16")
    return [f"127.0.{first_octet + i // 250}.{1 + i % 250}" for i in range(count)]


def black_holes(count: int, share: float, *, seed: int = SEED) -> set[int]:
    """Which target indexes never answer: exactly round(count x share), spread at random."""
    return set(random.Random(seed).sample(range(count), round(count * share)))


@dataclass(frozen=True)
class Case:
    targets: int
    concurrency: int
    rounds: list[float]
    cpu_rounds: list[float]  # CPU seconds of the prober's thread per round
    details: dict[str, int]  # probe result detail -> count, last round
    baseline_rss_kib: int
    peak_rss_kib: int
    peak_descriptors: int
    peak_threads: int

    @property
    def seconds(self) -> float:
        return median(self.rounds)

    @property
    def cpu_seconds(self) -> float:
        return median(self.cpu_rounds)


@contextmanager
def target_server(targets: list[list[Any]], spec: Path, *, lifetime: float) -> Iterator[int]:
    """bench.fanout_server in a process of its own, serving `targets` ([address, black hole]);
    yields the one port every address listens on, and ends the server after."""
    spec.write_text(json.dumps({"targets": targets, "lifetime": lifetime}))
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.fanout_server", str(spec)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise RuntimeError(f"the target server exited ({server.wait(timeout=10)})")
        yield int(json.loads(line)["port"])
    finally:
        server.terminate()
        server.wait(timeout=10)


def _run_case(count: int, concurrency: int, rounds: int, workdir: Path) -> Case:
    addresses = target_addresses(count)
    holes = black_holes(count, BLACK_HOLE_SHARE)
    targets = [[a, i in holes] for i, a in enumerate(addresses)]
    with target_server(targets, workdir / f"server-{count}.json", lifetime=300) as port:
        probe_spec = workdir / f"probe-{count}-{concurrency}.json"
        probe_spec.write_text(
            json.dumps(
                {
                    "urls": [f"http://{a}:{port}/health" for a in addresses],
                    "timeout": TIMEOUT,
                    "concurrency": concurrency,
                    "rounds": rounds,
                }
            )
        )
        done = subprocess.run(
            [sys.executable, "-m", "bench.fanout_probe", str(probe_spec)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60 + rounds * 10 * TIMEOUT,
            check=True,
        )
    raw: dict[str, Any] = json.loads(done.stdout)
    return Case(
        targets=count,
        concurrency=concurrency,
        rounds=[r["seconds"] for r in raw["rounds"]],
        cpu_rounds=[r["cpu_seconds"] for r in raw["rounds"]],
        details=raw["rounds"][-1]["details"],
        baseline_rss_kib=raw["baseline_rss_kib"],
        peak_rss_kib=raw["peak_rss_kib"],
        peak_descriptors=raw["peak_descriptors"],
        peak_threads=raw["peak_threads"],
    )


def run(progress: Progress, *, quick: bool = False) -> Section:
    cases = QUICK_CASES if quick else CASES
    rounds = 1 if quick else ROUNDS
    results = []
    with tempfile.TemporaryDirectory(prefix="lbf-fanout-") as workdir:
        for count, concurrency in cases:
            case = _run_case(count, concurrency, rounds, Path(workdir))
            progress(
                f"fanout: {count} targets, concurrency {concurrency}: "
                f"{case.seconds:.2f} s per round"
            )
            results.append(case)
    return _section(results)


def _section(cases: list[Case]) -> Section:
    section = Section(name="fanout", title="Probe fan-out")
    default = 256
    section.figures.append(
        Figure(
            "probe client",
            "chalicelib.adapters.probe.SocketProber: asyncio, raw sockets, bounded pool",
            note="the client the Lambda runs: one deadline per probe (a requests timeout bounds "
            "each read, not the probe), no thread per probe (Lambda allows 1,024)",
        )
    )
    for case in cases:
        # The target is for the default pool; a larger pool is measured for comparison.
        judged = case.targets == 2000 and case.concurrency == default
        met = case.seconds < TARGET * TIMEOUT
        value = (
            f"{case.seconds:.2f} s = {ratio(case.seconds, TIMEOUT):.2f} x timeout "
            f"(max of {len(case.rounds)}: {max(case.rounds):.2f} s)"
        )
        note = ""
        if judged and not met:
            note = _why_slow(case)
        section.figures.append(
            Figure(
                f"{case.targets} targets, concurrency {case.concurrency}: one round",
                value,
                target=f"< {TARGET:g} x timeout = {TARGET * TIMEOUT:g} s" if judged else "",
                met=met if judged else None,
                note=note,
            )
        )
    biggest = next((c for c in cases if c.targets == 2000 and c.concurrency == default), None)
    if biggest is not None:
        section.figures.append(
            Figure(
                "2000 targets, concurrency 256: resources",
                f"peak RSS {biggest.peak_rss_kib / 1024:.0f} MiB "
                f"(after imports {biggest.baseline_rss_kib / 1024:.0f} MiB), "
                f"{biggest.peak_descriptors} descriptors, {biggest.peak_threads} thread",
                target="< 1,024 descriptors and threads",
                met=biggest.peak_descriptors < 1024 and biggest.peak_threads < 1024,
            )
        )
    if biggest is not None:
        section.figures.append(_on_lambda(biggest))
    rows = [
        (
            c.targets,
            c.concurrency,
            f"{c.seconds:.2f}",
            f"{c.cpu_seconds:.2f}",
            f"{ratio(c.seconds, TIMEOUT):.2f}",
            " / ".join(f"{s:.2f}" for s in c.rounds),
            ", ".join(f"{k}: {v}" for k, v in sorted(c.details.items())),
            f"{c.peak_rss_kib / 1024:.0f}",
            c.peak_descriptors,
            c.peak_threads,
        )
        for c in cases
    ]
    section.details += [
        f"One probe round of `chalicelib.adapters.probe.SocketProber(timeout={TIMEOUT:g}, "
        "concurrency=C)` (the default LBF_PROBE_TIMEOUT) over distinct loopback addresses, "
        f"{BLACK_HOLE_SHARE:.0%} of them black holes (accept, never answer). Targets are served "
        "by one asyncio process, the prober runs in a fresh process with Lambda's limit of "
        f"1,024 descriptors; one warm-up round, then {ROUNDS} timed rounds (median shown).",
        table(
            (
                "targets",
                "concurrency",
                "round s (median)",
                "CPU s",
                "x timeout",
                "rounds s",
                "results (last round)",
                "peak RSS MiB",
                "peak fds",
                "threads",
            ),
            rows,
        ),
        "Why this probe client: it is the one the Lambda runs. One `asyncio.timeout` covers "
        "connect, request and status line, so a target that drips bytes cannot stretch a probe "
        "(a `requests` timeout bounds each socket read instead); probes in flight are bounded by "
        "a semaphore, each holding one socket and no thread, so 2,000 targets fit in Lambda's "
        "1,024 descriptors and 1,024 threads. Black holes hold their slot for a whole timeout: "
        "a round costs about one timeout as long as the black holes fit in the pool, plus the "
        "time the answering targets take to pass through the slots that are left.",
    ]
    section.data = {
        "timeout": TIMEOUT,
        "black_hole_share": BLACK_HOLE_SHARE,
        "cases": [c.__dict__ for c in cases],
    }
    return section


def _why_slow(case: Case) -> str:
    holes = round(case.targets * BLACK_HOLE_SHARE)
    if holes >= case.concurrency:
        return (
            f"{holes} black holes fill all {case.concurrency} slots for a whole timeout each, "
            f"so the round takes about ceil({holes}/{case.concurrency}) timeouts; a larger pool "
            "(below Lambda's 1,024 descriptors) brings it back to one"
        )
    return (
        f"{holes} black holes hold {holes} of {case.concurrency} slots for the whole timeout; "
        f"the {case.targets - holes} answering targets share the other "
        f"{case.concurrency - holes}, and their connect/answer time adds to the round"
    )


def _on_lambda(case: Case) -> Figure:
    """What the round's CPU time means on the deployed function's share of a core.

    Answering targets cost CPU (connect, request, parse) on the prober's single thread; black
    holes cost only waiting. On a fraction of a vCPU that CPU time stretches in proportion, and
    the last black hole cannot start before the answering targets ahead of it are done.
    """
    memory = lambda_memory_mb(function="probe_private")  # the function that probes the pool
    share = vcpu_share(memory)
    floor = case.cpu_seconds / share
    # Leave the CPU part at most the half timeout the target allows beyond one timeout.
    needed = memory_for(case.cpu_seconds, (TARGET - 1) * TIMEOUT)
    fits = floor <= (TARGET - 1) * TIMEOUT
    return Figure(
        f"{case.targets} targets: prober CPU per round",
        f"{case.cpu_seconds:.2f} CPU s here = at least {floor:.1f} s on a {memory} MB Lambda "
        f"({share:.2f} vCPU)",
        note=(
            f"an estimate: Lambda gives {memory} MB / {MB_PER_VCPU:,} MB of a vCPU, and the "
            "last black hole's timeout starts only after the answering targets ahead of it: "
            + (
                "the CPU part fits in the half timeout the target leaves"
                if fits
                else f"a round there can take up to timeout + {floor:.1f} s = "
                f"{ratio(TIMEOUT + floor, TIMEOUT):.1f} x timeout; {case.targets:,} targets "
                f"need {needed:,} MB (or fewer targets per function) for "
                f"{TARGET:g} x timeout"
            )
        ),
    )
