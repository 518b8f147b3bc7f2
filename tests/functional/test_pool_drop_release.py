"""A list LBF_MAX_POOL_DROP holds back is not held forever (SPEC "Where two rules meet"), and
`accept-drop` takes the drop at once: runs one minute apart through jobs.reconcile, with the
fake clock, against the in-memory AWS.

Three web servers, two of them dead: two of three is more than the 50 % one run may remove, so
the list stays, until the same two have failed every probe for 10 minutes of runs whose other
probes answered.
"""

from __future__ import annotations

import json

import pytest

from chalicelib import jobs
from chalicelib.__main__ import main
from chalicelib.report import Report
from tests.kit.cloud import FAKE_CLOUD_ENV, FakeCloud, small_cluster
from tests.kit.settings import environment, settings

ENV = environment(FAKE_CLOUD_ENV, sns_topic_arn=None)
SETTINGS = settings(FAKE_CLOUD_ENV)
BACKENDS = "/lbf/demo/backends"
HELD = "/lbf/demo/held-drop"
HISTORY = "/lbf/demo/history"
FULL = "127.0.1.21:80 127.0.1.22:80 127.0.1.23:80"
DEAD = ("127.0.1.22", "127.0.1.23")


@pytest.fixture
def cloud() -> FakeCloud:
    cloud = small_cluster(lbs=2)
    minute(cloud)
    assert cloud.ssm.parameters[BACKENDS] == FULL
    return cloud


def minute(cloud: FakeCloud) -> Report:
    """One scheduled run; the next starts one minute after this one started."""
    started = cloud.clock.now()
    report = jobs.reconcile(SETTINGS, cloud.services(), cloud.clock)
    assert report.ok, report.errors
    cloud.clock.time = started + 60
    return report


def all_events(cloud: FakeCloud) -> list[dict[str, object]]:
    return [e for _, value in cloud.ssm.versions[HISTORY] for e in json.loads(value)]


def test_the_held_drop_is_taken_after_ten_minutes_with_a_notice(cloud: FakeCloud) -> None:
    cloud.prober.dead.update(DEAD)
    first = cloud.clock.now()

    minute(cloud)
    assert cloud.ssm.parameters[BACKENDS] == FULL
    assert json.loads(cloud.ssm.parameters[HELD]) == {
        "entries": ["127.0.1.22:80", "127.0.1.23:80"],
        "since": int(first),
    }
    for _ in range(9):  # up to 9 minutes later: still held, and the state is not rewritten
        minute(cloud)
        assert cloud.ssm.parameters[BACKENDS] == FULL
    assert len(cloud.ssm.versions[HELD]) == 1

    report = minute(cloud)  # 10 minutes after the first run that held them

    assert cloud.ssm.parameters[BACKENDS] == "127.0.1.21:80"
    [notice] = [n for n in report.notices if "failed every probe" in n]
    assert notice == (
        "2 backend(s) failed every probe for 10 minutes of runs whose other probes answered: "
        "the drop LBF_MAX_POOL_DROP held back is taken (127.0.1.22:80 127.0.1.23:80)"
    )
    [taken] = [e for e in all_events(cloud) if e["code"] == "drop-taken"]
    assert taken["text"] == "2 failing backend(s) taken out: 127.0.1.22:80 127.0.1.23:80"
    assert taken["reason"] == "failed every probe for 10 minutes"
    minute(cloud)
    assert cloud.ssm.parameters[HELD] == "none"  # the hold ended: cleared once
    assert cloud.ssm.parameters[BACKENDS] == "127.0.1.21:80"


def test_a_prober_fault_starts_the_ten_minutes_again(cloud: FakeCloud) -> None:
    """The fault stops the clock, stored once however long it lasts (a steady world is not
    rewritten each minute); the first run that counts again starts the 10 minutes."""
    cloud.prober.dead.update(DEAD)
    for _ in range(5):
        minute(cloud)
    stored = len(cloud.ssm.versions[HELD])
    # Runs in which every probe fails: the prober's fault, which vouches for nobody.
    everyone = {*DEAD, "127.0.0.11", "127.0.0.12", "127.0.1.21"}
    cloud.prober.dead.update(everyone)
    for _ in range(3):
        minute(cloud)
    assert json.loads(cloud.ssm.parameters[HELD])["since"] is None
    assert len(cloud.ssm.versions[HELD]) == stored + 1
    cloud.prober.dead.difference_update(everyone - set(DEAD))
    restarted = cloud.clock.now()
    minute(cloud)
    assert json.loads(cloud.ssm.parameters[HELD])["since"] == int(restarted)

    for _ in range(9):
        minute(cloud)
        assert cloud.ssm.parameters[BACKENDS] == FULL
    minute(cloud)
    assert cloud.ssm.parameters[BACKENDS] == "127.0.1.21:80"


