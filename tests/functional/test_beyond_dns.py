"""Elastic IP mode, active-active, and "a healthy LB is one that serves", on the in-memory AWS.

The in-memory EC2 answers DescribeAddresses with where the Elastic IP is *now*, so a test can
move it behind a run's back and watch the check-then-move refuse to ping-pong it.
"""

from __future__ import annotations

import pytest

from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud, small_cluster
from tests.kit.runs import run
from tests.kit.settings import settings

DOMAIN = FAKE_DOMAIN
ACTIVE = f"lb.{DOMAIN}"
EIP = "198.51.100.7"  # the in-memory EC2's Elastic IP (a documentation address, never probed)


@pytest.fixture
def cloud() -> FakeCloud:
    return small_cluster(webs=("127.0.1.21",))


# --- Elastic IP mode ---------------------------------------------------------------------------

EIP_MODE = {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": "eipalloc-0123456789abcdef0"}


def test_eip_mode_associates_the_address_and_the_active_record_holds_it(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV, EIP_MODE)
    assert run(cloud, config).ok
    lb1, lb2 = cloud.ec2.ids("lb")

    assert cloud.ec2.eip_holder == lb1
    assert cloud.route53.value(ACTIVE) == (EIP,)
    assert cloud.route53.value(f"lb1.{DOMAIN}") == ("127.0.0.11",)
    assert cloud.ec2.tag(lb1, "lbf:state") == "active"
    assert cloud.ec2.tag(lb2, "lbf:state") == "standby"


def test_eip_mode_moves_the_address_not_the_record(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV, EIP_MODE)
    run(cloud, config)
    _, lb2 = cloud.ec2.ids("lb")
    batches_before = len(cloud.route53.batches)
    cloud.prober.dead.add("127.0.0.11")

    report = run(cloud, config)

    assert report.ok, report.errors
    assert cloud.ec2.eip_holder == lb2
    assert cloud.route53.value(ACTIVE) == (EIP,)
    assert not any(
        c.record.name == ACTIVE for batch in cloud.route53.batches[batches_before:] for c in batch
    )
    [failover] = report.failovers
    assert (failover.moved_from, failover.moved_to) == ("lb1", "lb2")
    assert cloud.calls.count("AssociateAddress") == 2  # the first association, then one move


def test_eip_moved_behind_the_runs_back_is_not_moved_again(cloud: FakeCloud) -> None:
    """Check-then-move: the run saw the EIP on lb1 and wants it on lb2, but by the time it moves,
    another run already put it on lb2. It re-reads and keeps it there instead of ping-ponging."""
    cloud.ec2.add("lb", "127.0.0.13", name="lb3")
    config = settings(FAKE_CLOUD_ENV, EIP_MODE)
    run(cloud, config)
    lb1, lb2, lb3 = cloud.ec2.ids("lb")
    run(cloud, config)
    cloud.ec2.set_state(lb1, "stopped")

    real_holder = cloud.ec2.address_holder
    looks = []

    def holder_moved_meanwhile(allocation_id: str) -> tuple[str | None, str | None]:
        # The run's first look (observe) sees lb1; before its check-then-move looks again,
        # another run has moved the Elastic IP to lb3.
        looks.append(allocation_id)
        if len(looks) == 2:
            cloud.ec2.eip_holder = lb3
        return real_holder(allocation_id)

    cloud.ec2.address_holder = holder_moved_meanwhile  # type: ignore[method-assign]
    report = run(cloud, config, rounds=1)

    assert report.ok, report.errors
    assert cloud.ec2.eip_holder == lb3  # lb3 is healthy: kept, not moved to lb2
    assert cloud.calls.count("AssociateAddress") == 1  # only the very first association
    assert any("re-read" in note for note in report.notes)
    del lb2


def test_eip_mode_with_every_lb_down_leaves_the_address_and_notifies(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV, EIP_MODE)
    run(cloud, config)
    lb1, _ = cloud.ec2.ids("lb")
    cloud.prober.dead |= {"127.0.0.11", "127.0.0.12"}
    cloud.sns.messages.clear()

    run(cloud, config)

    assert cloud.ec2.eip_holder == lb1
    assert any("no load balancer is eligible" in m for m in cloud.sns.messages)


# --- active-active -----------------------------------------------------------------------------


def test_active_active_holds_every_healthy_lb_and_drops_a_failed_one(cloud: FakeCloud) -> None:
    cloud.ec2.add("lb", "127.0.0.13", name="lb3")
    config = settings(FAKE_CLOUD_ENV, active_mode="all")
    run(cloud, config)
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.12", "127.0.0.13")

    cloud.prober.dead.add("127.0.0.12")
    report = run(cloud, config)

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.13")
    assert report.failovers[0].round == config.fall  # within the same bound as single mode
    change = next(b for _, b in reversed(cloud.route53.history) if b[0].record.name == ACTIVE)
    assert [(c.action, c.record.values) for c in change if c.record.name == ACTIVE] == [
        ("DELETE", ("127.0.0.11", "127.0.0.12", "127.0.0.13")),
        ("CREATE", ("127.0.0.11", "127.0.0.13")),
    ]


def test_active_active_never_empties_the_record(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV, active_mode="all")
    run(cloud, config)
    cloud.prober.dead |= {"127.0.0.11", "127.0.0.12"}
    cloud.sns.messages.clear()

    run(cloud, config)

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.12")
    assert any("no load balancer is eligible" in m for m in cloud.sns.messages)


# --- a healthy LB is one that serves -----------------------------------------------------------


def test_no_failover_to_an_lb_whose_backend_list_is_stale(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV, lb_min_backends="1")
    lb1, lb2 = cloud.ec2.ids("lb")
    # lb2's agent is broken: every push to it fails, so it never confirms the current list.
    cloud.ssm.outcome = lambda command: "Failed" if command.instance_id == lb2 else "Success"
    run(cloud, config)
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    assert cloud.ec2.tag(lb2, "lbf:backends") is None

    cloud.prober.dead.add("127.0.0.11")
    cloud.sns.messages.clear()
    run(cloud, config)
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)  # not to an LB that would serve nothing
    assert any("no load balancer is eligible" in m for m in cloud.sns.messages)

    # lb2 recovers and confirms the list: now it may take over.
    cloud.ssm.outcome = lambda command: "Success"
    cloud.clock.advance(60)
    run(cloud, config)
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    del lb1


def test_min_backends_never_moves_the_record_off_a_healthy_lb_during_a_push(
    cloud: FakeCloud,
) -> None:
    """A new list makes every LB briefly stale; that alone is never a reason to fail over."""
    config = settings(FAKE_CLOUD_ENV, lb_min_backends="1")
    run(cloud, config)
    run(cloud, config)
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    cloud.sns.messages.clear()
    cloud.ssm.outcome = lambda command: "InProgress"
    cloud.ec2.add("web", "127.0.1.22")

    run(cloud, config)

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    assert not any("eligible" in m for m in cloud.sns.messages)
