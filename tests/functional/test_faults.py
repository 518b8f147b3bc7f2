"""Faults the controller must survive without making things worse.

Each test injects one fault, then lets the world go on, and checks what an operator would see: no
false failover, no flapping, no split brain, no empty or half-applied backend list, and that the
world converges once the fault is gone.

Retries of throttled and failing AWS calls are botocore's (`standard` mode, chalicelib/adapters/
clients.py): they are proven against a scripted HTTP server on 127.0.0.1 speaking each service's
wire format, because both Stubber and moto answer before botocore's retry handler ever runs. What
is left once botocore gives up is the job's to handle; that is proven on the in-memory AWS of
tests/kit/cloud.py. The prober's own behaviour against slow, resetting, redirecting, huge and TLS-broken
servers is in tests/functional/test_probe.py.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence

import botocore.config
import botocore.endpoint
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chalicelib import jobs
from chalicelib.adapters.clients import CONFIG
from chalicelib.adapters.ec2 import Ec2Inventory
from chalicelib.adapters.route53 import Route53Records
from chalicelib.adapters.ssm import SsmPushes
from chalicelib.config import Settings
from chalicelib.core.model import ProbeResult, ProbeTarget, Record
from chalicelib.errors import AwsError, ChangeRejected
from chalicelib.report import Report
from tests.kit.cloud import (
    FAKE_CLOUD_ENV,
    FAKE_DOMAIN,
    FakeCloud,
    Killed,
    kill_at_write,
    small_cluster,
)
from tests.kit.runs import scheduled, settle
from tests.kit.scripted_aws import (
    ACTIVE_MOVE,
    ROUTE53_CHANGED,
    Scripted,
    aws_client,
    ec2_error,
    route53_error,
)
from tests.kit.settings import settings

DOMAIN = FAKE_DOMAIN
ACTIVE = f"lb.{DOMAIN}"
BACKENDS = "/lbf/demo/backends"
LB1, LB2, LB3, LB4 = "127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"
WEBS = ("127.0.1.21", "127.0.1.22", "127.0.1.23")
ALL_WEBS = "127.0.1.21:80 127.0.1.22:80 127.0.1.23:80"


def active_moves(cloud: FakeCloud) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(from, to) of every batch that changed the active record's value, in order."""
    moves = []
    for _, batch in cloud.route53.history:
        deleted = [
            c.record.values for c in batch if c.record.name == ACTIVE and c.action == "DELETE"
        ]
        created = [
            c.record.values for c in batch if c.record.name == ACTIVE and c.action != "DELETE"
        ]
        if created:
            moves.append((deleted[0] if deleted else (), created[0]))
    return moves


def controller_tags(cloud: FakeCloud) -> dict[str, dict[str, str]]:
    return {
        instance_id: {
            k: v
            for k, v in raw.tags
            if k in ("lbf:health", "lbf:state", "lbf:backends", "lbf:name")
        }
        for instance_id, raw in cloud.ec2.instances.items()
    }


# =================================================================================================
# Botocore's retries, against a scripted server on loopback.


@pytest.mark.parametrize(
    ("status", "code", "longest_first_delay"),
    [
        (400, "Throttling", 1.0),  # Route 53's 5 requests/s: throttling backoff, 1 s base
        # botocore's standard mode lists it both as transient and as throttling: 1 s base too.
        (400, "PriorRequestNotComplete", 1.0),
        (500, "InternalFailure", 0.05),
        (503, "ServiceUnavailable", 0.05),
    ],
)
def test_route53_throttling_and_5xx_are_retried_with_backoff(
    scripted_server: Callable[[Scripted], str],
    backoff: list[float],
    status: int,
    code: str,
    longest_first_delay: float,
) -> None:
    script = Scripted(
        [(status, route53_error(code)), (status, route53_error(code)), (200, ROUTE53_CHANGED)]
    )
    records = Route53Records(aws_client("route53", scripted_server(script)), "Z123")

    change_id = records.change(ACTIVE_MOVE, comment="failover")

    assert change_id == "/change/C2"
    assert len(script.requests) == 3
    # The same batch each time: a retry never re-plans (only a stale view does, in the job).
    assert len({body for _, _, body in script.requests}) == 1
    # Exponential backoff with jitter: attempt i waits rand(0, 1) * base * 2**i.
    assert len(backoff) == 2
    assert 0 <= backoff[0] <= longest_first_delay
    assert 0 <= backoff[1] <= 2 * longest_first_delay


