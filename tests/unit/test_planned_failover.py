"""The planned failover's pure planner (core/planned_failover.py), table by table.

The command and its writes are tested on the in-memory AWS (functional/test_move_active.py); here
the decisions alone: which LBs are candidates, what is refused, and which changes the Plan holds.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.core.changes import ChangeRecords, MoveAddress, SetTags
from chalicelib.core.model import Instance, ProbeResult, Skipped
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import Plan
from chalicelib.core.planned_failover import (
    MoveRequest,
    Refused,
    Resolved,
    candidates,
    move_change_id,
    moved,
    plan_move,
    probed_world,
    resolve,
)
from tests.kit.settings import settings
from tests.kit.world import lb, settled, skipped, web

OK = ProbeResult(ok=True, detail="200", seconds=0.01)
DEAD = ProbeResult(ok=False, detail="timeout", seconds=2.0)


def three_lbs() -> list[Instance]:
    return [lb("lb1", "10.0.0.1"), lb("lb2", "10.0.0.2"), lb("lb10", "10.0.0.10")]


def resolved(request: MoveRequest, **overrides: object) -> Resolved:
    world = settled(three_lbs(), [web("10.0.1.1")], active="lb1")
    found = resolve(world, settings(**overrides).rules.move, request)
    assert isinstance(found, Resolved), found
    return found


def test_candidates_are_the_eligible_lbs_in_natural_order_without_the_holder() -> None:
    world = settled(three_lbs(), [web("10.0.1.1")], active="lb1")

    found = resolved(MoveRequest(drain="lb1"))

    assert [c.name for c in found.candidates] == ["lb2", "lb10"]
    assert found.needs_move
    assert [c.name for c in candidates(world, settings().rules.plan.active, excluding=())] == [
        "lb1",
        "lb2",
        "lb10",
    ]


@pytest.mark.parametrize(
    ("lb2", "min_backends", "candidate"),
    [
        ({}, 0, True),
        ({"health": "unhealthy"}, 0, False),
        ({"health": "unknown"}, 0, False),
        ({"draining": True}, 0, False),
        ({"state": "stopped"}, 0, False),
        ({"backends": "0" * 64}, 0, True),  # no backend-list requirement by default
        ({"backends": "0" * 64}, 1, False),
        ({}, 1, True),
        ({}, 2, False),  # the list has one entry
    ],
)
def test_the_same_eligibility_and_backend_list_requirement_as_a_scheduled_run(
    lb2: dict[str, object], min_backends: int, candidate: bool
) -> None:
    world = settled(three_lbs(), [web("10.0.1.1")], active="lb1")
    lbs = tuple(replace(x, **_fields(lb2)) if x.name == "lb2" else x for x in world.lbs)
    world = replace(world, lbs=lbs)

    found = candidates(
        world, settings(lb_min_backends=min_backends).rules.plan.active, excluding=("i-lb1",)
    )

    assert ("lb2" in [c.name for c in found]) is candidate


def _fields(lb2: dict[str, object]) -> dict[str, object]:
    """The builder's keywords as Instance fields."""
    built = lb("lb2", "10.0.0.2", **lb2)  # type: ignore[arg-type]
    fields: dict[str, object] = {"damping": built.damping, "draining": built.draining}
    fields["state"] = built.state
    if "backends" in lb2:
        fields["backends_checksum"] = lb2["backends"]
    return fields


@pytest.mark.parametrize(
    ("request_", "overrides", "said"),
    [
        (MoveRequest(to="lb9"), {}, "no LB named 'lb9'"),
        (MoveRequest(drain="lb9"), {}, "no LB named 'lb9', nor an LB with that instance id"),
        (MoveRequest(to="lb2"), {"active_mode": "all"}, "LBF_ACTIVE_MODE=all"),
        (MoveRequest(to="lb1", drain="lb1"), {}, "the LB being drained"),
    ],
)
def test_refusals_before_any_probe(
    request_: MoveRequest, overrides: dict[str, object], said: str
) -> None:
    world = settled(three_lbs(), [web("10.0.1.1")], active="lb1")

    found = resolve(world, settings(**overrides).rules.move, request_)

    assert isinstance(found, Refused)
    assert said in found.reason


