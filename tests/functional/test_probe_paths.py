"""Two probe paths: public targets probed by the controller itself, private ones by the prober
function inside the VPC, once per round, each path judged on its own (SPEC: LBF_PROBER_FUNCTION,
LBF_PROBER_FAULT_PERCENT).

The stand: LBs published and probed at public addresses (as clients reach them), the web pool at
private ones (the defaults for the pool), and the prober function as its adapter presents itself
to the job (tests/kit/cloud.py: the same probes, or a ProberFault). How the adapter turns each way an
invoke fails into a ProberFault is pinned in test_probe_function.py.
"""

from __future__ import annotations

import pytest

from chalicelib.config import Settings
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud, small_cluster
from tests.kit.runs import converge
from tests.kit.settings import settings

ACTIVE = f"lb.{FAKE_DOMAIN}"
NOTICES = "/lbf/demo/notices"
BACKENDS = "/lbf/demo/backends"
FUNCTION = "lb-failover-prod-ProbePrivate-1A2B3C"
WEB_ADDRESSES = ("127.0.1.21", "127.0.1.22", "127.0.1.23")


# What differs from the fake cloud here: LBs probed at public addresses, a prober function for
# the private ones, and verdicts that fall after two failed probes.
TWO_PATHS = {"LBF_LB_ADDRESS": "public", "LBF_PROBER_FUNCTION": FUNCTION, "LBF_FALL": "2"}


@pytest.fixture
def cloud() -> FakeCloud:
    return small_cluster(webs=WEB_ADDRESSES)


def settled(cloud: FakeCloud, config: Settings) -> None:
    converge(cloud, config)
    converge(cloud, config)
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    assert cloud.ssm.parameters[BACKENDS].count(":80") == 3
    cloud.sns.messages.clear()
    cloud.probe_function.invocations.clear()
    cloud.prober.probed.clear()


def test_the_pool_goes_to_the_prober_function_every_pool_interval(cloud: FakeCloud) -> None:
    """Public LBs every 2 s round, the private pool every LBF_POOL_INTERVAL (10 s): the prober
    function is invoked 6 times a minute, as often as with the 6 rounds of 10 s before."""
    config = settings(FAKE_CLOUD_ENV, TWO_PATHS)
    report = converge(cloud, config)

    assert report.rounds == config.probe_rounds == 29
    assert len(cloud.probe_function.invocations) == 6
    assert all(
        sorted(keys) == sorted(cloud.ec2.ids("web")) for keys in cloud.probe_function.invocations
    )
    assert len(cloud.prober.probed) == 29  # the LBs, every round
    assert all(sorted(keys) == sorted(cloud.ec2.ids("lb")) for keys in cloud.prober.probed)
    assert cloud.ssm.parameters[BACKENDS].count(":80") == 3


def test_private_lbs_go_to_the_prober_function_too(cloud: FakeCloud) -> None:
    """Every 3 s round invokes it for the LBs; the pool rides along every LBF_POOL_INTERVAL
    (the rounds at 0, 12, 24, 36 and 48 s: the first at least 10 s after the last probe)."""
    report = converge(cloud, settings(FAKE_CLOUD_ENV, TWO_PATHS, lb_address="private"))

    lbs = sorted(cloud.ec2.ids("lb"))
    every = sorted(lbs + cloud.ec2.ids("web"))
    invocations = [sorted(keys) for keys in cloud.probe_function.invocations]
    assert len(invocations) == report.rounds == 19
    assert [n for n, keys in enumerate(invocations) if keys == every] == [0, 4, 8, 12, 16]
    assert all(keys in (every, lbs) for keys in invocations)
    assert cloud.prober.probed == []  # nothing public left to probe in-process


def test_without_the_setting_every_target_is_probed_in_process(cloud: FakeCloud) -> None:
    """In-process the pool joins the LBs' round every LBF_POOL_INTERVAL (one concurrent probe,
    which the same LBF_PROBE_TIMEOUT ends): 2 s rounds, the pool in every fifth."""
    converge(cloud, settings(FAKE_CLOUD_ENV, lb_address="public"))

    assert cloud.probe_function.invocations == []
    lbs = sorted(cloud.ec2.ids("lb"))
    every = sorted(lbs + cloud.ec2.ids("web"))
    probed = [sorted(keys) for keys in cloud.prober.probed]
    assert len(probed) == 29
    assert [n for n, keys in enumerate(probed) if keys == every] == [0, 5, 10, 15, 20, 25]
    assert all(keys in (every, lbs) for keys in probed)


