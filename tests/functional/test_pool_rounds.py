"""The pool's own schedule (SPEC "Configuration", LBF_POOL_INTERVAL; "Time"): the LBs are probed
every round, the pool in the first round and then every LBF_POOL_INTERVAL, beside the LB rounds
and never delaying one; LBF_RISE/LBF_FALL count the pool's own probes.

On the in-memory AWS with the fake clock. Where the pool alone goes to the prober function (public
LBs, the default), its invoke runs in a worker: the proof that no round waits for it is an invoke
that returns only once the next LB round has been probed, so a round that waited would never come.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import replace

from bench.calls import is_write
from chalicelib import jobs
from chalicelib.config import Settings
from chalicelib.core.model import ProbeResult, ProbeTarget
from chalicelib.errors import ProberFault
from chalicelib.report import Report
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud, FakeProber, small_cluster
from tests.kit.runs import converge
from tests.kit.settings import settings
from tests.kit.slow_aws import SlowAws

ACTIVE = f"lb.{FAKE_DOMAIN}"
BACKENDS = "/lbf/demo/backends"
WEBS = ("127.0.1.21", "127.0.1.22", "127.0.1.23")
DEAD_WEB = "127.0.1.23"
FUNCTION = "lb-failover-prod-ProbePrivate-1A2B3C"
PUBLIC_LBS = {"LBF_LB_ADDRESS": "public", "LBF_PROBER_FUNCTION": FUNCTION}


class LbRounds:
    """The controller's own prober (the LBs' path), telling each round it probes."""

    def __init__(self, inner: FakeProber) -> None:
        self.inner = inner
        self.probed = threading.Semaphore(0)

    def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
        results = self.inner.probe_round(targets)
        self.probed.release()
        return results


class PoolInvokeUntilNextRound:
    """The prober function, answering each pool invoke only after the LBs' next round."""

    def __init__(self, cloud: FakeCloud, lb_rounds: LbRounds) -> None:
        self.function = cloud.probe_function
        self.lb_rounds = lb_rounds
        self.overlapped = 0

    def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
        # The round that invoked us probes its LBs (one release), then the next round (another).
        for _ in range(2):
            if not self.lb_rounds.probed.acquire(timeout=10):
                raise ProberFault("the LB rounds stopped while the pool's invoke ran")
        self.overlapped += 1
        return self.function.probe_round(targets)


def settled(cloud: FakeCloud, config: Settings) -> None:
    converge(cloud, config)
    converge(cloud, config)
    assert cloud.ssm.parameters[BACKENDS].count(":80") == 3
    cloud.clock.advance(60)
    cloud.prober.rounds.clear()
    cloud.probe_function.invocations.clear()


def run(cloud: FakeCloud, config: Settings, **services: object) -> Report:
    report = jobs.reconcile(config, replace(cloud.services(), **services), cloud.clock)
    assert report.ok, report.errors
    return report


def test_the_pool_s_invoke_never_delays_a_round() -> None:
    cloud = small_cluster(webs=WEBS)
    config = settings(FAKE_CLOUD_ENV, PUBLIC_LBS)
    settled(cloud, config)
    lb_rounds = LbRounds(cloud.prober)
    function = PoolInvokeUntilNextRound(cloud, lb_rounds)
    started = cloud.clock.now()

    report = run(cloud, config, prober=lb_rounds, probe_function=function)

    assert report.rounds == 29
    # Every invoke overlapped an LB round that started after it (none failed on the wait),
    # and the rounds kept their 2 s schedule.
    assert function.overlapped == len(cloud.probe_function.invocations) == 6
    assert [round(t - started, 6) for t in cloud.prober.rounds] == [2.0 * n for n in range(29)]


def test_fall_counts_the_pool_s_own_probes() -> None:
    """A dead web server fails the pool's probes at 0, 10 and 20 s: FALL 3 turns it unhealthy
    at the third (the round at 20 s is the run's last here, which waits for its invoke), not
    after three 2 s rounds, and never from the rounds that probed the LBs only."""
    outcomes = {}
    for rounds in (10, 11):  # the pool's probes at 0 and 10 s; at 0, 10 and 20 s
        cloud = small_cluster(webs=WEBS)
        config = settings(FAKE_CLOUD_ENV, PUBLIC_LBS)
        settled(cloud, config)
        cloud.prober.dead.add(DEAD_WEB)
        report = jobs.reconcile(config, cloud.services(), cloud.clock, rounds=rounds)
        assert report.ok, report.errors
        outcomes[rounds] = (len(cloud.probe_function.invocations), cloud.ssm.parameters[BACKENDS])
    assert outcomes[10][0] == 2
    assert DEAD_WEB in outcomes[10][1]  # two failed probes of the pool: FALL 3 not reached
    assert outcomes[11][0] == 3
    assert DEAD_WEB not in outcomes[11][1]


def test_an_in_process_pool_joins_the_lb_round_every_pool_interval() -> None:
    cloud = small_cluster(webs=WEBS)
    config = settings(FAKE_CLOUD_ENV, lb_address="public", pool_interval=4)
    converge(cloud, config)

    pool_rounds = [n for n, keys in enumerate(cloud.prober.probed) if len(keys) == 5]
    assert pool_rounds == list(range(0, 29, 2))  # every 4 s of 2 s rounds
    assert all(len(keys) in (2, 5) for keys in cloud.prober.probed)


