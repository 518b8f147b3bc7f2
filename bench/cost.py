"""Cost: what the default schedule costs a month for 2 LBs and 20 web servers, measured inputs.

Measured on the stand-in: one scheduled invocation of the real handler (bench/handler_run.py:
app.py's `reconcile` with its Powertools middleware, the default 6 rounds 10 s apart, after the
world converged), its wall time (what Lambda bills), its AWS calls and their bytes (what a NAT
gateway bills), its log output and its EMF metrics. Everything else is public list prices
(us-east-1, in bench/prices.py), written out in the table so the arithmetic can be checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.api_calls import CallWorld, addresses
from bench.deployment import chalice_config, lambda_memory_mb
from bench.prices import (
    ALARM_MONTH,
    HOURS_PER_MONTH,
    INVOCATIONS_PER_MONTH,
    Run,
    controller_lines,
    emf_metrics,
    endpoints_instead_of_nat,
    health_check_lines,
    total,
)
from bench.report import REPO, Figure, Progress, Section, table
from bench.world import (
    FastForwardClock,
    environment,
    quiet_controller,
    use_subnet,
)
from chalicelib.config import Settings
from standin.aws import local_aws

LBS, WEBS = 2, 20
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
        env |= {"LBF_PROBE_INTERVAL": "1", "LBF_PROBE_TIMEOUT": "0.5"}
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


def _section(measured: Run, raw: dict[str, Any], *, quick: bool) -> Section:
    memory = lambda_memory_mb()
    controller = controller_lines(measured, memory)
    checks = health_check_lines(LBS + WEBS, LBS)
    alternative = endpoints_instead_of_nat()
    network = sum(line.dollars for line in controller if line.item.startswith("NAT"))
    lambda_only = sum(line.dollars for line in controller if line.item.startswith("Lambda"))
    section = Section(name="cost", title="Cost per month")
    section.figures += [
        Figure(
            "measured steady run (default schedule, real handler)",
            f"{measured.seconds:.1f} s, {measured.calls} API calls, "
            f"{measured.api_bytes / 1e3:.0f} kB API traffic, {measured.log_bytes} B of logs"
            + (" (quick: 1 s interval)" if quick else ""),
        ),
        Figure(
            f"controller, {LBS} LBs + {WEBS} web servers",
            f"${total(controller):.2f}/month: Lambda ${lambda_only:.2f}, NAT ${network:.2f}, "
            f"metrics and logs ${total(controller) - lambda_only - network:.2f}",
            note="the NAT gateway, which probing private addresses from Lambda needs, is "
            f"{network / total(controller):.0%} of it",
        ),
        Figure(
            f"Route 53 health checks, same {LBS + WEBS} targets",
            f"${checks[0].dollars:.2f} (30 s) / ${checks[1].dollars:.2f} (10 s) / "
            f"${checks[2].dollars:.2f} (HTTPS + string + 10 s) a month",
            note="Route 53's checkers probe from the internet: they cannot reach private web "
            "addresses, and they do not push backend lists",
        ),
    ]
    rows = [(line.item, line.arithmetic, f"${line.dollars:,.2f}") for line in controller]
    rows.append(("**total**", "", f"**${total(controller):,.2f}**"))
    section.details += [
        f"Inputs measured here: one steady invocation of app.py's `reconcile` handler (Powertools "
        f"middleware included) with the default schedule ({raw['summary'].get('rounds')} rounds "
        f"10 s apart), {LBS} LBs and {WEBS} web servers, {memory} MB as in "
        f".chalice/config.json: {measured.seconds:.2f} s, {measured.calls} API calls "
        f"({', '.join(f'{k} {v}' for k, v in sorted(raw['calls'].items()))}), "
        f"{measured.api_bytes:,} bytes through the SDK, {measured.log_bytes:,} bytes of log "
        f"output, {measured.metrics} EMF metrics. Prices: public us-east-1 list prices, a month "
        f"of {HOURS_PER_MONTH} h = {INVOCATIONS_PER_MONTH:,} scheduled runs; before any free "
        "tier (Lambda's 400,000 GB-s and 1M requests a month would cover the Lambda lines).",
        table(("controller", "arithmetic", "per month"), rows),
        table(
            ("alternative network", "arithmetic", "per month"),
            [
                (alternative.item, alternative.arithmetic, f"${alternative.dollars:,.2f}"),
                (
                    "Lambda outside the VPC (LBF_LB_ADDRESS and LBF_POOL_ADDRESS public)",
                    "no NAT, no endpoints",
                    "$0.00",
                ),
            ],
        ),
        table(
            ("Route 53 health checks", "arithmetic", "per month"),
            [(line.item, line.arithmetic, f"${line.dollars:,.2f}") for line in checks],
        ),
        "Not counted on either side: the hosted zone ($0.50) and DNS queries (the same for "
        f"both), the optional monitoring template (4 alarms x ${ALARM_MONTH:.2f}, a dashboard: 3 per account "
        "are free), X-Ray traces on prod (43,800 a month, under the 100,000 free), "
        "on_instance_change invocations (a few per instance start or stop), SNS notices (only "
        "on changes). Interface endpoints replace the NAT only with LBF_LB_ADDRESS=private (the "
        "LBs' public addresses need the internet) and only where Route 53's API is offered as "
        "an endpoint; even then they cost more than one NAT gateway. Route 53 health checks "
        "are the cheaper way to fail over between LBs alone; they do not maintain the web "
        "pool, which is what needs the VPC.",
    ]
    section.data = {
        "run": measured.__dict__,
        "handler": raw,
        "memory_mb": memory,
        "controller": [line.__dict__ for line in controller],
        "endpoints_instead_of_nat": alternative.__dict__,
        "route53_health_checks": [line.__dict__ for line in checks],
    }
    return section