def test_when_no_target_is_private_the_prober_function_is_never_invoked(cloud: FakeCloud) -> None:
    converge(cloud, settings(FAKE_CLOUD_ENV, TWO_PATHS, pool_address="public"))

    assert cloud.probe_function.invocations == []
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)


def test_a_skipped_lb_is_probed_on_the_lbs_path(cloud: FakeCloud) -> None:
    """A typo in the active LB's lbf:maintenance: it is still probed, as an LB, at its public
    address by the controller; the prober function in the VPC gets the web servers only."""
    config = settings(FAKE_CLOUD_ENV, TWO_PATHS)
    settled(cloud, config)
    lb1 = cloud.ec2.id_named("lb1")
    cloud.ec2.set_tag(lb1, "lbf:maintenance", "Drain")

    converge(cloud, config)

    assert all(lb1 in keys for keys in cloud.prober.probed)
    assert all(
        sorted(keys) == sorted(cloud.ec2.ids("web")) for keys in cloud.probe_function.invocations
    )
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)


def test_a_prober_function_that_cannot_answer_holds_the_pool_and_the_lbs_still_fail_over(
    cloud: FakeCloud,
) -> None:
    config = settings(FAKE_CLOUD_ENV, TWO_PATHS)
    settled(cloud, config)
    cloud.probe_function.fault = "invoking the prober function failed: TooManyRequestsException"
    cloud.prober.dead |= {"127.0.0.11", *WEB_ADDRESSES}

    report = converge(cloud, config)
    converge(cloud, config)

    # The public path's results counted: the dead active LB was replaced.
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    assert [(f.moved_from, f.moved_to) for f in report.failovers] == [("lb1", "lb2")]
    # The private path's round was the prober's fault: no web server's verdict changed.
    assert cloud.ssm.parameters[BACKENDS].count(":80") == 3
    assert all(cloud.ec2.tag(web, "lbf:health") == "healthy" for web in cloud.ec2.ids("web"))
    faults = [m for m in cloud.sns.messages if "TooManyRequestsException" in m]
    assert len(faults) == 1  # once, over two runs of six rounds
    assert "fault on the prober's side" in faults[0]
    assert "prober-fault:private" in cloud.ssm.parameters[NOTICES].splitlines()


def test_the_condition_clears_when_the_prober_function_answers_again(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV, TWO_PATHS)
    settled(cloud, config)
    cloud.probe_function.fault = "invoking the prober function failed: ResourceNotReadyException"
    converge(cloud, config)
    assert "prober-fault:private" in cloud.ssm.parameters[NOTICES].splitlines()

    cloud.probe_function.fault = None
    cloud.prober.dead.add("127.0.1.23")
    converge(cloud, config)

    assert "prober-fault:private" not in cloud.ssm.parameters[NOTICES].splitlines()
    assert "127.0.1.23" not in cloud.ssm.parameters[BACKENDS]  # its verdicts count again


def test_every_private_probe_failing_is_a_fault_of_that_path_only(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV, TWO_PATHS)
    settled(cloud, config)
    cloud.prober.dead |= {"127.0.0.11", *WEB_ADDRESSES}  # the VPC side sees nothing at all

    converge(cloud, config)

    assert cloud.ssm.parameters[BACKENDS].count(":80") == 3
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    faults = [m for m in cloud.sns.messages if "fault on the prober's side" in m]
    assert len(faults) == 1
    assert "3 of 3 probes of the prober function failed" in faults[0]
    assert "prober-fault:private" in cloud.ssm.parameters[NOTICES].splitlines()


def test_every_public_probe_failing_is_a_fault_of_that_path_only(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV, TWO_PATHS)
    settled(cloud, config)
    cloud.prober.dead |= {"127.0.0.11", "127.0.0.12", "127.0.1.23"}  # the controller's side

    converge(cloud, config)

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)  # no failover from a blind controller
    assert all(cloud.ec2.tag(lb, "lbf:health") == "healthy" for lb in cloud.ec2.ids("lb"))
    assert "127.0.1.23" not in cloud.ssm.parameters[BACKENDS]  # the private path still counted
    notified = cloud.ssm.parameters[NOTICES].splitlines()
    assert "prober-fault" in notified
    assert "prober-fault:private" not in notified
