"""Public prices and the monthly arithmetic of the cost benchmark: pure, so it is unit-tested.

Prices are us-east-1 list prices in USD; change them here to redo the arithmetic for a region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HOURS_PER_MONTH = 730
LAMBDA_GB_SECOND = 0.0000166667  # x86
LAMBDA_GB_SECOND_ARM = 0.0000133334  # arm64 (Graviton)
LAMBDA_PER_MILLION_REQUESTS = 0.20
NAT_GATEWAY_HOUR = 0.045
NAT_GATEWAY_GB = 0.045
PUBLIC_IPV4_HOUR = 0.005  # every public IPv4 address since February 2024: the NAT gateway's EIP
ENDPOINT_HOUR_PER_AZ = 0.01  # an interface VPC endpoint, per Availability Zone
CUSTOM_METRIC_MONTH = 0.30
LOG_INGESTION_GB = 0.50
ALARM_MONTH = 0.10
DASHBOARD_MONTH = 3.00  # each dashboard beyond an account's first three
XRAY_PER_MILLION_TRACES = 5.00  # traces recorded
REPO = Path(__file__).resolve().parents[1]
# Counted in the template, so that an alarm added there is in the bill.
MONITORING_ALARMS = sum(
    line.strip() == "Type: AWS::CloudWatch::Alarm"
    for line in (REPO / "infra" / "cloudformation" / "merge" / "monitoring.yaml")
    .read_text()
    .splitlines()
)
HEALTH_CHECK_AWS_ENDPOINT = 0.50
HEALTH_CHECK_OPTION = 1.00  # each of HTTPS, string matching, 10 s interval (AWS endpoints)

GB = 1e9  # bytes; whether a billed GB is 10^9 or 2^30 moves no cent at these volumes
INVOCATIONS_PER_MONTH = 60 * HOURS_PER_MONTH  # rate(1 minute)
LAMBDA_PLATFORM_LOG_BYTES = 350  # START, END and REPORT lines Lambda adds to every invocation
PROBE_BYTES = 1000  # one HTTP probe through NAT: TCP handshake and close, request, status line
AVAILABILITY_ZONES = 2  # the network stack's two private subnets
ENDPOINT_SERVICES = ("ec2", "ssm", "sns", "route53")


@dataclass(frozen=True)
class Run:
    """What one steady scheduled invocation took and produced."""

    seconds: float
    calls: int
    api_bytes: int  # sent + received through the SDK, before TLS
    log_bytes: int  # what the handler wrote to stdout and stderr
    metrics: int  # distinct EMF metrics (name and dimension set)
    lb_probes: int  # LB probes per run: through NAT when LBs are probed at public addresses


@dataclass(frozen=True)
class Line:
    item: str
    arithmetic: str
    dollars: float


def usd(amount: float) -> str:
    """A price as written on AWS's pages: at least cents, and every digit a unit price has."""
    digits = f"{amount:.10f}".rstrip("0")
    whole, _, fraction = digits.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


@dataclass(frozen=True)
class Size:
    """A cluster: its LBs and web servers."""

    lbs: int
    webs: int

    @property
    def label(self) -> str:
        return f"{self.lbs} LBs + {self.webs} web servers"

    @property
    def short(self) -> str:
        return f"{self.lbs} + {self.webs}"


@dataclass(frozen=True)
class ProberRun:
    """One invocation of the prober function: what it bills."""

    seconds: float  # billed duration, at its memory size
    log_bytes: int  # its own output plus Lambda's START/END/REPORT lines
    per_run: int  # invocations per controller run: one per round with private targets


def lambda_compute(
    seconds: float, memory_mb: int, invocations: int, price: float = LAMBDA_GB_SECOND
) -> float:
    """Lambda bills GB-seconds: memory in MB / 1,024 times the billed duration."""
    return seconds * memory_mb / 1024 * invocations * price


def _api_calls(run: Run) -> Line:
    """The same in both designs: the calls a run makes cost nothing."""
    return Line(
        "API calls",
        f"{run.calls} per run x {INVOCATIONS_PER_MONTH:,}: EC2 describe, Route 53 record calls, "
        "SSM Run Command and standard parameters are free",
        0.0,
    )


