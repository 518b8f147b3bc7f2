"""Planned failover from the command line: `python -m chalicelib move-active`."""

from __future__ import annotations

import pytest

from chalicelib.__main__ import main
from tests.fakes import FAKE_DOMAIN, FAKE_ENV, FakeCloud

DOMAIN = FAKE_DOMAIN
ACTIVE = f"lb.{DOMAIN}"
ENV = FAKE_ENV


@pytest.fixture
def cloud() -> FakeCloud:
    cloud = FakeCloud()
    cloud.ec2.add("lb", "127.0.0.11", name="lb1")
    cloud.ec2.add("lb", "127.0.0.12", name="lb2")
    cloud.ec2.add("web", "127.0.1.21")
    for _ in range(2):
        assert main(["reconcile"], environ=ENV, services=cloud.services(), clock=cloud.clock) == 0
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    return cloud


def move(cloud: FakeCloud, *args: str) -> int:
    return main(["move-active", *args], environ=ENV, services=cloud.services(), clock=cloud.clock)


def lb_ids(cloud: FakeCloud) -> list[str]:
    return [i for i, raw in cloud.ec2.instances.items() if ("lbf:role", "lb") in raw.tags]


def test_move_to_a_healthy_current_lb_waits_for_insync(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    cloud.calls.log.clear()
    cloud.clock.sleeps.clear()
    pending = iter(["PENDING", "PENDING", "INSYNC"])
    cloud.route53.change_status = lambda change_id: next(pending)  # type: ignore[method-assign]

    assert move(cloud, "--to", "lb2") == 0

    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    [batch] = [b for op, b in cloud.calls.log if op == "ChangeResourceRecordSets"]
    assert [(c.action, c.record.values) for c in batch] == [  # type: ignore[attr-defined]
        ("DELETE", ("127.0.0.11",)),
        ("CREATE", ("127.0.0.12",)),
    ]
    lb1, lb2 = lb_ids(cloud)
    assert cloud.ec2.tag(lb2, "lbf:state") == "active"
    assert cloud.ec2.tag(lb1, "lbf:state") == "standby"
    out = capsys.readouterr().out
    assert "checked lb2 (127.0.0.12): healthy, backend list current" in out
    assert "INSYNC" in out
    assert cloud.clock.sleeps == [2.0, 2.0]  # polled GetChange until INSYNC


def test_a_later_run_keeps_the_moved_record(cloud: FakeCloud) -> None:
    assert move(cloud, "--to", "lb2", "--no-wait") == 0
    assert main(["reconcile"], environ=ENV, services=cloud.services(), clock=cloud.clock) == 0
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)  # non-preemptive: no failback


def test_drain_tags_the_lb_and_moves_off_it(cloud: FakeCloud) -> None:
    assert move(cloud, "--drain", "lb1", "--no-wait") == 0
    lb1, _ = lb_ids(cloud)
    assert cloud.ec2.tag(lb1, "lbf:maintenance") == "drain"
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)


@pytest.mark.parametrize("why", ["unhealthy", "stale list", "unknown name"])
def test_no_move_to_an_lb_that_cannot_take_over(
    cloud: FakeCloud, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lb2 = lb_ids(cloud)
    target = "lb2"
    if why == "unhealthy":
        cloud.ec2.set_tag(lb2, "lbf:health", "unhealthy")
    elif why == "stale list":
        cloud.ec2.set_tag(lb2, "lbf:backends", "0" * 64)
    else:
        target = "lb9"
    cloud.calls.log.clear()

    assert move(cloud, "--to", target) == 1

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    assert cloud.calls.writes() == []
    assert "error:" in capsys.readouterr().out


def test_a_stale_view_fails_and_changes_nothing(cloud: FakeCloud) -> None:
    from chalicelib.errors import StaleView

    cloud.route53.fail_next = [
        StaleView("route53", "ChangeResourceRecordSets", "InvalidChangeBatch", "changed")
    ]
    assert move(cloud, "--to", "lb2") == 1
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)


def test_move_active_needs_a_target(cloud: FakeCloud) -> None:
    assert move(cloud) == 2


def test_status_shows_the_optional_features(capsys: pytest.CaptureFixture[str]) -> None:
    cloud = FakeCloud()
    cloud.ec2.add("lb", "127.0.0.11", name="lb1")
    cloud.ec2.add("web", "127.0.1.21")
    env = ENV | {
        "LBF_MODE": "eip",
        "LBF_EIP_ALLOCATION_ID": "eipalloc-0123456789abcdef0",
        "LBF_LB_MIN_BACKENDS": "1",
    }
    for _ in range(2):
        assert main(["reconcile"], environ=env, services=cloud.services(), clock=cloud.clock) == 0
    capsys.readouterr()

    assert main(["status"], environ=env, services=cloud.services(), clock=cloud.clock) == 0

    out = capsys.readouterr().out
    assert "Elastic IP eipalloc-0123456789abcdef0 (198.51.100.7) is on lb1" in out
    assert "LBF_LB_MIN_BACKENDS=1: may take over: lb1" in out
