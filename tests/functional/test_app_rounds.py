"""A scheduled invocation never starts a round that the Lambda's time left would cut short.

Through the app's handlers (chalice's test client) with an invocation whose time left follows the
fake clock (tests/kit/lambda_app.py): the rounds that run for each Lambda timeout, and a slow Route 53
spending the time during a failover.
"""

from __future__ import annotations

import pytest

from chalicelib.core.timing import ROUND_WRITE_SECONDS
from tests.kit.lambda_app import LambdaApp, emf_figures, stage_cloud
from tests.kit.slow_aws import SlowAws

ACTIVE = "lb.edge-dev.example.com"
# The dev stage's settings (the defaults, public LBs): 2 s rounds, 29 of them, LBF_PROBE_TIMEOUT
# 1.5 s, then the writes' budget.
ROUND_NEEDS = 1.5 + ROUND_WRITE_SECONDS


@pytest.fixture
def lambda_app(monkeypatch: pytest.MonkeyPatch) -> LambdaApp:
    lambda_app = LambdaApp(monkeypatch, stage_cloud())
    payload = lambda_app.invoke("reconcile")  # settles: records, verdicts, lists
    assert payload["ok"], payload
    cloud = lambda_app.cloud
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    cloud.clock.advance(60)
    cloud.calls.log.clear()
    cloud.prober.rounds.clear()
    return lambda_app


@pytest.mark.parametrize(
    ("timeout_ms", "rounds"),
    [
        (90_000, 29),  # the stages' 90 s timeout: all 29 rounds (the last starts at 56 s)
        (60_000, 26),  # the round at 50 s needs 1.5 s of probes and 8 s of writes: it fits
        (50_000, 21),
        (30_000, 11),
        (10_000, 1),
    ],
)
def test_rounds_fit_the_time_left(lambda_app: LambdaApp, timeout_ms: int, rounds: int) -> None:
    started = lambda_app.cloud.clock.now()

    payload = lambda_app.invoke("reconcile", timeout_ms=timeout_ms)

    assert payload["ok"], payload
    assert payload["rounds"] == rounds
    starts = [start - started for start in lambda_app.cloud.prober.rounds]
    assert all(start + ROUND_NEEDS <= timeout_ms / 1000 for start in starts), starts


def test_no_round_fits_chalice_s_three_seconds(
    lambda_app: LambdaApp, capsys: pytest.CaptureFixture[str]
) -> None:
    """3 s (chalice's test context) holds no round: nothing is read, the run fails loudly, and no
    HealthyLBs figure goes out, since nothing was measured."""
    capsys.readouterr()

    payload = lambda_app.invoke("reconcile", timeout_ms=3_000)

    assert not payload["ok"]
    assert payload["rounds"] == 0
    assert payload["errors"][0]["text"].startswith("round 1 not started: 3.0 s of the run left")
    assert lambda_app.cloud.calls.log == []
    [figures] = emf_figures(capsys.readouterr().out)
    assert "HealthyLBs" not in figures
    assert figures["ActionErrors"] == [1.0]


@pytest.mark.parametrize(
    ("scheduled_ago", "rounds"),
    [
        (0.0, 29),  # invoked on the minute: the last round at 56 s, its probes end at 57.5 s
        # Invoked 5 s after the minute: the rounds still end their probes before the next
        # scheduled run (65 s after this one's start would be too late), so the last 2 go.
        (5.0, 27),
        (30.0, 15),
        # 58.5 s late (a 60 s maximum event age lets up to 60 s through): one round's probes
        # still end before the next run, and its writes may follow it; at 59 s none would.
        (58.5, 1),
        (59.0, 0),
        # Delivered late by EventBridge (it retries a delivery for up to 24 hours; Lambda's
        # maximum event age counts only Lambda's own queue): the minute is over, and a full
        # minute of rounds would run beside the runs scheduled since.
        (61.0, 0),
        (3600.0, 0),
        # Older than any delivery: no scheduled run's event (a hand-made one, chalice's sample):
        # budgeted as if scheduled at its start.
        (86_401.0, 29),
    ],
)
def test_the_scheduled_time_not_the_start_decides_where_the_minute_ends(
    lambda_app: LambdaApp, scheduled_ago: float, rounds: int
) -> None:
    started = lambda_app.cloud.clock.now()
    # An event older than EventBridge delivers is no scheduled run's: as if scheduled now.
    late = scheduled_ago if scheduled_ago <= 86_400 else 0.0
    next_run = started - late + 60

    payload = lambda_app.invoke("reconcile", timeout_ms=90_000, scheduled_ago=scheduled_ago)

    assert payload["rounds"] == rounds
    probes_end = [start + 1.5 for start in lambda_app.cloud.prober.rounds]
    assert all(end <= next_run for end in probes_end), [end - next_run for end in probes_end]
    if not rounds:
        assert not payload["ok"]
        assert lambda_app.cloud.calls.log == []  # nothing read for a minute that is over
        return
    assert payload["ok"], payload
    if late:
        # As many as fit: one more round would have ended its probes after the next run began.
        assert probes_end[-1] + 2.0 > next_run


def test_a_slow_route53_during_a_failover_never_outlasts_the_lambda(lambda_app: LambdaApp) -> None:
    """The repro: lb1 dies and each Route 53 change takes 30 s of a 60 s invocation. The failover
    goes through in round 3 (at 6 s, ending at 36 s), the rounds it overran are dropped, and no
    round starts that could not finish (the one at 52 s)."""
    cloud = lambda_app.cloud
    started = cloud.clock.now()
    cloud.prober.dead.add("127.0.0.11")
    cloud.calls.before = SlowAws(
        cloud.clock, {"ChangeResourceRecordSets": 30.0}, deadline=started + 60
    )

    payload = lambda_app.invoke("reconcile", timeout_ms=60_000)

    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    assert payload["ok"], payload
    assert [f["to"] for f in payload["failovers"]] == ["lb2"]
    assert payload["rounds"] == 11
    assert any(note["text"].startswith("round 12 not started") for note in payload["notes"])
    starts = [start - started for start in cloud.prober.rounds]
    assert all(start + ROUND_NEEDS <= 60 for start in starts), starts
    assert cloud.clock.now() <= started + 60


def test_the_event_function_needs_only_its_writes(lambda_app: LambdaApp) -> None:
    cloud = lambda_app.cloud
    lb1 = next(i for i, raw in cloud.ec2.instances.items() if raw.private_ip == "127.0.0.11")
    cloud.ec2.set_state(lb1, "stopped")
    detail = {"instance-id": lb1, "state": "stopped"}

    payload = lambda_app.invoke("on_instance_change", detail, timeout_ms=7_900)
    assert not payload["ok"]
    assert cloud.calls.log == []

    payload = lambda_app.invoke("on_instance_change", detail, timeout_ms=8_000)
    assert payload["ok"], payload
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