def test_route53_gives_up_after_five_attempts_with_the_service_error(
    scripted_server: Callable[[Scripted], str], backoff: list[float]
) -> None:
    script = Scripted([(400, route53_error("Throttling"))])
    records = Route53Records(aws_client("route53", scripted_server(script)), "Z123")

    with pytest.raises(AwsError) as raised:
        records.change(ACTIVE_MOVE, comment="failover")

    assert raised.value.code == "Throttling"
    assert not isinstance(raised.value, ChangeRejected)
    # CONFIG's retries max_attempts=5 counts retries, as botocore's Config does: 6 requests.
    assert len(script.requests) == 6
    assert len(backoff) == 5


def test_a_rejected_compare_and_swap_is_not_retried_but_reported_rejected(
    scripted_server: Callable[[Scripted], str], backoff: list[float]
) -> None:
    """InvalidChangeBatch: the DELETE no longer matches, or the batch can never go through;
    retrying the same batch is useless either way, the job must re-read and judge which."""
    script = Scripted([(400, route53_error("InvalidChangeBatch"))])
    records = Route53Records(aws_client("route53", scripted_server(script)), "Z123")

    with pytest.raises(ChangeRejected):
        records.change(ACTIVE_MOVE, comment="failover")
    assert len(script.requests) == 1
    assert backoff == []


EC2_ONE_INSTANCE = (
    '<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
    "<requestId>req-1</requestId><reservationSet><item><reservationId>r-1</reservationId>"
    "<instancesSet><item><instanceId>i-0123456789abcdef0</instanceId>"
    "<instanceState><code>16</code><name>running</name></instanceState>"
    "<privateIpAddress>10.0.0.5</privateIpAddress>"
    "<launchTime>2024-01-01T00:00:00.000Z</launchTime>"
    "<tagSet><item><key>lbf:cluster</key><value>demo</value></item>"
    "<item><key>lbf:role</key><value>web</value></item></tagSet>"
    "</item></instancesSet></item></reservationSet></DescribeInstancesResponse>"
)


@pytest.mark.parametrize(
    ("status", "code"),
    [(503, "RequestLimitExceeded"), (503, "Unavailable"), (500, "InternalError")],
)
def test_ec2_describe_is_retried_through_throttling_and_5xx(
    scripted_server: Callable[[Scripted], str], backoff: list[float], status: int, code: str
) -> None:
    script = Scripted(
        [(status, ec2_error(code)), (status, ec2_error(code)), (200, EC2_ONE_INSTANCE)]
    )
    inventory = Ec2Inventory(aws_client("ec2", scripted_server(script)))

    [found] = inventory.describe("demo")

    assert found.instance_id == "i-0123456789abcdef0"
    assert found.private_ip == "10.0.0.5"
    assert len(script.requests) == 3
    assert len(backoff) == 2


def test_ec2_describe_that_times_out_is_an_error_never_an_empty_inventory(
    scripted_server: Callable[[Scripted], str], backoff: list[float]
) -> None:
    """A read timeout surfaces as AwsError (which the job turns into "acting on nothing"), never
    as an empty list of instances. The timeout is shortened here; CONFIG sets 10 s."""
    script = Scripted([(200, EC2_ONE_INSTANCE)], delay=5.0)
    quick = CONFIG.merge(botocore.config.Config(read_timeout=0.2, connect_timeout=0.2))
    inventory = Ec2Inventory(aws_client("ec2", scripted_server(script), quick))

    with pytest.raises(AwsError) as raised:
        inventory.describe("demo")

    assert raised.value.code == "ReadTimeoutError"
    assert len(script.requests) == 6  # a timeout is transient: retried like any other


