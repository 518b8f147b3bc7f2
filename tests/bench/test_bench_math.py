"""The benchmarks' pure helpers: statistics, target layout, import-time parsing, cost arithmetic.

No benchmark runs here and no wall-clock time is asserted: these check that the numbers `make
bench` publishes are computed the way its report says they are.
"""

from __future__ import annotations

import json

import pytest

from bench.calls import Counted, is_write
from bench.coldstart import parse_importtime
from bench.fanout import black_holes, target_addresses
from bench.prices import (
    INVOCATIONS_PER_MONTH,
    LAMBDA_GB_SECOND_ARM,
    NAT_GATEWAY_HOUR,
    PUBLIC_IPV4_HOUR,
    ProberRun,
    Run,
    Size,
    controller_lines,
    emf_metrics,
    health_check_lines,
    lambda_compute,
    prober_design_lines,
    total,
    usd,
)
from bench.prober import cheapest
from bench.report import HEADLINES, RESULTS, Figure, Section, readme_block, replace_between, table
from bench.sizing import memory_for, seconds_on
from bench.stats import median, percentile, ratio


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([3.0], 95, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 0, 1.0),
        ([4.0, 1.0, 3.0, 2.0], 100, 4.0),
        # 20 kills: p95 lies between the 19th and the 20th value, not at the maximum.
        ([float(i) for i in range(1, 21)], 95, 19.05),
    ],
)
def test_percentile_interpolates_between_closest_ranks(
    values: list[float], p: float, expected: float
) -> None:
    assert percentile(values, p) == pytest.approx(expected)


def test_median_of_an_odd_count_is_the_middle_value() -> None:
    assert median([5.0, 1.0, 3.0]) == 3.0


