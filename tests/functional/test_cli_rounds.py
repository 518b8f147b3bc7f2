"""`reconcile` as it runs: a line per round as the round ends, and Ctrl-C between steps.

In process, on the in-memory AWS (tests/kit/cloud.py) and its fake clock: the clock's sleep (the
wait before each round) is where a test reads what was printed so far or presses Ctrl-C; a real
SIGINT sent during a Route 53 write shows the write, and the rest of its step, completing first.
The same through a real process and a real signal is in tests/e2e/test_cli_process.py.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from chalicelib.__main__ import EXIT_INTERRUPTED, main
from tests.kit.cli_schema import valid
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeClock, FakeCloud
from tests.kit.settings import environment

ENV = environment(FAKE_CLOUD_ENV, sns_topic_arn=None)
ACTIVE = f"lb.{FAKE_DOMAIN}"


class HookedClock(FakeClock):
    """The fake clock, calling a hook at each sleep (the wait before rounds 2, 3, ...) with the
    number of sleeps since the hook was set."""

    def __init__(self) -> None:
        super().__init__()
        self._hook: Callable[[int], None] | None = None
        self._since = 0

    def at_sleep(self, hook: Callable[[int], None]) -> None:
        self._hook, self._since = hook, len(self.sleeps)

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self._hook is not None:
            self._hook(len(self.sleeps) - self._since)


@pytest.fixture
def cloud() -> FakeCloud:
    cloud = FakeCloud(clock=HookedClock())
    cloud.ec2.add("lb", "127.0.0.11", name="lb1")
    cloud.ec2.add("lb", "127.0.0.12", name="lb2")
    cloud.ec2.add("web", "127.0.1.21")
    assert run(cloud, "reconcile") == 0
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    return cloud


def run(cloud: FakeCloud, *argv: str) -> int:
    return main(list(argv), environ=ENV, services=cloud.services(), clock=cloud.clock)


def clock_of(cloud: FakeCloud) -> HookedClock:
    assert isinstance(cloud.clock, HookedClock)
    return cloud.clock


def round_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("round ")]


def test_each_round_is_printed_when_it_ends_not_after_the_run(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    cloud.prober.dead.add("127.0.0.11")  # lb1 dies: unhealthy at the third failed round (FALL 3)
    printed_before_round: dict[int, list[str]] = {}
    clock_of(cloud).at_sleep(
        lambda n: printed_before_round.setdefault(n + 1, round_lines(capsys.readouterr().out))
    )

    assert run(cloud, "reconcile") == 0

    # What stdout had received when each next round was about to start: the round before it.
    assert [lines[0].split()[:2] for lines in printed_before_round.values()] == [
        ["round", str(n)]
        for n in range(1, 19)  # 19 rounds of 3 s (the fake's LBs are private)
    ]
    third = printed_before_round[4][0]
    assert "lb1 healthy -> unhealthy" in third
    assert "changed " in third  # the record moved in that round, not at the end of the minute
    first = printed_before_round[2][0]
    assert "no verdict changed" in first
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)


def test_ctrl_c_between_rounds_prints_what_was_applied_and_exits_130(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    cloud.ec2.set_state(cloud.ec2.id_at("127.0.0.11"), "stopped")  # round 1 moves the record

    def ctrl_c(sleeps: int) -> None:
        if sleeps == 1:  # waiting for round 2
            raise KeyboardInterrupt

    clock_of(cloud).at_sleep(ctrl_c)

    code = run(cloud, "reconcile")

    assert code == EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert [line.split()[:2] for line in round_lines(captured.out)] == [["round", "1"]]
    assert f"CREATE {ACTIVE} A 127.0.0.12" in captured.out  # the move it made, as applied
    summary = next(line for line in captured.out.splitlines() if line.startswith("reconcile "))
    assert "1 round(s)" in summary
    assert "INTERRUPTED" in summary
    assert "note: interrupted in round 2" in captured.out
    assert "KeyboardInterrupt" not in captured.err  # ended by the round loop, not a traceback
    assert len(cloud.prober.rounds) == 1 + 19  # the fixture's 19 rounds, then this run's first
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)


def test_ctrl_c_in_json_is_the_report_so_far(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    cloud.ec2.set_state(cloud.ec2.id_at("127.0.0.11"), "stopped")

    def ctrl_c(sleeps: int) -> None:
        if sleeps == 2:
            raise KeyboardInterrupt

    clock_of(cloud).at_sleep(ctrl_c)

    assert run(cloud, "reconcile", "--json") == EXIT_INTERRUPTED

    document = valid(capsys.readouterr().out)  # one object: no round lines mixed in
    assert document["interrupted"] is True
    assert document["rounds"] == 2
    assert any(f"CREATE {ACTIVE} A 127.0.0.12" in change for change in document["applied"])
    assert "interrupted" in [note["code"] for note in document["notes"]]


def test_ctrl_c_during_a_write_lets_the_write_and_its_step_finish(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGINT arrives while Route 53 applies the failover: the record change completes, and so
    do the round's other writes (the tags saying which LB is active), before the run stops."""
    capsys.readouterr()
    lb1, lb2 = cloud.ec2.id_at("127.0.0.11"), cloud.ec2.id_at("127.0.0.12")
    cloud.ec2.set_state(lb1, "stopped")

    def press_ctrl_c(operation: str, detail: object) -> None:
        if operation == "ChangeResourceRecordSets":
            os.kill(os.getpid(), signal.SIGINT)

    cloud.calls.before = press_ctrl_c
    # Python's own Ctrl-C handler, which a command line started from a terminal has (pytest
    # started in the background inherits SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = run(cloud, "reconcile")
        restored = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)

    assert code == EXIT_INTERRUPTED
    out = capsys.readouterr().out
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    assert cloud.ec2.tag(lb2, "lbf:state") == "active"
    assert any(f"tag {lb2}" in line and "lbf:state=active" in line for line in out.splitlines())
    assert [line.split()[:2] for line in round_lines(out)] == [["round", "1"]]
    assert "INTERRUPTED" in out
    assert restored is signal.default_int_handler  # put back after the writes


def test_ctrl_c_while_move_active_waits_for_insync_reports_the_move_and_exits_130(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    cloud.route53.change_status = lambda change_id: "PENDING"  # type: ignore[method-assign]

    def ctrl_c(sleeps: int) -> None:
        raise KeyboardInterrupt  # at the first wait between two GetChange polls

    clock_of(cloud).at_sleep(ctrl_c)

    assert run(cloud, "move-active", "--to", "lb2", "--json") == EXIT_INTERRUPTED

    document = valid(capsys.readouterr().out)
    assert document["interrupted"] is True
    assert any(f"CREATE {ACTIVE} A 127.0.0.12" in change for change in document["applied"])
    [note] = [n for n in document["notes"] if n["code"] == "interrupted"]
    assert "the move was applied" in note["text"]
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)


def test_ctrl_c_during_status_probe_exits_130_quietly(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    def ctrl_c(targets: object) -> dict[str, object]:
        raise KeyboardInterrupt

    cloud.prober.probe_round = ctrl_c  # type: ignore[method-assign,assignment]

    assert run(cloud, "status", "--probe") == EXIT_INTERRUPTED

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "interrupted\n"