def test_ec2_describe_failing_on_a_later_page_loses_the_whole_read() -> None:
    """Half an inventory would read as "the rest are gone": a failed page fails the read."""
    client = aws_client("ec2", "http://127.0.0.1:9")
    inventory = Ec2Inventory(client)
    page = {
        "Reservations": [
            {
                "Instances": [
                    {"InstanceId": "i-0123456789abcdef0", "State": {"Code": 16, "Name": "running"}}
                ]
            }
        ],
        "NextToken": "page-2",
    }
    with Stubber(client) as stub:
        stub.add_response("describe_instances", page)
        stub.add_client_error("describe_instances", "RequestLimitExceeded", http_status_code=503)
        with pytest.raises(AwsError) as raised:
            inventory.describe("demo")
    assert raised.value.code == "RequestLimitExceeded"


def test_ssm_send_command_is_retried_through_throttling(
    scripted_server: Callable[[Scripted], str], backoff: list[float]
) -> None:
    error = '{"__type": "ThrottlingException", "message": "Rate exceeded"}'
    sent = '{"Command": {"CommandId": "0b5e1c6a-1f2d-4c3b-9a8e-7d6c5b4a3f21"}}'
    script = Scripted(
        [(400, error), (400, error), (200, sent)], content_type="application/x-amz-json-1.1"
    )
    commands = SsmPushes(aws_client("ssm", scripted_server(script)), "LbFailover-UpdateBackends")

    command = commands.send("i-0123456789abcdef0", "10.0.0.5:80", "a" * 64, now=0.0)

    assert command.command_id == "0b5e1c6a-1f2d-4c3b-9a8e-7d6c5b4a3f21"
    assert len(script.requests) == 3
    assert len(backoff) == 2


# =================================================================================================
# Route 53 after botocore gave up.


@pytest.mark.parametrize("code", ["Throttling", "PriorRequestNotComplete", "ServiceUnavailable"])
def test_a_failed_change_batch_leaves_everything_as_it_was_and_the_next_run_moves_once(
    code: str,
) -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    lb1, lb2 = cloud.ec2.id_at(LB1), cloud.ec2.id_at(LB2)
    cloud.ec2.set_state(lb1, "stopped")
    cloud.route53.fail_next = [AwsError("route53", "ChangeResourceRecordSets", code, "busy")]

    failed = scheduled(cloud, config, rounds=1)

    assert not failed.ok
    assert any(code in e for e in failed.errors)
    assert cloud.route53.value(ACTIVE) == (LB1,)
    # lbf:state follows the record: not written while the record did not move.
    assert cloud.ec2.tag(lb1, "lbf:state") == "active"
    assert cloud.ec2.tag(lb2, "lbf:state") == "standby"

    settle(cloud, config)

    assert cloud.route53.value(ACTIVE) == (LB2,)
    assert active_moves(cloud)[1:] == [((LB1,), (LB2,))]
    assert cloud.ec2.tag(lb2, "lbf:state") == "active"
    assert any("moved" in m for m in cloud.sns.messages)


def test_a_stale_view_is_re_read_and_a_record_someone_else_moved_is_respected() -> None:
    """Another writer moved the record to a healthy LB between our read and our change: our CAS
    fails, we re-read, and we do not move it again (no flip-flop)."""
    cloud = small_cluster(lbs=3)
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    lb1 = cloud.ec2.id_at(LB1)
    cloud.ec2.set_state(lb1, "stopped")

    def someone_else() -> None:
        cloud.route53.records[(ACTIVE, "A")] = Record(ACTIVE, "A", 60, (LB3,))

    cloud.route53.before_change = someone_else
    report = scheduled(cloud, config, rounds=1)

    assert report.ok, report.errors
    assert any("re-read" in n for n in report.notes)
    assert cloud.route53.value(ACTIVE) == (LB3,)
    assert active_moves(cloud)[1:] == []  # only the creation: we never moved it
    settle(cloud, config)
    assert cloud.route53.value(ACTIVE) == (LB3,)
    assert cloud.ec2.tag(cloud.ec2.id_at(LB3), "lbf:state") == "active"


