"""The command line as an operator uses it: exit codes, what it prints, what it leaves alone.

`main` runs with an in-memory AWS (tests/kit/cloud.py) and a fake clock, so every call it makes is
counted: a bad configuration must make none, `plan` and `status` must write nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.__main__ import main
from chalicelib.config import Settings
from chalicelib.errors import AwsError
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud
from tests.kit.settings import STAND_IN_AWS, environment

REPO = Path(__file__).resolve().parents[2]
DOMAIN = FAKE_DOMAIN
ENV = environment(FAKE_CLOUD_ENV, sns_topic_arn=None)
STATUS_COLUMNS = ["ROLE", "NAME", "INSTANCE", "ADDRESS", "EC2", "HEALTH", "WHY", "STATE", "RECORD"]
# A tag an operator (or an attacker with ec2:CreateTags) set with a line break and a command in it.
HOSTILE_NAME = "lb3\nrm -rf /"


@pytest.fixture
def cloud() -> FakeCloud:
    cloud = FakeCloud()
    cloud.ec2.add("lb", "127.0.0.11", name="lb1")
    cloud.ec2.add("lb", "127.0.0.12", name="lb2")
    cloud.ec2.add("web", "127.0.1.21")
    cloud.ec2.add("web", "127.0.1.22", tags={"lbf:port": "8080"})
    return cloud


def run(cloud: FakeCloud, *argv: str, environ: dict[str, str] | None = None) -> int:
    return main(
        list(argv),
        environ=ENV if environ is None else environ,
        services=cloud.services(),
        clock=cloud.clock,
    )


def settle(cloud: FakeCloud) -> None:
    """One scheduled run's worth of work, so the stored state has verdicts, records and tags."""
    assert run(cloud, "reconcile") == 0
    assert cloud.route53.value(f"lb.{DOMAIN}") == ("127.0.0.11",)


def table(output: str) -> list[dict[str, str]]:
    """The rows of the status table, cut at the header's column starts."""
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("ROLE "))
    header = lines[start]
    names = header.split()
    starts = [header.index(name) for name in names]
    rows = []
    for line in lines[start + 1 :]:
        cells = [
            line[begin:end].strip() for begin, end in zip(starts, [*starts[1:], None], strict=True)
        ]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


def summary(output: str) -> str:
    """The Report's first line, after the round lines printed as the rounds ended."""
    return next(line for line in output.splitlines() if line.startswith(("reconcile ", "plan ")))


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"LBF_CLUSTER": None}, "LBF_CLUSTER"),
        ({"LBF_DOMAIN": None}, "LBF_DOMAIN"),
        ({"LBF_TTL": "sixty"}, "LBF_TTL"),
        ({"LBF_MODE": "eip"}, "LBF_EIP_ALLOCATION_ID"),
        ({"LBF_LB_CHECK": "http://example.net/health"}, "LBF_LB_CHECK"),
    ],
)
@pytest.mark.parametrize("command", ["status", "plan", "reconcile"])
def test_bad_configuration_exits_2_naming_the_variable_before_any_aws_call(
    cloud: FakeCloud,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str | None],
    variable: str,
    command: str,
) -> None:
    environ = {k: v for k, v in {**ENV, **change}.items() if v is not None}

    code = run(cloud, command, environ=environ)

    assert code == 2
    captured = capsys.readouterr()
    assert variable in captured.err
    assert captured.out == ""
    assert cloud.calls.log == []
    assert cloud.prober.rounds == []


def write_stage_config(directory: Path, stages: dict[str, dict[str, str]]) -> None:
    chalice = directory / ".chalice"
    chalice.mkdir()
    config = {
        "version": "2.0",
        "app_name": "lb-failover",
        # The top level's variables apply to every stage; a stage's own override them.
        "environment_variables": {"LBF_CLUSTER": "not-this-one", "LBF_LB_ADDRESS": "private"},
        "stages": {
            name: {"environment_variables": variables} for name, variables in stages.items()
        },
    }
    (chalice / "config.json").write_text(json.dumps(config))


