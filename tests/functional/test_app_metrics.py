"""What the functions publish and how they fail, through app.py's handlers (chalice's test client).

Metrics report what was measured (SPEC "Where two rules meet"): an event about an instance outside
the cluster, or a run that could not read its view, publishes no HealthyLBs figure, since the
"no healthy LB" alarm pages on a low one. Missing AWS settings stop the function with one clear
configuration error before any AWS call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.clients import forget_clients
from chalicelib.config.reading import ConfigError
from chalicelib.errors import AwsError
from chalicelib.services import aws_services
from tests.kit.lambda_app import CLUSTER, LambdaApp, emf_figures, stage_cloud

OTHER_CLUSTERS_INSTANCE = "i-0123456789abcdef0"


@pytest.fixture
def lambda_app(monkeypatch: pytest.MonkeyPatch) -> LambdaApp:
    lambda_app = LambdaApp(monkeypatch, stage_cloud())
    lambda_app.cloud.ec2.add("lb", "127.0.0.31", name="lb1", cluster="another")
    assert lambda_app.invoke("reconcile")["ok"]
    lambda_app.cloud.clock.advance(60)
    lambda_app.cloud.calls.log.clear()
    return lambda_app


def figures_of(capsys: pytest.CaptureFixture[str]) -> dict[str, list[float]]:
    [figures] = emf_figures(capsys.readouterr().out)
    return figures


def instance_of(lambda_app: LambdaApp, cluster: str) -> str:
    return next(
        i
        for i, raw in lambda_app.cloud.ec2.instances.items()
        if ("lbf:cluster", cluster) in raw.tags
    )


def test_an_event_about_another_clusters_instance_publishes_no_healthy_lbs(
    lambda_app: LambdaApp, capsys: pytest.CaptureFixture[str]
) -> None:
    """The repro: today this publishes HealthyLBs = 0, and the no-healthy-LB alarm pages."""
    capsys.readouterr()
    other = instance_of(lambda_app, "another")

    payload = lambda_app.invoke("on_instance_change", {"instance-id": other, "state": "stopped"})

    assert payload["ok"], payload
    figures = figures_of(capsys)
    assert "HealthyLBs" not in figures
    assert figures["ActionErrors"] == [0.0]


def test_an_event_about_an_unknown_instance_publishes_no_healthy_lbs(
    lambda_app: LambdaApp, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    detail = {"instance-id": OTHER_CLUSTERS_INSTANCE, "state": "running"}

    lambda_app.invoke("on_instance_change", detail)

    assert "HealthyLBs" not in figures_of(capsys)


@pytest.mark.parametrize("function", ["reconcile", "on_instance_change"])
def test_a_run_that_could_not_read_its_view_publishes_no_healthy_lbs(
    lambda_app: LambdaApp, capsys: pytest.CaptureFixture[str], function: str
) -> None:
    capsys.readouterr()
    lambda_app.cloud.ec2.fail_describe = AwsError("ec2", "DescribeInstances", "Unavailable", "x")
    detail = {"instance-id": instance_of(lambda_app, CLUSTER), "state": "running"}

    payload = lambda_app.invoke(function, detail)

    assert not payload["ok"]
    figures = figures_of(capsys)
    assert "HealthyLBs" not in figures
    assert figures["ActionErrors"] == [1.0]  # the failed read still pages, as an error


@pytest.mark.parametrize("function", ["reconcile", "on_instance_change"])
def test_a_run_that_read_its_cluster_publishes_healthy_lbs(
    lambda_app: LambdaApp, capsys: pytest.CaptureFixture[str], function: str
) -> None:
    """The control: a run about the cluster does measure, and publishes what it found."""
    capsys.readouterr()
    detail = {"instance-id": instance_of(lambda_app, CLUSTER), "state": "running"}

    payload = lambda_app.invoke(function, detail)

    assert payload["ok"], payload
    assert figures_of(capsys)["HealthyLBs"] == [2.0]


def test_a_paused_run_still_measures(
    lambda_app: LambdaApp, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    lambda_app.cloud.ssm.parameters["/lbf/web-dev/paused"] = "true"
    lambda_app.cloud.prober.dead.update({"127.0.0.11", "127.0.0.12"})
    # Every LB down: a real zero, which must page even while paused.
    lambda_app.cloud.prober.dead.add("127.0.1.21")

    payload = lambda_app.invoke("reconcile")

    assert payload["dry_run"]
    assert figures_of(capsys)["HealthyLBs"] == [0.0]


# --- missing AWS settings in the Lambda path --------------------------------------------------------


@pytest.fixture
def no_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    empty = tmp_path / "aws-config"
    empty.write_text("")
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    forget_clients()
    yield
    forget_clients()


@pytest.mark.parametrize("function", ["reconcile", "on_instance_change"])
def test_no_region_stops_the_function_with_one_configuration_error(
    lambda_app: LambdaApp,
    no_region: None,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
) -> None:
    monkeypatch.setattr(lambda_app.module, "aws_services", aws_services)
    detail = {"instance-id": instance_of(lambda_app, CLUSTER), "state": "running"}
    raised, logged = refused(lambda_app, function, detail)

    assert raised.value.variable == "AWS_DEFAULT_REGION"
    assert "AWS_REGION" in str(raised.value)
    assert [r.getMessage() for r in logged] == ["configuration error, nothing done"]
    assert "AWS_DEFAULT_REGION" in str(logged[0].__dict__.get("error"))
    assert lambda_app.cloud.calls.log == []


# --- a bad variable in the stage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "phrase"),
    [
        ("LBF_DRYRUN", "true", "did you mean LBF_DRY_RUN?"),
        ("LBF_DRY_RUN", "yes", "expected true or false"),
    ],
)
@pytest.mark.parametrize("function", ["reconcile", "on_instance_change"])
def test_a_bad_variable_stops_the_function_with_one_configuration_error(
    lambda_app: LambdaApp,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
    variable: str,
    value: str,
    phrase: str,
) -> None:
    monkeypatch.setenv(variable, value)
    detail = {"instance-id": instance_of(lambda_app, CLUSTER), "state": "running"}
    raised, logged = refused(lambda_app, function, detail)

    assert raised.value.variable == variable
    assert phrase in str(raised.value)
    assert [r.getMessage() for r in logged] == ["configuration error, nothing done"]
    assert phrase in str(logged[0].__dict__.get("error"))
    assert lambda_app.cloud.calls.log == []


def refused(
    lambda_app: LambdaApp, function: str, detail: dict[str, Any]
) -> tuple[pytest.ExceptionInfo[ConfigError], list[logging.LogRecord]]:
    """An invocation that must fail for its configuration, and the errors its function logged.

    Caught straight on the function's logger: other tests (the demo) change its propagation."""
    logged: list[logging.LogRecord] = []
    catcher = logging.Handler(logging.ERROR)
    catcher.emit = logged.append  # type: ignore[method-assign]
    function_log = logging.getLogger(lambda_app.module.logger.name)
    function_log.addHandler(catcher)
    try:
        with pytest.raises(ConfigError) as raised:
            lambda_app.invoke(function, detail)
    finally:
        function_log.removeHandler(catcher)
    return raised, logged
