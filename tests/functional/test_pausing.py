"""`<prefix>/paused` as an operator writes it (SPEC "Pausing"), through the job, the CLI and the app.

Absent or `false` in any case: the controller runs. `true` in any case: paused. Anything else
(`ture`, `yes`, `1`): someone meant to pause, so paused, and the value found is shown by `status`
and told in one notice, not one a minute. In-memory AWS (tests/kit), because what matters is
exactly which writes a run makes.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.__main__ import main
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud, small_cluster
from tests.kit.lambda_app import CLUSTER, LambdaApp, stage_cloud
from tests.kit.runs import converge, run
from tests.kit.settings import environment, settings

ACTIVE = f"lb.{FAKE_DOMAIN}"
PAUSED = "/lbf/demo/paused"
ENV = environment(FAKE_CLOUD_ENV)
UNCLEAR = ["ture", "yes", "1", "on", "paused", "TRUE."]


@pytest.fixture
def cloud() -> FakeCloud:
    return small_cluster()


def status(cloud: FakeCloud, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    """status --wide (every line whole); its exit code says whether clients are served, which
    these clusters with no active record yet are not."""
    capsys.readouterr()
    code = main(
        ["status", "--wide", *flags], environ=ENV, services=cloud.services(), clock=cloud.clock
    )
    assert code == 1
    return capsys.readouterr().out


@pytest.mark.parametrize("value", [None, "false", "FALSE", "False", " false\n"])
def test_absent_or_false_in_any_case_is_not_paused(cloud: FakeCloud, value: str | None) -> None:
    if value is not None:
        cloud.ssm.parameters[PAUSED] = value

    report = converge(cloud, settings(FAKE_CLOUD_ENV))
    converge(cloud, settings(FAKE_CLOUD_ENV))

    assert not report.dry_run
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)


@pytest.mark.parametrize("value", ["true", "TRUE", "True", " true\n"])
def test_true_in_any_case_is_paused_without_a_notice_about_the_value(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    cloud.ssm.parameters[PAUSED] = value

    report = converge(cloud, settings(FAKE_CLOUD_ENV))

    assert report.dry_run
    assert cloud.calls.writes() == []
    assert cloud.sns.messages == []
    assert f"PAUSED: {PAUSED} is true" in status(cloud, capsys)


@pytest.mark.parametrize("value", UNCLEAR)
def test_any_other_value_is_paused_and_told_once(cloud: FakeCloud, value: str) -> None:
    cloud.ssm.parameters[PAUSED] = value
    config = settings(FAKE_CLOUD_ENV)

    first = converge(cloud, config)

    assert first.dry_run
    assert ACTIVE not in {name for name, _ in cloud.route53.records}  # planned, not created
    assert any(f"CREATE {ACTIVE} A 127.0.0.11" in p for p in first.planned)
    [notice] = cloud.sns.messages
    assert notice == (
        f"[paused] controller paused: {PAUSED} holds {value!r}, neither true nor false: taken "
        "as paused (write true to pause, false or delete it to resume)"
    )
    # Only the notice and the memory of it: nothing else is written while paused.
    assert [op for op, _ in cloud.calls.writes()] == ["Publish", "PutParameter"]
    assert "paused-unclear" in cloud.ssm.parameters["/lbf/demo/notices"]

    cloud.calls.log.clear()
    for _ in range(3):
        again = converge(cloud, config)
        assert again.dry_run
    assert cloud.calls.writes() == []
    assert len(cloud.sns.messages) == 1


def test_an_unclear_value_is_shown_by_status(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.ssm.parameters[PAUSED] = "ture"

    text = status(cloud, capsys)
    data = json.loads(status(cloud, capsys, "--json"))

    assert f"PAUSED: {PAUSED} holds 'ture', neither true nor false: taken as paused" in text
    assert data["paused"] is True
    assert data["pause"]["value"] == "ture"


def test_a_hostile_value_is_shown_escaped_and_cut(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.ssm.parameters[PAUSED] = "yes\n\x1b[31mred" + "x" * 500

    text = status(cloud, capsys)

    [line] = [line for line in text.splitlines() if line.startswith("PAUSED: ")]
    assert "\\n\\x1b[31mred" in line
    assert len(line) < 250


def test_correcting_the_value_resumes_and_a_new_typo_is_told_again(cloud: FakeCloud) -> None:
    config = settings(FAKE_CLOUD_ENV)
    cloud.ssm.parameters[PAUSED] = "yes"
    converge(cloud, config)
    cloud.ssm.parameters[PAUSED] = "false"

    resumed = converge(cloud, config)
    converge(cloud, config)

    assert not resumed.dry_run
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    assert "paused-unclear" not in cloud.ssm.parameters["/lbf/demo/notices"]
    cloud.ssm.parameters[PAUSED] = "1"
    run(cloud, config)
    assert [m for m in cloud.sns.messages if "controller paused" in m] == [
        f"[paused] controller paused: {PAUSED} holds 'yes', neither true nor false: taken as "
        "paused (write true to pause, false or delete it to resume)",
        f"[paused] controller paused: {PAUSED} holds '1', neither true nor false: taken as "
        "paused (write true to pause, false or delete it to resume)",
    ]


def test_move_active_refuses_under_an_unclear_value_naming_it(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    converge(cloud, settings(FAKE_CLOUD_ENV))
    converge(cloud, settings(FAKE_CLOUD_ENV))
    cloud.ssm.parameters[PAUSED] = "ture"
    cloud.calls.log.clear()
    capsys.readouterr()

    code = main(
        ["move-active", "--to", "lb2"], environ=ENV, services=cloud.services(), clock=cloud.clock
    )

    assert code == 1
    assert f"error: refused, nothing changed: paused: {PAUSED} holds 'ture'" in (
        capsys.readouterr().out
    )
    assert cloud.calls.writes() == []
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)


def test_the_scheduled_function_takes_an_unclear_value_as_paused_and_tells_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lambda_app = LambdaApp(monkeypatch, stage_cloud())
    lambda_app.cloud.ssm.parameters[f"/lbf/{CLUSTER}/paused"] = "yes"

    first = lambda_app.invoke("reconcile")
    lambda_app.cloud.clock.advance(60)
    second = lambda_app.invoke("reconcile")

    assert first["dry_run"]
    assert second["dry_run"]
    assert not any(name.startswith("lb.") for name, _ in lambda_app.cloud.route53.records)
    [notice] = lambda_app.cloud.sns.messages
    assert f"/lbf/{CLUSTER}/paused holds 'yes'" in notice
