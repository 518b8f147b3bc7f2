"""The operator's commands as values (core/commands.py, core/maintenance.py), table by table:
what each writes, what it tells, and what it refuses. The commands themselves, applied against
the in-memory AWS, are in functional/test_commands.py and test_pausing.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.core.changes import ChangeRecords, PushBackends, PutParameter, RemoveTags, SetTags
from chalicelib.core.commands import (
    CommandPlan,
    plan_accept_drop,
    plan_handover,
    plan_switch,
    refuse_paused,
)
from chalicelib.core.history import EventCode
from chalicelib.core.maintenance import Named, find, plan_drain, plan_undrain
from chalicelib.core.model import Role, World
from tests.kit.settings import settings
from tests.kit.world import lb, observed, settled, skipped, web

PAUSED = "/lbf/prod/paused"
NOW = 1_700_000_000.0
LBS = [lb("lb1", "203.0.113.1"), lb("lb2", "203.0.113.2")]
WEBS = [web("10.0.1.1"), web("10.0.1.2"), web("10.0.1.3"), web("10.0.1.4")]


def steady(*, paused: bool = False, unclear: str | None = None) -> World:
    return replace(settled(LBS, WEBS), paused=paused, paused_unclear=unclear)


def written(plan: CommandPlan) -> list[tuple[str, str]]:
    return [(c.name, c.value) for c in plan.changes if isinstance(c, PutParameter)]


@pytest.mark.parametrize(
    ("pause", "paused", "unclear", "writes", "event"),
    [
        (True, False, None, [(PAUSED, "true")], EventCode.PAUSED),
        # Paused already: only the history hears the (new) reason.
        (True, True, None, [], EventCode.PAUSED),
        # An unclear value is written over either way.
        (True, True, "yes", [(PAUSED, "true")], EventCode.PAUSED),
        (False, True, None, [(PAUSED, "false")], EventCode.RESUMED),
        (False, True, "ture", [(PAUSED, "false")], EventCode.RESUMED),
        (False, False, None, [], None),  # not paused: nothing to resume, nothing told
    ],
)
def test_pause_and_resume_write_the_switch_and_tell_the_history(
    pause: bool, paused: bool, unclear: str | None, writes: list[str], event: EventCode | None
) -> None:
    plan = plan_switch(
        steady(paused=paused, unclear=unclear), PAUSED, paused=pause, reason="window", now=NOW
    )

    assert plan.refused is None
    assert written(plan) == writes
    if event is None:
        assert plan.nothing_to_do
        assert [code for code, _ in plan.notes] == ["nothing-to-do"]
    else:
        assert plan.events is not None
        assert [(e.code, e.reason, e.at) for e in plan.events] == [(event, "window", NOW)]


def test_pause_and_resume_are_never_refused_while_paused_the_rest_is() -> None:
    world = steady(paused=True)

    refusal = refuse_paused(world, PAUSED)

    assert refusal is not None
    assert refusal.refused is not None
    assert refusal.refused[0] == "refused"
    assert f"{PAUSED} is true" in refusal.refused[1]
    assert refuse_paused(steady(), PAUSED) is None
    assert plan_switch(world, PAUSED, paused=False, reason="", now=NOW).refused is None


def named(world: World, name: str) -> Named:
    found = find(world, name)
    assert isinstance(found, Named), found
    return found


@pytest.mark.parametrize(
    ("name", "draining", "change", "note"),
    [
        ("10.0.1.1", False, SetTags, "next-run"),
        ("10.0.1.1", True, None, "nothing-to-do"),
        ("lb2", False, SetTags, "next-run"),  # an LB that holds nothing: only its tag
    ],
)
def test_drain_tags_once(name: str, draining: bool, change: type | None, note: str) -> None:
    world = steady()
    target = replace(named(world, name), draining=draining)

    plan = plan_drain(target)

    assert [type(c) for c in plan.changes] == ([change] if change else [])
    assert [code for code, _ in plan.notes] == [note]
    tags = [c.tags for c in plan.changes if isinstance(c, SetTags)]
    assert tags == ([(("lbf:maintenance", "drain"),)] if change else [])


def test_a_skipped_web_server_is_never_drained_its_tags_are_frozen() -> None:
    odd = skipped("i-odd", address="10.0.1.9", role="web", port=80)
    world = replace(steady(), skipped=(odd,))

    plan = plan_drain(named(world, "i-odd"))

    assert plan.refused is not None
    assert "frozen" in plan.refused[1]
    assert plan.changes == ()


@pytest.mark.parametrize(
    ("role", "draining", "removes", "told"),
    [
        (Role.WEB, True, True, "back in the backend list"),
        (Role.LB, True, True, "nothing moves back to it"),
        (Role.WEB, False, False, "is not draining"),
    ],
)
def test_undrain_removes_the_tag_and_moves_nothing_back(
    role: Role, draining: bool, removes: bool, told: str
) -> None:
    plan = plan_undrain(Named("i-x", role, "x", draining))

    assert any(isinstance(c, RemoveTags) for c in plan.changes) is removes
    assert told in plan.notes[0][1]


def test_accept_drop_publishes_the_held_list_as_it_is_now_and_clears_the_hold() -> None:
    failing = [observed(w, health="unhealthy") for w in WEBS[:3]]
    world = replace(
        settled(LBS, WEBS), webs=(*failing, WEBS[3]), held_drop_parameter="1699999000 10.0.1.1:80"
    )
    rules = settings()

    plan = plan_accept_drop(world, rules.rules.plan, rules.rules.thresholds, now=NOW)

    assert plan.refused is None
    assert written(plan) == [("/lbf/prod/backends", "10.0.1.4:80"), ("/lbf/prod/held-drop", "none")]
    assert sorted(c.instance_id for c in plan.changes if isinstance(c, PushBackends)) == [
        "i-lb1",
        "i-lb2",
    ]
    assert plan.drop_taken


def test_accept_drop_with_nothing_held_writes_nothing() -> None:
    rules = settings()

    plan = plan_accept_drop(steady(), rules.rules.plan, rules.rules.thresholds, now=NOW)

    assert plan.nothing_to_do
    assert [code for code, _ in plan.notes] == ["nothing-to-do"]


def test_accept_drop_never_publishes_an_empty_list() -> None:
    world = replace(settled(LBS, WEBS), webs=tuple(observed(w, health="unhealthy") for w in WEBS))
    rules = settings()

    plan = plan_accept_drop(world, rules.rules.plan, rules.rules.thresholds, now=NOW)

    assert plan.refused is not None
    assert "not by LBF_MAX_POOL_DROP" in plan.refused[1]
    assert plan.changes == ()


@pytest.mark.parametrize(
    ("paused", "has_txt", "new", "outcome"),
    [
        (False, True, "prod-eu", "swap"),
        (False, True, "prod", "nothing"),  # NEW owns it already
        (True, True, "prod-eu", "refused"),
        (False, False, "prod-eu", "refused"),  # no TXT: NEW's first run takes the domain
    ],
)
def test_handover_swaps_the_ownership_txt_or_refuses(
    paused: bool, has_txt: bool, new: str, outcome: str
) -> None:
    world = steady(paused=paused)
    if not has_txt:
        world = replace(world, records=tuple(r for r in world.records if r.type != "TXT"))
    rules = settings().rules.records

    plan = plan_handover(world, rules, new, paused_parameter_name=PAUSED)

    assert (plan.refused is not None) is (outcome == "refused")
    [*swaps] = [c for c in plan.changes if isinstance(c, ChangeRecords)]
    assert len(swaps) == (1 if outcome == "swap" else 0)
    if swaps:
        actions = [(c.action, c.record.values[0]) for c in swaps[0].changes]
        assert actions == [("DELETE", '"cluster=prod"'), ("CREATE", f'"cluster={new}"')]