def test_stage_takes_the_environment_from_chalice_config(
    cloud: FakeCloud,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_stage_config(
        tmp_path,
        {
            "dev": {"LBF_CLUSTER": "other", "LBF_DOMAIN": "dev.example.com"},
            "prod": {
                "LBF_CLUSTER": "demo",
                "LBF_DOMAIN": DOMAIN,
                "LBF_HOSTED_ZONE_ID": "Z123",
                "AWS_DEFAULT_REGION": "eu-west-1",
            },
        },
    )
    monkeypatch.chdir(tmp_path)
    # main hands the stage's AWS_ variables to boto3 through os.environ; put it back afterwards.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    settle(cloud)
    capsys.readouterr()

    code = run(cloud, "--stage", "prod", "status", "--wide", environ={})

    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"cluster demo  domain {DOMAIN}")
    assert {row["NAME"] for row in table(out)} >= {"lb1", "lb2"}  # the demo cluster's LBs
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-1"


def test_unknown_stage_exits_2_listing_the_known_ones(
    cloud: FakeCloud,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_stage_config(tmp_path, {"dev": ENV, "prod": ENV})
    monkeypatch.chdir(tmp_path)

    code = run(cloud, "--stage", "staging", "status", environ=ENV)

    assert code == 2
    err = capsys.readouterr().err
    assert "--stage" in err
    assert "'staging'" in err
    assert "dev, prod" in err
    assert cloud.calls.log == []


def test_stage_without_a_chalice_config_exits_2(
    cloud: FakeCloud,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)

    """Stage files are written by configure.py and never tracked: a fresh clone has none, and the
    error says where they come from."""
    code = run(cloud, "--stage", "prod", "plan", environ=ENV)

    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("configuration error: --stage: no stage 'prod': ")
    assert ".chalice/config.json" in line
    assert "infra/configure.py writes it" in line
    assert cloud.calls.log == []


# --- status -------------------------------------------------------------------------------------


def test_status_shows_lbs_and_web_servers_from_the_stored_state(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud)
    capsys.readouterr()
    writes = len(cloud.calls.writes())

    code = run(cloud, "status", "--wide")

    assert code == 0
    out = capsys.readouterr().out
    assert f"lb.{DOMAIN} -> 127.0.0.11" in out
    assert "127.0.1.21:80 127.0.1.22:8080" in out  # the published backend list
    header = next(line for line in out.splitlines() if line.startswith("ROLE "))
    assert header.split()[: len(STATUS_COLUMNS)] == STATUS_COLUMNS
    rows = {row["NAME"]: row for row in table(out)}
    assert set(rows) == {"lb1", "lb2", "127.0.1.21:80", "127.0.1.22:8080"}
    lb1, lb2 = rows["lb1"], rows["lb2"]
    assert lb1["ROLE"] == "lb"
    assert lb1["INSTANCE"] == cloud.ec2.id_at("127.0.0.11")
    assert (lb1["ADDRESS"], lb1["EC2"], lb1["HEALTH"]) == ("127.0.0.11", "running", "healthy")
    assert (lb1["STATE"], lb1["RECORD"]) == ("active", "127.0.0.11")
    assert f"holds lb.{DOMAIN}" in lb1["NOTES"]
    assert (lb2["STATE"], lb2["RECORD"]) == ("standby", "127.0.0.12")
    assert "holds" not in lb2["NOTES"]
    web = rows["127.0.1.22:8080"]
    assert (web["ROLE"], web["ADDRESS"], web["HEALTH"]) == ("web", "127.0.1.22", "healthy")
    assert "in backend list" in web["NOTES"]
    assert len(cloud.calls.writes()) == writes  # status reads; it never writes


def test_status_shows_a_skipped_instance_with_its_reason_escaped(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = cloud.ec2.add("lb", "127.0.0.13", tags={"lbf:name": HOSTILE_NAME})
    drained = cloud.ec2.add("web", "127.0.1.23", tags={"lbf:maintenance": "drain\n\x1b[2J"})
    settle(cloud)
    capsys.readouterr()

    code = run(cloud, "status", "--wide")

    assert code == 0
    out = capsys.readouterr().out
    rows = table(out)
    # One line per instance: a newline in a tag did not split a row (nor clear the screen).
    assert len(rows) == 6
    assert "\x1b" not in out
    assert all(not line.startswith(("rm -rf", "\x1b")) for line in out.splitlines())
    skipped = {row["INSTANCE"]: row for row in rows if row["HEALTH"] == "skipped"}
    assert set(skipped) == {hostile, drained}
    assert skipped[hostile]["ROLE"] == "lb"
    assert skipped[hostile]["NAME"] == ""  # an invalid name is never shown as a name
    assert skipped[hostile]["ADDRESS"] == "127.0.0.13"
    assert "skipped: lbf:name 'lb3\\nrm -rf /' is not a DNS label" in skipped[hostile]["NOTES"]
    assert "lbf:maintenance 'drain\\n\\x1b[2J'" in skipped[drained]["NOTES"]


def test_status_json_is_parseable_and_carries_the_same_rows(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = cloud.ec2.add("lb", "127.0.0.13", tags={"lbf:name": HOSTILE_NAME})
    settle(cloud)
    capsys.readouterr()

    code = run(cloud, "status", "--json")

    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cluster"] == "demo"
    assert data["active"] == ["127.0.0.11"]
    assert data["backends"] == ["127.0.1.21:80", "127.0.1.22:8080"]
    assert data["paused"] is False
    rows = {row["instance"]: row for row in data["instances"]}
    lb1 = rows[cloud.ec2.id_at("127.0.0.11")]
    assert (lb1["role"], lb1["name"], lb1["health"], lb1["state"], lb1["record"]) == (
        "lb",
        "lb1",
        "healthy",
        "active",
        ["127.0.0.11"],
    )
    assert rows[hostile]["health"] == "skipped"
    [skipped] = rows[hostile]["notes"]
    assert skipped["code"] == "skipped"
    assert "\n" not in skipped["text"]
    assert "'lb3\\nrm -rf /'" in skipped["text"]


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        (
            # The fake cloud's LBs are private, probed in-process: 3 s rounds, 19 of them.
            {},
            "detection bound: 16.5 s + start-up = (FALL + 1) x INTERVAL [12 s] + TIMEOUT [1.5 s]"
            " + (60 - ROUNDS x INTERVAL) [3 s] + start-up"
            " (FALL 3, INTERVAL 3, TIMEOUT 1.5, ROUNDS 19)",
        ),
        (
            {"LBF_PROBE_ROUNDS": "3", "LBF_FALL": "2", "LBF_PROBE_TIMEOUT": "2"},
            "detection bound: 62 s + start-up = (FALL + 1) x INTERVAL [9 s] + TIMEOUT [2 s]"
            " + (60 - ROUNDS x INTERVAL) [51 s] + start-up"
            " (FALL 2, INTERVAL 3, TIMEOUT 2, ROUNDS 3)",
        ),
    ],
)
def test_status_prints_the_detection_bound_with_its_terms(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], variables: dict[str, str], line: str
) -> None:
    """The SPEC's bound of this configuration, each term with its value, in text and JSON."""
    environ = {**ENV, **variables}
    settle(cloud)
    capsys.readouterr()

    assert run(cloud, "status", "--wide", environ=environ) == 0
    assert line in capsys.readouterr().out.splitlines()

    assert run(cloud, "status", "--json", environ=environ) == 0
    bound = json.loads(capsys.readouterr().out)["detection_bound"]
    total = float(line.split()[2])
    assert bound["seconds"] == total
    assert bound["formula"] == (
        "(FALL + 1) x INTERVAL + TIMEOUT + (60 - ROUNDS x INTERVAL) + start-up"
    )
    assert [term["formula"] for term in bound["terms"]] == [
        "(FALL + 1) x INTERVAL",
        "TIMEOUT",
        "(60 - ROUNDS x INTERVAL)",
    ]
    assert sum(term["seconds"] for term in bound["terms"]) == total
    assert bound["plus"].startswith("start-up")


