"""The second opinion's pure parts: which checks should exist, and what the checkers' reports say."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.core.changes import CreateHealthCheck, DeleteHealthCheck, UpdateHealthCheck
from chalicelib.core.model import HealthCheck, HealthCheckSpec
from chalicelib.core.second_opinion import (
    MIN_REGIONS,
    OBSERVATION_MAX_AGE,
    CheckerObservation,
    Consensus,
    NotCheckable,
    caller_reference,
    checkable_by_route53,
    checks_to_consult,
    desired_check,
    instance_of_reference,
    judge,
    plan_health_checks,
    status_note,
)
from tests.kit.cloud import REGIONS
from tests.kit.settings import CLUSTER, settings
from tests.kit.world import lb, skipped, world

NOW = 1_700_000_000.0
STARTED = 1_700_000_123.9
PUBLIC_1 = "52.1.2.11"
PUBLIC_2 = "52.1.2.12"
ON = settings(route53_health_checks=True)


def spec(
    address: str = PUBLIC_1, kind: str = "HTTP", port: int = 80, path: str | None = "/health"
) -> HealthCheckSpec:
    return HealthCheckSpec(kind=kind, address=address, port=port, resource_path=path)


def check(instance_id: str, address: str = PUBLIC_1, hc_id: str = "hc-1") -> HealthCheck:
    """One of the controller's checks, an HTTP check of /health at `address`."""
    return HealthCheck(
        health_check_id=hc_id, instance_id=instance_id, version=3, spec=spec(address)
    )


# --- which checks are ours ----------------------------------------------------------------------


def test_caller_reference_names_cluster_and_instance_and_fits_route53() -> None:
    reference = caller_reference("c" * 128, "i-0123456789abcdef0", STARTED)
    assert len(reference) <= 64
    assert instance_of_reference("c" * 128, reference) == "i-0123456789abcdef0"


@pytest.mark.parametrize(
    "reference",
    [
        "",
        "someone-elses-check",
        caller_reference("other-cluster", "i-0123456789abcdef0", STARTED),
        caller_reference(CLUSTER, "i-0123456789abcdef0", STARTED) + ":extra",
        f"lbf:{'0' * 16}:i-0123456789abcdef0:1",
        caller_reference(CLUSTER, "i-0123", STARTED).replace("i-0123", "i-01;rm"),
    ],
)
def test_a_check_that_is_not_this_clusters_is_never_claimed(reference: str) -> None:
    assert instance_of_reference(CLUSTER, reference) is None


# --- the check an LB should have ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "checkable"),
    [
        ("52.1.2.3", True),
        ("2600:1f18::1", True),
        ("10.0.0.1", False),  # RFC 1918
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("100.64.1.1", False),  # shared address space (carrier NAT)
        ("127.0.0.11", False),  # loopback
        ("169.254.1.1", False),  # link-local
        ("203.0.113.10", False),  # documentation
        ("fd00::1", False),  # unique local IPv6
        ("224.0.0.1", False),  # multicast
    ],
)
def test_route53_can_check_only_global_unicast_addresses(address: str, checkable: bool) -> None:
    assert checkable_by_route53(address) is checkable


@pytest.mark.parametrize(
    ("check_template", "expected"),
    [
        ("http://{address}:80/health", spec()),
        ("http://{address}/health", spec()),
        ("http://{address}:8080/", spec(port=8080, path="/")),
        ("http://{address}:8080", spec(port=8080, path="/")),
        ("https://{address}/ready?deep=1", spec(kind="HTTPS", port=443, path="/ready?deep=1")),
        ("tcp://{address}:443", spec(kind="TCP", port=443, path=None)),
    ],
)
def test_the_check_follows_lbf_lb_check(check_template: str, expected: HealthCheckSpec) -> None:
    config = settings(route53_health_checks=True, lb_check=check_template)
    assert desired_check(lb("lb1", PUBLIC_1), config.rules.second_opinion) == expected


def test_an_ipv6_lb_is_checked_at_its_address() -> None:
    assert desired_check(lb("lb1", "2600:1f18::1"), ON.rules.second_opinion) == spec(
        address="2600:1f18::1"
    )


@pytest.mark.parametrize(
    ("instance", "expected"),
    [
        (lb("lb1", "10.0.0.11"), NotCheckable("not possible for private address")),
        (lb("lb1", PUBLIC_1, "unhealthy", "stopped"), None),
        (lb("lb1", None, "unhealthy", "stopped"), None),
        (lb("lb1", PUBLIC_1, "unknown", "pending"), None),
    ],
)
def test_no_check_for_a_private_or_not_running_lb(instance: object, expected: object) -> None:
    assert desired_check(instance, ON.rules.second_opinion) == expected  # type: ignore[arg-type]


