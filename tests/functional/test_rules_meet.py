"""Where two rules meet: rejected and lost Route 53 changes, slow and refused pushes, notices.

Against the public entry point `jobs.reconcile` on the in-memory AWS of tests/fakes.py, which is
faithful where moto is not: Route 53 there rejects a batch atomically with AWS's error code and
message (moto answers `InvalidInput` where AWS says `InvalidChangeBatch`, and enforces no CNAME
conflict at all); Parameter Store there refuses values over 8 KB and reports the tier past 4 KB
(moto enforces neither); SSM there lets a test decide each push's fate (moto's `send_command`
always succeeds, whatever the instance).
"""

from __future__ import annotations

from typing import Any

from chalicelib import jobs
from chalicelib.config import Settings
from tests.fakes import FAKE_DOMAIN, FakeCloud
from tests.fakes import fake_settings as settings

DOMAIN = FAKE_DOMAIN
ACTIVE = f"lb.{DOMAIN}"
NOTICES = "/lbf/demo/notices"
LB1, LB2 = "127.0.0.11", "127.0.0.12"
WEBS = ("127.0.1.21", "127.0.1.22", "127.0.1.23")


def run(cloud: FakeCloud, config: Settings, **kwargs: Any) -> jobs.Report:
    """One invocation, a minute after the previous one started (the schedule)."""
    report = jobs.reconcile(config, cloud.services(), cloud.clock, **kwargs)
    cloud.clock.advance(max(0.0, 60.0 - report.seconds))
    return report


def make_cloud(lbs: int = 2) -> FakeCloud:
    cloud = FakeCloud()
    for number in range(1, lbs + 1):
        cloud.ec2.add("lb", f"127.0.0.{10 + number}", name=f"lb{number}")
    for address in WEBS:
        cloud.ec2.add("web", address)
    return cloud


# ---------------------------------------------------------------------------------------------
# Notices stay within a standard-tier parameter and never storm.


def test_a_flood_of_skipped_instances_is_one_notice_and_fits_a_standard_parameter() -> None:
    cloud = make_cloud()
    for number in range(300):
        cloud.ec2.add("web", f"127.0.2.{number % 250}", tags={"lbf:port": "not-a-port"})
    config = settings(LBF_PROBE_ROUNDS="2")

    first = run(cloud, config)
    assert not [e for e in first.errors if "notices" in e or "notified" in e], first.errors
    flood = [m for m in cloud.sns.messages if "skipped" in m]
    assert len(flood) == 1
    assert flood[0].startswith("300 conditions of kind skipped")
    assert all(len(m) <= 4096 for m in cloud.sns.messages)
    assert len(cloud.ssm.parameters[NOTICES]) <= 4096
    assert cloud.ssm.tiers[NOTICES] == "Standard"

    sent = len(cloud.sns.messages)
    again = run(cloud, config)
    assert cloud.sns.messages[sent:] == []
    assert again.notices == []
