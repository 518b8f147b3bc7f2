"""Cost: what a month costs for 2 LBs + 20, 2 + 100 and 4 + 500 web servers, measured inputs.

Measured on the stand-in: one scheduled invocation of the real handler (bench/handler_run.py:
app.py's `reconcile` with its Powertools middleware, the default rounds (29, 2 s apart), after the
world converged) with 2 LBs and 20 web servers: its wall time (what Lambda bills), its AWS calls
and their bytes (what a NAT gateway bills), its log output and its EMF metrics. The memory sizes
come from .chalice/config.json, which bench/sizing.py derives from the cold-start and fan-out
measurements. The prober's duration per invocation comes from the fan-out benchmark's probe CPU
per target. Everything else is public list prices (us-east-1, in bench/prices.py), before any
free tier, written out in the tables so the arithmetic can be checked.

Three designs side by side: this one (the controller outside any VPC, the prober in it, arm64),
the previous one (one x86 controller in the VPC behind a NAT gateway) and Route 53 health checks.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import sizing
from bench.api_calls import CallWorld, addresses
from bench.deployment import chalice_config, lambda_memory_mb
from bench.prices import (
    DASHBOARD_MONTH,
    HOURS_PER_MONTH,
    INVOCATIONS_PER_MONTH,
    LAMBDA_PLATFORM_LOG_BYTES,
    Line,
    ProberRun,
    Run,
    Size,
    controller_lines,
    deployment_lines,
    emf_metrics,
    endpoints_instead_of_nat,
    health_check_lines,
    prober_design_lines,
    total,
)
from bench.report import REPO, RESULTS, Figure, Progress, Section, table
from bench.world import (
    FastForwardClock,
    environment,
    quiet_controller,
    use_subnet,
)
from chalicelib.config import Settings
from chalicelib.core import timing
from standin.aws import local_aws

LBS, WEBS = 2, 20
SIZES = (Size(2, 20), Size(2, 100), Size(4, 500))
TARGET_DOLLARS = 10.00  # all in, 2 LBs + 20 web servers, the dashboard stated beside it
NAT_DESIGN_MB = 256  # the previous design's one x86 function
# Bytes of API traffic per instance beyond the measured 22: DescribeInstances grows with the
# fleet (the api-calls benchmark: 52 instances, 173,854 B a steady run; here 22, about 95 kB).
API_BYTES_PER_INSTANCE = 2_640
# Not measured: the prober's own work around the probes (decode the request, encode the answer)
# and a round trip inside the VPC. Set generously; at these sizes they move no cent.
PROBER_HANDLER_CPU_S = 0.002
VPC_ROUND_TRIP_S = 0.002
PROBER_LOG_BYTES = LAMBDA_PLATFORM_LOG_BYTES + 300  # Lambda's lines and one line of its own
DOMAIN = "cost.bench.example.com"
CLUSTER = "bench-cost"
SUBNET = "127.0.7.0/24"
LB_PORT, WEB_PORT = 28280, 28281


def _measure(settings_env: dict[str, str], quick: bool, workdir: Path) -> tuple[Run, Any]:
    memory = lambda_memory_mb()
    timeout = float(chalice_config().get("lambda_timeout", 90))
    spec = workdir / "handler.json"
    result = workdir / "result.json"
    spec.write_text(
        json.dumps({"timeout_seconds": timeout, "memory_mb": memory, "result": str(result)})
    )
    env = dict(os.environ) | settings_env
    env |= {
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "lb-failover",
        "POWERTOOLS_METRICS_NAMESPACE": "LbFailover",
    }
    if quick:
        # Six rounds: left unset, the rounds that fit a 1 s interval would fill the minute.
        env |= {"LBF_PROBE_INTERVAL": "1", "LBF_PROBE_TIMEOUT": "0.5", "LBF_PROBE_ROUNDS": "6"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.handler_run", str(spec)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout + 60,
        check=False,
    )
    if done.returncode != 0 or not result.exists():
        raise RuntimeError(f"the handler run failed: {(done.stdout + done.stderr)[-2000:]}")
    measured: dict[str, Any] = json.loads(result.read_text())
    log = done.stdout + done.stderr
    rounds = int(measured["summary"].get("rounds", 0))
    run = Run(
        seconds=float(measured["seconds"]),
        calls=sum(measured["calls"].values()),
        api_bytes=int(measured["bytes_sent"]) + int(measured["bytes_received"]),
        log_bytes=len(log.encode()),
        metrics=emf_metrics(log),
        lb_probes=LBS * rounds,
    )
    return run, measured


def run(progress: Progress, *, quick: bool = False) -> Section:
    with local_aws(DOMAIN) as aws, quiet_controller():
        use_subnet(aws, SUBNET)
        topic = aws.client("sns").create_topic(Name="lb-failover-cost")["TopicArn"]
        settings_env = environment(
            aws,
            cluster=CLUSTER,
            domain=DOMAIN,
            lb_port=LB_PORT,
            web_port=WEB_PORT,
            extra={"LBF_SNS_TOPIC_ARN": topic},
        )
        world = CallWorld(
            aws=aws,
            settings=Settings.from_env(settings_env),
            lb_addresses={"lb1": "127.0.7.11", "lb2": "127.0.7.12"},
            web_addresses=addresses("127.0.7", 100, WEBS),
            lb_port=LB_PORT,
            web_port=WEB_PORT,
        )
        try:
            world.start()
            world.converge(FastForwardClock())
            progress("cost: converged; one scheduled invocation of the real handler (~1 min)")
            with tempfile.TemporaryDirectory(prefix="lbf-cost-") as workdir:
                measured_run, raw = _measure(settings_env, quick, Path(workdir))
        finally:
            world.stop()
    return _section(measured_run, raw, quick=quick)


def scaled_run(measured: Run, size: Size) -> Run:
    """The measured 2 + 20 run at another size. Its duration stays: the rounds are INTERVAL
    apart start to start, so a larger inventory read or more probes fill the wait, not the
    bill. API bytes grow with the instances; LB probes with the LBs."""
    extra = (size.lbs + size.webs) - (LBS + WEBS)
    rounds = measured.lb_probes // LBS if LBS else 0
    return Run(
        seconds=measured.seconds,
        calls=measured.calls,
        api_bytes=measured.api_bytes + extra * API_BYTES_PER_INSTANCE,
        log_bytes=measured.log_bytes,
        metrics=measured.metrics,
        lb_probes=size.lbs * rounds,
    )


def pool_probes_per_run(rounds: int, interval: float, pool_interval: float) -> int:
    """The rounds of a run that probe the pool (core.timing.pool_due): the first, then one each
    LBF_POOL_INTERVAL on the rounds' schedule; 6 at the defaults (29 rounds 2 s apart, 10 s)."""
    probed_at: float | None = None
    probes = 0
    for number in range(rounds):
        at = number * interval
        if timing.pool_due(
            scheduled_at=at,
            starts_at=at,
            pool_probed_at=probed_at,
            pool_interval=pool_interval,
            pool_seconds=0.0,
            deadline=None,
        ):
            probed_at, probes = at, probes + 1
    return probes