def test_two_overlapping_runs_with_different_views_move_the_record_once() -> None:
    """The event-triggered run (no probes) read the tags before the scheduled run's round made lb3
    healthy. Both see lb1 stop. The scheduled run moves the record to lb3 (lowest eligible in its
    view); the event run's compare-and-swap then fails. Re-planning from a fresh record alone, it
    would still think lb3 unhealthy and move the record again, to lb4: a flip-flop."""
    cloud = small_cluster(lbs=4)
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    lb1, lb2, lb3 = cloud.ec2.id_at(LB1), cloud.ec2.id_at(LB2), cloud.ec2.id_at(LB3)
    cloud.prober.dead.add(LB2)
    settle(cloud, config)
    assert cloud.ec2.tag(lb2, "lbf:health") == "unhealthy"
    # lb3 is coming back: one good probe so far, one more makes it healthy.
    cloud.ec2.set_tag(lb3, "lbf:health", "unhealthy")
    cloud.ec2.set_tag(lb3, "lbf:probe", "ok:1")
    moves_before = len(active_moves(cloud))
    cloud.ec2.set_state(lb1, "stopped")

    scheduled: list[Report] = []
    cloud.route53.before_change = lambda: scheduled.append(
        jobs.reconcile(config, cloud.services(), cloud.clock, rounds=1)
    )
    event = jobs.on_instance_change(config, cloud.services(), cloud.clock, lb1)

    assert scheduled[0].ok, scheduled[0].errors
    assert event.ok, event.errors
    assert active_moves(cloud)[moves_before:] == [((LB1,), (LB3,))]
    assert cloud.route53.value(ACTIVE) == (LB3,)
    assert cloud.ec2.tag(lb3, "lbf:state") == "active"
    settle(cloud, config)
    assert active_moves(cloud)[moves_before:] == [((LB1,), (LB3,))]


def test_two_overlapping_runs_push_each_list_once() -> None:
    """The run whose compare-and-swap failed re-reads the pushes too: the other run already sent
    this list to every LB, so it sends nothing again."""
    cloud = small_cluster(lbs=3)
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    lb1 = cloud.ec2.id_at(LB1)
    cloud.ec2.set_state(lb1, "stopped")
    cloud.ec2.set_state(cloud.ec2.id_at(WEBS[0]), "stopped")
    cloud.calls.log.clear()

    def other_run() -> None:
        jobs.reconcile(config, cloud.services(), cloud.clock, rounds=1)

    cloud.route53.before_change = other_run
    event = jobs.on_instance_change(config, cloud.services(), cloud.clock, lb1)

    assert event.ok, event.errors
    pushes = Counter((d[0], d[2]) for op, d in cloud.calls.log if op == "SendCommand")  # type: ignore[index]
    assert pushes
    assert set(pushes.values()) == {1}


# =================================================================================================
# EC2 and the other reads.


@pytest.mark.parametrize(
    "fault",
    [
        "describe-throttled",
        "describe-timeout",
        "describe-unavailable",
        "records-read",
        "parameters-read",
        "commands-read",
    ],
)
def test_a_view_that_fails_to_load_acts_on_nothing(fault: str) -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    cloud.prober.dead.add(LB1)  # a real reason to act, if the run could see it
    errors = {
        "describe-throttled": ("ec2", "DescribeInstances", "RequestLimitExceeded"),
        "describe-timeout": ("ec2", "DescribeInstances", "ReadTimeoutError"),
        "describe-unavailable": ("ec2", "DescribeInstances", "Unavailable"),
        "records-read": ("route53", "ListResourceRecordSets", "Throttling"),
        "parameters-read": ("ssm", "GetParameters", "ThrottlingException"),
        "commands-read": ("ssm", "ListCommands", "ThrottlingException"),
    }
    error = AwsError(*errors[fault], "failed after retries")
    if fault.startswith("describe"):
        cloud.ec2.fail_describe = error
    elif fault == "records-read":
        cloud.route53.fail_read = error
    elif fault == "parameters-read":
        cloud.ssm.fail_read = error
    else:
        cloud.ssm.fail_recent = error
    records = dict(cloud.route53.records)
    tags = controller_tags(cloud)
    parameters = dict(cloud.ssm.parameters)
    probe_rounds = len(cloud.prober.rounds)
    cloud.calls.log.clear()

    report = scheduled(cloud, config)

    assert not report.ok
    assert "acting on nothing" in report.errors[0]
    assert cloud.calls.writes() == []
    assert len(cloud.prober.rounds) == probe_rounds  # not even a probe
    assert cloud.route53.records == records
    assert controller_tags(cloud) == tags
    assert cloud.ssm.parameters == parameters

    cloud.ec2.fail_describe = cloud.route53.fail_read = cloud.ssm.fail_read = (
        cloud.ssm.fail_recent
    ) = None
    settle(cloud, config)
    assert cloud.route53.value(ACTIVE) == (LB2,)
    assert cloud.ssm.parameters[BACKENDS] == ALL_WEBS