def controller_lines(run: Run, memory_mb: int) -> list[Line]:
    """The previous design: one x86 controller in the VPC, the AWS APIs and the LBs' public
    addresses reached through a NAT gateway."""
    n = INVOCATIONS_PER_MONTH
    gb_seconds = run.seconds * memory_mb / 1024 * n
    nat_gb = (run.api_bytes + run.lb_probes * PROBE_BYTES) * n / GB
    log_gb = (run.log_bytes + LAMBDA_PLATFORM_LOG_BYTES) * n / GB
    return [
        Line(
            "Lambda duration",
            f"{n:,} runs x {run.seconds:.1f} s x {memory_mb}/1024 GB = {gb_seconds:,.0f} GB-s "
            f"x {usd(LAMBDA_GB_SECOND)}",
            lambda_compute(run.seconds, memory_mb, n),
        ),
        Line(
            "Lambda requests",
            f"{n:,} x {usd(LAMBDA_PER_MILLION_REQUESTS)} / 1M",
            n * LAMBDA_PER_MILLION_REQUESTS / 1e6,
        ),
        _api_calls(run),
        Line(
            "NAT gateway (VPC: private web addresses)",
            f"{HOURS_PER_MONTH} h x {usd(NAT_GATEWAY_HOUR)}",
            HOURS_PER_MONTH * NAT_GATEWAY_HOUR,
        ),
        Line(
            "NAT gateway's public IPv4",
            f"{HOURS_PER_MONTH} h x {usd(PUBLIC_IPV4_HOUR)}",
            HOURS_PER_MONTH * PUBLIC_IPV4_HOUR,
        ),
        Line(
            "NAT data",
            f"({run.api_bytes:,} B API + {run.lb_probes} LB probes x {PROBE_BYTES} B) x {n:,} "
            f"= {nat_gb:.2f} GB x {usd(NAT_GATEWAY_GB)}",
            nat_gb * NAT_GATEWAY_GB,
        ),
        Line(
            "CloudWatch custom metrics (EMF)",
            f"{run.metrics} x {usd(CUSTOM_METRIC_MONTH)}",
            run.metrics * CUSTOM_METRIC_MONTH,
        ),
        Line(
            "CloudWatch Logs ingestion",
            f"({run.log_bytes:,} B + {LAMBDA_PLATFORM_LOG_BYTES} B platform) x {n:,} "
            f"= {log_gb:.3f} GB x {usd(LOG_INGESTION_GB)}",
            log_gb * LOG_INGESTION_GB,
        ),
    ]


def deployment_lines(*, traced: bool) -> list[Line]:
    """What every Lambda design deploys besides the functions: the alarms, and traces on a
    traced stage (one trace per scheduled run)."""
    n = INVOCATIONS_PER_MONTH
    lines = [
        Line(
            "CloudWatch alarms (monitoring template)",
            f"{MONITORING_ALARMS} x {usd(ALARM_MONTH)}",
            MONITORING_ALARMS * ALARM_MONTH,
        )
    ]
    if traced:
        lines.append(
            Line(
                "X-Ray traces (one per run)",
                f"{n:,} x {usd(XRAY_PER_MILLION_TRACES)} / 1M",
                n * XRAY_PER_MILLION_TRACES / 1e6,
            )
        )
    return lines