def test_an_operator_s_ten_second_interval_keeps_a_valid_schedule() -> None:
    """LBF_PROBE_INTERVAL=10 from before the new defaults: rounds follow the interval (6 of
    them, as before), the pool is probed in each of them, and the bound is the old one."""
    cloud = small_cluster(webs=WEBS)
    config = settings(FAKE_CLOUD_ENV, PUBLIC_LBS, probe_interval=10)
    assert (config.probe_rounds, config.probe_timeout) == (6, 1.5)
    assert config.detection_bound.seconds == 41.5  # 4 x 10 + 1.5 + 0
    settled(cloud, config)
    started = cloud.clock.now()

    report = run(cloud, config)

    assert report.rounds == 6
    assert [round(t - started, 6) for t in cloud.prober.rounds] == [0, 10, 20, 30, 40, 50]
    assert len(cloud.probe_function.invocations) == 6
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)


def test_every_lb_failing_between_pool_probes_is_judged_with_the_pool_s_latest_results() -> None:
    """In-process, the rounds between the pool's probes hold the LBs alone. Both LBs dead with
    the pool answering is not the controller's network (the pool's latest results say it
    reaches targets): the LBs turn unhealthy, and no prober-fault notice comes and goes each
    time the pool is probed again."""
    cloud = small_cluster(webs=WEBS[:1])
    config = settings(FAKE_CLOUD_ENV, lb_address="public")
    settled_in_process = converge(cloud, config)
    assert settled_in_process.ok
    cloud.sns.messages.clear()
    cloud.prober.dead |= {"127.0.0.11", "127.0.0.12"}

    for _ in range(2):
        converge(cloud, config)

    assert all(cloud.ec2.tag(lb, "lbf:health") == "unhealthy" for lb in cloud.ec2.ids("lb"))
    assert not any("fault on the prober's side" in m for m in cloud.sns.messages)
    assert len([m for m in cloud.sns.messages if "no load balancer is eligible" in m]) == 1


def test_rounds_after_a_slow_round_keep_their_interval() -> None:
    """One round's writes take 25 s (a slow Route 53 or SSM). The rounds it overran are not made
    up back to back: the rounds after it stay LBF_PROBE_INTERVAL apart start to start, and the
    pool's probes LBF_POOL_INTERVAL apart, since LBF_FALL counts probes that far apart. Made up,
    the pool's overdue probes came in the same instant and a web server that failed one probe
    left the list: FALL 3 in a second instead of in 20 s."""
    cloud = small_cluster(webs=WEBS)
    config = settings(FAKE_CLOUD_ENV, lb_address="public")
    settled(cloud, config)
    cloud.prober.probed.clear()
    writes = iter([25.0])
    cloud.calls.before = SlowAws(
        cloud.clock, lambda operation: next(writes, 0.0) if is_write(operation) else 0.0
    )
    started = cloud.clock.now()
    # Dead for the pool's first probe (its "fail:1" tag is the run's first write), and again for
    # 6 s once that write is done: two failed probes at most, 10 s apart.
    cloud.prober.dead_when = lambda address, now: (
        address == DEAD_WEB and (now < started + 1 or started + 26 <= now < started + 32)
    )

    report = run(cloud, config)

    starts = cloud.prober.rounds
    gaps = [round(later - earlier, 6) for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= 2.0, gaps
    probed = zip(starts, cloud.prober.probed, strict=True)
    pool = [t - started for t, keys in probed if len(keys) == 5]
    assert min(b - a for a, b in itertools.pairwise(pool)) >= 10.0, pool
    # Two failed probes 10 s apart: FALL 3 not reached, the list never published without it.
    assert not any("lbf:health=unhealthy" in line for line in report.applied), report.applied
    assert report.rounds < 29  # the overrun slots are not made up


def test_the_pool_s_invoke_in_the_run_s_last_round_that_fits_is_judged() -> None:
    """A run that started late fits fewer rounds than LBF_PROBE_ROUNDS: here the one at 50 s is
    its last (the one at 52 s would end its writes after the run's deadline) and probes the
    pool. That round waits for the pool's invoke, as the run's last does: an invoke the run
    made and then never judged would be a probe paid for and lost (the web server's failure at
    50 s counted by no one)."""
    cloud = small_cluster(webs=WEBS)
    config = settings(FAKE_CLOUD_ENV, PUBLIC_LBS)
    settled(cloud, config)
    started = cloud.clock.now()
    # Dead from 49 s on, as the prober function finds it (the pool's path).
    cloud.probe_function.prober.dead_when = lambda address, now: (
        address == DEAD_WEB and now >= started + 49
    )
    dead = next(i for i, raw in cloud.ec2.instances.items() if raw.private_ip == DEAD_WEB)

    report = jobs.reconcile(config, cloud.services(), cloud.clock, deadline=started + 61)

    assert report.ok, report.errors
    assert report.rounds == 26
    assert len(cloud.probe_function.invocations) == 6
    assert (cloud.ec2.tag(dead, "lbf:probe") or "").startswith("fail:1")
