"""The reconcile job against in-memory AWS: what an operator sees after each run.

These use tests/kit/cloud.py rather than moto because the behaviour under test depends on Route 53
rejecting a stale compare-and-swap and on SSM command statuses, both of which moto gets wrong.
"""

from __future__ import annotations

import itertools
import random

import pytest

from chalicelib.core.model import Record
from chalicelib.errors import AwsError
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud, small_cluster
from tests.kit.runs import converge, event, run
from tests.kit.settings import settings

DOMAIN = FAKE_DOMAIN
ACTIVE = f"lb.{DOMAIN}"


@pytest.fixture
def cloud() -> FakeCloud:
    return small_cluster()


def test_first_run_creates_records_after_rise_and_pushes_backends(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    report = converge(cloud, config)

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    assert cloud.route53.value(f"lb1.{DOMAIN}") == ("127.0.0.11",)
    assert cloud.route53.value(f"lb2.{DOMAIN}") == ("127.0.0.12",)
    owned = cloud.route53.records[(f"_lbf.{DOMAIN}", "TXT")].values
    assert owned == ('"cluster=demo"', '"lb"', '"lb1"', '"lb2"')
    expected = "127.0.1.21:80 127.0.1.22:80 127.0.1.23:80"
    assert cloud.ssm.parameters["/lbf/demo/backends"] == expected
    assert cloud.ssm.parameters["/lbf/demo/lbs"] == "127.0.0.11 127.0.0.12"
    lb1, lb2 = cloud.ec2.ids("lb")
    assert cloud.ec2.tag(lb1, "lbf:state") == "active"
    assert cloud.ec2.tag(lb2, "lbf:state") == "standby"
    # The push succeeded, so each LB's lbf:backends holds the checksum it confirmed.
    assert cloud.ec2.tag(lb1, "lbf:backends") == cloud.ec2.tag(lb2, "lbf:backends")
    assert cloud.calls.count("SendCommand") == 2
    # Nothing is healthy before RISE=2 rounds: the record appears in round 2, not round 1.
    created = next(at for at, b in cloud.route53.history if any(c.record.name == ACTIVE for c in b))
    assert created - cloud.prober.rounds[0] == pytest.approx(config.probe_interval)
    assert cloud.sns.messages == []  # unknown verdicts at start are never a reason to notify
    # Creating the record is not a failover.
    assert report.failovers == []


def test_a_steady_run_writes_nothing_and_reads_each_thing_once(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    converge(cloud, config)  # lets the probe counts settle at their caps
    cloud.calls.log.clear()

    report = converge(cloud, config)

    assert cloud.calls.writes() == []
    assert report.applied == []
    for read in ("DescribeInstances", "ListResourceRecordSets", "GetParameters", "ListCommands"):
        assert cloud.calls.count(read) == 1, read


def test_dead_active_lb_is_replaced_after_fall_rounds(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    converge(cloud, config)
    cloud.prober.dead.add("127.0.0.11")

    report = converge(cloud, config)

    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    [failover] = report.failovers
    assert (failover.moved_from, failover.moved_to) == ("lb1", "lb2")
    assert failover.round == config.fall
    # Exactly one batch moved it, as a compare-and-swap of the exact record that was there.
    moves = [b for _, b in cloud.route53.history if any(c.record.name == ACTIVE for c in b)]
    last = moves[-1]
    actions = [(c.action, c.record.values) for c in last if c.record.name == ACTIVE]
    assert actions == [("DELETE", ("127.0.0.11",)), ("CREATE", ("127.0.0.12",))]
    assert any("moved" in m for m in cloud.sns.messages)
    lb1, lb2 = cloud.ec2.ids("lb")
    assert cloud.ec2.tag(lb1, "lbf:health") == "unhealthy"
    assert cloud.ec2.tag(lb2, "lbf:state") == "active"


def test_a_single_failed_probe_does_not_move_the_record(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    converge(cloud, config)
    flaps = itertools.cycle([True, False])
    cloud.prober.dead_when = lambda address, now: address == "127.0.0.11" and next(flaps)

    converge(cloud, config)

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)


def test_stopped_active_lb_is_replaced_in_the_first_round(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    lb1, _ = cloud.ec2.ids("lb")
    cloud.ec2.set_state(lb1, "stopped")

    report = converge(cloud, config)

    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    assert report.failovers[0].round == 1
    # Its own record is removed and the ownership record no longer lists it.
    assert cloud.route53.value(f"lb1.{DOMAIN}") is None
    assert cloud.route53.records[(f"_lbf.{DOMAIN}", "TXT")].values == (
        '"cluster=demo"',
        '"lb"',
        '"lb2"',
    )


def test_the_event_run_acts_on_state_without_advancing_counts(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    lb1, lb2 = cloud.ec2.ids("lb")
    probe_before = cloud.ec2.tag(lb2, "lbf:probe")
    cloud.ec2.set_state(lb1, "stopping")
    rounds_before = len(cloud.prober.rounds)

    report = event(cloud, config, lb1)

    assert report.ok
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    assert len(cloud.prober.rounds) == rounds_before
    assert cloud.ec2.tag(lb2, "lbf:probe") == probe_before


def test_an_event_for_an_instance_outside_the_cluster_changes_nothing(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    cloud.calls.log.clear()

    report = run(cloud, config, rounds=1, probe=False, concerning="i-0123456789abcdef0")

    assert cloud.calls.writes() == []
    assert cloud.calls.count("ListResourceRecordSets") == 0
    assert "not an instance of cluster demo" in report.notes[0]


@pytest.mark.parametrize("rounds", ["6", "3"])
def test_detection_bound_holds_across_invocations(rounds: str) -> None:
    """The record leaves a dead LB within the bound `status` prints, plus start-up:
    (FALL + 1) x INTERVAL + TIMEOUT + (60 - ROUNDS x INTERVAL) + the cold start.

    Scheduled invocations start every 60 s; each first round is delayed by a cold start and the
    inventory read, so the gap between the last round of one run and the first of the next is
    longer than INTERVAL (by 30 s more with 3 rounds). Deaths are placed all over the minute,
    including in that gap.
    """
    config = settings(FAKE_CLOUD_ENV, probe_rounds=rounds)
    rng = random.Random(7)
    worst = 0.0
    for trial in range(40):
        cloud = FakeCloud()
        cloud.prober.timeout = config.probe_timeout
        cloud.ec2.add("lb", "127.0.0.11", name="lb1")
        cloud.ec2.add("lb", "127.0.0.12", name="lb2")
        cloud.ec2.add("web", "127.0.1.21")
        start = cloud.clock.now()
        cold_start = 5.0 if trial % 2 else 2.0
        bound = config.detection_bound.seconds + cold_start
        death = start + 120 + rng.uniform(0, 60)
        cloud.prober.dead_when = lambda address, now, d=death: address == "127.0.0.11" and now >= d
        for minute in range(6):
            cloud.clock.time = max(cloud.clock.time, start + 60 * minute + cold_start)
            run(cloud, config)
            if cloud.route53.value(ACTIVE) == ("127.0.0.12",):
                break
        moved_at = next(
            at
            for at, batch in cloud.route53.history
            if any(
                c.record.name == ACTIVE
                and c.action == "CREATE"
                and c.record.values == ("127.0.0.12",)
                for c in batch
            )
        )
        worst = max(worst, moved_at - death)
        assert moved_at - death <= bound, (trial, moved_at - death, bound)
    # The bound is not vacuous: the worst case uses most of it.
    gap = 60 - config.probe_rounds * config.probe_interval
    assert worst > config.fall * config.probe_interval + gap, worst


def test_two_runs_from_one_view_change_the_record_once(cloud: FakeCloud) -> None:
    """Run B planned the same failover as run A; A's batch lands first, B's CAS fails and
    B re-plans from the fresh record instead of overwriting it."""
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    converge(cloud, config)
    lb1, _ = cloud.ec2.ids("lb")
    cloud.ec2.set_state(lb1, "stopped")

    def other_run() -> None:
        report_a = run(cloud, config, rounds=1)
        assert report_a.ok

    cloud.route53.before_change = other_run
    report_b = run(cloud, config, rounds=1)

    assert report_b.ok, report_b.errors
    assert any("re-read" in note for note in report_b.notes)
    moves = [
        batch for _, batch in cloud.route53.history if any(c.record.name == ACTIVE for c in batch)
    ]
    assert len(moves) == 2  # the creation in the first run, and exactly one failover
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)


def test_a_record_still_stale_after_one_re_read_fails_the_run(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    lb1, _ = cloud.ec2.ids("lb")
    cloud.ec2.set_state(lb1, "stopped")
    # Someone else changes the active record just before each of this run's batches: stale twice.
    # (A rejection after which the records read unchanged is permanent, not stale: that is
    # tests/functional/test_rules_meet.py.)
    elsewhere = iter(["127.0.0.13", "127.0.0.14"])

    def someone_else() -> None:
        address = next(elsewhere, None)
        if address is None:
            return
        cloud.route53.records[(ACTIVE, "A")] = Record(ACTIVE, "A", 60, (address,))
        cloud.route53.before_change = someone_else

    cloud.route53.before_change = someone_else
    cloud.calls.log.clear()
    report = run(cloud, config, rounds=1)

    assert not report.ok
    # Judged stale twice, by two re-reads: said once, as stale, not as a permanent rejection.
    assert len([e for e in report.errors if "still stale after a re-read" in e]) == 1
    assert not any("permanent" in e for e in report.errors)
    assert cloud.calls.count("DescribeInstances") == 3  # the run's read and two re-reads
    # Nothing was half-applied: the record is where the other writer left it, and lbf:state
    # did not move.
    assert cloud.route53.value(ACTIVE) == ("127.0.0.14",)
    assert cloud.ec2.tag(lb1, "lbf:state") == "active"


def test_inventory_failure_acts_on_nothing(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    cloud.calls.log.clear()
    cloud.ec2.fail_describe = AwsError("ec2", "DescribeInstances", "RequestLimitExceeded", "slow")

    report = run(cloud, config)

    assert not report.ok
    assert "acting on nothing" in report.errors[0]
    assert cloud.calls.writes() == []
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)


@pytest.mark.parametrize("how", ["dry_run", "paused"])
def test_dry_run_and_pause_plan_but_write_nothing(cloud: FakeCloud, how: str) -> None:
    config = (
        settings(FAKE_CLOUD_ENV, dry_run="true") if how == "dry_run" else settings(FAKE_CLOUD_ENV)
    )
    if how == "paused":
        cloud.ssm.parameters["/lbf/demo/paused"] = "true"

    report = run(cloud, config)

    assert report.dry_run
    assert cloud.calls.writes() == []
    assert any("CREATE lb.prod.example.com A 127.0.0.11" in p for p in report.planned)


def test_paused_still_sends_notices_marked_paused_and_writes_nothing_else(
    cloud: FakeCloud,
) -> None:
    """SPEC: while paused an operator still hears about a dying LB; nothing else changes."""
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    converge(cloud, config)
    cloud.ssm.parameters["/lbf/demo/paused"] = "true"
    cloud.prober.dead.add("127.0.0.11")
    cloud.calls.log.clear()

    report = run(cloud, config)

    assert report.ok, report.errors
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)  # planned, not moved
    assert any("moved off lb1 (unhealthy) to lb2" in p for p in report.planned)
    # The notice went out, saying it is paused and that nothing moved; and the notices
    # parameter remembers it, so the next paused run does not send it again.
    [notice] = cloud.sns.messages
    assert notice.startswith("[paused] active record would move, not moved while paused: moved off")
    writes = cloud.calls.writes()
    assert [op for op, _ in writes] == ["Publish", "PutParameter"]
    assert writes[1][1][0] == "/lbf/demo/notices"  # type: ignore[index]
    assert report.notices == [notice]

    cloud.calls.log.clear()
    again = run(cloud, config)

    assert again.ok, again.errors
    assert cloud.calls.writes() == []
    assert len(cloud.sns.messages) == 1


def test_a_dry_run_with_a_failing_lb_sends_no_notice_and_stores_none(cloud: FakeCloud) -> None:
    converge(cloud, settings(FAKE_CLOUD_ENV))
    converge(cloud, settings(FAKE_CLOUD_ENV))
    cloud.prober.dead.add("127.0.0.11")
    cloud.ec2.add("web", "127.0.1.24", tags={"lbf:port": "x"})  # a new condition: skipped
    notices_before = cloud.ssm.parameters.get("/lbf/demo/notices")
    cloud.calls.log.clear()

    report = run(cloud, settings(FAKE_CLOUD_ENV, dry_run="true"))

    assert cloud.calls.writes() == []
    assert cloud.sns.messages == []
    assert cloud.ssm.parameters.get("/lbf/demo/notices") == notices_before
    assert report.notices == []
    assert any(
        n.startswith("would notify: active record moved: moved off lb1") for n in report.notes
    )
    assert any("would notify: instance" in n and "skipped" in n for n in report.notes)
    assert any(p.startswith("parameter /lbf/demo/notices = skipped:") for p in report.planned)


def test_a_notice_that_cannot_be_sent_is_an_error_and_still_remembered(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    converge(cloud, config)
    cloud.prober.dead |= {"127.0.0.11", "127.0.0.12"}

    def refuse(subject: str, message: str) -> None:
        raise AwsError("sns", "Publish", "AuthorizationError", "not allowed")

    cloud.sns.publish = refuse  # type: ignore[method-assign]

    report = run(cloud, config)

    assert any("notice not sent: sns.Publish: AuthorizationError" in e for e in report.errors)
    assert "no-eligible-lb" in cloud.ssm.parameters["/lbf/demo/notices"]


def test_no_eligible_lb_leaves_the_record_and_notifies_once(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    cloud.prober.dead |= {"127.0.0.11", "127.0.0.12"}
    cloud.sns.messages.clear()

    converge(cloud, config)
    converge(cloud, config)

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    no_lb = [m for m in cloud.sns.messages if "no load balancer is eligible" in m]
    assert len(no_lb) == 1


def test_the_prober_failing_everything_at_once_moves_nothing(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    converge(cloud, config)
    cloud.prober.dead |= {"127.0.0.11", "127.0.0.12", "127.0.1.21", "127.0.1.22", "127.0.1.23"}
    cloud.sns.messages.clear()

    converge(cloud, config)

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    assert cloud.ssm.parameters["/lbf/demo/backends"].count(":80") == 3
    assert any("fault on the prober's side" in m for m in cloud.sns.messages)


def test_a_dry_run_prints_each_push_once_across_its_rounds(cloud: FakeCloud) -> None:
    """A printed push is sent nowhere, so SSM never reports it; later rounds of the run must
    still take it as made, not print it again each round, nor ask SSM about a command that
    does not exist."""
    converge(cloud, settings(FAKE_CLOUD_ENV))
    converge(cloud, settings(FAKE_CLOUD_ENV))
    cloud.ec2.add("web", "127.0.1.24")
    cloud.calls.log.clear()

    report = run(cloud, settings(FAKE_CLOUD_ENV, dry_run="true"))

    assert report.ok, report.errors
    assert cloud.calls.writes() == []
    pushes = [line for line in report.planned if line.startswith("push ")]
    assert sorted(pushes) == sorted(set(pushes))
    assert {line.rsplit(" ", 2)[1] for line in pushes} == {"lb1", "lb2"}
    assert not any(op == "GetCommandInvocation" for op, _ in cloud.calls.log)