# =================================================================================================
# SSM.


def pushes(cloud: FakeCloud) -> list[tuple[str, str]]:
    return [(d[0], d[1]) for op, d in cloud.calls.log if op == "SendCommand"]  # type: ignore[index]


def test_send_command_failing_for_one_lb_leaves_the_others_updated_and_is_retried_next_run() -> (
    None
):
    cloud = small_cluster(lbs=3)
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    lb1, lb2, lb3 = (cloud.ec2.id_at(a) for a in (LB1, LB2, LB3))
    old = cloud.ec2.tag(lb2, "lbf:backends")
    cloud.ec2.set_state(cloud.ec2.id_at(WEBS[2]), "stopped")
    cloud.ssm.fail_send_for = {lb2}
    cloud.calls.log.clear()

    report = scheduled(cloud, config)

    shorter = "127.0.1.21:80 127.0.1.22:80"
    assert not report.ok
    assert any(lb2 in e and "SendCommand" in e for e in report.errors)
    assert cloud.ssm.parameters[BACKENDS] == shorter
    new = cloud.ec2.tag(lb1, "lbf:backends")
    assert new != old
    assert cloud.ec2.tag(lb3, "lbf:backends") == new
    assert cloud.ec2.tag(lb2, "lbf:backends") == old  # set only after the LB confirms
    assert pushes(cloud).count((lb1, shorter)) == 1
    assert pushes(cloud).count((lb3, shorter)) == 1

    cloud.ssm.fail_send_for = set()
    cloud.calls.log.clear()
    settle(cloud, config)

    assert pushes(cloud) == [(lb2, shorter)]
    assert cloud.ec2.tag(lb2, "lbf:backends") == new


@pytest.mark.parametrize("status", ["Failed", "TimedOut", "Undeliverable", "Cancelled"])
def test_a_push_that_ends_badly_is_not_confirmed_and_retried_on_the_next_run_only(
    status: str,
) -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    lb1, lb2 = cloud.ec2.id_at(LB1), cloud.ec2.id_at(LB2)
    old = cloud.ec2.tag(lb1, "lbf:backends")
    cloud.ec2.set_state(cloud.ec2.id_at(WEBS[2]), "stopped")
    cloud.ssm.outcome = lambda command: status if command.instance_id == lb2 else "Success"
    cloud.calls.log.clear()
    cloud.sns.messages.clear()

    scheduled(cloud, config)

    shorter = "127.0.1.21:80 127.0.1.22:80"
    assert pushes(cloud) == [(lb1, shorter), (lb2, shorter)]  # once in the run, not every round
    assert cloud.ec2.tag(lb2, "lbf:backends") == old
    assert cloud.ec2.tag(lb1, "lbf:backends") != old
    assert [m for m in cloud.sns.messages if lb2 in m and status in m]

    cloud.ssm.outcome = lambda command: "Success"
    cloud.calls.log.clear()
    settle(cloud, config)

    assert pushes(cloud) == [(lb2, shorter)]
    assert cloud.ec2.tag(lb2, "lbf:backends") == cloud.ec2.tag(lb1, "lbf:backends")


def test_an_lb_terminated_mid_push_is_dropped_without_errors() -> None:
    cloud = small_cluster(lbs=3)
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    lb1, lb3 = cloud.ec2.id_at(LB1), cloud.ec2.id_at(LB3)
    cloud.ec2.set_state(cloud.ec2.id_at(WEBS[2]), "stopped")
    # lb3's agent never answers: its push stays Pending, and meanwhile lb3 is terminated.
    cloud.ssm.outcome = lambda command: "Pending" if command.instance_id == lb3 else "Success"
    scheduled(cloud, config, rounds=1)
    cloud.ec2.set_state(lb3, "terminated")
    cloud.calls.log.clear()

    report = settle(cloud, config, runs=3)

    assert report.ok
    assert all(i != lb3 for i, _ in pushes(cloud))
    assert cloud.route53.value(f"lb3.{DOMAIN}") is None
    assert cloud.route53.value(ACTIVE) == (LB1,)
    assert cloud.ec2.tag(lb1, "lbf:backends") == cloud.ec2.tag(cloud.ec2.id_at(LB2), "lbf:backends")
    assert cloud.ssm.parameters["/lbf/demo/lbs"] == f"{LB1} {LB2}"


