"""Time (SPEC "Where two rules meet"): a round starts only if its probes and its writes fit in the
run's time left (`deadline`: its probes before the next scheduled run, its writes before the
invocation's end; app.py and the command line derive it), and AWS calls take their timeouts from
what remains. The fake cloud's LBs are private: 3 s rounds, 19 of them, LBF_PROBE_TIMEOUT 1.5 s.

The rounds are shown on the in-memory AWS with the fake clock and a fake slow AWS (tests/kit/slow_aws.py):
nothing sleeps. How botocore's calls are held to the time left is shown against a scripted server
on 127.0.0.1 (the one of test_faults.py): Stubber and moto answer before botocore sends or retries.
The scheduled function's side (the Lambda context) is in tests/functional/test_app_rounds.py.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import pytest

from chalicelib import jobs
from chalicelib.__main__ import main
from chalicelib.adapters import clients
from chalicelib.adapters.route53 import Route53Records
from chalicelib.config import Settings
from chalicelib.core.timing import ROUND_WRITE_SECONDS
from chalicelib.errors import AwsError
from chalicelib.report import Report
from tests.kit.aws_env import use_fake_credentials
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud
from tests.kit.scripted_aws import (
    ACTIVE_MOVE,
    ROUTE53_CHANGED,
    Scripted,
    route53_error,
)
from tests.kit.settings import environment, settings
from tests.kit.slow_aws import SlowAws

ACTIVE = f"lb.{FAKE_DOMAIN}"
LB1, LB2 = "127.0.0.11", "127.0.0.12"
# LBF_PROBE_TIMEOUT (1.5 s) and the writes' budget: what a round needs before it may start.
ROUND_NEEDS = 1.5 + ROUND_WRITE_SECONDS


@pytest.fixture
def cloud() -> FakeCloud:
    cloud = FakeCloud()
    cloud.prober.timeout = 2.0
    cloud.ec2.add("lb", LB1, name="lb1")
    cloud.ec2.add("lb", LB2, name="lb2")
    for host in (21, 22, 23):
        cloud.ec2.add("web", f"127.0.1.{host}")
    return cloud


def settle(cloud: FakeCloud, config: Settings) -> None:
    report = jobs.reconcile(config, cloud.services(), cloud.clock)
    assert report.ok, report.errors
    assert cloud.route53.value(ACTIVE) == (LB1,)
    cloud.clock.advance(60)
    cloud.calls.log.clear()
    cloud.prober.rounds.clear()


def assert_every_round_fits(cloud: FakeCloud, deadline: float, needs: float = ROUND_NEEDS) -> None:
    late = [start for start in cloud.prober.rounds if start + needs > deadline + 1e-9]
    assert late == [], f"rounds started {[round(s - deadline, 1) for s in late]} s from the end"


# --- the rounds, on the in-memory AWS ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds_left", "rounds"),
    [
        (90.0, 19),  # every round (the last starts at 54 s)
        (57.5, 17),  # the round at 48 s needs 9.5 s: it just fits
        (57.4, 16),
        (30.0, 7),
        (10.0, 1),
    ],
)
def test_a_round_starts_only_if_its_probes_and_writes_fit(
    cloud: FakeCloud, seconds_left: float, rounds: int
) -> None:
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    started = cloud.clock.now()

    report = jobs.reconcile(config, cloud.services(), cloud.clock, deadline=started + seconds_left)

    assert report.ok, report.errors
    assert report.rounds == rounds
    assert len(cloud.prober.rounds) == rounds
    assert_every_round_fits(cloud, started + seconds_left)
    if rounds < 19:
        assert f"round {rounds + 1} not started" in " ".join(report.notes)
    # A run that stops early never idles to its end: no sleep toward a round it will not start.
    assert cloud.clock.now() <= started + (rounds - 1) * config.probe_interval + 1


@pytest.mark.parametrize(
    ("seconds_left", "rounds"),
    [
        (58.5, 17),  # the round at 48 s needs 1.5 s of probes, 1 s for the invoke, 8 s of writes
        (58.4, 16),  # enough in-process (above), a little short with the prober function
    ],
)
def test_a_round_through_the_prober_function_is_given_its_invoke(
    cloud: FakeCloud, seconds_left: float, rounds: int
) -> None:
    """The private LBs' invoke may take a second beyond the probes' timeout (the invoke
    client's read timeout): a round that could not wait for it is not started."""
    config = settings(FAKE_CLOUD_ENV, prober_function="lb-failover-prod-ProbePrivate-1A2B")
    assert config.lbs_through_prober  # the LBs are probed at their private addresses
    settle(cloud, config)
    cloud.probe_function.invocations.clear()
    started = cloud.clock.now()

    report = jobs.reconcile(config, cloud.services(), cloud.clock, deadline=started + seconds_left)

    assert report.ok, report.errors
    assert report.rounds == rounds
    assert len(cloud.probe_function.invocations) == rounds
    assert_every_round_fits(cloud, started + seconds_left, needs=ROUND_NEEDS + 1.0)
    if rounds < 19:
        assert "1 s for the prober function's invoke" in " ".join(report.notes), report.notes


def test_no_time_for_one_round_reads_nothing_and_fails_loudly(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    started = cloud.clock.now()

    report = jobs.reconcile(config, cloud.services(), cloud.clock, deadline=started + 9.4)

    assert not report.ok
    assert report.errors[0].startswith("round 1 not started: 9.4 s of the run left")
    assert cloud.calls.log == []  # not even a read
    assert report.world is None  # so no HealthyLBs figure: nothing was measured


def test_a_slow_route53_during_a_failover_starts_no_round_it_cannot_finish(
    cloud: FakeCloud,
) -> None:
    """The repro: lb1 dies, and each Route 53 change takes 30 s. The failover batch goes through
    in round 3 (ending at 38 s); the rounds it overran are dropped, not made up back to back
    (the rounds after it keep their interval), and none starts that could not end before the
    Lambda does (the one at 53 s)."""
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    started = cloud.clock.now()
    deadline = started + 60
    cloud.prober.dead.add(LB1)
    slow = SlowAws(cloud.clock, {"ChangeResourceRecordSets": 30.0}, deadline=deadline)
    cloud.calls.before = slow

    report = jobs.reconcile(config, cloud.services(), cloud.clock, deadline=deadline)

    assert cloud.route53.value(ACTIVE) == (LB2,)
    assert [f.moved_to for f in report.failovers] == ["lb2"]
    assert report.ok, report.errors
    assert_every_round_fits(cloud, deadline)
    starts = [t - started for t in cloud.prober.rounds]
    assert starts[3] == 38.0
    assert all(later - earlier >= 2.0 for earlier, later in itertools.pairwise(starts)), starts
    assert report.rounds == 8
    assert "round 9 not started" in " ".join(report.notes)
    assert cloud.clock.now() <= deadline


def test_a_route53_slower_than_the_time_left_fails_the_change_and_the_next_run_makes_it(
    cloud: FakeCloud,
) -> None:
    """A change that cannot finish in time ends as an error the run reports (not a run killed in
    the middle), and no round starts after it; the next run moves the record once."""
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    started = cloud.clock.now()
    deadline = started + 60
    cloud.prober.dead.add(LB1)
    # Started at 8 s (the third failed round), it would end at 63 s.
    slow = SlowAws(cloud.clock, {"ChangeResourceRecordSets": 55.0}, deadline=deadline)
    cloud.calls.before = slow

    report = jobs.reconcile(config, cloud.services(), cloud.clock, deadline=deadline)

    assert slow.cut == ["ChangeResourceRecordSets"]
    assert cloud.route53.value(ACTIVE) == (LB1,)
    assert not report.ok
    assert any("OutOfTime" in error for error in report.errors)
    assert report.rounds == 3
    assert_every_round_fits(cloud, deadline)
    assert cloud.clock.now() <= deadline

    cloud.calls.before = None
    cloud.clock.time = started + 60
    batches = len(cloud.route53.batches)
    report = jobs.reconcile(config, cloud.services(), cloud.clock, deadline=started + 120)
    assert report.ok, report.errors
    assert cloud.route53.value(ACTIVE) == (LB2,)
    assert [f.moved_to for f in report.failovers] == ["lb2"]
    assert len(cloud.route53.batches) == batches + 1


def test_an_event_run_needs_only_its_writes(cloud: FakeCloud) -> None:
    """The event-triggered run probes nothing: its one round needs the writes' budget only."""
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)
    lb1 = next(i for i, raw in cloud.ec2.instances.items() if raw.private_ip == LB1)
    cloud.ec2.set_state(lb1, "stopped")
    started = cloud.clock.now()

    def event_run(seconds_left: float) -> Report:
        return jobs.on_instance_change(
            config, cloud.services(), cloud.clock, lb1, deadline=cloud.clock.now() + seconds_left
        )

    report = event_run(ROUND_WRITE_SECONDS - 0.1)
    assert report.rounds == 0
    assert not report.ok
    assert report.errors == [
        "round 1 not started: 7.9 s of the run left when it would start (probes before the next "
        "scheduled run, writes before the invocation's end), and a round needs 8 s (8 s for its "
        "writes)"
    ]
    assert cloud.calls.log == []
    assert cloud.clock.now() == started

    report = event_run(ROUND_WRITE_SECONDS)
    assert report.ok, report.errors
    assert report.rounds == 1
    assert cloud.route53.value(ACTIVE) == (LB2,)


@pytest.mark.parametrize("switch", ["dry-run", "paused"])
def test_dry_run_and_paused_runs_keep_the_same_budget(cloud: FakeCloud, switch: str) -> None:
    """Planning only still probes: the rounds obey the time left exactly as a real run's do."""
    settle(cloud, settings(FAKE_CLOUD_ENV))
    config = (
        settings(FAKE_CLOUD_ENV, dry_run="true")
        if switch == "dry-run"
        else settings(FAKE_CLOUD_ENV)
    )
    if switch == "paused":
        cloud.ssm.parameters["/lbf/demo/paused"] = "true"
    started = cloud.clock.now()

    report = jobs.reconcile(config, cloud.services(), cloud.clock, deadline=started + 30)

    assert report.dry_run
    assert report.rounds == 7
    assert_every_round_fits(cloud, started + 30)
    assert "round 8 not started" in " ".join(report.notes)


def test_without_a_deadline_every_configured_round_runs(cloud: FakeCloud) -> None:
    """`plan`, `status` and the stand-in pass no deadline: nothing changes for them."""
    config = settings(FAKE_CLOUD_ENV)
    settle(cloud, config)

    report = jobs.reconcile(config, cloud.services(), cloud.clock)

    assert report.rounds == config.probe_rounds == 19


# --- the command line's one-minute budget -----------------------------------------------------------


def test_the_command_line_reconcile_has_the_one_minute_budget(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every write takes 8 s: today's run would start its last rounds after 54 s and end past the
    minute, into the next scheduled run. It stops instead, and says which round it left out."""
    settle(cloud, settings(FAKE_CLOUD_ENV))
    cloud.prober.dead.add(LB1)
    cloud.calls.before = SlowAws(cloud.clock, SlowAws.writes_only(8.0))
    started = cloud.clock.now()

    code = main(
        ["reconcile"],
        environ=environment(FAKE_CLOUD_ENV, sns_topic_arn=None),
        services=cloud.services(),
        clock=cloud.clock,
    )

    output = capsys.readouterr().out
    assert code == 0, output
    assert cloud.route53.value(ACTIVE) == (LB2,)
    assert_every_round_fits(cloud, started + 60)
    assert "not started" in output


def test_the_command_line_reconcile_keeps_the_scheduled_function_s_rounds(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """As if scheduled when it starts: all 19 rounds of 3 s, the last one's probes ending before
    the minute does, and its writes after (a budget of the invocation's end alone would stop at
    the round whose writes end by 60 s, and leave the last 2 rounds out)."""
    settle(cloud, settings(FAKE_CLOUD_ENV))
    started = cloud.clock.now()

    code = main(
        ["reconcile"],
        environ=environment(FAKE_CLOUD_ENV, sns_topic_arn=None),
        services=cloud.services(),
        clock=cloud.clock,
    )

    assert code == 0, capsys.readouterr().out
    assert [round(start - started, 6) for start in cloud.prober.rounds] == [
        3.0 * n for n in range(19)
    ]
    assert cloud.prober.rounds[-1] + 1.5 <= started + 60


# --- botocore under the time left -------------------------------------------------------------------


@pytest.fixture
def route53_at(
    scripted_server: Callable[[Scripted], str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[Scripted], Route53Records]]:
    """Route53Records on a client from chalicelib's own factory, sent to a scripted server."""

    def make(script: Scripted) -> Route53Records:
        monkeypatch.setenv("AWS_ENDPOINT_URL_ROUTE_53", scripted_server(script))
        return Route53Records(clients.client("route53"), "Z123")

    use_fake_credentials(monkeypatch)
    yield make
    clients.forget_clients()


def change_with(records: Route53Records, seconds_left: float) -> AwsError | str:
    try:
        with clients.time_limit(lambda: seconds_left):
            return records.change(ACTIVE_MOVE, comment="failover")
    except AwsError as exc:
        return exc


def test_a_call_is_not_sent_when_the_time_is_spent(
    route53_at: Callable[[Scripted], Route53Records],
) -> None:
    """Less than the report's second and a connect timeout left: nothing goes out."""
    script = Scripted([(200, ROUTE53_CHANGED)])
    records = route53_at(script)

    outcome = change_with(records, 3.9)

    assert isinstance(outcome, AwsError)
    assert outcome.code == "OutOfTime"
    assert "not sent" in str(outcome)
    assert script.requests == []


def test_a_call_with_time_left_goes_through(
    route53_at: Callable[[Scripted], Route53Records],
) -> None:
    script = Scripted([(200, ROUTE53_CHANGED)])

    assert change_with(route53_at(script), 30.0) == "/change/C2"
    assert len(script.requests) == 1


def test_a_silent_aws_is_given_up_on_within_the_time_left(
    route53_at: Callable[[Scripted], Route53Records],
) -> None:
    """4.5 s left: 1 s for the report, 3 s for a connect, so the read may take 0.5 s, not the
    client's 10 s; and no retry follows it, which could not finish either."""
    script = Scripted([(200, ROUTE53_CHANGED)], delay=30)
    records = route53_at(script)

    began = time.monotonic()
    outcome = change_with(records, 4.5)
    waited = time.monotonic() - began

    assert isinstance(outcome, AwsError)
    assert outcome.code == "OutOfTime"
    assert "not retried after ReadTimeoutError" in str(outcome)
    assert len(script.requests) == 1
    assert waited < 5  # far below the configured 10 s read timeout (x 6 attempts)


def test_throttling_is_retried_only_while_the_backoff_fits(
    route53_at: Callable[[Scripted], Route53Records],
    backoff: list[float],
) -> None:
    """6 s left leave 2 s for calls: the first backoff (up to 1 s) fits, the second (up to 2 s)
    does not. Without a limit botocore would make all 6 attempts."""
    script = Scripted([(400, route53_error("Throttling"))])
    records = route53_at(script)

    outcome = change_with(records, 6.0)

    assert isinstance(outcome, AwsError)
    assert outcome.code == "OutOfTime"
    assert "not retried after Throttling (attempt 2)" in str(outcome)
    assert len(script.requests) == 2
    assert len(backoff) == 1


def test_without_a_time_limit_the_client_is_as_configured(
    route53_at: Callable[[Scripted], Route53Records],
    backoff: list[float],
) -> None:
    script = Scripted([(400, route53_error("Throttling"))])
    records = route53_at(script)

    with pytest.raises(AwsError) as raised:
        records.change(ACTIVE_MOVE, comment="failover")

    assert raised.value.code == "Throttling"
    assert len(script.requests) == 6


def test_a_permanent_error_is_not_hidden_by_the_time_limit(
    route53_at: Callable[[Scripted], Route53Records],
) -> None:
    """Near the end, an error botocore does not retry comes back as itself, not as OutOfTime:
    a rejected batch must still be judged by what Route 53 said."""
    script = Scripted([(400, route53_error("InvalidChangeBatch"))])

    outcome = change_with(route53_at(script), 4.2)

    assert isinstance(outcome, AwsError)
    assert outcome.code == "InvalidChangeBatch"