def test_status_prints_the_prober_function_s_invoke_as_a_term(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """With LBF_PROBER_FUNCTION and private LBs, the invoke's second is one more term: the
    SPEC's 17.5 s at the defaults with private LBs."""
    environ = {**ENV, "LBF_PROBER_FUNCTION": "lb-failover-prod-ProbePrivate-1A2B"}
    settle(cloud)
    capsys.readouterr()

    assert run(cloud, "status", "--wide", environ=environ) == 0
    assert (
        "detection bound: 17.5 s + start-up = (FALL + 1) x INTERVAL [12 s] + TIMEOUT [1.5 s]"
        " + (60 - ROUNDS x INTERVAL) [3 s] + PROBER INVOKE [1 s] + start-up"
        " (FALL 3, INTERVAL 3, TIMEOUT 1.5, ROUNDS 19)"
    ) in capsys.readouterr().out.splitlines()

    assert run(cloud, "status", "--json", environ=environ) == 0
    bound = json.loads(capsys.readouterr().out)["detection_bound"]
    assert bound["terms"][-1] == {
        "name": "the prober function's invoke, beyond its probes' TIMEOUT",
        "formula": "PROBER INVOKE",
        "seconds": 1.0,
    }
    assert bound["seconds"] == 17.5


def test_status_prints_the_spec_s_public_bound_at_the_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Public LBs (the default) with the pool through the prober function, as a deployed stage
    runs: 11.5 s, and the pool's invoke is no term (it never delays an LB round)."""
    cloud = FakeCloud()
    for host, name in ((11, "lb1"), (12, "lb2")):
        cloud.ec2.add("lb", f"127.0.0.{host}", name=name, public=f"127.0.2.{host}")
    cloud.ec2.add("web", "127.0.1.21")
    environ = {
        **ENV,
        "LBF_LB_ADDRESS": "public",
        "LBF_PROBER_FUNCTION": "lb-failover-prod-ProbePrivate-1A2B",
    }

    run(cloud, "status", "--wide", environ=environ)

    assert (
        "detection bound: 11.5 s + start-up = (FALL + 1) x INTERVAL [8 s] + TIMEOUT [1.5 s]"
        " + (60 - ROUNDS x INTERVAL) [2 s] + start-up"
        " (FALL 3, INTERVAL 2, TIMEOUT 1.5, ROUNDS 29)"
    ) in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"LBF_PROBER_FUNCTION": "lb-failover-prod-ProbePrivate-1A2B"},
        {
            "LBF_PROBER_FUNCTION": "lb-failover-prod-ProbePrivate-1A2B",
            "LBF_PROBE_INTERVAL": "10",
            "LBF_FALL": "10",
        },
        {"LBF_PROBE_INTERVAL": "0.123456", "LBF_PROBE_TIMEOUT": "0.123456", "LBF_FALL": "10"},
    ],
)
def test_the_bound_in_80_columns_keeps_each_value_with_its_unit_and_name(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], variables: dict[str, str]
) -> None:
    """The table's width wraps the bound's line; a value is never cut from its unit ("[1.5" then
    "s]") nor from the setting it is ("TIMEOUT" then "1.5")."""
    environ = {**ENV, **variables}
    settle(cloud)
    capsys.readouterr()

    assert run(cloud, "status", environ=environ) == 0

    lines = capsys.readouterr().out.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("detection bound: "))
    wrapped = [
        lines[start],
        *itertools.takewhile(lambda line: line.startswith("    "), lines[start + 1 :]),
    ]
    bound = Settings.from_env(environ).detection_bound
    assert len(wrapped) > 1
    assert all(len(line) <= 80 for line in wrapped)
    assert " ".join(line.strip() for line in wrapped) == f"detection bound: {bound.describe()}"
    kept = [f"[{term.seconds:g} s]" for term in bound.terms]
    kept += [f"{name} {value:g}" for name, value in bound.inputs]
    for piece in kept:
        assert any(piece in line for line in wrapped), (piece, wrapped)