# =================================================================================================
# Probes.


@pytest.mark.parametrize(
    "detail",
    [
        "timeout",
        "connection reset",
        "connection refused",
        "tls error",
        "bad status line",
        "500",
        "empty response",
    ],
)
def test_every_kind_of_probe_failure_counts_as_a_failure(detail: str) -> None:
    """What the real prober reports for each kind (tests/functional/test_probe.py proves it is
    bounded by the timeout), folded into damping like any failure."""
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    inner = cloud.prober

    class Prober:
        def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
            results = inner.probe_round(targets)
            lb1 = cloud.ec2.id_at(LB1)
            if lb1 in results:
                results[lb1] = ProbeResult(ok=False, detail=detail, seconds=config.probe_timeout)
            return results

    services = cloud.services()
    services = type(services)(**{**services.__dict__, "prober": Prober()})
    report = jobs.reconcile(config, services, cloud.clock)

    assert cloud.route53.value(ACTIVE) == (LB2,)
    assert report.failovers[0].round == config.fall


def test_the_probers_own_network_failing_moves_nothing_and_shrinks_nothing() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    records = dict(cloud.route53.records)
    cloud.prober.dead |= {LB1, LB2, *WEBS}
    cloud.sns.messages.clear()
    cloud.calls.log.clear()

    for _ in range(3):
        settle(cloud, config, runs=1)

    assert cloud.route53.records == records
    assert cloud.ssm.parameters[BACKENDS] == ALL_WEBS
    assert cloud.calls.count("SendCommand") == 0
    assert cloud.calls.count("ChangeResourceRecordSets") == 0
    assert all(cloud.ec2.tag(i, "lbf:health") == "healthy" for i in cloud.ec2.instances)
    faults = [m for m in cloud.sns.messages if "fault on the prober's side" in m]
    assert len(faults) == 1  # a notice when it starts, not every round

    cloud.prober.dead.clear()
    settle(cloud, config)
    assert cloud.route53.records == records


def test_the_prober_fault_threshold_is_the_named_setting() -> None:
    """LBF_PROBER_FAULT_PERCENT: with 60, four of five targets failing is the prober's fault; with
    the default of 100 it is not, and the dead LB is replaced. (The pool is probed in every
    round here, so that every round's in-process path holds the five.)"""
    for percent, moved in (("60", False), ("100", True)):
        cloud = small_cluster()
        config = settings(FAKE_CLOUD_ENV, prober_fault_percent=percent, pool_interval=3)
        settle(cloud, config)
        cloud.prober.dead |= {LB1, *WEBS}
        settle(cloud, config, runs=1)
        assert (cloud.route53.value(ACTIVE) == (LB2,)) is moved, percent


# =================================================================================================
# Both LBs down, both back, one flapping.


def test_both_lbs_down_then_both_back_never_moves_the_record() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    cloud.sns.messages.clear()
    cloud.prober.dead |= {LB1, LB2}

    settle(cloud, config, runs=3)

    assert cloud.route53.value(ACTIVE) == (LB1,)  # left as it is: nowhere better to go
    assert len([m for m in cloud.sns.messages if "no load balancer is eligible" in m]) == 1
    assert cloud.ssm.parameters[BACKENDS] == ALL_WEBS

    cloud.prober.dead -= {LB1, LB2}
    settle(cloud, config, runs=2)

    assert cloud.route53.value(ACTIVE) == (LB1,)
    assert active_moves(cloud)[1:] == []
    assert cloud.ec2.tag(cloud.ec2.id_at(LB1), "lbf:state") == "active"
    assert cloud.ec2.tag(cloud.ec2.id_at(LB2), "lbf:health") == "healthy"


