"""The second opinion (LBF_ROUTE53_HEALTH_CHECKS): the adapter against moto, the job on fakes.

moto keeps health checks well enough for create, update, delete, list and tags, but reports every
check's status as one fixed "Success" from one region: the status parsing is pinned with botocore's
Stubber, and what the job does with the checkers' answers is tested on an in-memory fake.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib import render
from chalicelib.adapters import clients
from chalicelib.adapters.route53_health_checks import Route53HealthChecks
from chalicelib.config import Settings
from chalicelib.core.model import HealthCheck, HealthCheckSpec
from chalicelib.core.second_opinion import CheckerObservation, caller_reference
from chalicelib.errors import AwsError
from chalicelib.observe import observe
from chalicelib.report import Report
from chalicelib.services import Services, aws_services
from tests.kit.aws_env import use_fake_credentials
from tests.kit.cloud import FAKE_CLOUD_ENV, FakeCloud, FakeHealthChecks
from tests.kit.runs import converge, run
from tests.kit.settings import settings

CLUSTER = "demo"
DOMAIN = "prod.example.com"
ACTIVE = f"lb.{DOMAIN}"
NOW = 1_700_000_000.0
# Global unicast addresses: Route 53's checkers can reach only these. Nothing is ever sent to them
# (the fake prober decides by instance, the fake checkers by a set).
LB1_PUBLIC, LB2_PUBLIC, LB2_NEW_PUBLIC = "52.1.2.11", "52.1.2.12", "52.1.2.99"


def spec(
    address: str, kind: str = "HTTP", port: int = 80, path: str | None = "/health"
) -> HealthCheckSpec:
    return HealthCheckSpec(kind=kind, address=address, port=port, resource_path=path)


# --- the adapter against moto --------------------------------------------------------------------


@pytest.fixture
def route53(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_credentials(monkeypatch, "us-east-1", clear=True)
    with mock_aws():
        yield boto3.client("route53", region_name="us-east-1")
    clients.forget_clients()


def tags_of(client: Any, health_check_id: str) -> dict[str, str]:
    response = client.list_tags_for_resource(ResourceType="healthcheck", ResourceId=health_check_id)
    return {t["Key"]: t["Value"] for t in response["ResourceTagSet"]["Tags"]}


def test_create_tags_and_reads_back_only_the_clusters_checks(route53: Any) -> None:
    adapter = Route53HealthChecks(route53)
    reference = caller_reference(CLUSTER, "i-0123456789abcdef0", NOW)
    health_check_id = adapter.create(
        spec(LB1_PUBLIC), reference, [("Name", "lbf demo lb1"), ("lbf:cluster", CLUSTER)]
    )
    # Checks the controller must never touch: another cluster's, and one made by someone else.
    route53.create_health_check(
        CallerReference=caller_reference("other", "i-0123456789abcdef1", NOW),
        HealthCheckConfig={"Type": "HTTP", "IPAddress": LB2_PUBLIC, "Port": 80},
    )
    route53.create_health_check(
        CallerReference="hand-made",
        HealthCheckConfig={"Type": "TCP", "IPAddress": LB2_PUBLIC, "Port": 443},
    )

    found = adapter.read(CLUSTER)

    assert found == (
        HealthCheck(health_check_id, "i-0123456789abcdef0", version=1, spec=spec(LB1_PUBLIC)),
    )
    config = route53.get_health_check(HealthCheckId=health_check_id)["HealthCheck"]
    assert config["HealthCheckConfig"]["RequestInterval"] == 30
    assert config["HealthCheckConfig"]["FailureThreshold"] == 3
    assert tags_of(route53, health_check_id) == {"Name": "lbf demo lb1", "lbf:cluster": CLUSTER}


def test_update_points_the_check_at_the_new_address(route53: Any) -> None:
    adapter = Route53HealthChecks(route53)
    reference = caller_reference(CLUSTER, "i-0123456789abcdef0", NOW)
    health_check_id = adapter.create(spec(LB1_PUBLIC), reference, [])

    adapter.update(health_check_id, 1, spec(LB2_NEW_PUBLIC, path="/ready"))

    [check] = adapter.read(CLUSTER)
    assert check.spec == spec(LB2_NEW_PUBLIC, path="/ready")


def test_delete_removes_the_check_and_a_second_delete_is_no_error(route53: Any) -> None:
    adapter = Route53HealthChecks(route53)
    health_check_id = adapter.create(
        spec(LB1_PUBLIC), caller_reference(CLUSTER, "i-0123456789abcdef0", NOW), []
    )

    adapter.delete(health_check_id)
    adapter.delete(health_check_id)  # an overlapping run got there first

    assert adapter.read(CLUSTER) == ()


def stubbed() -> tuple[Any, Stubber]:
    client: Any = boto3.session.Session().client(  # type: ignore[call-overload]
        "route53",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=clients.CONFIG,
    )
    return client, Stubber(client)


@pytest.mark.parametrize(
    ("check", "config"),
    [
        (
            spec(LB1_PUBLIC, "HTTPS", 443, "/health?deep=1"),
            {"Type": "HTTPS", "ResourcePath": "/health?deep=1", "Port": 443, "EnableSNI": False},
        ),
        (spec(LB1_PUBLIC, "TCP", 8443, None), {"Type": "TCP", "Port": 8443}),
    ],
    ids=["https-without-sni", "tcp-without-path"],
)
def test_the_exact_create_request(check: HealthCheckSpec, config: dict[str, Any]) -> None:
    """moto accepts anything: the request Route 53 would get is pinned with the Stubber."""
    client, stubber = stubbed()
    reference = caller_reference(CLUSTER, "i-0123456789abcdef0", NOW)
    hc = {"Id": "hc-1", "CallerReference": reference, "HealthCheckVersion": 1}
    stubber.add_response(
        "create_health_check",
        {"HealthCheck": {**hc, "HealthCheckConfig": {"Type": config["Type"]}}, "Location": "x"},
        {
            "CallerReference": reference,
            "HealthCheckConfig": {
                "IPAddress": LB1_PUBLIC,
                "RequestInterval": 30,
                "FailureThreshold": 3,
                **config,
            },
        },
    )
    stubber.add_response(
        "change_tags_for_resource",
        {},
        {
            "ResourceType": "healthcheck",
            "ResourceId": "hc-1",
            "AddTags": [{"Key": "lbf:instance", "Value": "i-0123456789abcdef0"}],
        },
    )
    with stubber:
        made = Route53HealthChecks(client).create(
            check, reference, [("lbf:instance", "i-0123456789abcdef0")]
        )
    assert made == "hc-1"
    stubber.assert_no_pending_responses()


def test_update_carries_the_version_read_so_route53_refuses_a_stale_one() -> None:
    client, stubber = stubbed()
    stubber.add_client_error(
        "update_health_check",
        service_error_code="HealthCheckVersionMismatch",
        http_status_code=409,
        expected_params={
            "HealthCheckId": "hc-1",
            "HealthCheckVersion": 4,
            "IPAddress": LB2_NEW_PUBLIC,
            "Port": 80,
            "FailureThreshold": 3,
            "ResourcePath": "/health",
        },
    )
    with stubber, pytest.raises(AwsError) as raised:
        Route53HealthChecks(client).update("hc-1", 4, spec(LB2_NEW_PUBLIC))
    assert raised.value.code == "HealthCheckVersionMismatch"


def test_status_reads_each_checkers_region_result_and_time() -> None:
    client, stubber = stubbed()
    at = dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    stubber.add_response(
        "get_health_check_status",
        {
            "HealthCheckObservations": [
                {
                    "Region": "eu-west-1",
                    "IPAddress": "176.34.159.192",
                    "StatusReport": {
                        "Status": "Success: HTTP Status Code 200, OK",
                        "CheckedTime": at,
                    },
                },
                {
                    "Region": "us-east-1",
                    "IPAddress": "54.183.255.128",
                    "StatusReport": {
                        "Status": "Failure: Connection timed out.",
                        "CheckedTime": at,
                    },
                },
                # A report without a time cannot be weighed as recent: left out.
                {"Region": "sa-east-1", "StatusReport": {"Status": "Success: HTTP 200"}},
            ]
        },
        {"HealthCheckId": "hc-1"},
    )
    with stubber:
        observations = Route53HealthChecks(client).status("hc-1")
    assert observations == (
        CheckerObservation("eu-west-1", True, at.timestamp()),
        CheckerObservation("us-east-1", False, at.timestamp()),
    )


def test_the_real_services_have_no_health_check_adapter_while_the_setting_is_off(
    route53: Any,
) -> None:
    del route53
    base = {"LBF_CLUSTER": CLUSTER, "LBF_DOMAIN": DOMAIN, "LBF_HOSTED_ZONE_ID": "Z123"}
    assert aws_services(settings(base)).health_checks is None
    on = settings(base, route53_health_checks=True)
    assert isinstance(aws_services(on).health_checks, Route53HealthChecks)


# --- the job on fakes ---------------------------------------------------------------------------


# What differs from the fake cloud here: the second opinion is on, and the LBs are published at
# their public addresses (Route 53's checkers reach only those).
SECOND_OPINION = {"LBF_LB_ADDRESS": "public", "LBF_ROUTE53_HEALTH_CHECKS": "true"}


@dataclass
class World:
    cloud: FakeCloud
    checks: FakeHealthChecks
    lb1: str
    lb2: str

    def services(self) -> Services:
        return self.cloud.services()

    def run(self, config: Settings, **kwargs: Any) -> Report:
        return run(self.cloud, config, **kwargs)

    def converge(self, config: Settings) -> Report:
        return converge(self.cloud, config)

    def kill_everything(self) -> None:
        """What the prober sees when its own network fails: every target at once."""
        self.cloud.prober.dead |= {
            raw.private_ip or "" for raw in self.cloud.ec2.instances.values()
        }


@pytest.fixture
def world() -> World:
    cloud = FakeCloud()
    lb1 = cloud.ec2.add("lb", "10.0.0.11", name="lb1", public=LB1_PUBLIC)
    lb2 = cloud.ec2.add("lb", "10.0.0.12", name="lb2", public=LB2_PUBLIC)
    for host in (21, 22, 23):
        cloud.ec2.add("web", f"10.0.1.{host}")
    cloud.health_checks.seen_healthy = {LB1_PUBLIC, LB2_PUBLIC}
    return World(cloud, cloud.health_checks, lb1, lb2)


def test_setting_off_makes_no_health_check_call_even_in_a_prober_fault(world: World) -> None:
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION, route53_health_checks="false")
    world.converge(config)
    world.kill_everything()

    world.converge(config)

    assert world.checks.calls == []
    assert not any("Route 53 checkers" in m for m in world.cloud.sns.messages)


def test_each_public_lb_gets_one_check_at_its_address_in_the_first_run(world: World) -> None:
    report = world.converge(settings(FAKE_CLOUD_ENV, SECOND_OPINION))

    assert world.checks.at(world.lb1) == [LB1_PUBLIC]
    assert world.checks.at(world.lb2) == [LB2_PUBLIC]
    assert world.checks.count("CreateHealthCheck") == 2
    assert world.checks.count("ListHealthChecks") == 1  # once per run, not per round
    tags = world.checks.tags["hc-1"]
    assert tags == {"Name": "lbf demo lb1", "lbf:cluster": CLUSTER, "lbf:instance": world.lb1}
    assert any(a.startswith("create Route 53 health check of lb1") for a in report.applied)
    # The records were written before the checks: a failover never waits for them.
    assert report.applied.index(next(a for a in report.applied if a.startswith("records"))) < (
        report.applied.index(next(a for a in report.applied if "health check" in a))
    )


def test_a_steady_run_only_reads_the_checks(world: World) -> None:
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION)
    world.converge(config)
    world.checks.calls.clear()

    world.converge(config)

    assert [op for op, _ in world.checks.calls] == ["ListHealthChecks"]


def test_private_addresses_get_no_check_and_status_says_why(world: World) -> None:
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION, lb_address="private")
    world.converge(config)

    assert world.checks.checks == {}
    view = observe(config, world.services(), now=world.cloud.clock.now())
    assert view is not None
    notes = [
        ", ".join(text for _, text in row["notes"])
        for row in render.status_rows(view, config)
        if row["role"] == "lb"
    ]
    assert all("second opinion: not possible for private address" in n for n in notes)
    assert "second opinion: 0 Route 53 health check(s)" in render.status_text(view, config)


def test_status_names_each_lbs_check(world: World) -> None:
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION)
    world.converge(config)

    view = observe(config, world.services(), now=world.cloud.clock.now())
    assert view is not None
    rows = {
        row["name"]: [text for _, text in row["notes"]] for row in render.status_rows(view, config)
    }
    assert "second opinion: Route 53 health check hc-1" in rows["lb1"]
    assert "second opinion: Route 53 health check hc-2" in rows["lb2"]


def test_a_new_address_updates_the_check(world: World) -> None:
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION)
    world.converge(config)
    raw = world.cloud.ec2.instances[world.lb2]
    world.cloud.ec2.instances[world.lb2] = replace(raw, public_ip=LB2_NEW_PUBLIC)

    report = world.converge(config)

    assert world.checks.at(world.lb2) == [LB2_NEW_PUBLIC]
    assert world.checks.count("UpdateHealthCheck") == 1
    assert world.checks.count("CreateHealthCheck") == 2  # the first run's, no new one
    assert any(f"{LB2_PUBLIC}:80/health -> HTTP {LB2_NEW_PUBLIC}" in a for a in report.applied)


@pytest.mark.parametrize("state", ["terminated", "stopped"])
def test_the_check_goes_with_the_lb(world: World, state: str) -> None:
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION)
    world.converge(config)
    world.cloud.ec2.set_state(world.lb2, state)

    report = world.converge(config)

    assert world.checks.at(world.lb2) == []
    assert world.checks.at(world.lb1) == [LB1_PUBLIC]
    assert any(f"lb2 is {state}" in a for a in report.applied)


def test_a_prober_fault_is_held_and_the_notice_says_route53_still_sees_the_lbs(
    world: World,
) -> None:
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION)
    world.converge(config)
    world.converge(config)
    world.cloud.sns.messages.clear()
    world.kill_everything()

    report = world.converge(config)

    assert world.cloud.route53.value(ACTIVE) == (LB1_PUBLIC,)
    assert world.cloud.ec2.tag(world.lb1, "lbf:health") == "healthy"
    messages = world.cloud.sns.messages
    assert any("fault on the prober's side" in m for m in messages)
    held = "Route 53 checkers in 8 of 8 regions still see lb1 healthy: holding"
    assert held in messages
    assert held in report.notes
    # Notices go out on a change: six rounds of the same answer are one notice per LB.
    assert messages.count(held) == 1
    assert world.checks.count("GetHealthCheckStatus") == 2 * config.probe_rounds


def test_the_notice_says_when_route53_sees_the_lb_down_too(world: World) -> None:
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION)
    world.converge(config)
    world.converge(config)
    world.kill_everything()
    world.checks.seen_healthy = {LB2_PUBLIC}

    world.converge(config)

    # Still no verdict changes in a prober fault: only the notice differs.
    assert world.cloud.route53.value(ACTIVE) == (LB1_PUBLIC,)
    assert any(
        "Route 53 checkers in 0 of 8 regions see lb1 healthy: it may really be down" in m
        for m in world.cloud.sns.messages
    )


def test_a_single_dead_lb_is_failed_over_though_route53_still_sees_it_healthy(
    world: World,
) -> None:
    """Route 53 needs 30 s x 3 to notice; outside a prober fault it is never asked."""
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION)
    world.converge(config)
    world.converge(config)
    world.cloud.prober.dead.add("10.0.0.11")  # lb1 dies; Route 53's checkers lag behind

    report = world.converge(config)

    assert world.cloud.route53.value(ACTIVE) == (LB2_PUBLIC,)
    assert report.failovers[0].round == config.fall
    assert world.checks.count("GetHealthCheckStatus") == 0


def test_checkers_that_cannot_be_asked_are_asked_once_a_run_and_everything_is_held(
    world: World,
) -> None:
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION)
    world.converge(config)
    world.converge(config)
    world.kill_everything()
    world.checks.fail_status = AwsError("route53", "GetHealthCheckStatus", "Timeout", "no route")

    report = world.run(config)

    assert world.checks.count("GetHealthCheckStatus") == 1
    assert world.cloud.route53.value(ACTIVE) == (LB1_PUBLIC,)
    assert any("could not be asked (not again this run)" in m for m in world.cloud.sns.messages)
    assert report.ok  # a read that failed is no failed action


def test_a_failed_read_of_the_checks_fails_the_run_but_not_the_failover(world: World) -> None:
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION)
    world.converge(config)
    world.checks.fail_read = AwsError("route53", "ListHealthChecks", "AccessDenied", "no policy")
    world.cloud.ec2.set_state(world.lb1, "stopped")
    world.checks.calls.clear()

    report = world.run(config)

    assert world.cloud.route53.value(ACTIVE) == (LB2_PUBLIC,)
    assert not report.ok
    assert any("Route 53 health checks not read" in e for e in report.errors)
    assert [op for op, _ in world.checks.calls] == [
        "ListHealthChecks"
    ]  # nothing planned on a guess


def test_a_dry_run_plans_the_checks_and_makes_none(world: World) -> None:
    report = world.run(settings(FAKE_CLOUD_ENV, SECOND_OPINION, dry_run="true"))

    assert [op for op, _ in world.checks.calls] == ["ListHealthChecks"]
    planned = [p for p in report.planned if "health check" in p]
    assert planned == [
        f"create Route 53 health check of lb1 {world.lb1}: HTTP {LB1_PUBLIC}:80/health",
        f"create Route 53 health check of lb2 {world.lb2}: HTTP {LB2_PUBLIC}:80/health",
    ]


def test_the_event_run_gives_a_started_lb_its_check_at_once(world: World) -> None:
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION)
    world.converge(config)
    lb3 = world.cloud.ec2.add("lb", "10.0.0.13", name="lb3", public="52.1.2.13")

    report = world.run(config, rounds=1, probe=False, job="on_instance_change", concerning=lb3)

    assert report.ok, report.errors
    assert world.checks.at(lb3) == ["52.1.2.13"]


def test_a_check_route53_refuses_fails_the_run_and_is_not_told_every_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks go through the round's Plan like every write, after the records. They are kept
    once a run, so a refusal would clear in the next round and come back each minute: it fails the
    run (the Report, exit 1), never a notice or a history event, and the records still move."""

    def refused(*args: object) -> str:
        raise AwsError("route53", "CreateHealthCheck", "TooManyHealthChecks", "limit reached")

    monkeypatch.setattr(world.checks, "create", refused)
    config = settings(FAKE_CLOUD_ENV, SECOND_OPINION)

    first = world.run(config)
    second = world.run(config)

    for report in (first, second):
        assert not report.ok
        assert sum("limit reached" in e for e in report.errors) == 2  # one per LB
    assert any(a.startswith("records") for a in first.applied)
    assert not any("limit reached" in m for m in world.cloud.sns.messages)
    history = " ".join(v for _, v in world.cloud.ssm.versions.get(f"/lbf/{CLUSTER}/history", []))
    assert "limit reached" not in history