@pytest.mark.parametrize(
    ("frozen", "drain", "found"),
    [
        ([skipped("i-lb3", name="lb3", address="10.0.0.3")], "lb3", ("i-lb3", "lb3")),
        ([skipped("i-lb3", address="10.0.0.3")], "i-lb3", ("i-lb3", "i-lb3")),
        ([skipped("i-lb3", address="10.0.0.3")], "lb3", None),  # its name is the typo
        (
            [
                skipped("i-lb3", name="lb3", address="10.0.0.3"),
                skipped("i-lb3b", name="lb3", address="10.0.0.33"),
            ],
            "lb3",
            None,
        ),
    ],
    ids=["by-its-valid-name", "by-id", "not-by-a-name-it-lacks", "two-with-one-name"],
)
def test_a_skipped_lb_is_drained_by_its_valid_name_or_its_id(
    frozen: list[Skipped], drain: str, found: tuple[str, str] | None
) -> None:
    world = settled(three_lbs(), [web("10.0.1.1")], active="lb1", skipped=frozen)

    result = resolve(world, settings().rules.move, MoveRequest(drain=drain))

    if found is None:
        assert isinstance(result, Refused)
        assert repr(drain) in result.reason
    else:
        assert isinstance(result, Resolved), result
        assert result.drained is not None
        assert (result.drained.instance_id, result.drained.label) == found
        assert not result.needs_move  # it holds nothing here


def test_paused_refuses() -> None:
    world = replace(settled(three_lbs(), [web("10.0.1.1")], active="lb1"), paused=True)

    found = resolve(world, settings().rules.move, MoveRequest(to="lb2"))

    assert isinstance(found, Refused)
    assert found.reason.startswith("paused:")


def test_the_first_candidate_that_answers_is_taken_with_a_compare_and_swap() -> None:
    world = settled(three_lbs(), [web("10.0.1.1")], active="lb1")
    found = resolved(MoveRequest(drain="lb1"))

    plan = plan_move(world, settings().rules.move, found, {"i-lb2": DEAD, "i-lb10": OK})

    assert isinstance(plan, Plan)
    move, *tags = plan.changes
    assert isinstance(move, ChangeRecords)
    assert [(c.action, c.record.values) for c in move.changes] == [
        ("DELETE", ("10.0.0.1",)),
        ("CREATE", ("10.0.0.10",)),
    ]
    assert plan.active.moved_to == "lb10"
    # lbf:state where it changes, then the drain tag last; all only if the move went through.
    assert [t.tags for t in tags if isinstance(t, SetTags)] == [
        (("lbf:state", "active"),),
        (("lbf:state", "standby"),),
        (("lbf:maintenance", "drain"),),
    ]
    assert all(isinstance(t, SetTags) and t.after_records for t in tags)


def test_no_answer_is_a_refusal() -> None:
    world = settled(three_lbs(), [web("10.0.1.1")], active="lb1")
    found = resolved(MoveRequest(drain="lb1"))

    refused = plan_move(world, settings().rules.move, found, {"i-lb2": DEAD, "i-lb10": DEAD})

    assert isinstance(refused, Refused)
    assert refused.reason == ("no candidate answered the live probe: lb2 (timeout), lb10 (timeout)")


def test_draining_an_lb_that_holds_nothing_plans_only_its_tag() -> None:
    world = settled(three_lbs(), [web("10.0.1.1")], active="lb1")
    found = resolved(MoveRequest(drain="lb2"))

    plan = plan_move(world, settings().rules.move, found, {})

    assert found.to_probe == ()
    assert isinstance(plan, Plan)
    assert plan.changes == (SetTags(("i-lb2",), (("lbf:maintenance", "drain"),), True),)


