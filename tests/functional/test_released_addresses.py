"""A record never outlives its LB's address; an empty cluster is still a cluster (SPEC "DNS records").

EC2 gives a stopped instance's public IP back to the pool, and the next instance to start, anyone's,
may get it: a record still holding it sends clients to a stranger. The LBs here are public (their
public IP is what is published), and stopping one releases it, as EC2 does; the in-memory EC2
keeps it otherwise, so each stop below says which it is.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud, small_cluster
from tests.kit.lambda_app import LambdaApp, emf_figures, stage_cloud
from tests.kit.runs import scheduled, settle
from tests.kit.settings import settings

DOMAIN = FAKE_DOMAIN
ACTIVE = f"lb.{DOMAIN}"
TXT = f"_lbf.{DOMAIN}"
LB1, LB2 = "127.0.0.11", "127.0.0.12"
EIP = "198.51.100.7"  # the in-memory EC2's Elastic IP
PUBLIC = {"LBF_LB_ADDRESS": "public"}
EIP_MODE = {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": "eipalloc-0123456789abcdef0"}


def stop(cloud: FakeCloud, address: str, *, releases_public_ip: bool = True) -> str:
    """EC2 stops the LB at `address`; its private IP stays, its public one is released."""
    instance_id = cloud.ec2.id_at(address)
    raw = cloud.ec2.instances[instance_id]
    public = None if releases_public_ip else raw.public_ip
    cloud.ec2.instances[instance_id] = replace(raw, state="stopped", public_ip=public)
    return instance_id


def messages(cloud: FakeCloud, text: str) -> list[str]:
    return [m for m in cloud.sns.messages if text in m]


def test_every_lb_stopped_takes_its_released_address_out_of_the_active_record() -> None:
    """Before: "no LB is healthy: left as it is" kept lb.<domain> on an address EC2 had
    released; the next instance to get it, anyone's, would have been sent the clients."""
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV, PUBLIC)
    settle(cloud, config)
    assert cloud.route53.value(ACTIVE) == (LB1,)

    stop(cloud, LB1)
    stop(cloud, LB2)
    report = scheduled(cloud, config)

    assert report.ok, report.errors
    assert cloud.route53.value(ACTIVE) is None
    assert cloud.route53.value(f"lb1.{DOMAIN}") is None
    assert cloud.route53.value(f"lb2.{DOMAIN}") is None
    # The domain stays the cluster's: the TXT names it, with no record left to list.
    assert cloud.route53.records[(TXT, "TXT")].values == ('"cluster=demo"',)
    assert len(messages(cloud, f"{LB1} removed from {ACTIVE}: no LB of cluster demo holds")) == 1
    assert messages(cloud, "no load balancer is eligible")

    scheduled(cloud, config)
    assert len(messages(cloud, f"{LB1} removed from {ACTIVE}")) == 1  # once


def test_a_stopped_lb_that_keeps_its_private_address_keeps_the_record_when_none_is_eligible() -> (
    None
):
    """Private addressing: EC2 keeps a stopped instance's private IP, which nobody else can be
    given; with no LB eligible, "no LB is healthy: left as it is" holds, with its notice."""
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV)  # LBF_LB_ADDRESS=private
    settle(cloud, config)

    stop(cloud, LB1, releases_public_ip=False)
    stop(cloud, LB2, releases_public_ip=False)
    scheduled(cloud, config)

    assert cloud.route53.value(ACTIVE) == (LB1,)
    assert messages(cloud, "no load balancer is eligible")
    assert not messages(cloud, "removed from")


def test_in_eip_mode_the_active_record_keeps_the_elastic_ip() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV, PUBLIC, EIP_MODE)
    settle(cloud, config)
    assert cloud.route53.value(ACTIVE) == (EIP,)

    stop(cloud, LB1)
    stop(cloud, LB2)
    scheduled(cloud, config)

    assert cloud.route53.value(ACTIVE) == (EIP,)
    assert not messages(cloud, f"removed from {ACTIVE}")


def test_active_active_loses_only_the_address_no_lb_holds() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV, PUBLIC, active_mode="all")
    settle(cloud, config)
    assert cloud.route53.value(ACTIVE) == (LB1, LB2)

    cloud.prober.dead |= {LB1, LB2}  # both fail at once: the record stays, with no LB eligible
    settle(cloud, config, runs=1)
    assert cloud.route53.value(ACTIVE) == (LB1, LB2)

    stop(cloud, LB2)
    scheduled(cloud, config)

    assert cloud.route53.value(ACTIVE) == (LB1,)
    assert len(messages(cloud, f"{LB2} removed from {ACTIVE}")) == 1