@pytest.mark.parametrize(("values", "p"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_rejects_what_has_no_answer(values: list[float], p: float) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is not the contract
        percentile(values, p)


def test_ratio_needs_a_positive_reference() -> None:
    assert ratio(3.0, 2.0) == 1.5
    with pytest.raises(ValueError, match="positive"):
        ratio(1.0, 0.0)


def test_target_addresses_are_distinct_loopback_addresses_clear_of_the_tests_subnet() -> None:
    addresses = target_addresses(2000)
    assert len(set(addresses)) == 2000
    assert addresses[0] == "127.0.8.1"
    assert addresses[249] == "127.0.8.250"
    assert addresses[250] == "127.0.9.1"
    assert all(a.startswith("127.0.") and not a.startswith("127.0.1.") for a in addresses)


def test_black_holes_are_exactly_the_share_and_the_same_every_run() -> None:
    holes = black_holes(2000, 0.10)
    assert len(holes) == 200
    assert holes == black_holes(2000, 0.10)
    assert all(0 <= i < 2000 for i in holes)


IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 | _io
import time:       300 |        500 | site
import time:        50 |         50 |     chalice.compat
import time:       900 |       1000 |   chalice
import time:      2000 |      30000 |   aws_lambda_powertools
import time:       700 |       4000 |   chalicelib.jobs
import time:      1500 |      36500 | app
"""


def test_parse_importtime_reads_the_app_line_and_its_direct_imports() -> None:
    run = parse_importtime(IMPORTTIME)
    assert run.total_ms == 36.5
    assert run.children == {"chalice": 1.0, "aws_lambda_powertools": 30.0, "chalicelib.jobs": 4.0}


def test_parse_importtime_without_the_module_says_so() -> None:
    with pytest.raises(ValueError, match="app"):
        parse_importtime("import time:       100 |        100 | site\n")


def test_reads_and_writes_are_told_apart_by_operation_name() -> None:
    assert not is_write("DescribeInstances")
    assert not is_write("ListResourceRecordSets")
    assert not is_write("GetParameters")
    assert is_write("ChangeResourceRecordSets")
    assert is_write("CreateTags")
    counted = Counted({"ec2.DescribeInstances": 1, "ec2.CreateTags": 2}, 3, 0, 0)
    assert counted.writes == {"ec2.CreateTags": 2}
    assert counted.total == 3


def test_lambda_compute_is_gb_seconds_times_the_price() -> None:
    # 1,024 MB for 1 s is one GB-second.
    assert lambda_compute(1.0, 1024, 1) == pytest.approx(0.0000166667)
    # The default schedule: 43,800 runs of 50 s at 256 MB = 547,500 GB-s.
    assert lambda_compute(50.0, 256, INVOCATIONS_PER_MONTH) == pytest.approx(9.125, abs=0.001)


def test_controller_cost_counts_the_nat_gateway_and_its_address_whatever_the_traffic() -> None:
    idle = Run(seconds=0.0, calls=0, api_bytes=0, log_bytes=0, metrics=0, lb_probes=0)
    lines = {line.item: line.dollars for line in controller_lines(idle, 256)}
    assert lines["NAT gateway (VPC: private web addresses)"] == pytest.approx(
        730 * NAT_GATEWAY_HOUR
    )
    assert lines["NAT gateway's public IPv4"] == pytest.approx(730 * PUBLIC_IPV4_HOUR)
    assert lines["API calls"] == 0.0


def test_controller_cost_grows_with_measured_traffic_logs_and_metrics() -> None:
    small = Run(seconds=50.0, calls=4, api_bytes=10_000, log_bytes=1_000, metrics=5, lb_probes=12)
    large = Run(seconds=50.0, calls=4, api_bytes=20_000, log_bytes=2_000, metrics=5, lb_probes=12)
    assert total(controller_lines(large, 256)) > total(controller_lines(small, 256))
    metrics = {line.item: line.dollars for line in controller_lines(small, 256)}
    assert metrics["CloudWatch custom metrics (EMF)"] == pytest.approx(1.50)


def test_route53_health_checks_cost_per_check_and_option() -> None:
    lines = health_check_lines(22, 2)
    assert [round(line.dollars, 2) for line in lines] == [11.00, 33.00, 77.00, 3.00]


def test_emf_metrics_counts_each_name_and_dimension_set_once() -> None:
    blob = {
        "_aws": {
            "CloudWatchMetrics": [
                {
                    "Namespace": "LbFailover",
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": "HealthyLBs"}, {"Name": "Failovers"}],
                }
            ]
        },
        "service": "lb-failover",
    }
    log = "\n".join(["not json", json.dumps({"level": "INFO"}), json.dumps(blob), json.dumps(blob)])
    assert emf_metrics(log) == 2


def test_replace_between_keeps_the_markers_and_everything_outside() -> None:
    text = "# Title\n<!-- a -->\nold\n<!-- b -->\ntail\n"
    assert replace_between(text, "<!-- a -->", "<!-- b -->", "new\n") == (
        "# Title\n<!-- a -->\nnew\n<!-- b -->\ntail\n"
    )
    assert replace_between("no markers", "<!-- a -->", "<!-- b -->", "new") is None


def test_a_pipe_in_a_cell_cannot_split_the_table() -> None:
    rendered = table(("a", "b"), [("x|y", "z")])
    assert rendered.splitlines()[2] == "| x\\|y | z |"


def test_a_figure_without_a_target_has_no_verdict() -> None:
    assert Figure("f", "1 s").status == "-"
    assert Figure("f", "1 s", target="< 2 s", met=True).status == "met"
    assert Figure("f", "3 s", target="< 2 s", met=False).status == "MISSED"


@pytest.mark.parametrize(
    ("amount", "shown"),
    [(0.5, "$0.50"), (0.045, "$0.045"), (0.0000166667, "$0.0000166667"), (33.0, "$33.00")],
)
def test_prices_are_shown_as_aws_writes_them(amount: float, shown: str) -> None:
    assert usd(amount) == shown


@pytest.mark.parametrize(
    ("cpu_seconds", "budget", "expected"),
    [
        # 128 MB is 128/1769 = 0.072 vCPU: 0.05 CPU s take 0.69 s there.
        (0.05, 0.9, 128),
        # 0.1 CPU s: 1.38 s at 128 MB, 0.92 s at 192 MB, 0.69 s at 256 MB.
        (0.1, 0.9, 256),
        (2.0, 0.9, None),  # more than 1,024 MB (0.58 vCPU) can do in 0.9 s
    ],
)
def test_the_prober_function_size_is_the_smallest_that_fits(
    cpu_seconds: float, budget: float, expected: int | None
) -> None:
    assert cheapest(cpu_seconds, budget=budget) == expected


def test_this_design_has_no_network_line_and_bills_arm64() -> None:
    run = Run(seconds=50.0, calls=4, api_bytes=95_000, log_bytes=1_400, metrics=5, lb_probes=12)
    prober = ProberRun(seconds=0.02, log_bytes=650, per_run=6)
    lines = {
        line.item: line.dollars for line in prober_design_lines(run, 256, prober, 384, traced=False)
    }
    # 43,800 x 50 s x 0.25 GB x the arm64 price; nothing for NAT, endpoints or an address.
    assert lines["Lambda duration, controller (arm64)"] == pytest.approx(
        43_800 * 50 * 0.25 * LAMBDA_GB_SECOND_ARM
    )
    assert lines["network"] == 0.0
    assert not any("NAT" in item for item in lines)
    assert "X-Ray traces (one per run)" not in lines
    traced = {i.item for i in prober_design_lines(run, 256, prober, 384, traced=True)}
    assert "X-Ray traces (one per run)" in traced
    # One prober invocation per round: six requests per run on top of the run's own.
    assert lines["Lambda requests"] == pytest.approx((43_800 * 7) * 0.20 / 1e6)


def test_a_larger_cluster_costs_this_design_more_prober_time_and_the_nat_design_more_bytes() -> (
    None
):
    from bench.cost import prober_run, scaled_run

    measured = Run(
        seconds=50.0, calls=4, api_bytes=95_000, log_bytes=1_400, metrics=5, lb_probes=12
    )
    large = scaled_run(measured, Size(4, 500))
    assert large.seconds == measured.seconds  # the rounds' schedule fixes the billed time
    assert large.api_bytes > measured.api_bytes
    assert large.lb_probes == 24
    fanout = {"cases": [{"targets": 1000, "concurrency": 256, "cpu_rounds": [0.1, 0.1, 0.1]}]}
    assert (
        prober_run(Size(4, 500), 384, fanout, 6).seconds
        > prober_run(Size(2, 20), 384, fanout, 6).seconds
    )


@pytest.mark.parametrize(
    ("cpu", "budget", "memory"),
    [
        (0.689, 5.0, 256),  # 243.8 MB needed: the next 64 MB step
        (0.511, 5.0, 192),
        (0.091, 0.5, 384),
        (0.001, 5.0, 128),  # never below Lambda's floor
    ],
)
def test_memory_is_the_smallest_step_whose_cpu_share_fits_the_budget(
    cpu: float, budget: float, memory: int
) -> None:
    assert memory_for(cpu, budget) == memory
    assert seconds_on(cpu, memory) <= budget
    if memory > 128:
        assert seconds_on(cpu, memory - 64) > budget


def _measured(name: str, title: str, machine: str, ran_at: str, *figures: str) -> Section:
    return Section(
        name=name,
        title=title,
        figures=[Figure(f, "1 s") for f in figures],
        ran_at=ran_at,
        machine=machine,
    )


def test_the_readme_shows_headline_figures_of_one_run_and_names_its_machine_once() -> None:
    sections = [
        _measured(
            "failover",
            "Failover time",
            "box, commit aaa",
            "2026-12-05 10:00 UTC",
            "LB killed: detection max",
            "LB killed: detection p95",
        ),
        _measured(
            "coldstart",
            "Cold start and size",
            "box, commit aaa",
            "2026-12-05 10:05 UTC",
            "import app.py, tracing disabled",
        ),
        _measured(
            "fanout",
            "Probe fan-out",
            "box, commit old",
            "2026-11-01 09:00 UTC",
            "2000 targets, concurrency 256: one round",
        ),
    ]
    block = readme_block(sections)
    assert block.count("commit") == 1
    assert "Machine: box, commit aaa. Run: 2026-12-05 10:00 UTC to 2026-12-05 10:05 UTC." in block
    assert "LB killed: detection max" in block
    assert "detection p95" not in block  # not a headline: latest.md has it
    assert "2000 targets" not in block  # another run's figure
    assert "only in latest.md: Probe fan-out." in block


def test_every_headline_names_a_figure_the_benchmarks_publish() -> None:
    """A renamed figure would silently drop out of the README: the stored results must have it."""
    stored = json.loads((RESULTS / "latest.json").read_text())
    published = {(s["name"], f["name"]) for s in stored["sections"] for f in s.get("figures", [])}
    wanted = {(name, figure) for name, figures in HEADLINES.items() for figure in figures}
    assert wanted <= published, sorted(wanted - published)


def test_the_bill_counts_every_alarm_the_monitoring_template_makes() -> None:
    """An alarm added to the template costs $0.10 a month: the cost table must count it."""
    from cfnlint.decode import decode

    from bench.prices import MONITORING_ALARMS, REPO

    template, problems = decode(str(REPO / "infra/cloudformation/merge/monitoring.yaml"))
    assert not problems
    resources = template["Resources"].values()
    alarms = [r for r in resources if r.get("Type") == "AWS::CloudWatch::Alarm"]
    assert MONITORING_ALARMS == len(alarms) == 5


@pytest.mark.parametrize(
    ("rounds", "interval", "probes"),
    [
        (29, 2.0, 6),  # the defaults: 6 prober invocations a run, as with 6 rounds of 10 s
        (6, 10.0, 6),  # an operator's 10 s interval: the pool in every round
        (19, 3.0, 5),  # 3 s rounds: the pool at 0, 12, 24, 36 and 48 s
    ],
)
def test_the_prober_is_billed_once_per_pool_probe_not_per_round(
    rounds: int, interval: float, probes: int
) -> None:
    from bench.cost import pool_probes_per_run

    assert pool_probes_per_run(rounds, interval, 10.0) == probes