def test_a_schedule_that_cannot_fit_the_minute_exits_2_before_any_aws_call(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # 19 rounds of 3 s fit (the last one's probes end at 55.5 s); a 20th would end at 58.5 s.
    code = run(cloud, "reconcile", environ={**ENV, "LBF_PROBE_ROUNDS": "20"})

    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("configuration error: LBF_PROBE_ROUNDS: ")
    assert "LBF_PROBE_INTERVAL" in line
    assert cloud.calls.log == []


@pytest.mark.parametrize(
    "command",
    [["status"], ["plan"], ["reconcile"], ["move-active", "--to", "lb2"], ["handover", "next"]],
    ids=" ".join,
)
def test_a_misspelt_safety_switch_exits_2_naming_the_known_one_before_any_aws_call(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """`LBF_DRYRUN=true` silently ignored would make a real run of what was meant as a dry run."""
    code = run(cloud, *command, environ={**ENV, "LBF_DRYRUN": "true"})

    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("configuration error: LBF_DRYRUN: ")
    assert line.endswith("did you mean LBF_DRY_RUN?")
    assert cloud.calls.log == []


@pytest.mark.parametrize("value", ["yes", "1", "on"])
def test_a_boolean_other_than_true_or_false_exits_2_before_any_aws_call(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    code = run(cloud, "reconcile", environ={**ENV, "LBF_DRY_RUN": value})

    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("configuration error: LBF_DRY_RUN: expected true or false, got ")
    assert cloud.calls.log == []


def test_status_probe_adds_a_live_probe_column(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud)
    capsys.readouterr()
    cloud.prober.dead.add("127.0.1.22")
    rounds = len(cloud.prober.rounds)
    writes = len(cloud.calls.writes())

    code = run(cloud, "status", "--wide", "--probe")

    assert code == 0
    rows = {row["NAME"]: row for row in table(capsys.readouterr().out)}
    assert rows["lb1"]["PROBE"] == "ok 200"
    assert rows["127.0.1.21:80"]["PROBE"] == "ok 200"
    assert rows["127.0.1.22:8080"]["PROBE"] == "FAIL timeout"
    # The stored verdict is shown as it is: a live probe is not a verdict.
    assert rows["127.0.1.22:8080"]["HEALTH"] == "healthy"
    assert len(cloud.prober.rounds) == rounds + 1
    assert len(cloud.calls.writes()) == writes


def test_status_without_probe_probes_nothing(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud)
    capsys.readouterr()
    rounds = len(cloud.prober.rounds)

    assert run(cloud, "status") == 0

    assert "PROBE" not in capsys.readouterr().out
    assert len(cloud.prober.rounds) == rounds


def test_status_exits_1_when_the_state_cannot_be_read(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.ec2.fail_describe = AwsError("ec2", "DescribeInstances", "RequestLimitExceeded", "slow")

    code = run(cloud, "status")

    assert code == 1
    captured = capsys.readouterr()
    assert "RequestLimitExceeded" in captured.err
    assert captured.out == ""


# --- plan ---------------------------------------------------------------------------------------


def test_plan_prints_the_failover_it_would_make_and_changes_nothing(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud)
    capsys.readouterr()
    lb1 = cloud.ec2.id_at("127.0.0.11")
    cloud.ec2.set_state(lb1, "stopped")
    before = dict(cloud.ec2.instances)
    records = dict(cloud.route53.records)
    parameters = dict(cloud.ssm.parameters)
    writes = len(cloud.calls.writes())

    code = run(cloud, "plan")

    assert code == 0
    out = capsys.readouterr().out
    assert "would change:" in out
    assert "moved off lb1 (stopped) to lb2" in out
    assert f"DELETE lb.{DOMAIN} A 127.0.0.11; CREATE lb.{DOMAIN} A 127.0.0.12" in out
    assert f"tag {lb1}: lbf:health=unhealthy" in out
    # Nothing was written: no record, no parameter, no tag, no command, no notice.
    assert len(cloud.calls.writes()) == writes
    assert cloud.ec2.instances == before
    assert cloud.route53.records == records
    assert cloud.ssm.parameters == parameters
    assert cloud.sns.messages == []


def test_plan_of_a_settled_cluster_has_nothing_to_do(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud)
    capsys.readouterr()

    assert run(cloud, "plan") == 0

    assert "would change: 0 (nothing to do)" in capsys.readouterr().out


def test_plan_json_lists_the_planned_changes_and_applies_none(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud)
    capsys.readouterr()
    cloud.ec2.set_state(cloud.ec2.id_at("127.0.0.11"), "stopped")
    writes = len(cloud.calls.writes())

    code = run(cloud, "plan", "--json")

    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["job"] == "plan"
    assert data["dry_run"] is True
    assert data["ok"] is True
    assert data["rounds"] == 1
    assert data["applied"] == []
    assert any(f"CREATE lb.{DOMAIN} A 127.0.0.12" in change for change in data["planned"])
    assert data["active"] == {"code": "moved", "text": "moved off lb1 (stopped) to lb2"}
    assert len(cloud.calls.writes()) == writes


def test_plan_probes_one_round(cloud: FakeCloud, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cloud, "plan") == 0

    assert len(cloud.prober.rounds) == 1
    assert cloud.clock.sleeps == []
    assert cloud.calls.writes() == []


# --- reconcile ----------------------------------------------------------------------------------


def test_reconcile_exits_0_and_prints_what_changed(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(cloud, "reconcile")

    assert code == 0
    out = capsys.readouterr().out
    assert ", ok," in summary(out)
    assert "changed:" in out
    assert "would change" not in out
    assert f"CREATE lb.{DOMAIN} A 127.0.0.11" in out
    lb1, lb2 = cloud.ec2.id_at("127.0.0.11"), cloud.ec2.id_at("127.0.0.12")
    # The backend pushes, one per LB.
    assert f"to lb1 {lb1}" in out
    assert f"to lb2 {lb2}" in out
    assert "error:" not in out
    assert cloud.route53.value(f"lb.{DOMAIN}") == ("127.0.0.11",)
    assert cloud.ssm.parameters["/lbf/demo/backends"] == "127.0.1.21:80 127.0.1.22:8080"


def test_reconcile_exits_1_when_a_push_fails(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    lb2 = cloud.ec2.id_at("127.0.0.12")
    cloud.ssm.fail_send_for.add(lb2)

    code = run(cloud, "reconcile")

    assert code == 1
    out = capsys.readouterr().out
    assert "FAILED" in summary(out)
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert errors
    assert all(lb2 in line for line in errors)
    assert any("InvalidInstanceId" in line for line in errors)
    # The rest of the run still happened: the failure is isolated to that LB.
    assert cloud.route53.value(f"lb.{DOMAIN}") == ("127.0.0.11",)
    assert f"to lb1 {cloud.ec2.id_at('127.0.0.11')}" in out


def test_reconcile_exits_1_when_tags_cannot_be_written(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.ec2.fail_tags = AwsError("ec2", "CreateTags", "UnauthorizedOperation", "denied")

    code = run(cloud, "reconcile")

    assert code == 1
    out = capsys.readouterr().out
    assert any(
        line.startswith("error:") and "UnauthorizedOperation" in line for line in out.splitlines()
    )


def test_reconcile_json_reports_the_failure(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.ssm.fail_send_for.add(cloud.ec2.id_at("127.0.0.12"))

    code = run(cloud, "reconcile", "--json")

    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["dry_run"] is False
    assert data["errors"]
    assert data["applied"]


def test_reconcile_exits_1_and_acts_on_nothing_when_the_view_fails_to_load(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.ec2.fail_describe = AwsError("ec2", "DescribeInstances", "RequestLimitExceeded", "slow")

    code = run(cloud, "reconcile")

    assert code == 1
    assert "RequestLimitExceeded" in capsys.readouterr().out
    assert cloud.calls.writes() == []


# --- as a process -------------------------------------------------------------------------------


def test_help_as_a_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chalicelib", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0
    for command in ("status", "plan", "reconcile", "--stage", "--version"):
        assert command in result.stdout
    assert "130 interrupted" in " ".join(result.stdout.split())


def test_status_with_an_empty_environment_as_a_process() -> None:
    """No variables at all: exit 2 naming the first required one, and no AWS client is made."""
    result = subprocess.run(
        [sys.executable, "-m", "chalicelib", "status"],
        cwd=REPO,
        env={},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "LBF_CLUSTER" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# --- --stage finds the deployed prober function ---------------------------------------------------

PROBER_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:lb-failover-prod-probe_private"


def write_deployed(directory: Path, stage: str, resources: list[dict[str, str]]) -> None:
    """What `chalice deploy` records for a stage (.chalice/deployed/<stage>.json, schema 2.0)."""
    deployed = directory / ".chalice" / "deployed"
    deployed.mkdir(parents=True, exist_ok=True)
    document = {"resources": resources, "schema_version": "2.0", "backend": "api"}
    (deployed / f"{stage}.json").write_text(json.dumps(document))


@pytest.fixture
def prod_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_stage_config(
        tmp_path,
        {"prod": {"LBF_CLUSTER": "demo", "LBF_DOMAIN": DOMAIN, "LBF_HOSTED_ZONE_ID": "Z123"}},
    )
    write_deployed(
        tmp_path,
        "prod",
        [
            {"name": "reconcile", "resource_type": "lambda_function", "lambda_arn": "arn:x"},
            {"name": "probe_private", "resource_type": "lambda_function", "lambda_arn": PROBER_ARN},
        ],
    )
    monkeypatch.chdir(tmp_path)
    # The operator's shell points boto3 at the stand-in, whose web servers are on loopback; set
    # through monkeypatch, because `--stage` copies the AWS_ variables into the process.
    for name, value in STAND_IN_AWS.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def test_status_probe_with_a_stage_probes_private_targets_through_its_prober_function(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], prod_stage: Path
) -> None:
    settle(cloud)
    capsys.readouterr()
    cloud.probe_function.invocations.clear()

    code = run(cloud, "--stage", "prod", "status", "--wide", "--probe", environ=dict(STAND_IN_AWS))

    assert code == 0
    captured = capsys.readouterr()
    assert PROBER_ARN in captured.err
    # The stage publishes LBs at private addresses too: every target went to the prober function.
    [probed] = cloud.probe_function.invocations
    assert sorted(probed) == sorted(cloud.ec2.instances)
    assert all(row["PROBE"] == "ok 200" for row in table(captured.out))


def test_status_probe_shows_a_prober_function_that_cannot_answer(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], prod_stage: Path
) -> None:
    settle(cloud)
    capsys.readouterr()
    cloud.probe_function.fault = "invoking the prober function failed: ResourceNotReadyException"

    # No LB answered: status cannot say the cluster is serving.
    assert (
        run(cloud, "--stage", "prod", "status", "--wide", "--probe", environ=dict(STAND_IN_AWS))
        == 1
    )

    rows = table(capsys.readouterr().out)
    assert rows
    assert all(row["PROBE"].startswith("FAIL no answer") for row in rows)


def test_status_without_probe_does_not_look_for_the_prober_function(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], prod_stage: Path
) -> None:
    settle(cloud)
    capsys.readouterr()

    assert run(cloud, "--stage", "prod", "status", environ=dict(STAND_IN_AWS)) == 0
    assert "prober function" not in capsys.readouterr().err
    assert cloud.probe_function.invocations == []


def test_status_probe_without_a_stage_probes_from_this_machine(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud)
    cloud.probe_function.invocations.clear()

    assert run(cloud, "status", "--wide", "--probe") == 0

    assert cloud.probe_function.invocations == []
    assert all(row["PROBE"] == "ok 200" for row in table(capsys.readouterr().out))


# --- missing AWS settings -------------------------------------------------------------------------


@pytest.fixture
def no_aws_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No region anywhere: not in the environment, not in a config file (an empty one)."""
    from chalicelib.adapters.clients import forget_clients

    empty = tmp_path / "aws-config"
    empty.write_text("")
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # Looking for an instance role would leave loopback: there is none here to find.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    # A client made by an earlier test (with a region) must not hide the missing one.
    forget_clients()
    yield empty
    forget_clients()


@pytest.mark.parametrize("command", ["status", "plan", "reconcile", "move-active"])
def test_no_region_is_a_configuration_error_not_a_traceback(
    no_aws_settings: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    argv = [command, "--to", "lb1"] if command == "move-active" else [command]

    code = main(argv, environ=ENV)

    captured = capsys.readouterr()
    assert code == 2
    [line] = captured.err.splitlines()
    assert line.startswith("configuration error: AWS_DEFAULT_REGION: ")
    assert "AWS_REGION" in line
    assert captured.out == ""


def test_aws_region_alone_is_enough(no_aws_settings: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lambda sets both variables; an operator's shell often only AWS_REGION (as other SDKs read)."""
    from chalicelib.services import aws_services

    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    services = aws_services(Settings.from_env(ENV))

    assert services.inventory._client.meta.region_name == "eu-west-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"AWS_DEFAULT_REGION": "eu west 1"}, "AWS_DEFAULT_REGION"),
        ({"AWS_REGION": "eu-west-1; rm -rf /"}, "AWS_REGION"),
        ({"AWS_DEFAULT_REGION": "eu-west-1", "AWS_PROFILE": "nobody"}, "AWS_PROFILE"),
        # A region, and no credentials anywhere.
        ({"AWS_DEFAULT_REGION": "eu-west-1"}, "AWS_ACCESS_KEY_ID"),
        # A key id without its secret.
        ({"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIA0"}, "AWS_ACCESS_KEY_ID"),
    ],
)
def test_bad_aws_settings_are_a_configuration_error(
    no_aws_settings: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    named: str,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    code = main(["reconcile"], environ=ENV)

    [line] = capsys.readouterr().err.splitlines()
    assert code == 2
    assert line.startswith(f"configuration error: {named}: ")


def test_no_region_as_a_process(no_aws_settings: Path) -> None:
    """As an operator meets it: one line on stderr, exit 2, no traceback."""
    environment = {
        **ENV,
        "AWS_CONFIG_FILE": str(no_aws_settings),
        "AWS_SHARED_CREDENTIALS_FILE": str(no_aws_settings),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PATH": os.environ.get("PATH", ""),
    }
    result = subprocess.run(
        [sys.executable, "-m", "chalicelib", "status"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "AWS_DEFAULT_REGION" in result.stderr
    assert "Traceback" not in result.stderr