def test_a_path_longer_than_route53_takes_is_not_checkable() -> None:
    config = settings(route53_health_checks=True, lb_check="http://{address}/" + "a" * 255)
    wanted = desired_check(lb("lb1", PUBLIC_1), config.rules.second_opinion)
    assert isinstance(wanted, NotCheckable)
    assert "255" in wanted.reason


# --- planning ------------------------------------------------------------------------------------


def test_nothing_is_planned_when_the_checks_were_not_read() -> None:
    view = world([lb("lb1", PUBLIC_1)])  # health_checks None: setting off, or the read failed
    assert plan_health_checks(view, ON.rules.second_opinion, run_started_at=STARTED) == ()


def test_a_public_lb_without_a_check_gets_one_tagged_for_people() -> None:
    view = replace(world([lb("lb1", PUBLIC_1), lb("lb2", "10.0.0.12")]), health_checks=())

    [create] = plan_health_checks(view, ON.rules.second_opinion, run_started_at=STARTED)

    assert isinstance(create, CreateHealthCheck)
    assert (create.instance_id, create.spec) == ("i-lb1", spec())
    assert create.caller_reference == caller_reference(CLUSTER, "i-lb1", STARTED)
    assert dict(create.tags) == {
        "Name": f"lbf {CLUSTER} lb1",
        "lbf:cluster": CLUSTER,
        "lbf:instance": "i-lb1",
    }
    assert "HTTP 52.1.2.11:80/health" in create.describe()


def test_a_settled_world_plans_nothing() -> None:
    view = replace(
        world([lb("lb1", PUBLIC_1), lb("lb2", PUBLIC_2)]),
        health_checks=(check("i-lb1"), check("i-lb2", PUBLIC_2, "hc-2")),
    )
    assert plan_health_checks(view, ON.rules.second_opinion, run_started_at=STARTED) == ()


def test_a_new_address_updates_the_check_as_compare_and_swap() -> None:
    view = replace(world([lb("lb1", PUBLIC_2)]), health_checks=(check("i-lb1", PUBLIC_1),))

    [update] = plan_health_checks(view, ON.rules.second_opinion, run_started_at=STARTED)

    assert update == UpdateHealthCheck(
        health_check_id="hc-1",
        version=3,
        instance_id="i-lb1",
        lb_name="lb1",
        before=spec(PUBLIC_1),
        spec=spec(PUBLIC_2),
    )


def test_another_check_type_is_replaced_because_route53_cannot_change_it() -> None:
    config = settings(route53_health_checks=True, lb_check="tcp://{address}:80")
    view = replace(world([lb("lb1", PUBLIC_1)]), health_checks=(check("i-lb1"),))

    changes = plan_health_checks(view, config.rules.second_opinion, run_started_at=STARTED)

    assert [type(c) for c in changes] == [CreateHealthCheck, DeleteHealthCheck]


def test_another_request_interval_is_a_new_check_because_route53_cannot_change_it() -> None:
    """LBF_ROUTE53_INTERVAL=10 for a check made at 30 s: create the 10 s one, never an update."""
    config = settings(route53_health_checks=True, route53_interval=10)
    view = replace(world([lb("lb1", PUBLIC_1)]), health_checks=(check("i-lb1"),))

    [create, delete] = plan_health_checks(view, config.rules.second_opinion, run_started_at=STARTED)

    assert isinstance(create, CreateHealthCheck)
    assert create.spec == replace(spec(), request_interval=10)
    assert delete == DeleteHealthCheck("hc-1", "i-lb1", "a second check of lb1")


def test_a_check_the_failover_pair_is_bound_to_is_deleted_only_once_the_pair_left_it() -> None:
    """The pair moves to the new check in this plan's records; the old one goes next run."""
    config = settings(route53_health_checks=True, route53_interval=10)
    view = replace(world([lb("lb1", PUBLIC_1)]), health_checks=(check("i-lb1"),))

    changes = plan_health_checks(
        view, config.rules.second_opinion, run_started_at=STARTED, in_use={"hc-1"}
    )

    assert [type(c) for c in changes] == [CreateHealthCheck]
    moved = replace(
        view, health_checks=(check("i-lb1"), HealthCheck("hc-2", "i-lb1", 1, changes[0].spec))
    )  # type: ignore[union-attr]
    assert plan_health_checks(
        moved, config.rules.second_opinion, run_started_at=STARTED, in_use={"hc-2"}
    ) == (DeleteHealthCheck("hc-1", "i-lb1", "a second check of lb1"),)


