"""`status`'s decisions (core/status.py), table by table: whether the cluster is serving (its exit
code, what monitoring pages on) and the notes its rows carry. The printed tables and the JSON are
tested through the command (functional/test_cli_status.py, test_cli_json.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.core.model import ProbeResult
from chalicelib.core.status import StatusRules, serving, status_rows
from chalicelib.render import status_rules
from tests.kit.settings import settings
from tests.kit.world import lb, settled, skipped, web

OK = ProbeResult(ok=True, detail="200", seconds=0.01)
DEAD = ProbeResult(ok=False, detail="timeout", seconds=1.5)


def rules(**overrides: object) -> StatusRules:
    return status_rules(settings(**overrides))


@pytest.mark.parametrize(
    ("lb1_health", "active", "probes", "code"),
    [
        ("healthy", "lb1", None, "serving"),
        ("unhealthy", "lb1", None, "lb-unhealthy"),
        ("unknown", "lb1", None, "lb-unknown"),
        ("healthy", None, None, "no-active-record"),
        # Live: the probe's answer outranks a stored verdict, either way.
        ("healthy", "lb1", {"i-lb1": DEAD}, "lb-probe-failed"),
        ("unhealthy", "lb1", {"i-lb1": OK}, "serving"),
        ("healthy", "lb1", {}, "lb-probe-failed"),  # not probed is no answer
    ],
)
def test_serving_means_every_address_given_is_a_healthy_lb(
    lb1_health: str, active: str | None, probes: dict[str, ProbeResult] | None, code: str
) -> None:
    world = settled([lb("lb1", "10.0.0.1", lb1_health), lb("lb2", "10.0.0.2")], active=active)

    verdict = serving(world, rules(), probes)

    assert verdict.code == code
    assert verdict.ok is (code == "serving")


def test_an_address_that_is_no_lb_is_not_serving() -> None:
    world = settled([lb("lb1", "10.0.0.1")], active="lb1")
    moved = tuple(
        replace(r, values=("10.9.9.9",)) if r.name == "lb.example.com" else r for r in world.records
    )

    verdict = serving(replace(world, records=moved), rules())

    assert (verdict.ok, verdict.code) == (False, "not-an-lb")
    assert "10.9.9.9" in verdict.text


def test_a_skipped_lb_still_serves_what_it_holds() -> None:
    odd = skipped("i-odd", name="lb1", address="10.0.0.1")
    world = settled([lb("lb1", "10.0.0.1")], active="lb1")

    verdict = serving(replace(world, lbs=(), skipped=(odd,)), rules())

    assert verdict.ok


@pytest.mark.parametrize(
    ("holder", "code"), [("i-lb1", "serving"), ("i-web", "no-active-lb"), (None, "no-active-lb")]
)
def test_in_eip_mode_the_elastic_ip_s_holder_serves(holder: str | None, code: str) -> None:
    world = replace(
        settled([lb("lb1", "10.0.0.1")], active="lb1"),
        eip_instance_id=holder,
        eip_address="198.51.100.7",
    )

    verdict = serving(world, rules(mode="eip", eip_allocation_id="eipalloc-0123456789abcdef0"))

    assert verdict.code == code


def test_rows_carry_what_an_operator_looks_for() -> None:
    world = settled(
        [lb("lb1", "10.0.0.1"), lb("lb2", "10.0.0.2", draining=True)],
        [web("10.0.1.1")],
        active="lb1",
    )

    rows = {row["name"]: row for row in status_rows(world, rules())}
    codes = {name: [code for code, _ in row["notes"]] for name, row in rows.items()}

    assert "holds-active" in codes["lb1"]
    assert "holds-active" not in codes["lb2"]
    assert "draining" in codes["lb2"]
    assert "backends-current" in codes["lb1"]
    assert "in-backend-list" in codes["10.0.1.1:80"]
    assert rows["lb1"]["record"] == ("10.0.0.1",)