def test_a_server_that_answers_once_starts_the_ten_minutes_again(cloud: FakeCloud) -> None:
    cloud.prober.dead.update(DEAD)
    for _ in range(8):
        minute(cloud)
    # 127.0.1.22 answers one probe, in one round, then fails again: still unhealthy (rise 2),
    # still held, but it did not fail every probe.
    answered_at = cloud.clock.now() + 5
    cloud.prober.dead_when = lambda address, now: (
        address in DEAD and not (address == "127.0.1.22" and answered_at <= now < answered_at + 10)
    )
    cloud.prober.dead.clear()
    minute(cloud)
    assert cloud.ssm.parameters[BACKENDS] == FULL
    cloud.prober.dead_when = None
    cloud.prober.dead.update(DEAD)
    for _ in range(9):
        minute(cloud)
        assert cloud.ssm.parameters[BACKENDS] == FULL
    minute(cloud)
    assert cloud.ssm.parameters[BACKENDS] == "127.0.1.21:80"


def test_accept_drop_takes_it_at_once(cloud: FakeCloud, capsys: pytest.CaptureFixture[str]) -> None:
    cloud.prober.dead.update(DEAD)
    minute(cloud)
    assert cloud.ssm.parameters[BACKENDS] == FULL
    capsys.readouterr()
    sent = len(cloud.ssm.commands)

    assert main(["accept-drop"], environ=ENV, services=cloud.services(), clock=cloud.clock) == 0

    assert cloud.ssm.parameters[BACKENDS] == "127.0.1.21:80"
    assert cloud.ssm.parameters[HELD] == "none"
    # Pushed to both LBs at once, as a run would.
    assert {c.instance_id for c in cloud.ssm.commands[sent:]} == {
        cloud.ec2.id_named("lb1"),
        cloud.ec2.id_named("lb2"),
    }
    [taken] = [e for e in all_events(cloud) if e["code"] == "drop-taken"]
    assert taken["reason"] == "accept-drop on the command line"
    minute(cloud)  # the next run keeps it
    assert cloud.ssm.parameters[BACKENDS] == "127.0.1.21:80"


def test_accept_drop_in_a_dry_run_writes_nothing(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.prober.dead.update(DEAD)
    minute(cloud)
    parameters, commands = dict(cloud.ssm.parameters), list(cloud.ssm.commands)

    code = main(
        ["accept-drop"],
        environ={**ENV, "LBF_DRY_RUN": "true"},
        services=cloud.services(),
        clock=cloud.clock,
    )

    assert code == 0
    assert f"parameter {BACKENDS} = 127.0.1.21:80" in capsys.readouterr().out
    assert cloud.ssm.parameters == parameters
    assert cloud.ssm.commands == commands


def test_accept_drop_with_nothing_held(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    writes = len(cloud.calls.writes())

    assert main(["accept-drop"], environ=ENV, services=cloud.services(), clock=cloud.clock) == 0

    assert "LBF_MAX_POOL_DROP holds nothing back" in capsys.readouterr().out
    assert len(cloud.calls.writes()) == writes


def test_accept_drop_never_publishes_an_empty_list(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.prober.dead.update({*DEAD, "127.0.1.21"})
    minute(cloud)
    assert cloud.ssm.parameters[BACKENDS] == FULL
    capsys.readouterr()

    assert main(["accept-drop"], environ=ENV, services=cloud.services(), clock=cloud.clock) == 1

    out = capsys.readouterr().out
    assert "not by LBF_MAX_POOL_DROP: no web server is healthy" in out
    assert cloud.ssm.parameters[BACKENDS] == FULL
