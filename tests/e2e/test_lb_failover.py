"""The load-balancer story end to end: moto's server, real HTTP servers on loopback as the LBs.

The job runs with the real adapters (boto3 through AWS_ENDPOINT_URL, the real prober); only the
clock is injected, so rounds are counted, never timed. Every target here is private (loopback),
so every round's probes go to the prober function, running as the separate function it is
(standin/local_lambda.py), through the real invoke adapter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib import jobs
from chalicelib.config import Settings
from chalicelib.report import Report
from chalicelib.services import aws_services
from standin.aws import LocalAws, local_aws
from standin.local_lambda import FUNCTION as PROBER_FUNCTION
from standin.local_lambda import LocalLambda, local_prober_function, probed_lines
from standin.web import LocalWebServer
from tests.kit.cloud import FakeClock

pytestmark = pytest.mark.e2e

DOMAIN = "e2e.example.com"
ACTIVE = f"lb.{DOMAIN}"
LB_PORT = 18080
WEB_PORT = 18081


@pytest.fixture(scope="module")
def prober() -> Iterator[LocalLambda]:
    with local_prober_function() as prober:
        yield prober


@pytest.fixture(scope="module")
def aws(prober: LocalLambda) -> Iterator[LocalAws]:
    with local_aws(DOMAIN) as aws:
        yield aws


def environment(aws: LocalAws, cluster: str) -> dict[str, str]:
    return aws.controller_environment(
        cluster=cluster,
        domain=DOMAIN,
        lb_port=LB_PORT,
        web_port=WEB_PORT,
        # Through the prober function each path's invoke (TIMEOUT + 1 s) fits its interval.
        LBF_PROBE_TIMEOUT="0.5",
        LBF_PROBE_INTERVAL="1.5",
        LBF_PROBE_ROUNDS="3",
        LBF_POOL_INTERVAL="1.5",
        LBF_PROBER_FUNCTION=PROBER_FUNCTION,
    )


def start(servers: dict[str, LocalWebServer], address: str, port: int) -> None:
    servers[address] = LocalWebServer(address, port).start()


def test_active_record_moves_off_a_dead_lb_and_follows_a_replacement(
    aws: LocalAws, servers: dict[str, LocalWebServer]
) -> None:
    cluster = "lbstory"
    settings = Settings.from_env(environment(aws, cluster))
    lb1 = aws.launch("127.0.1.11", {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": "lb1"})
    lb2 = aws.launch("127.0.1.12", {"lbf:cluster": cluster, "lbf:role": "lb"})
    aws.launch("127.0.1.21", {"lbf:cluster": cluster, "lbf:role": "web"})
    start(servers, "127.0.1.11", LB_PORT)
    start(servers, "127.0.1.12", LB_PORT)
    start(servers, "127.0.1.21", WEB_PORT)
    clock = FakeClock()

    def reconcile() -> Report:
        report = jobs.reconcile(settings, aws_services(settings), clock)
        assert report.ok, report.errors
        clock.advance(60)
        return report

    reconcile()
    assert aws.a_record(ACTIVE) == ("127.0.1.11",)
    assert aws.a_record(f"lb1.{DOMAIN}") == ("127.0.1.11",)
    # The LB without a name got the lowest free one, as a tag and as a record.
    assert aws.tags(lb2)["lbf:name"] == "lb2"
    assert aws.a_record(f"lb2.{DOMAIN}") == ("127.0.1.12",)
    assert aws.tags(lb1)["lbf:state"] == "active"
    assert aws.parameter(settings.backends_parameter_name) == f"127.0.1.21:{WEB_PORT}"

    servers.pop("127.0.1.11").stop()
    report = reconcile()
    assert aws.a_record(ACTIVE) == ("127.0.1.12",)
    [failover] = report.failovers
    assert (failover.moved_from, failover.moved_to, failover.round) == ("lb1", "lb2", 3)
    assert aws.tags(lb1)["lbf:health"] == "unhealthy"
    assert aws.tags(lb2)["lbf:state"] == "active"

    # lb1 is replaced: a new instance with the same name and a new address.
    aws.set_state(lb1, "terminated")
    aws.launch("127.0.1.13", {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": "lb1"})
    start(servers, "127.0.1.13", LB_PORT)
    reconcile()
    assert aws.a_record(f"lb1.{DOMAIN}") == ("127.0.1.13",)
    # Non-preemptive: the healthy lb2 keeps the active record.
    assert aws.a_record(ACTIVE) == ("127.0.1.12",)
    assert aws.parameter(settings.lbs_parameter_name) == "127.0.1.13 127.0.1.12"


def test_chalice_functions_run_the_job(
    aws: LocalAws,
    servers: dict[str, LocalWebServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import chalice.test
    from chalice.local import LambdaContext
    from chalice.test import Client

    import app

    # app.py hands the chalicelib loggers to Powertools' JSON handler (no propagation); let
    # caplog see the records too.
    monkeypatch.setattr(logging.getLogger("chalicelib"), "propagate", True)
    cluster = "viachalice"
    lb = aws.launch("127.0.1.31", {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": "lb1"})
    aws.launch("127.0.1.41", {"lbf:cluster": cluster, "lbf:role": "web"})
    start(servers, "127.0.1.31", LB_PORT)
    start(servers, "127.0.1.41", WEB_PORT)
    variables = environment(aws, cluster) | {
        "LBF_DOMAIN": f"chalice.{DOMAIN}",
        "LBF_RISE": "1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "LbFailover",
    }
    # A project of its own: the repository's stages hold an operator's placeholder values.
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "app_name": "lb-failover",
                "stages": {"test": {"environment_variables": variables}},
            }
        )
    )
    # The stages' 90 s lambda_timeout: in chalice's own 3 s test context no round fits.
    monkeypatch.setattr(
        chalice.test,
        "LambdaContext",
        lambda name, memory_size: LambdaContext(name, memory_size, max_runtime_ms=90_000),
    )
    with Client(app.app, stage_name="test", project_dir=str(tmp_path)) as client:
        event = client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        with caplog.at_level(logging.INFO, logger="chalicelib"):
            result = client.lambda_.invoke("reconcile", event)
        assert result.payload["ok"], result.payload
        assert aws.a_record(f"lb.chalice.{DOMAIN}") == ("127.0.1.31",)
        # CloudWatch gets the run's figures as EMF on stdout, in the namespace the alarms use.
        emf = [
            json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
        ]
        [metrics] = [m for m in emf if "HealthyLBs" in m]
        assert metrics["HealthyLBs"] == [1.0] or metrics["HealthyLBs"] == 1.0
        assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LbFailover"
        names = {d["Name"] for d in metrics["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        assert {"HealthyLBs", "Failovers", "ProbeFailures", "ActionErrors", "RunSeconds"} <= names
        # Every change is logged with what it replaced.
        created = [
            r
            for r in caplog.records
            if r.getMessage() == "changed" and "lb.chalice" in str(r.after)
        ]
        assert created, [r.getMessage() for r in caplog.records]
        assert created[0].before == {}

        # The instance stops: the event-triggered function removes its record at once.
        aws.set_state(lb, "stopped")
        stopped = client.events.generate_cw_event(
            source="aws.ec2",
            detail_type="EC2 Instance State-change Notification",
            detail={"instance-id": lb, "state": "stopped"},
            resources=[],
        )
        result = client.lambda_.invoke("on_instance_change", stopped)
        assert result.payload["ok"], result.payload
        assert aws.a_record(f"lb1.chalice.{DOMAIN}") == ()
        assert aws.tags(lb)["lbf:health"] == "unhealthy"

        bad = client.events.generate_cw_event(
            source="aws.ec2",
            detail_type="EC2 Instance State-change Notification",
            detail={"instance-id": "i-1; rm -rf /", "state": "stopped"},
            resources=[],
        )
        result = client.lambda_.invoke("on_instance_change", bad)
        assert result.payload == {"ignored": "detail.instance-id is not an EC2 instance id"}


def test_eip_mode_moves_the_elastic_ip_in_moto(
    aws: LocalAws, servers: dict[str, LocalWebServer]
) -> None:
    cluster = "eipstory"
    ec2 = aws.client("ec2")
    allocation = ec2.allocate_address(Domain="vpc")
    variables = environment(aws, cluster) | {
        "LBF_DOMAIN": f"eip.{DOMAIN}",
        "LBF_MODE": "eip",
        "LBF_EIP_ALLOCATION_ID": allocation["AllocationId"],
    }
    settings = Settings.from_env(variables)
    lb1 = aws.launch("127.0.1.51", {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": "lb1"})
    lb2 = aws.launch("127.0.1.52", {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": "lb2"})
    aws.launch("127.0.1.61", {"lbf:cluster": cluster, "lbf:role": "web"})
    for address, port in (
        ("127.0.1.51", LB_PORT),
        ("127.0.1.52", LB_PORT),
        ("127.0.1.61", WEB_PORT),
    ):
        start(servers, address, port)
    clock = FakeClock()

    def holder() -> str | None:
        found = ec2.describe_addresses(AllocationIds=[allocation["AllocationId"]])["Addresses"]
        return found[0].get("InstanceId")

    assert jobs.reconcile(settings, aws_services(settings), clock).ok
    assert holder() == lb1
    # The active record holds the Elastic IP (never probed: only the LBs' loopback addresses are).
    assert aws.a_record(f"lb.eip.{DOMAIN}") == (allocation["PublicIp"],)

    servers.pop("127.0.1.51").stop()
    clock.advance(60)
    report = jobs.reconcile(settings, aws_services(settings), clock)
    assert report.ok, report.errors
    assert holder() == lb2
    assert aws.a_record(f"lb.eip.{DOMAIN}") == (allocation["PublicIp"],)
    assert aws.tags(lb2)["lbf:state"] == "active"


def test_failing_back_to_an_address_the_record_held_before(
    aws: LocalAws, servers: dict[str, LocalWebServer]
) -> None:
    """Two failovers, the second back to the first LB's address: Route 53 accepts that batch.

    (moto 5.2.5 alone would refuse it as "already exists"; the stand-in patches just that.)
    """
    cluster = "failback"
    settings = Settings.from_env(environment(aws, cluster) | {"LBF_DOMAIN": f"back.{DOMAIN}"})
    aws.launch("127.0.1.71", {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": "lb1"})
    aws.launch("127.0.1.72", {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": "lb2"})
    aws.launch("127.0.1.81", {"lbf:cluster": cluster, "lbf:role": "web"})
    for address, port in (
        ("127.0.1.71", LB_PORT),
        ("127.0.1.72", LB_PORT),
        ("127.0.1.81", WEB_PORT),
    ):
        start(servers, address, port)
    clock = FakeClock()
    active = f"lb.back.{DOMAIN}"

    def reconcile() -> None:
        report = jobs.reconcile(settings, aws_services(settings), clock)
        assert report.ok, report.errors
        clock.advance(60)

    reconcile()
    assert aws.a_record(active) == ("127.0.1.71",)
    servers.pop("127.0.1.71").stop()
    reconcile()
    assert aws.a_record(active) == ("127.0.1.72",)
    start(servers, "127.0.1.71", LB_PORT)
    reconcile()  # lb1 is healthy again; the record stays on lb2 (no failback by itself)
    assert aws.a_record(active) == ("127.0.1.72",)
    servers.pop("127.0.1.72").stop()
    reconcile()
    assert aws.a_record(active) == ("127.0.1.71",)


def test_the_prober_function_probes_each_round_and_its_absence_changes_no_verdict(
    aws: LocalAws, prober: LocalLambda, servers: dict[str, LocalWebServer]
) -> None:
    cluster = "viaprober"
    settings = Settings.from_env(environment(aws, cluster) | {"LBF_DOMAIN": f"vpc.{DOMAIN}"})
    lb = aws.launch("127.0.1.91", {"lbf:cluster": cluster, "lbf:role": "lb", "lbf:name": "lb1"})
    webs = [
        aws.launch(a, {"lbf:cluster": cluster, "lbf:role": "web"})
        for a in ("127.0.1.92", "127.0.1.93")
    ]
    for address, port in (
        ("127.0.1.91", LB_PORT),
        ("127.0.1.92", WEB_PORT),
        ("127.0.1.93", WEB_PORT),
    ):
        start(servers, address, port)
    clock = FakeClock()
    probed_lines(prober.logs)  # what earlier tests left

    report = jobs.reconcile(settings, aws_services(settings), clock)
    assert report.ok, report.errors
    backends = f"127.0.1.92:{WEB_PORT} 127.0.1.93:{WEB_PORT}"
    assert aws.parameter(settings.backends_parameter_name) == backends
    # One invocation per round, each with the round's three private targets.
    lines = prober.probed(report.rounds)
    assert [line["targets"] for line in lines] == [3] * report.rounds
    assert probed_lines(prober.logs) == []  # and no more

    # The prober function goes away (as if its deploy failed); a web server dies meanwhile.
    prober.stop()
    servers.pop("127.0.1.93").stop()
    try:
        clock.advance(60)
        report = jobs.reconcile(settings, aws_services(settings), clock)
    finally:
        prober.start()
    assert report.ok, report.errors
    assert aws.parameter(settings.backends_parameter_name) == backends  # no verdict changed
    assert all(aws.tags(i)["lbf:health"] == "healthy" for i in [lb, *webs])
    notified = aws.parameter(settings.notices_parameter_name) or ""
    assert "prober-fault:private" in notified.splitlines()

    # Back: its results count again, and the condition clears.
    clock.advance(60)
    report = jobs.reconcile(settings, aws_services(settings), clock)
    assert report.ok, report.errors
    assert aws.parameter(settings.backends_parameter_name) == f"127.0.1.92:{WEB_PORT}"
    notified = aws.parameter(settings.notices_parameter_name) or ""
    assert "prober-fault:private" not in notified.splitlines()
