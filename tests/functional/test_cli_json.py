"""--json for scripts: one object per command, checked against schemas/cli-output.schema.json.

Every command's real output is validated (tests/kit/cli_schema.py), and a document broken the ways
the old output was (prose where a list or a code belongs, no schema version) must fail: a schema
that accepted anything would pass the first half alone.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chalicelib.__main__ import main
from chalicelib.render import SCHEMA_VERSION
from tests.kit.cli_schema import valid, violations
from tests.kit.cloud import FAKE_CLOUD_ENV, FAKE_DOMAIN, FakeCloud
from tests.kit.settings import environment

ENV = environment(FAKE_CLOUD_ENV, sns_topic_arn=None)


@pytest.fixture
def cloud() -> FakeCloud:
    cloud = FakeCloud()
    cloud.ec2.add("lb", "127.0.0.11", name="lb1")
    cloud.ec2.add("lb", "127.0.0.12", name="lb2")
    cloud.ec2.add("web", "127.0.1.21")
    cloud.ec2.add("web", "127.0.1.22", tags={"lbf:port": "8080"})
    # A skipped instance: its row has no verdict and a reason of its own.
    cloud.ec2.add("lb", "127.0.0.13", tags={"lbf:name": "lb3\nrm -rf /"})
    return cloud


def run(cloud: FakeCloud, *argv: str, environ: dict[str, str] = ENV) -> int:
    return main(list(argv), environ=environ, services=cloud.services(), clock=cloud.clock)


def json_of(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0
) -> dict[str, Any]:
    assert run(cloud, *argv, "--json") == code
    return valid(capsys.readouterr().out)


def settled(cloud: FakeCloud, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    document = json_of(cloud, capsys, "reconcile")
    assert document["command"] == "reconcile"
    return document


def test_status_json_validates_with_lists_and_codes(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    settled(cloud, capsys)
    cloud.prober.dead.add("127.0.1.22")

    for argv in (("status",), ("status", "--probe")):
        document = json_of(cloud, capsys, *argv)

        assert (document["schema"], document["command"]) == (SCHEMA_VERSION, "status")
        assert document["backends"] == ["127.0.1.21:80", "127.0.1.22:8080"]
        assert document["active"] == ["127.0.0.11"]
        assert document["serving"]["ok"] is True
        rows = {row["address"]: row for row in document["instances"]}
        assert rows["127.0.0.11"]["record"] == ["127.0.0.11"]
        assert {"code": "holds-active", "text": f"holds lb.{FAKE_DOMAIN}"} in rows["127.0.0.11"][
            "notes"
        ]
        assert [note["code"] for note in rows["127.0.0.13"]["notes"]] == ["skipped"]
    assert rows["127.0.1.22"]["probe"] == {"ok": False, "detail": "timeout"}
    assert rows["127.0.1.21"]["probe"] == {"ok": True, "detail": "200"}


def test_plan_reconcile_and_move_active_json_validate(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    first = settled(cloud, capsys)
    assert first["ok"] is True
    assert first["backends"] == ["127.0.1.21:80", "127.0.1.22:8080"]
    cloud.ec2.set_state(cloud.ec2.id_at("127.0.0.11"), "stopped")

    plan = json_of(cloud, capsys, "plan")
    assert (plan["command"], plan["dry_run"], plan["interrupted"]) == ("plan", True, False)
    assert plan["planned"]
    assert plan["active"]["code"] == "moved"

    done = json_of(cloud, capsys, "reconcile")
    assert [f["to"] for f in done["failovers"]] == ["lb2"]
    assert done["failovers"][0]["reason"]["code"] == "failover"

    refused = json_of(cloud, capsys, "move-active", "--to", "lb1", code=1)
    assert refused["command"] == "move-active"
    assert refused["ok"] is False
    assert refused["errors"]


def test_a_failed_action_is_an_error_with_a_code(
    cloud: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.ssm.fail_send_for.add(cloud.ec2.id_at("127.0.0.12"))

    document = json_of(cloud, capsys, "reconcile", code=1)

    assert document["ok"] is False
    assert document["errors"]
    assert all(set(error) == {"code", "text"} for error in document["errors"])


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        # What the output was before the schema, field by field.
        (lambda d: d.pop("schema"), "(top)"),
        (lambda d: d.update(schema=SCHEMA_VERSION + 1), "schema"),
        (lambda d: d.update(command="stauts"), "command"),
        (lambda d: d.update(backends=" ".join(d["backends"])), "backends"),
        (lambda d: d["instances"][0].update(notes="draining, holds it"), "instances/0/notes"),
        (lambda d: d["instances"][0].update(record="127.0.0.11"), "instances/0/record"),
        (lambda d: d["serving"].update(reason="not serving"), "serving/reason"),
        (lambda d: d["instances"][0]["notes"][0].pop("code"), "instances/0/notes/0"),
        (lambda d: d.pop("instances"), "(top)"),
        (lambda d: d.update(backends=["127.0.1.21"]), "backends/0"),
    ],
)
def test_a_wrong_status_document_fails_validation(
    cloud: FakeCloud,
    capsys: pytest.CaptureFixture[str],
    breakage: Any,
    where: str,
) -> None:
    settled(cloud, capsys)
    document = json_of(cloud, capsys, "status")
    broken = copy.deepcopy(document)

    breakage(broken)

    found = violations(broken)
    assert found, "the schema accepted a broken document"
    assert any(v.startswith(f"{where}:") for v in found), found


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (lambda d: d.update(errors=["a prose error"]), "errors/0"),
        (lambda d: d.update(notes="one note"), "notes"),
        (lambda d: d.update(backends="127.0.1.21:80 127.0.1.22:8080"), "backends"),
        (lambda d: d.update(active="moved off lb1 (stopped) to lb2"), "active"),
        (lambda d: d.pop("interrupted"), "(top)"),
        (lambda d: d.update(rounds="6"), "rounds"),
    ],
)
def test_a_wrong_report_document_fails_validation(
    cloud: FakeCloud,
    capsys: pytest.CaptureFixture[str],
    breakage: Any,
    where: str,
) -> None:
    document = copy.deepcopy(settled(cloud, capsys))

    breakage(document)

    found = violations(document)
    assert any(v.startswith(f"{where}:") for v in found), found
