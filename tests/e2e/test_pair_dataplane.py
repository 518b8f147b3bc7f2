"""The failover pair (LBF_DNS_FAILOVER=route53) end to end on the stand-in: moto's server, real
HAProxy LBs on loopback public addresses, the Route 53 data-plane stand-in answering real DNS
queries, and clients that resolve the active name through it as real clients would.

The story the plain design cannot survive: the controller swaps the pair off a dead LB while it
runs; with the controller stopped, the data plane alone moves clients off the next dead LB; the
controller comes back, matches Route 53, and the recovered LB does not take traffic back.

The stand-in's Route 53 runs at TIME_FACTOR (its 10 s checks every 0.5 s): every figure here is
the stand-in's model, not AWS's. The controller runs on the real clock, moved on where Route 53's
own detection time has to pass for it (see `ControllerClock`).
"""

from __future__ import annotations

import hashlib
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import jobs
from chalicelib.clock import SystemClock
from chalicelib.config import Settings
from chalicelib.report import Report
from chalicelib.services import aws_services
from standin.aws import LocalAws, local_aws
from standin.haproxy import LocalHaproxy, haproxy_binary
from standin.route53_dns import CachingResolver, Route53DataPlane, local_route53
from standin.ssm_agent import LocalSsmAgent
from standin.web import LocalWebServer

pytestmark = pytest.mark.e2e

DOMAIN = "pair.example.com"
CLUSTER = "pair"
ACTIVE = f"lb.{DOMAIN}"
LB_PORT = 18680
WEB_PORT = 18681
# Private address -> the loopback public one the stand-in gives it (127.0.1.x -> 127.0.3.x).
LB1, LB2 = ("127.0.1.41", "127.0.3.41"), ("127.0.1.42", "127.0.3.42")
WEB = "127.0.1.51"
TIME_FACTOR = 0.05
INTERVAL, FALL = 10, 2  # LBF_ROUTE53_INTERVAL, LBF_FALL: one swap per 20 s of the controller's


class ControllerClock(SystemClock):
    """The real clock, plus the time Route 53 would have taken. The stand-in's checkers run 20
    times faster than Route 53's, so a controller that comes back after the data plane moved
    clients comes back, in Route 53's time, at least one detection time (INTERVAL x FALL) after
    its own last swap: the swap limit sees that time pass."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def now(self) -> float:
        return time.time() + self.skipped


class Lb:
    def __init__(self, aws: LocalAws, agent: LocalSsmAgent, workdir: Path, name: str) -> None:
        private, public = LB1 if name == "lb1" else LB2
        self.public = public
        self.instance_id = aws.launch(
            private, {"lbf:cluster": CLUSTER, "lbf:role": "lb", "lbf:name": name}
        )
        self.start = lambda: LocalHaproxy(workdir / name, private, LB_PORT, public_address=public)
        self.haproxy = self.start()
        self.haproxy.start()

        def apply(backends: str, checksum: str) -> tuple[bool, str]:
            result = self.haproxy.apply(backends, checksum)
            return result.returncode == 0, result.stdout + result.stderr

        agent.register(self.instance_id, apply)

    def kill(self) -> None:
        self.haproxy.stop()

    def recover(self, backends: str) -> None:
        """Started again with the current list, as an LB's boot pulls it (infra/lb/user-data.sh)."""
        self.haproxy = self.start()  # a stopped LocalHaproxy has given its socket up
        self.haproxy.start()
        checksum = hashlib.sha256(backends.encode()).hexdigest()
        result = self.haproxy.apply(backends, checksum)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    if haproxy_binary() is None:
        pytest.skip("haproxy is not installed")
    with local_aws(DOMAIN, public_addresses=True) as aws:
        yield aws


def pair_of(aws: LocalAws) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """The active name's failover records in moto: role -> (values, health check)."""
    route53 = aws.client("route53")
    items = route53.list_resource_record_sets(HostedZoneId=aws.zone_id)["ResourceRecordSets"]
    return {
        item["Failover"]: (
            tuple(r["Value"] for r in item["ResourceRecords"]),
            item.get("HealthCheckId"),
        )
        for item in items
        if item["Name"].rstrip(".") == ACTIVE and "Failover" in item
    }


def served_by(client: CachingResolver) -> str:
    """The LB a client reaches: it resolves the active name through the data plane, then makes
    a real HTTP request through that LB's HAProxy to a web server."""
    [address] = client.resolve(ACTIVE)
    with urllib.request.urlopen(f"http://{address}:{LB_PORT}/", timeout=2) as response:
        assert response.status == 200
    return address