def test_eip_mode_moves_the_address_from_where_it_was_seen() -> None:
    world = replace(settled(three_lbs(), [web("10.0.1.1")], active="lb1"), eip_instance_id="i-lb1")
    config = settings(mode="eip", eip_allocation_id="eipalloc-0123456789abcdef0")
    found = resolve(world, config.rules.move, MoveRequest(to="lb2"))
    assert isinstance(found, Resolved)

    plan = plan_move(world, config.rules.move, found, {"i-lb2": OK})

    assert isinstance(plan, Plan)
    assert plan.changes[0] == MoveAddress(
        allocation_id="eipalloc-0123456789abcdef0",
        instance_id="i-lb2",
        expected_instance_id="i-lb1",
        lb_name="lb2",
    )


def test_active_active_drain_keeps_every_other_lb() -> None:
    world = settled(three_lbs(), [web("10.0.1.1")], active=["lb1", "lb2", "lb10"])
    config = settings(active_mode="all")
    found = resolve(world, config.rules.move, MoveRequest(drain="lb2"))
    assert isinstance(found, Resolved)

    plan = plan_move(world, config.rules.move, found, {"i-lb1": OK, "i-lb10": OK})

    assert isinstance(plan, Plan)
    move = plan.changes[0]
    assert isinstance(move, ChangeRecords)
    assert move.changes[-1].record.values == ("10.0.0.1", "10.0.0.10")
    assert plan.active.holders == ("i-lb1", "i-lb10")


def test_only_the_lbs_to_probe_go_to_the_round_s_probe_paths() -> None:
    odd = skipped("i-odd", name="lb9", address="10.0.0.9")
    world = settled(three_lbs(), [web("10.0.1.1")], active="lb1", skipped=[odd])
    found = resolved(MoveRequest(drain="lb1"))

    probed = probed_world(world, found)

    assert [x.name for x in probed.lbs] == ["lb2", "lb10"]
    assert probed.webs == ()
    assert probed.skipped == ()
    assert probed.records == world.records  # the rest of the world is the one read


def _move_plan() -> Plan:
    world = settled(three_lbs(), [web("10.0.1.1")], active="lb1")
    plan = plan_move(world, settings().rules.move, resolved(MoveRequest(to="lb2")), {"i-lb2": OK})
    assert isinstance(plan, Plan)
    return plan


@pytest.mark.parametrize(
    ("move_ok", "tags_ok", "failover", "change_id"),
    [
        (True, True, True, "C1"),
        (True, False, True, "C1"),  # a tag that failed does not undo the move
        (False, True, False, None),  # the move failed: no failover, nothing to wait for
    ],
)
def test_the_failover_and_the_change_to_wait_for_follow_the_move_s_outcome(
    move_ok: bool, tags_ok: bool, failover: bool, change_id: str | None
) -> None:
    plan = _move_plan()
    move, *tags = plan.changes
    outcomes = [
        Outcome(move, ok=move_ok, change_id="C1" if move_ok else None),
        *(Outcome(t, ok=tags_ok) for t in tags),
    ]

    found = moved(plan, outcomes, seconds=1.5)

    assert (found is not None) is failover
    if found is not None:
        assert (found.moved_from, found.moved_to, found.seconds) == ("lb1", "lb2", 1.5)
    assert move_change_id(outcomes) == change_id


def test_a_plan_without_a_move_is_no_failover() -> None:
    world = settled(three_lbs(), [web("10.0.1.1")], active="lb1")
    plan = plan_move(
        world, settings().rules.move, resolved(MoveRequest(drain="lb2")), {"i-lb2": OK}
    )
    assert isinstance(plan, Plan)
    outcomes = [Outcome(c, ok=True) for c in plan.changes]

    assert outcomes  # the drain tag
    assert moved(plan, outcomes, seconds=1.0) is None
    assert move_change_id(outcomes) is None