def prober_design_lines(
    run: Run, controller_mb: int, prober: ProberRun, prober_mb: int, *, traced: bool
) -> list[Line]:
    """This design: the controller outside any VPC and the prober inside it, both on arm64.
    No NAT gateway, no endpoint, no public IPv4 address: the controller uses Lambda's own
    addresses and the prober has none."""
    n = INVOCATIONS_PER_MONTH
    invocations = n * prober.per_run
    controller_gb_s = run.seconds * controller_mb / 1024 * n
    prober_gb_s = prober.seconds * prober_mb / 1024 * invocations
    log_gb = ((run.log_bytes + LAMBDA_PLATFORM_LOG_BYTES) * n + prober.log_bytes * invocations) / GB
    return [
        Line(
            "Lambda duration, controller (arm64)",
            f"{n:,} runs x {run.seconds:.1f} s x {controller_mb}/1024 GB = "
            f"{controller_gb_s:,.0f} GB-s x {usd(LAMBDA_GB_SECOND_ARM)}",
            lambda_compute(run.seconds, controller_mb, n, LAMBDA_GB_SECOND_ARM),
        ),
        Line(
            "Lambda duration, prober (arm64)",
            f"{invocations:,} invocations x {prober.seconds * 1000:.0f} ms x {prober_mb}/1024 GB "
            f"= {prober_gb_s:,.0f} GB-s x {usd(LAMBDA_GB_SECOND_ARM)}",
            lambda_compute(prober.seconds, prober_mb, invocations, LAMBDA_GB_SECOND_ARM),
        ),
        Line(
            "Lambda requests",
            f"(1 run + {prober.per_run} prober invocations a minute: {n:,} + {invocations:,}) "
            f"x {usd(LAMBDA_PER_MILLION_REQUESTS)} / 1M",
            (n + invocations) * LAMBDA_PER_MILLION_REQUESTS / 1e6,
        ),
        _api_calls(run),
        Line(
            "network",
            "no NAT gateway, no endpoint, no public IPv4 (the controller uses Lambda's "
            "addresses, the prober none)",
            0.0,
        ),
        Line(
            "CloudWatch custom metrics (EMF)",
            f"{run.metrics} x {usd(CUSTOM_METRIC_MONTH)}",
            run.metrics * CUSTOM_METRIC_MONTH,
        ),
        Line(
            "CloudWatch Logs ingestion",
            f"(({run.log_bytes:,} B + {LAMBDA_PLATFORM_LOG_BYTES} B) x {n:,} + "
            f"{prober.log_bytes} B x {invocations:,}) = {log_gb:.3f} GB x "
            f"{usd(LOG_INGESTION_GB)}",
            log_gb * LOG_INGESTION_GB,
        ),
        *deployment_lines(traced=traced),
    ]


def endpoints_instead_of_nat() -> Line:
    count = len(ENDPOINT_SERVICES)
    return Line(
        f"instead of NAT: interface endpoints ({', '.join(ENDPOINT_SERVICES)})",
        f"{count} x {AVAILABILITY_ZONES} AZs x {HOURS_PER_MONTH} h x {usd(ENDPOINT_HOUR_PER_AZ)}",
        count * AVAILABILITY_ZONES * HOURS_PER_MONTH * ENDPOINT_HOUR_PER_AZ,
    )


def health_check_lines(targets: int, lbs: int) -> list[Line]:
    base, option = HEALTH_CHECK_AWS_ENDPOINT, HEALTH_CHECK_OPTION
    return [
        Line(
            f"{targets} checks, HTTP, 30 s interval",
            f"{targets} x {usd(base)}",
            targets * base,
        ),
        Line(
            f"{targets} checks, HTTP, 10 s interval (as LBF_PROBE_INTERVAL)",
            f"{targets} x ({usd(base)} + {usd(option)})",
            targets * (base + option),
        ),
        Line(
            f"{targets} checks, HTTPS + string match + 10 s",
            f"{targets} x ({usd(base)} + 3 x {usd(option)})",
            targets * (base + 3 * option),
        ),
        Line(
            f"LBs only ({lbs} checks, 10 s), failover routing records",
            f"{lbs} x ({usd(base)} + {usd(option)})",
            lbs * (base + option),
        ),
    ]


def total(lines: list[Line]) -> float:
    return sum(line.dollars for line in lines)


def emf_metrics(log: str) -> int:
    """Distinct metrics in the EMF blobs of the log: each name and dimension set is one metric."""
    found: set[tuple[str, tuple[str, ...]]] = set()
    for line in log.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"].get("CloudWatchMetrics", []):
            dimension_sets = directive.get("Dimensions") or [[]]
            for metric in directive.get("Metrics", []):
                for dimensions in dimension_sets:
                    found.add((metric["Name"], tuple(dimensions)))
    return len(found)