def test_an_lb_flapping_every_round_never_moves_the_record() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    rounds = iter(range(10_000))
    cloud.prober.dead_when = lambda address, now: address == LB1 and next(rounds) % 2 == 0

    settle(cloud, config, runs=10)

    assert active_moves(cloud)[1:] == []
    assert cloud.ec2.tag(cloud.ec2.id_at(LB1), "lbf:health") == "healthy"


@hypothesis_settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    pattern=st.lists(st.booleans(), min_size=6, max_size=60),
    active_flaps=st.booleans(),
)
def test_damping_allows_at_most_one_move_per_fall_plus_rise_rounds(
    pattern: list[bool], active_flaps: bool
) -> None:
    """One LB flaps in any pattern (True: its probe fails that round), the other stays healthy.
    The record moves only after FALL failures in a row, at most once in any FALL + RISE rounds,
    and never back to the flapping LB (non-preemptive)."""
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    flapping = LB1 if active_flaps else LB2
    results = iter(pattern)
    round_of_move: list[int] = []
    rounds_done = 0

    def dead(address: str, now: float) -> bool:
        return address == flapping and next(results, False)

    cloud.prober.dead_when = dead
    for _ in range((len(pattern) + config.probe_rounds - 1) // config.probe_rounds):
        before = len(active_moves(cloud))
        report = scheduled(cloud, config)
        round_of_move += [rounds_done + f.round for f in report.failovers]
        rounds_done += report.rounds
        assert len(active_moves(cloud)) - before == len(report.failovers)

    window = config.fall + config.rise
    for first, second in itertools.pairwise(round_of_move):
        assert second - first >= window
    longest_failure_run = max(
        (len(r) for r in "".join("F" if p else "." for p in pattern).split(".")), default=0
    )
    if not active_flaps or longest_failure_run < config.fall:
        assert round_of_move == []
    else:
        assert len(round_of_move) == 1
        assert cloud.route53.value(ACTIVE) == (LB2,)


def test_every_lb_coming_back_with_a_new_ip_leaves_no_record_on_the_old_one() -> None:
    """Found by the model-based soak: lb2 held the record, every LB was stopped, then all started
    with new IPs; once healthy the record went to the lowest name for no reason. Since then the
    SPEC says a record never outlives its LB's address: lb2's old one, held by nobody, leaves the
    record (it is deleted, and lb2 is no longer tagged active), and once an LB is eligible the
    record is created again, on the lowest-named healthy LB, as an absent record is."""
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    lb1, lb2 = cloud.ec2.id_at(LB1), cloud.ec2.id_at(LB2)
    cloud.ec2.set_state(lb1, "stopped")
    settle(cloud, config)
    assert cloud.route53.value(ACTIVE) == (LB2,)
    cloud.ec2.set_state(lb2, "stopped")
    settle(cloud, config)
    assert cloud.route53.value(ACTIVE) == (LB2,)  # it keeps its private IP: nowhere better to go

    cloud.ec2.set_state(lb1, "running", address="127.0.0.21")
    cloud.ec2.set_state(lb2, "running", address="127.0.0.22")
    batches = len(cloud.route53.batches)
    settle(cloud, config)

    # 127.0.0.12 is nobody's now: the record is deleted first, in a batch that creates nothing.
    first = next(
        b for b in cloud.route53.batches[batches:] if any(c.record.name == ACTIVE for c in b)
    )
    assert [(c.action, c.record.values) for c in first if c.record.name == ACTIVE] == [
        ("DELETE", (LB2,))
    ]

    assert cloud.route53.value(ACTIVE) == ("127.0.0.21",)
    assert cloud.ec2.tag(lb1, "lbf:state") == "active"
    assert cloud.ec2.tag(lb2, "lbf:state") == "standby"


def test_a_record_pointed_nowhere_while_no_lb_is_eligible_is_repaired_to_the_active_lb() -> None:
    """Found by the model-based soak. While no LB could take the record, the LB tagged active lost
    its lbf:state; once LBs were healthy again, the repair went to the lowest name instead."""
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    cloud.route53.records[(ACTIVE, "A")] = Record(ACTIVE, "A", 60, (LB2,))
    settle(cloud, config)
    lb1, lb2 = cloud.ec2.id_at(LB1), cloud.ec2.id_at(LB2)
    assert cloud.ec2.tag(lb2, "lbf:state") == "active"
    cloud.prober.dead |= {LB1, LB2}
    settle(cloud, config)
    cloud.route53.records[(ACTIVE, "A")] = Record(ACTIVE, "A", 60, ("203.0.113.50",))
    settle(cloud, config, runs=1)
    assert cloud.ec2.tag(lb2, "lbf:state") == "active"  # still its claim
    cloud.sns.messages.clear()

    cloud.prober.dead.clear()
    settle(cloud, config)

    assert cloud.route53.value(ACTIVE) == (LB2,)
    assert cloud.ec2.tag(lb1, "lbf:state") == "standby"
    assert [m for m in cloud.sns.messages if "repaired" in m]


# =================================================================================================
# A run killed mid-apply.


def _failover_scenario() -> tuple[FakeCloud, Settings]:
    cloud = small_cluster(lbs=3)
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    cloud.ec2.set_state(cloud.ec2.id_at(LB1), "stopped")
    cloud.ec2.set_state(cloud.ec2.id_at(WEBS[2]), "stopped")
    cloud.ec2.add("lb", "127.0.0.15")  # a new LB without a name: lbf:name is written for it
    return cloud, config


def _writes_of_a_clean_run() -> int:
    cloud, config = _failover_scenario()
    cloud.calls.log.clear()
    scheduled(cloud, config)
    return len(cloud.calls.writes())


def _end_state(cloud: FakeCloud) -> tuple[object, ...]:
    # The notices and the history record how the state was reached (a killed run's rounds, then
    # the next run's), not the state: they differ from the reference by design.
    return (
        dict(cloud.route53.records),
        controller_tags(cloud),
        {k: v for k, v in cloud.ssm.parameters.items() if not k.endswith(("/notices", "/history"))},
    )


@pytest.mark.parametrize("kill_at", range(_writes_of_a_clean_run()))
def test_a_run_killed_mid_apply_converges_without_duplicate_pushes_or_lost_tags(
    kill_at: int,
) -> None:
    reference, config = _failover_scenario()
    settle(reference, config)

    cloud, config = _failover_scenario()
    cloud.calls.log.clear()
    cloud.calls.before = kill_at_write(kill_at)
    with pytest.raises(Killed):
        scheduled(cloud, config)
    cloud.calls.before = None
    cloud.clock.advance(60)
    settle(cloud, config)

    assert _end_state(cloud) == _end_state(reference)
    # Pushes SSM holds (the call log also lists the call the kill cut off before it was made).
    sent = Counter((c.instance_id, c.checksum) for c in cloud.ssm.commands)
    assert set(sent.values()) == {1}, sent
    assert len(active_moves(cloud)) == len(active_moves(reference))


# =================================================================================================
# The operator edits the active record by hand.


def test_an_operator_pointing_the_record_at_a_healthy_lb_is_respected() -> None:
    cloud = small_cluster(lbs=3)
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    cloud.route53.records[(ACTIVE, "A")] = Record(ACTIVE, "A", 60, (LB3,))
    cloud.sns.messages.clear()
    moves = len(active_moves(cloud))

    settle(cloud, config)

    assert cloud.route53.value(ACTIVE) == (LB3,)
    assert len(active_moves(cloud)) == moves
    assert cloud.ec2.tag(cloud.ec2.id_at(LB3), "lbf:state") == "active"
    assert cloud.ec2.tag(cloud.ec2.id_at(LB1), "lbf:state") == "standby"


@pytest.mark.parametrize("address", ["203.0.113.50", "127.0.1.21"], ids=["outside", "a-web-server"])
def test_an_operator_pointing_the_record_at_no_lb_is_repaired_with_a_notice(address: str) -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    cloud.route53.records[(ACTIVE, "A")] = Record(ACTIVE, "A", 60, (address,))
    cloud.sns.messages.clear()

    report = settle(cloud, config, runs=1)

    assert cloud.route53.value(ACTIVE) == (LB1,)
    assert [m for m in cloud.sns.messages if "repaired" in m and address in m]
    assert report.failovers == []  # a repair, not a failover
    settle(cloud, config)
    assert len([m for m in cloud.sns.messages if "repaired" in m]) == 1