def prober_run(size: Size, memory_mb: int, fanout: dict[str, Any], per_run: int) -> ProberRun:
    """One pool probe's private targets (the web pool, LBF_POOL_ADDRESS=private; the LBs are
    probed at their public addresses by the controller) on the prober's share of a vCPU,
    `per_run` times a run."""
    cpu = PROBER_HANDLER_CPU_S + sizing.probe_cpu_per_target(fanout) * size.webs
    billed = math.ceil((sizing.seconds_on(cpu, memory_mb) + VPC_ROUND_TRIP_S) * 1000) / 1000
    return ProberRun(seconds=billed, log_bytes=PROBER_LOG_BYTES, per_run=per_run)


def _stored(name: str) -> dict[str, Any]:
    path = RESULTS / "latest.json"
    stored: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for section in stored.get("sections", []):
        if section["name"] == name:
            data: dict[str, Any] = section["data"]
            return data
    raise RuntimeError(f"bench/results/latest.json has no {name} section: run --only {name}")


def _money(lines: list[Line]) -> str:
    return f"${total(lines):,.2f}"


def _section(measured: Run, raw: dict[str, Any], *, quick: bool) -> Section:
    controller_mb = lambda_memory_mb("prod", "reconcile")
    prober_mb = lambda_memory_mb("prod", "probe_private")
    traced = bool(chalice_config()["stages"]["prod"].get("xray", False))
    fanout, coldstart = _stored("fanout"), _stored("coldstart")
    # The other choice of tracing, at the size bench/sizing.py gives it.
    other = sizing.controller_need(coldstart, tracing=not traced)
    rounds = int(raw["summary"].get("rounds") or 29)
    interval = 1.0 if quick else timing.PUBLIC_LB_INTERVAL
    timeout = 0.5 if quick else timing.DEFAULT_PROBE_TIMEOUT
    pool_probes = pool_probes_per_run(rounds, interval, timing.DEFAULT_POOL_INTERVAL)
    designs: dict[str, dict[str, list[Line]]] = {}
    for size in SIZES:
        run = scaled_run(measured, size)
        prober = prober_run(size, prober_mb, fanout, pool_probes)
        designs[size.short] = {
            "this": prober_design_lines(run, controller_mb, prober, prober_mb, traced=traced),
            "other": prober_design_lines(
                run, other.memory_mb, prober, prober_mb, traced=not traced
            ),
            "nat": [*controller_lines(run, NAT_DESIGN_MB), *deployment_lines(traced=True)],
            "checks": health_check_lines(size.lbs + size.webs, size.lbs),
        }
    small = designs[SIZES[0].short]
    this_small = total(small["this"])
    controller = sizing.controller_need(coldstart, tracing=traced)
    tracing = "X-Ray" if traced else "no X-Ray"
    other_tracing = "no X-Ray" if traced else "X-Ray"
    below = {
        size.short: total(d["this"]) < d["checks"][0].dollars
        for size, d in zip(SIZES, designs.values(), strict=True)
    }
    section = Section(name="cost", title="Cost per month")
    section.figures += [
        Figure(
            "measured steady run (default schedule, real handler)",
            f"{measured.seconds:.1f} s, {measured.calls} API calls, "
            f"{measured.api_bytes / 1e3:.0f} kB API traffic, {measured.log_bytes} B of logs"
            + (" (quick: 1 s interval)" if quick else ""),
        ),
        Figure(
            "memory (bench/sizing.py)",
            f"controller {controller_mb} MB ({tracing}) / {other.memory_mb} MB "
            f"({other_tracing}), prober {prober_mb} MB",
            note=f"the cheapest sizes for what start-up may add to the bound: {controller.why}; "
            "the prober's cold start within half of the invoke's extra second",
        ),
        Figure(
            f"this design, {SIZES[0].label}, all in",
            f"{_money(small['this'])}/month (prod, {tracing}, {controller_mb} MB); "
            f"{_money(small['other'])} with {other_tracing} at {other.memory_mb} MB; "
            f"plus ${DASHBOARD_MONTH:.2f} for the dashboard beyond an account's first three",
            target=f"< ${TARGET_DOLLARS:.2f}",
            met=this_small < TARGET_DOLLARS,
            note=(
                f"the controller bills ~{measured.seconds:.0f} s of every minute (it waits "
                "between rounds), so its memory is most of the bill"
                if this_small < TARGET_DOLLARS
                else f"missed by ${this_small - TARGET_DOLLARS:.2f}: the detection bound wins. "
                f"The controller bills ~{measured.seconds:.0f} s a minute (it waits between "
                f"rounds), and its cold start needs {controller_mb} MB to add at most "
                f"{sizing.COLD_START_S:g} s; at 128 MB it would cost "
                f"${total(small['this']) - small['this'][0].dollars * (1 - 128 / controller_mb):.2f}"
                f" but take {sizing.seconds_on(controller.cpu_seconds, 128):.1f} s to start"
            ),
        ),
        Figure(
            "this design vs Route 53 health checks (basic 30 s / fast 10 s)",
            "; ".join(
                f"{size.short}: {_money(d['this'])} vs ${d['checks'][0].dollars:,.2f} / "
                f"${d['checks'][1].dollars:,.2f}"
                for size, d in zip(SIZES, designs.values(), strict=True)
            ),
            target="below basic checks at every size",
            met=all(below.values()),
            note="Route 53's checkers probe from the internet: they cannot reach private web "
            "addresses, and they do not push backend lists",
        ),
        Figure(
            "previous design (x86 controller in the VPC, NAT gateway)",
            "; ".join(
                f"{size.short}: {_money(d['nat'])}"
                for size, d in zip(SIZES, designs.values(), strict=True)
            ),
            note=f"the NAT gateway and its address alone: "
            f"${sum(x.dollars for x in small['nat'] if x.item.startswith('NAT gateway')):.2f}",
        ),
    ]
    section.details.append(
        f"Inputs measured here: one steady invocation of app.py's `reconcile` handler (Powertools "
        f"middleware included) with the default schedule ({rounds} rounds {interval:g} s apart), {LBS} LBs "
        f"and {WEBS} web servers: {measured.seconds:.2f} s, {measured.calls} API calls "
        f"({', '.join(f'{k} {v}' for k, v in sorted(raw['calls'].items()))}), "
        f"{measured.api_bytes:,} bytes through the SDK, {measured.log_bytes:,} bytes of log "
        f"output, {measured.metrics} EMF metrics. Memory from .chalice/config.json (chosen by "
        f"bench/sizing.py from the cold-start and fan-out figures): controller {controller_mb} MB "
        f"(prod, {tracing}), {other.memory_mb} MB with {other_tracing}, prober {prober_mb} MB. Other sizes scale the measured "
        f"run: the same duration (the rounds are INTERVAL apart start to start), "
        f"{API_BYTES_PER_INSTANCE:,} more API bytes per instance (the DescribeInstances answer), "
        f"one LB probe per LB and round. The prober is invoked once per pool probe, every "
        f"LBF_POOL_INTERVAL beside the rounds ({pool_probes} per run), "
        f"with the web pool's private addresses; its billed time is the fan-out benchmark's "
        f"probe CPU per target ({sizing.probe_cpu_per_target(fanout) * 1e6:.0f} us) times the "
        f"pool on {prober_mb} MB's share of a vCPU, plus {PROBER_HANDLER_CPU_S * 1000:g} ms of "
        f"handler CPU and a {VPC_ROUND_TRIP_S * 1000:g} ms round trip (not measured). Prices: "
        f"public us-east-1 list prices, a month of {HOURS_PER_MONTH} h = "
        f"{INVOCATIONS_PER_MONTH:,} scheduled runs, before any free tier."
    )
    summary_rows = [
        (
            size.label,
            _money(d["this"]),
            _money(d["other"]),
            _money(d["nat"]),
            f"${d['checks'][0].dollars:,.2f}",
            f"${d['checks'][1].dollars:,.2f}",
        )
        for size, d in zip(SIZES, designs.values(), strict=True)
    ]
    section.details.append(
        table(
            (
                "cluster",
                f"this design (prod, {tracing})",
                f"this design, {other_tracing}",
                "NAT gateway design",
                "Route 53 checks, 30 s",
                "Route 53 checks, 10 s",
            ),
            summary_rows,
        )
    )
    for key, title in (("this", "this design, prod"), ("nat", "previous design, NAT gateway")):
        for size, d in zip(SIZES, designs.values(), strict=True):
            rows = [(line.item, line.arithmetic, f"${line.dollars:,.2f}") for line in d[key]]
            rows.append(("**total**", "", f"**{_money(d[key])}**"))
            section.details.append(
                table((f"{title}, {size.label}", "arithmetic", "per month"), rows)
            )
    alternative = endpoints_instead_of_nat()
    section.details += [
        table(
            ("Route 53 health checks, " + SIZES[0].label, "arithmetic", "per month"),
            [(line.item, line.arithmetic, f"${line.dollars:,.2f}") for line in small["checks"]],
        ),
        "Not counted: the hosted zone ($0.50) and DNS queries (the same for every design), "
        "on_instance_change invocations (a few per instance start or stop), SNS notices (only "
        f"on changes), the dashboard (${DASHBOARD_MONTH:.2f} beyond an account's first three). A web server that stops answering "
        "keeps being probed until it is healthy again: each pool probe then waits LBF_PROBE_TIMEOUT "
        f"for it, which the prober bills ({timeout:g} s x {pool_probes} x "
        f"{INVOCATIONS_PER_MONTH:,} at {prober_mb} MB = "
        f"${timeout * pool_probes * INVOCATIONS_PER_MONTH * prober_mb / 1024 * 0.0000133334:.2f} "
        f"a month for as long as it lasts). Interface endpoints instead of the NAT gateway would "
        f"have cost {alternative.arithmetic} = ${alternative.dollars:,.2f} a month; this design "
        "needs neither, because the prober calls no AWS API.",
    ]
    section.data = {
        "run": measured.__dict__,
        "handler": raw,
        "memory_mb": {
            "controller": controller_mb,
            "controller_other_tracing": other.memory_mb,
            "prober": prober_mb,
        },
        "sizes": {
            size.short: {key: [line.__dict__ for line in lines] for key, lines in d.items()}
            for size, d in zip(SIZES, designs.values(), strict=True)
        },
    }
    return section