def test_a_new_failure_threshold_is_an_update_route53_allows() -> None:
    config = settings(route53_health_checks=True, fall=2)
    view = replace(world([lb("lb1", PUBLIC_1)]), health_checks=(check("i-lb1"),))

    [update] = plan_health_checks(view, config.rules.second_opinion, run_started_at=STARTED)

    assert isinstance(update, UpdateHealthCheck)
    assert update.spec == replace(spec(), failure_threshold=2)


def test_a_loopback_lb_is_checkable_on_the_stand_in_only() -> None:
    on_stand_in = settings(route53_health_checks=True)
    assert on_stand_in.loopback_allowed
    assert isinstance(
        desired_check(lb("lb1", "127.0.2.11"), on_stand_in.rules.second_opinion), HealthCheckSpec
    )
    deployed = settings({"AWS_ENDPOINT_URL": None}, route53_health_checks=True)
    assert desired_check(lb("lb1", "127.0.2.11"), deployed.rules.second_opinion) == NotCheckable(
        "not possible for private address"
    )


@pytest.mark.parametrize(
    ("instance", "reason"),
    [
        (lb("lb1", None, "unhealthy", "stopped"), "lb1 is stopped"),
        (lb("lb1", PUBLIC_1, "unhealthy", "terminated"), "lb1 is terminated"),
        (lb("lb1", "10.0.0.11"), "lb1: not possible for private address"),
    ],
)
def test_the_check_of_an_lb_that_went_or_turned_private_is_deleted(
    instance: object, reason: str
) -> None:
    view = replace(world([instance]), health_checks=(check("i-lb1"),))  # type: ignore[list-item]

    assert plan_health_checks(view, ON.rules.second_opinion, run_started_at=STARTED) == (
        DeleteHealthCheck("hc-1", "i-lb1", reason),
    )


def test_a_check_of_an_instance_no_longer_in_the_cluster_is_deleted() -> None:
    view = replace(
        world([lb("lb1", PUBLIC_1)]), health_checks=(check("i-lb1"), check("i-gone", hc_id="hc-9"))
    )

    assert plan_health_checks(view, ON.rules.second_opinion, run_started_at=STARTED) == (
        DeleteHealthCheck("hc-9", "i-gone", "no longer an LB of the cluster"),
    )


def test_a_frozen_lbs_check_is_left_alone_like_its_record() -> None:
    view = replace(
        world([], skipped=[skipped("i-frozen", name="lb3", address=PUBLIC_1)]),
        health_checks=(check("i-frozen"),),
    )
    assert plan_health_checks(view, ON.rules.second_opinion, run_started_at=STARTED) == ()


@pytest.mark.parametrize("state", ["stopped", "terminated"])
def test_a_frozen_lb_that_ec2_reports_down_loses_its_check_like_its_record(state: str) -> None:
    """EC2's state outranks a tag: a skipped LB that stopped loses its record and the active
    role like any stopped LB, and so its check, which would otherwise be billed for good and
    probe an address it no longer holds."""
    view = replace(
        world([], skipped=[skipped("i-frozen", name="lb3", address=PUBLIC_1, state=state)]),
        health_checks=(check("i-frozen"),),
    )
    assert plan_health_checks(view, ON.rules.second_opinion, run_started_at=STARTED) == (
        DeleteHealthCheck("hc-1", "i-frozen", f"i-frozen is {state}"),
    )


def test_two_checks_of_one_lb_keep_the_right_one() -> None:
    """Two overlapping runs may each have made one; the one already right is kept."""
    view = replace(
        world([lb("lb1", PUBLIC_2)]),
        health_checks=(check("i-lb1", PUBLIC_1, "hc-a"), check("i-lb1", PUBLIC_2, "hc-b")),
    )

    assert plan_health_checks(view, ON.rules.second_opinion, run_started_at=STARTED) == (
        DeleteHealthCheck("hc-a", "i-lb1", "a second check of lb1"),
    )


# --- asking --------------------------------------------------------------------------------------


def test_only_failed_lbs_with_a_check_at_their_current_address_are_asked() -> None:
    view = replace(
        world(
            [
                lb("lb1", PUBLIC_1),
                lb("lb2", PUBLIC_2),
                lb("lb3", "52.1.2.13"),
                lb("lb4", "10.0.0.14"),
            ]
        ),
        health_checks=(
            check("i-lb1", PUBLIC_1, "hc-1"),
            check("i-lb2", PUBLIC_2, "hc-2"),
            check("i-lb3", "52.9.9.9", "hc-3"),  # still at the old address
        ),
    )

    consulted = checks_to_consult(view, failed={"i-lb1", "i-lb3", "i-lb4"})

    assert {k: c.health_check_id for k, c in consulted.items()} == {"i-lb1": "hc-1"}