def test_while_paused_the_removal_is_notified_and_made_after_resume() -> None:
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV, PUBLIC)
    settle(cloud, config)
    cloud.ssm.parameters["/lbf/demo/paused"] = "true"

    stop(cloud, LB1)
    stop(cloud, LB2)
    scheduled(cloud, config)
    scheduled(cloud, config)

    assert cloud.route53.value(ACTIVE) == (LB1,)  # paused: planned, not made
    [notice] = messages(cloud, f"{LB1} removed from {ACTIVE}")
    assert notice.startswith("[paused]")

    cloud.ssm.parameters["/lbf/demo/paused"] = "false"
    report = scheduled(cloud, config)

    assert report.ok, report.errors
    assert cloud.route53.value(ACTIVE) is None
    assert len(messages(cloud, f"{LB1} removed from {ACTIVE}")) == 1  # told once, while paused


def test_an_lb_starting_with_a_new_address_takes_its_old_one_out_of_its_record() -> None:
    """Starting (pending) at a new public IP: its record no longer holds its address, and the
    old one is EC2's to give away. It gets its record back when it runs."""
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV, PUBLIC)
    settle(cloud, config)
    lb2 = cloud.ec2.id_at(LB2)
    raw = cloud.ec2.instances[lb2]
    cloud.ec2.instances[lb2] = replace(raw, state="pending", public_ip="127.0.0.22")

    scheduled(cloud, config)

    assert cloud.route53.value(f"lb2.{DOMAIN}") is None
    assert len(messages(cloud, f"{LB2} removed from lb2.{DOMAIN}")) == 1
    assert cloud.route53.value(ACTIVE) == (LB1,)

    cloud.ec2.instances[lb2] = replace(cloud.ec2.instances[lb2], state="running")
    scheduled(cloud, config)
    assert cloud.route53.value(f"lb2.{DOMAIN}") == ("127.0.0.22",)


def test_the_active_lb_back_at_a_new_address_while_failing_leaves_no_record_behind() -> None:
    """Its old public IP is EC2's to give away; the record never follows a failing LB (it
    would be a move to an LB that is not healthy), so it goes, and comes back with a healthy LB."""
    cloud = small_cluster()
    config = settings(FAKE_CLOUD_ENV, PUBLIC)
    settle(cloud, config)
    stop(cloud, LB2)
    cloud.prober.dead.add(LB1)  # the prober reaches it by its private IP, which stays
    settle(cloud, config, runs=1)
    lb1 = cloud.ec2.id_at(LB1)
    assert cloud.ec2.tag(lb1, "lbf:health") == "unhealthy"
    assert cloud.route53.value(ACTIVE) == (LB1,)  # no LB is eligible: left as it is

    # Stopped and started between two runs: back at a new public IP, still failing.
    raw = cloud.ec2.instances[lb1]
    cloud.ec2.instances[lb1] = replace(raw, public_ip="127.0.0.21")
    scheduled(cloud, config)

    assert cloud.route53.value(ACTIVE) is None
    assert cloud.ec2.tag(lb1, "lbf:state") == "standby"
    assert len(messages(cloud, f"{LB1} removed from {ACTIVE}")) == 1

    cloud.prober.dead.clear()
    settle(cloud, config)
    assert cloud.route53.value(ACTIVE) == ("127.0.0.21",)
    assert cloud.ec2.tag(lb1, "lbf:state") == "active"


# --- an empty cluster is still a cluster -----------------------------------------------------------


@pytest.fixture
def emptied(monkeypatch: pytest.MonkeyPatch) -> LambdaApp:
    """The dev stage's cluster, settled through the app, then every instance gone from it."""
    app = LambdaApp(monkeypatch, stage_cloud())
    for _ in range(2):
        assert app.invoke("reconcile")["ok"]
        app.cloud.clock.advance(60)
    for instance_id in list(app.cloud.ec2.instances):
        app.cloud.ec2.set_tag(instance_id, "lbf:cluster", None)  # retagged, or terminated
    return app


def test_an_empty_cluster_pages_notifies_once_and_its_records_follow_the_address_rule(
    emptied: LambdaApp, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = emptied.cloud
    domain = "edge-dev.example.com"
    capsys.readouterr()

    for _ in range(3):
        assert emptied.invoke("reconcile")["ok"]
        cloud.clock.advance(60)

    figures = emf_figures(capsys.readouterr().out)
    assert [f["HealthyLBs"] for f in figures] == [[0.0]] * 3  # measured: the alarm pages
    assert len(messages(cloud, "no instance carries lbf:cluster=web-dev")) == 1
    # The untagged instances still hold their addresses, but no LB of the cluster does: the
    # records go, and the TXT keeps naming the owner.
    assert cloud.route53.value(f"lb.{domain}") is None
    assert cloud.route53.value(f"lb1.{domain}") is None
    assert cloud.route53.records[(f"_lbf.{domain}", "TXT")].values == ('"cluster=web-dev"',)