def within(seconds: float, condition: Callable[[], Any]) -> float:
    """How long `condition` took to hold (polled), failing the test past `seconds`."""
    started = time.monotonic()
    last: Exception | None = None
    while time.monotonic() - started < seconds:
        try:
            if condition():
                return time.monotonic() - started
        except (OSError, AssertionError, ValueError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s (last error: {last})")


def test_the_data_plane_moves_clients_when_the_controller_is_stopped(
    aws: LocalAws, servers: dict[str, LocalWebServer], tmp_path: Path
) -> None:
    settings = Settings.from_env(
        aws.controller_environment(
            cluster=CLUSTER,
            domain=DOMAIN,
            lb_port=LB_PORT,
            web_port=WEB_PORT,
            LBF_DNS_FAILOVER="route53",
            LBF_ROUTE53_INTERVAL=str(INTERVAL),
            LBF_FALL=str(FALL),
            LBF_RISE="2",
            LBF_TTL="1",
            LBF_PROBE_TIMEOUT="0.5",
            LBF_PROBE_INTERVAL="1",
            LBF_PROBE_ROUNDS="3",
        )
    )
    agent = LocalSsmAgent(settings.ssm_document).install().start()
    lbs: list[Lb] = []
    try:
        lbs += [Lb(aws, agent, tmp_path, "lb1"), Lb(aws, agent, tmp_path, "lb2")]
        aws.launch(WEB, {"lbf:cluster": CLUSTER, "lbf:role": "web"})
        servers["web"] = LocalWebServer(WEB, WEB_PORT).start()
        with local_route53(aws, time_factor=TIME_FACTOR, propagation_seconds=0) as plane:
            story(aws, settings, ControllerClock(), plane, *lbs)
    finally:
        agent.stop()
        agent.uninstall()
        for lb in lbs:
            lb.haproxy.stop()


def story(
    aws: LocalAws,
    settings: Settings,
    clock: ControllerClock,
    plane: Route53DataPlane,
    lb1: Lb,
    lb2: Lb,
) -> None:
    client = CachingResolver(plane.address, plane.port)

    def reconcile() -> Report:
        report = jobs.reconcile(settings, aws_services(settings), clock)
        assert report.ok, report.errors
        return report

    def paired(primary: Lb, secondary: Lb) -> bool:
        reconcile()
        pair = pair_of(aws)
        return (
            pair.get("PRIMARY", ((), None))[0] == (primary.public,)
            and pair.get("SECONDARY", ((), None))[0] == (secondary.public,)
            and all(check is not None for _, check in pair.values())
        )

    # The controller makes the pair on the LBs' checks (the checks come after the records, and
    # the LBs take the list first): PRIMARY lb1, SECONDARY lb2, each bound to its own check.
    within(60, lambda: paired(lb1, lb2))
    assert served_by(client) == lb1.public

    # lb1 dies while the controller runs: the controller swaps the pair in seconds.
    lb1.kill()
    report = reconcile()
    [failover] = report.failovers
    assert (failover.moved_from, failover.moved_to) == ("lb1", "lb2")
    assert failover.seconds < 5  # FALL 2 rounds of 1 s, in the run that saw it
    assert pair_of(aws)["PRIMARY"][0] == (lb2.public,)
    within(5, lambda: served_by(client) == lb2.public)

    # lb1 recovers: it becomes SECONDARY, with its check; lb2 keeps the traffic.
    lb1.recover(aws.parameter(settings.backends_parameter_name) or "")
    within(30, lambda: paired(lb2, lb1))

    # The controller stops. lb2 dies: the data plane alone moves clients to lb1, in Route 53's
    # detection time (here INTERVAL x FALL x TIME_FACTOR = 1 s) plus the TTL.
    records_before = pair_of(aws)
    lb2.kill()
    took = within(10, lambda: served_by(client) == lb1.public)
    assert took < 5, plane.model_label()
    assert pair_of(aws) == records_before  # nothing wrote a record: Route 53's answer moved

    # The controller comes back (lb2 still dead): it matches Route 53, PRIMARY lb1.
    clock.skipped = INTERVAL * FALL
    report = reconcile()
    assert pair_of(aws)["PRIMARY"][0] == (lb1.public,)
    assert served_by(client) == lb1.public

    # lb2 recovers: it becomes SECONDARY and never takes traffic back while a controller runs.
    lb2.recover(aws.parameter(settings.backends_parameter_name) or "")
    within(30, lambda: paired(lb1, lb2))
    time.sleep(3 * INTERVAL * TIME_FACTOR + 1.0)  # the checkers see lb2 healthy; the TTL passes
    assert served_by(client) == lb1.public