def observations(*regions: tuple[str, str], age: float = 10.0) -> list[CheckerObservation]:
    """('us-east-1', 'ok fail') is two checkers there, one succeeding."""
    return [
        CheckerObservation(region, word == "ok", NOW - age)
        for region, words in regions
        for word in words.split()
    ]


EIGHT = REGIONS  # Route 53's eight checker regions, as the in-memory health checks have them


@pytest.mark.parametrize(
    ("reports", "verdict", "healthy", "reporting"),
    [
        ([(r, "ok ok") for r in EIGHT], Consensus.HEALTHY, 8, 8),
        ([(r, "ok fail ok") for r in EIGHT], Consensus.HEALTHY, 8, 8),
        (
            [(r, "ok") for r in EIGHT[:5]] + [(r, "fail") for r in EIGHT[5:]],
            Consensus.HEALTHY,
            5,
            8,
        ),
        ([(r, "ok") for r in EIGHT[:4]] + [(r, "fail") for r in EIGHT[4:]], Consensus.SPLIT, 4, 8),
        ([(r, "ok fail") for r in EIGHT], Consensus.SPLIT, 0, 8),  # half a region is not a majority
        ([(r, "fail fail") for r in EIGHT], Consensus.DOWN, 0, 8),
        ([(r, "fail") for r in EIGHT[:MIN_REGIONS]], Consensus.DOWN, 0, 3),
        (
            [(r, "fail") for r in EIGHT[:2]],
            Consensus.SPLIT,
            0,
            2,
        ),  # too few regions to call it down
        ([], Consensus.SILENT, 0, 0),
    ],
)
def test_judge_counts_regions(
    reports: list[tuple[str, str]], verdict: Consensus, healthy: int, reporting: int
) -> None:
    opinion = judge(lb("lb1", PUBLIC_1), observations(*reports), now=NOW)
    assert (opinion.consensus, opinion.healthy_regions, opinion.reporting_regions) == (
        verdict,
        healthy,
        reporting,
    )


def test_old_reports_say_nothing_about_now() -> None:
    stale = observations(*[(r, "ok") for r in EIGHT], age=OBSERVATION_MAX_AGE + 1)
    fresh_down = observations(*[(r, "fail") for r in EIGHT[:3]])

    assert judge(lb("lb1", PUBLIC_1), stale, now=NOW).consensus is Consensus.SILENT
    assert judge(lb("lb1", PUBLIC_1), stale + fresh_down, now=NOW).consensus is Consensus.DOWN


@pytest.mark.parametrize(
    ("verdict", "text"),
    [
        (Consensus.HEALTHY, "Route 53 checkers in 6 of 8 regions still see lb1 healthy: holding"),
        (
            Consensus.DOWN,
            "Route 53 checkers in 6 of 8 regions see lb1 healthy: it may really be down",
        ),
        (Consensus.SPLIT, "not a majority: holding"),
        (Consensus.SILENT, "no recent report from Route 53 checkers on lb1: holding"),
    ],
)
def test_the_opinion_says_what_it_saw(verdict: Consensus, text: str) -> None:
    opinion = judge(lb("lb1", PUBLIC_1), [], now=NOW)
    opinion = replace(opinion, consensus=verdict, healthy_regions=6, reporting_regions=8)
    assert text in opinion.describe()
    assert opinion.condition == f"second-opinion:i-lb1:{verdict.value}"


# --- status --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance", "checks", "note"),
    [
        (lb("lb1", "10.0.0.11"), (), "second opinion: not possible for private address"),
        (lb("lb1", PUBLIC_1), (check("i-lb1"),), "second opinion: Route 53 health check hc-1"),
        (
            lb("lb1", PUBLIC_2),
            (check("i-lb1"),),
            "probes HTTP 52.1.2.11:80/health, updated on the next run",
        ),
        (lb("lb1", PUBLIC_1), (), "second opinion: no Route 53 health check yet"),
        (lb("lb1", None, "unhealthy", "stopped"), (), None),
    ],
)
def test_status_says_what_the_second_opinion_can_do(
    instance: object, checks: tuple[HealthCheck, ...], note: str | None
) -> None:
    view = replace(world([instance]), health_checks=checks)  # type: ignore[list-item]
    shown = status_note(instance, view, ON.rules.second_opinion)  # type: ignore[arg-type]
    if note is None:
        assert shown is None
    else:
        assert shown is not None
        assert note in shown


def test_status_says_nothing_when_the_setting_is_off() -> None:
    view = replace(world([lb("lb1", "10.0.0.11")]), health_checks=())
    assert status_note(lb("lb1", "10.0.0.11"), view, settings().rules.second_opinion) is None
