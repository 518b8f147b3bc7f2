"""The operator's commands through `main`, against the in-memory AWS: pause, resume, drain,
undrain, accept-drop and history, as an operator sees them (output, exit code, AWS state).

An unknown NAME is exit 1 with the reason ("no LB ... is named ..."), as `move-active` refuses
one: the command line was well formed, the cluster has no such instance. Exit 2 is kept for what
is wrong before any AWS call (a bad `--reason`, a bad `--limit`, a bad setting).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from chalicelib.__main__ import main
from chalicelib.errors import AwsError
from tests.kit.cli_schema import valid
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud, small_cluster
from tests.kit.settings import environment

ENV = environment(FAKE_CLOUD_ENV, sns_topic_arn=None)
ACTIVE = f"lb.{FAKE_DOMAIN}"
PAUSED = "/lbf/demo/paused"
HISTORY = "/lbf/demo/history"
BACKENDS = "/lbf/demo/backends"


@pytest.fixture
def cloud() -> FakeCloud:
    cloud = small_cluster(lbs=2)
    assert run(cloud, "reconcile") == 0
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    return cloud


def run(cloud: FakeCloud, *argv: str, environ: dict[str, str] | None = None) -> int:
    return main(
        list(argv),
        environ=ENV if environ is None else environ,
        services=cloud.services(),
        clock=cloud.clock,
    )


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def everything(cloud: FakeCloud) -> dict[str, Any]:
    """What an operator can see change: tags, records, parameters and their versions."""
    return copy.deepcopy(
        {
            "instances": cloud.ec2.instances,
            "records": cloud.route53.records,
            "parameters": cloud.ssm.parameters,
            "versions": cloud.ssm.versions,
            "eip": cloud.ec2.eip_holder,
        }
    )


def history(cloud: FakeCloud, capsys: pytest.CaptureFixture[str], *extra: str) -> list[Any]:
    capsys.readouterr()
    assert run(cloud, "history", "--json", *extra) == 0
    events: list[Any] = json.loads(capsys.readouterr().out)["events"]
    return events


def status(cloud: FakeCloud, capsys: pytest.CaptureFixture[str]) -> str:
    """`status --wide`: its lines unwrapped, whatever their length."""
    capsys.readouterr()
    run(cloud, "status", "--wide")
    return capsys.readouterr().out


# --- pause and resume ----------------------------------------------------------------------------


def test_pause_then_resume_as_status_and_history_show_them(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "paused: no" in status(cloud, capsys).splitlines()
    paused_at = iso(cloud.clock.now())

    assert run(cloud, "pause", "--reason", "HAProxy upgrade, ticket OPS-12") == 0

    assert cloud.ssm.parameters[PAUSED] == "true"
    lines = status(cloud, capsys).splitlines()
    [paused] = [line for line in lines if line.startswith("PAUSED")]
    assert paused == (
        f"PAUSED: {PAUSED} is true since {paused_at}, reason: HAProxy upgrade, "
        "ticket OPS-12; runs plan and notify, change nothing (`resume` ends it)"
    )
    capsys.readouterr()
    assert run(cloud, "status", "--json") == 0
    pause = json.loads(capsys.readouterr().out)["pause"]
    assert pause["paused"] is True
    assert pause["reason"] == "HAProxy upgrade, ticket OPS-12"

    cloud.clock.advance(300)
    resumed_at = iso(cloud.clock.now())
    assert run(cloud, "resume") == 0

    assert cloud.ssm.parameters[PAUSED] == "false"
    assert "paused: no" in status(cloud, capsys).splitlines()
    events = history(cloud, capsys)
    assert [(e["code"], e["at"]) for e in events[:2]] == [
        ("resumed", resumed_at),
        ("paused", paused_at),
    ]
    assert events[1]["reason"] == "HAProxy upgrade, ticket OPS-12"


def test_a_paused_run_plans_and_writes_nothing_but_notices(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(cloud, "pause") == 0
    cloud.prober.dead.add("127.0.0.11")
    before = everything(cloud)

    assert run(cloud, "reconcile") == 0

    out = capsys.readouterr().out
    assert "moved off lb1" in out
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    after = everything(cloud)
    # Only the notices parameter (what was notified) changed: the notice went out, marked paused.
    assert {k: v for k, v in after["parameters"].items() if k != "/lbf/demo/notices"} == {
        k: v for k, v in before["parameters"].items() if k != "/lbf/demo/notices"
    }
    assert after["instances"] == before["instances"]
    assert after["records"] == before["records"]
    assert after["versions"][HISTORY] == before["versions"][HISTORY]  # no failover happened


@pytest.mark.parametrize(
    "argv",
    [
        ("drain", "lb1"),
        ("drain", "127.0.1.21"),
        ("undrain", "lb1"),
        ("accept-drop",),
        ("move-active", "--to", "lb2", "--no-wait"),
    ],
)
def test_while_paused_the_commands_that_change_the_world_refuse(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    assert run(cloud, "pause", "--reason", "window") == 0
    before = everything(cloud)
    capsys.readouterr()

    assert run(cloud, *argv) == 1

    assert "paused" in capsys.readouterr().out
    assert everything(cloud) == before


def test_pause_and_resume_in_a_dry_run_write_nothing(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    dry = {**ENV, "LBF_DRY_RUN": "true"}
    before = everything(cloud)

    assert run(cloud, "pause", "--reason", "x", environ=dry) == 0
    out = capsys.readouterr().out
    assert f"parameter {PAUSED} = true" in out
    assert "would change: 2" in out  # the switch and the history
    assert everything(cloud) == before

    cloud.ssm.put(PAUSED, "true")
    before = everything(cloud)
    assert run(cloud, "resume", environ=dry) == 0
    assert everything(cloud) == before


def test_resume_when_not_paused_writes_nothing(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    before = everything(cloud)

    assert run(cloud, "resume") == 0

    assert "nothing to resume" in capsys.readouterr().out
    assert everything(cloud) == before


def test_an_odd_paused_value_is_paused_and_resume_ends_it(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.ssm.put(PAUSED, "yes")

    assert "holds 'yes', neither true nor false: taken as paused" in status(cloud, capsys)
    assert run(cloud, "drain", "lb2") == 1
    assert run(cloud, "resume") == 0
    assert cloud.ssm.parameters[PAUSED] == "false"


@pytest.mark.parametrize("reason", ["x" * 201, "line\nbreak\x07"])
def test_a_bad_reason_is_exit_2_before_any_aws_call(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], reason: str
) -> None:
    cloud.calls.log.clear()

    assert run(cloud, "pause", "--reason", reason) == 2

    assert "--reason" in capsys.readouterr().err
    assert cloud.calls.log == []


# --- drain and undrain ---------------------------------------------------------------------------


def test_drain_and_undrain_a_web_server_by_address(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    web = cloud.ec2.id_at("127.0.1.22")

    assert run(cloud, "drain", "127.0.1.22") == 0

    assert cloud.ec2.tag(web, "lbf:maintenance") == "drain"
    assert "the next run takes 127.0.1.22:80" in capsys.readouterr().out
    assert run(cloud, "reconcile") == 0
    assert cloud.ssm.parameters[BACKENDS] == "127.0.1.21:80 127.0.1.23:80"

    assert run(cloud, "undrain", web) == 0  # by instance id

    assert cloud.ec2.tag(web, "lbf:maintenance") is None
    assert run(cloud, "reconcile") == 0
    assert cloud.ssm.parameters[BACKENDS] == "127.0.1.21:80 127.0.1.22:80 127.0.1.23:80"
    codes = [e["code"] for e in history(cloud, capsys)]
    assert codes.index("undrained") < codes.index("drained")


def test_drain_in_a_dry_run_writes_nothing(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    before = everything(cloud)

    assert run(cloud, "drain", "127.0.1.22", environ={**ENV, "LBF_DRY_RUN": "true"}) == 0
    assert run(cloud, "drain", "lb1", "--no-wait", environ={**ENV, "LBF_DRY_RUN": "true"}) == 0

    assert "lbf:maintenance=drain" in capsys.readouterr().out
    assert everything(cloud) == before


def test_drain_of_an_unknown_name_is_refused_with_exit_1(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    before = everything(cloud)

    assert run(cloud, "drain", "lb9") == 1

    out = capsys.readouterr().out
    assert "no LB (by name or instance id) or web server (by address or instance id)" in out
    assert "'lb9'" in out
    assert everything(cloud) == before
    assert run(cloud, "undrain", "10.9.9.9") == 1


def test_undrain_of_what_is_not_draining_writes_nothing(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    before = everything(cloud)

    assert run(cloud, "undrain", "lb2") == 0

    assert "lb2 is not draining: nothing to write" in capsys.readouterr().out
    assert everything(cloud) == before


def test_draining_the_active_lb_moves_it_first_and_undrain_moves_nothing_back(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    lb1 = cloud.ec2.id_named("lb1")

    assert run(cloud, "drain", "lb1", "--no-wait") == 0

    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    assert cloud.ec2.tag(lb1, "lbf:maintenance") == "drain"
    events = history(cloud, capsys)
    assert [e["code"] for e in events[:2]] == ["drained", "failover"]

    assert run(cloud, "undrain", "lb1") == 0
    assert run(cloud, "reconcile") == 0

    assert cloud.ec2.tag(lb1, "lbf:maintenance") is None
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)  # non-preemptive


def test_draining_the_elastic_ip_holder_moves_the_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud = small_cluster(lbs=2)
    eip = {
        **ENV,
        "LBF_MODE": "eip",
        "LBF_EIP_ALLOCATION_ID": "eipalloc-0123456789abcdef0",
    }
    assert run(cloud, "reconcile", environ=eip) == 0
    lb1, lb2 = cloud.ec2.id_named("lb1"), cloud.ec2.id_named("lb2")
    assert cloud.ec2.eip_holder == lb1

    assert run(cloud, "drain", "lb1", "--no-wait", environ=eip) == 0

    assert cloud.ec2.eip_holder == lb2
    assert cloud.ec2.tag(lb1, "lbf:maintenance") == "drain"


def test_draining_one_lb_in_active_active_leaves_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud = small_cluster(lbs=3)
    both = {**ENV, "LBF_ACTIVE_MODE": "all"}
    assert run(cloud, "reconcile", environ=both) == 0
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.12", "127.0.0.13")

    assert run(cloud, "drain", "lb2", "--no-wait", environ=both) == 0

    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.13")
    assert cloud.ec2.tag(cloud.ec2.id_named("lb2"), "lbf:maintenance") == "drain"
    assert run(cloud, "reconcile", environ=both) == 0
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11", "127.0.0.13")


# --- history -------------------------------------------------------------------------------------


def test_history_of_a_failover_and_a_steady_run_that_writes_nothing(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    first = history(cloud, capsys)
    # The first run: verdicts, the first list and its pushes (creating the record moves nothing).
    assert {e["code"] for e in first} == {"verdict", "backends-published", "push-confirmed"}
    versions = len(cloud.ssm.versions[HISTORY])

    cloud.clock.advance(60)
    assert run(cloud, "reconcile") == 0
    assert len(cloud.ssm.versions[HISTORY]) == versions  # steady: nothing written

    cloud.clock.advance(60)
    cloud.prober.dead.add("127.0.0.11")
    minute = iso(cloud.clock.now())[:16]
    assert run(cloud, "reconcile") == 0

    events = history(cloud, capsys)
    failover = next(e for e in events if e["code"] == "failover")
    assert failover["text"] == "active role lb1 -> lb2"
    assert "unhealthy" in failover["reason"]
    verdict = next(e for e in events if e["code"] == "verdict")
    assert verdict["text"] == "lb1 (i-00000000000000001) healthy -> unhealthy"
    assert verdict["reason"] == "lbf:probe fail:3 timeout"
    assert f"last failover: {minute}" in status(cloud, capsys)

    capsys.readouterr()
    assert run(cloud, "history", "--limit", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(minute)


def test_history_json_is_one_object_with_codes_and_texts(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(cloud, "history", "--json", "--limit", "3") == 0

    document = json.loads(capsys.readouterr().out)
    assert len(document["events"]) == 3
    assert all(set(e) == {"at", "code", "text", "reason"} for e in document["events"])


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
def test_a_bad_limit_is_exit_2(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    cloud.calls.log.clear()

    assert run(cloud, "history", "--limit", limit) == 2

    assert "--limit" in capsys.readouterr().err
    assert cloud.calls.log == []


def test_history_before_anything_happened(capsys: pytest.CaptureFixture[str]) -> None:
    cloud = small_cluster(lbs=1)

    assert run(cloud, "history") == 0

    assert capsys.readouterr().out.startswith("no history yet")


def test_history_keeps_a_hundred_rounds(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(60):
        assert run(cloud, "pause") == 0
        assert run(cloud, "resume") == 0

    assert len(cloud.ssm.versions[HISTORY]) == 100
    assert len(history(cloud, capsys, "--limit", "1000")) == 100


# --- --json ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (("pause", "--reason", "window"), 0),
        (("resume",), 0),
        (("drain", "127.0.1.21"), 0),
        (("undrain", "127.0.1.21"), 0),
        (("drain", "lb9"), 1),
        (("accept-drop",), 0),
        (("history", "--limit", "5"), 0),
        (("status",), 0),
    ],
)
def test_each_command_s_json_validates_against_the_schema(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], code: int
) -> None:
    capsys.readouterr()

    assert run(cloud, *argv, "--json") == code

    document = valid(capsys.readouterr().out)
    assert document["command"] == argv[0]
    if code == 1:
        [error] = document["errors"]
        assert error["code"] == "unknown-name"
        assert "lb9" in error["text"]


def test_status_json_shows_the_pause_and_the_last_failover(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.prober.dead.add("127.0.0.11")
    assert run(cloud, "reconcile") == 0
    assert run(cloud, "pause", "--reason", "look at lb1") == 0
    capsys.readouterr()

    assert run(cloud, "status", "--json") == 0  # lb2 took over: serving

    document = valid(capsys.readouterr().out)
    assert document["pause"]["reason"] == "look at lb1"
    assert document["last_failover"]["code"] == "failover"
    assert document["last_failover"]["text"] == "active role lb1 -> lb2"


# --- move-active and drain probe private LBs through the prober function --------------------------


def test_move_active_probes_private_candidates_through_the_prober_function(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """From this machine the private address of lb2 does not answer; from inside the VPC it
    does. The move is judged on the prober function's answer, as a round's probe would be."""
    with_function = {**ENV, "LBF_PROBER_FUNCTION": "lb-failover-prod-probe_private"}
    lb2 = cloud.ec2.id_named("lb2")
    cloud.prober.dead_when = lambda address, now: address == "127.0.0.12"  # from here only
    cloud.probe_function.invocations.clear()

    assert run(cloud, "move-active", "--to", "lb2", "--no-wait", environ=with_function) == 0

    assert cloud.probe_function.invocations == [[lb2]]
    assert cloud.route53.value(ACTIVE) == ("127.0.0.12",)
    assert "live probe answered" in capsys.readouterr().out


def test_move_active_refuses_when_the_prober_function_cannot_answer(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    with_function = {**ENV, "LBF_PROBER_FUNCTION": "lb-failover-prod-probe_private"}
    cloud.probe_function.fault = "invoking the prober function failed: TooManyRequestsException"
    before = everything(cloud)

    assert run(cloud, "drain", "lb1", "--no-wait", environ=with_function) == 1

    out = capsys.readouterr().out
    assert "no answer: invoking the prober function failed" in out
    assert everything(cloud) == before


# --- status --stage: the detection bound the stage's controllers have ------------------------------


@pytest.mark.parametrize("declared", [True, False])
def test_status_with_a_stage_prints_the_bound_with_the_prober_s_invoke_without_a_lookup(
    cloud: FakeCloud,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    declared: bool,
) -> None:
    stage: dict[str, Any] = {
        "environment_variables": {
            "LBF_CLUSTER": "demo",
            "LBF_DOMAIN": FAKE_DOMAIN,
            "LBF_HOSTED_ZONE_ID": "Z123",
            "LBF_LB_ADDRESS": "private",
        }
    }
    if declared:  # as infra/configure.py writes every stage
        stage["lambda_functions"] = {"probe_private": {"subnet_ids": ["subnet-1"]}}
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps({"stages": {"prod": stage}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # main hands boto3 the stage's AWS_*
    capsys.readouterr()

    run(cloud, "status", "--stage", "prod", "--wide", environ={})

    captured = capsys.readouterr()
    [bound] = [line for line in captured.out.splitlines() if line.startswith("detection bound")]
    assert ("PROBER INVOKE [1 s]" in bound) is declared
    assert "prober function" not in captured.err  # not looked up: nothing to say where it is
    assert cloud.probe_function.invocations == []


@pytest.mark.parametrize(
    ("variables", "code", "shown"),
    [
        # 20 rounds of 3 s fit in-process (the last one's probes end at 58 s), 19 through the
        # prober function, as the stage's controllers run them: the bound is theirs, 17 s.
        ({"LBF_PROBE_TIMEOUT": "1"}, 0, "detection bound: 17 s + start-up"),
        # Valid in-process; the stage's controllers refuse it (2 s < 1.5 s + the invoke's 1 s).
        ({"LBF_PROBE_INTERVAL": "2"}, 2, "LBF_PROBE_INTERVAL: expected at least"),
    ],
)
def test_status_with_a_stage_validates_as_its_controllers_do(
    cloud: FakeCloud,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    code: int,
    shown: str,
) -> None:
    """`status --stage` prints the bound of the stage's controllers, which have the prober
    function: their schedule, checked as they check it, not the one this machine would run."""
    environment = {
        "LBF_CLUSTER": "demo",
        "LBF_DOMAIN": FAKE_DOMAIN,
        "LBF_HOSTED_ZONE_ID": "Z123",
        "LBF_LB_ADDRESS": "private",
        **variables,
    }
    stage = {
        "environment_variables": environment,
        "lambda_functions": {"probe_private": {"subnet_ids": ["subnet-1"]}},
    }
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps({"stages": {"prod": stage}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # main hands boto3 the stage's AWS_*
    capsys.readouterr()

    assert run(cloud, "status", "--stage", "prod", "--wide", environ={}) == code

    captured = capsys.readouterr()
    assert shown in captured.out + captured.err
    assert cloud.probe_function.invocations == []


def test_status_goes_on_without_the_history_and_history_says_why_it_cannot(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.history.fail_read = AwsError("ssm", "GetParameterHistory", "AccessDeniedException", "no")

    out = status(cloud, capsys)

    assert "history not read: GetParameterHistory failed" in out
    assert run(cloud, "status") == 0  # still serving: the history is not what status judges
    assert run(cloud, "history") == 1
    err = capsys.readouterr().err
    assert f"could not read {HISTORY}" in err
    assert "AccessDeniedException" in err


def test_an_odd_paused_value_is_notified_once(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.ssm.put(PAUSED, "ja")
    notices = []
    for _ in range(2):
        capsys.readouterr()
        assert run(cloud, "reconcile", "--json") == 0
        notices += json.loads(capsys.readouterr().out)["notices"]
        cloud.clock.advance(60)

    assert notices == [
        f"[paused] controller paused: {PAUSED} holds 'ja', neither true nor false: taken as "
        "paused (write true to pause, false or delete it to resume)"
    ]
