"""`status` as an operator reads it at 3 a.m., and as monitoring runs it.

On the in-memory AWS (tests/kit/cloud.py): the table fits 80 columns with the longest values a
cluster can have, --wide shows them whole, WHY is the last failed probe's reason as lbf:probe
carries it, and the exit code says whether clients are served.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from chalicelib.__main__ import main, version
from tests.kit.cli_schema import valid
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud
from tests.kit.settings import environment

REPO = Path(__file__).resolve().parents[2]
ENV = environment(FAKE_CLOUD_ENV, sns_topic_arn=None)
ACTIVE = f"lb.{FAKE_DOMAIN}"
LB_TITLES = ["LB", "INSTANCE", "ADDRESS", "HEALTH", "WHY", "STATE", "RECORD"]
WEB_TITLES = ["WEB SERVER", "INSTANCE", "HEALTH", "WHY"]
LONG_NAME = "lb-" + "a" * 60  # the longest DNS label


def run(cloud: FakeCloud, *argv: str, environ: dict[str, str] = ENV) -> int:
    return main(list(argv), environ=environ, services=cloud.services(), clock=cloud.clock)


def section(output: str, titles: list[str]) -> dict[str, dict[str, str]]:
    """One of status' tables, by its first column: each row's cells, and "notes" from under it."""
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(titles[0] + " "))
    header = lines[start]
    starts, at = [], 0
    for title in titles:
        at = header.index(title, at)
        starts.append(at)
        at += len(title)
    rows: dict[str, dict[str, str]] = {}
    last: dict[str, str] = {}
    for line in lines[start + 1 :]:
        if not line:
            break
        if line.startswith("    "):
            last["notes"] = (last.get("notes", "") + " " + line.strip()).strip()
            continue
        ends = [*starts[1:], None]
        last = {t: line[b:e].strip() for t, b, e in zip(titles, starts, ends, strict=True)}
        rows[last[titles[0]] or last["INSTANCE"]] = last
    return rows


@pytest.fixture
def cloud() -> FakeCloud:
    cloud = FakeCloud()
    cloud.ec2.add("lb", "127.0.0.11", name="lb1")
    cloud.ec2.add("lb", "127.0.0.12", name="lb2")
    cloud.ec2.add("web", "127.0.1.21")
    cloud.ec2.add("web", "127.0.1.22", tags={"lbf:port": "8080"})
    return cloud


def settle(cloud: FakeCloud, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cloud, "reconcile") == 0
    assert cloud.route53.value(ACTIVE) == ("127.0.0.11",)
    capsys.readouterr()


# --- 80 columns -----------------------------------------------------------------------------------


@pytest.fixture
def long_values() -> FakeCloud:
    """The longest values a cluster shows: a 63-character name, 15-character addresses, an IPv6
    web server on port 65535, a skipped instance with a long hostile tag, one of no known role."""
    cloud = FakeCloud()
    cloud.ec2.add("lb", "127.100.200.254", name=LONG_NAME)
    cloud.ec2.add("lb", "127.100.200.253", name="lb2")
    cloud.ec2.add("web", "fd00:1234:5678:9abc:def0:1234:5678:9abc", tags={"lbf:port": "65535"})
    cloud.ec2.add("web", "127.100.201.254", tags={"lbf:port": "8080"})
    cloud.ec2.add("lb", "127.0.0.13", tags={"lbf:name": "lb3\nrm -rf / " + "y" * 100})
    cloud.ec2.add("cache", "127.0.0.14")
    assert run(cloud, "reconcile") == 0
    cloud.prober.dead.add("127.100.200.253")
    assert run(cloud, "reconcile") == 0  # lb2 unhealthy, with its reason
    return cloud


@pytest.mark.parametrize("probe", [False, True])
def test_status_fits_80_columns_with_the_longest_values(
    long_values: FakeCloud, capsys: pytest.CaptureFixture[str], probe: bool
) -> None:
    capsys.readouterr()

    assert run(long_values, "status", *(["--probe"] if probe else [])) == 0

    out = capsys.readouterr().out
    too_long = [line for line in out.splitlines() if len(line) > 80]
    assert too_long == []
    # What must never be cut: every instance id, whole, and every verdict.
    for instance_id in long_values.ec2.instances:
        assert instance_id in out
    lbs = section(out, LB_TITLES + (["PROBE"] if probe else []))
    lb2 = lbs["lb2"]
    assert (lb2["HEALTH"], lb2["WHY"], lb2["STATE"][:4]) == ("unhealthy", "timeout", "stan")
    assert "holds " + ACTIVE in next(
        row["notes"] for row in lbs.values() if "holds" in row.get("notes", "")
    )


def test_status_wide_shows_every_value_whole(
    long_values: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    assert run(long_values, "status", "--wide") == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(LONG_NAME in line and "127.100.200.254" in line for line in lines)
    assert any("[fd00:1234:5678:9abc:def0:1234:5678:9abc]:65535" in line for line in lines)
    assert any("'lb3\\nrm -rf / " + "y" * 20 in line for line in lines)
    header = next(line for line in lines if line.startswith("ROLE "))
    assert header.split() == [
        "ROLE", "NAME", "INSTANCE", "ADDRESS", "EC2", "HEALTH", "WHY", "STATE", "RECORD", "NOTES"
    ]  # fmt: skip
    assert max(len(line) for line in lines) > 80


# --- why ------------------------------------------------------------------------------------------


def test_why_is_the_last_failed_probe_s_reason_from_lbf_probe(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud, capsys)
    lb2 = cloud.ec2.id_at("127.0.0.12")
    web = cloud.ec2.id_at("127.0.1.22")
    # As the controller writes them (and as an operator reads them with the EC2 console).
    cloud.ec2.set_tag(lb2, "lbf:health", "unhealthy")
    cloud.ec2.set_tag(lb2, "lbf:probe", "fail:3 HTTP 503")
    cloud.ec2.set_tag(web, "lbf:probe", "fail:1 connection refused")

    assert run(cloud, "status") == 0
    out = capsys.readouterr().out
    lbs, webs = section(out, LB_TITLES), section(out, WEB_TITLES)
    assert (lbs["lb2"]["HEALTH"], lbs["lb2"]["WHY"]) == ("unhealthy", "HTTP 503")
    assert (lbs["lb1"]["HEALTH"], lbs["lb1"]["WHY"]) == ("healthy", "")
    # Still healthy after one failure (FALL 3), and why it is on its way down.
    assert (webs["127.0.1.22:8080"]["HEALTH"], webs["127.0.1.22:8080"]["WHY"]) == (
        "healthy",
        "refused",
    )

    assert run(cloud, "status", "--wide") == 0
    assert "connection refused" in capsys.readouterr().out

    assert run(cloud, "status", "--json") == 0
    rows = {row["instance"]: row for row in valid(capsys.readouterr().out)["instances"]}
    assert rows[lb2]["reason"] == {"code": "http-503", "text": "HTTP 503"}
    assert rows[web]["reason"] == {"code": "connection-refused", "text": "connection refused"}
    assert rows[cloud.ec2.id_at("127.0.0.11")]["reason"] is None


def test_why_is_written_by_the_run_that_saw_the_failure(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud, capsys)
    cloud.prober.dead.add("127.0.1.21")

    assert run(cloud, "reconcile") == 0

    web = cloud.ec2.id_at("127.0.1.21")
    assert cloud.ec2.tag(web, "lbf:probe") == "fail:3 timeout"
    capsys.readouterr()
    assert run(cloud, "status") == 0
    row = section(capsys.readouterr().out, WEB_TITLES)["127.0.1.21:80"]
    assert (row["HEALTH"], row["WHY"]) == ("unhealthy", "timeout")


# --- exit codes: is the cluster serving? ----------------------------------------------------------


def test_status_exits_0_when_every_address_given_to_clients_is_a_healthy_lb(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud, capsys)

    assert run(cloud, "status") == 0
    assert "serving: clients are given lb1, healthy" in capsys.readouterr().out.splitlines()
    assert run(cloud, "status", "--json") == 0
    assert valid(capsys.readouterr().out)["serving"] == {
        "ok": True,
        "reason": {"code": "serving", "text": "serving: clients are given lb1, healthy"},
    }


def test_status_exits_1_when_the_active_record_is_on_an_unhealthy_lb(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud, capsys)
    # The stored verdict, before any run moved the record.
    cloud.ec2.set_tag(cloud.ec2.id_at("127.0.0.11"), "lbf:health", "unhealthy")

    assert run(cloud, "status") == 1
    assert "NOT SERVING: lb1 (127.0.0.11) is unhealthy" in capsys.readouterr().out.splitlines()
    assert run(cloud, "status", "--json") == 1
    assert valid(capsys.readouterr().out)["serving"]["reason"]["code"] == "lb-unhealthy"


def test_status_exits_1_with_no_active_record(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(cloud, "status") == 1  # nothing has run yet: no record for clients at all

    assert f"NOT SERVING: no record {ACTIVE}" in capsys.readouterr().out.splitlines()


def test_status_exits_1_when_the_record_holds_an_address_that_is_no_lb(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud, capsys)
    record = cloud.route53.records[(ACTIVE, "A")]
    cloud.route53.records[(ACTIVE, "A")] = replace(record, values=("127.0.0.11", "127.0.9.9"))

    code = run(cloud, "status", "--json")

    serving = valid(capsys.readouterr().out)["serving"]
    assert (code, serving["ok"], serving["reason"]["code"]) == (1, False, "not-an-lb")


def test_status_probe_judges_by_the_live_probe(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(cloud, capsys)
    cloud.prober.dead.add("127.0.0.11")  # stored healthy, down now

    assert run(cloud, "status") == 0
    capsys.readouterr()
    assert run(cloud, "status", "--probe") == 1
    assert "NOT SERVING: lb1 (127.0.0.11) failed a probe: timeout" in capsys.readouterr().out


def test_status_in_eip_mode_judges_the_elastic_ip_s_holder(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = ENV | {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": "eipalloc-0123456789abcdef0"}
    assert run(cloud, "reconcile", environ=environ) == 0
    capsys.readouterr()

    assert run(cloud, "status", environ=environ) == 0
    capsys.readouterr()
    cloud.ec2.set_tag(cloud.ec2.id_at("127.0.0.11"), "lbf:health", "unhealthy")
    assert run(cloud, "status", "--json", environ=environ) == 1
    assert valid(capsys.readouterr().out)["serving"]["reason"]["code"] == "lb-unhealthy"


# --- --stage anywhere, --version ------------------------------------------------------------------


def write_stage(directory: Path) -> None:
    chalice = directory / ".chalice"
    chalice.mkdir()
    config = {
        "version": "2.0",
        "app_name": "lb-failover",
        "stages": {"prod": {"environment_variables": ENV}},
    }
    (chalice / "config.json").write_text(json.dumps(config))
    # What `chalice deploy` recorded: the stage's prober function, so nothing asks CloudFormation.
    deployed = chalice / "deployed"
    deployed.mkdir()
    function = {
        "name": "probe_private",
        "resource_type": "lambda_function",
        "lambda_arn": "arn:aws:lambda:eu-west-1:123456789012:function:lb-failover-prod-probe",
    }
    document = {"resources": [function], "schema_version": "2.0", "backend": "api"}
    (deployed / "prod.json").write_text(json.dumps(document))


@pytest.mark.parametrize(
    "argv",
    [
        ["--stage", "prod", "status"],
        ["status", "--stage", "prod"],  # as chalice's own commands take it
        ["status", "--json", "--stage", "prod"],
        ["--stage", "prod", "plan", "--json"],
        ["reconcile", "--stage", "prod"],
    ],
)
def test_stage_before_or_after_the_command(
    cloud: FakeCloud,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    settle(cloud, capsys)
    write_stage(tmp_path)
    monkeypatch.chdir(tmp_path)

    calls = len(cloud.calls.log)

    # The environment is empty: only the stage's variables can make this a good configuration.
    assert main(argv, environ={}, services=cloud.services(), clock=cloud.clock) == 0

    assert len(cloud.calls.log) > calls
    if "--json" in argv:
        valid(capsys.readouterr().out)


@pytest.mark.parametrize("argv", [["status", "--stage", "staging"], ["--stage", "staging", "plan"]])
def test_an_unknown_stage_anywhere_exits_2_naming_it(
    cloud: FakeCloud,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    write_stage(tmp_path)
    monkeypatch.chdir(tmp_path)

    assert main(argv, environ={}, services=cloud.services(), clock=cloud.clock) == 2

    err = capsys.readouterr().err
    assert "'staging'" in err
    assert "(stages: prod)" in err
    assert cloud.calls.log == []


def test_version_is_pyproject_s() -> None:
    declared = next(
        line.split("=", 1)[1].strip().strip('"')
        for line in (REPO / "pyproject.toml").read_text().splitlines()
        if line.startswith("version")
    )
    assert version() == declared

    result = subprocess.run(
        [sys.executable, "-m", "chalicelib", "--version"],
        cwd=REPO,
        env={},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, f"lb-failover {declared}\n", "")


@pytest.mark.parametrize(
    "argv", [["move-active"], ["status", "--bogus"], ["frobnicate"], ["status", "--stage"]]
)
def test_a_usage_error_exits_2_with_the_usage_before_any_aws_call(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert run(cloud, *argv) == 2

    assert capsys.readouterr().err.startswith("usage: python -m chalicelib")
    assert cloud.calls.log == []
