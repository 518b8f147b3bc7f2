"""Whether a round moved the active role, which move it was, and the run's record of it.

Table tests of core/failover.py. The move's key is what keeps a failover's notice to one even
when two overlapping runs made it, so each row names the values before and after exactly.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.core.changes import Change, ChangeRecords, MoveAddress, PushBackends, SetTags
from chalicelib.core.dns import ActiveDecision, RecordChange
from chalicelib.core.failover import (
    RECOGNISED,
    Failover,
    failover_of,
    move_of,
    moved_role,
    recognised,
)
from chalicelib.core.model import FailoverMode, Record, World
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import Plan
from tests.kit.world import a_record, fqdn, world

A1, A2, A3 = "203.0.113.1", "203.0.113.2", "203.0.113.3"
ACTIVE = fqdn("lb")
MOVED = ActiveDecision((A2,), ("i-lb2",), "lb1 unhealthy", moved_from="lb1", moved_to="lb2")
STAYS = ActiveDecision(None, ("i-lb1",), "lb1 keeps the record")
# The record pointed at no LB: set, but nothing moved from anywhere.
REPAIRED = ActiveDecision((A2,), ("i-lb2",), "repaired", moved_to="lb2", repaired=True)
TO_A2 = ChangeRecords(
    (RecordChange("DELETE", a_record("lb", A1)), RecordChange("CREATE", a_record("lb", A2))),
    "lb1 unhealthy",
)
EIP = MoveAddress("eipalloc-1", "i-lb2", "i-lb1", "lb2")
STATE = SetTags(("i-lb2",), (("lbf:state", "active"),), after_records=True)
PUSH = PushBackends("i-lb2", "lb2", "10.0.0.1:80", "c1")


def plan(active: ActiveDecision, *changes: Change) -> Plan:
    return Plan(changes=changes, active=active, backends=None, held=None)


def holding(*records: Record, eip: str | None = None) -> World:
    return replace(world(records=records), eip_instance_id=eip)


@pytest.mark.parametrize(
    ("before", "planned", "mode", "expected"),
    [
        (holding(a_record("lb", A1)), plan(STAYS), FailoverMode.DNS, ""),
        (holding(a_record("lb", A1)), plan(MOVED, TO_A2), FailoverMode.DNS, f"failover:{A1}->{A2}"),
        (holding(), plan(MOVED, TO_A2), FailoverMode.DNS, f"failover:->{A2}"),
        # Values sorted: the same move has the same key however Route 53 ordered them.
        (
            holding(a_record("lb", A2, A1)),
            plan(ActiveDecision((A3, A1), (), "r", moved_from="lb2"), TO_A2),
            FailoverMode.DNS,
            f"failover:{A1},{A2}->{A1},{A3}",
        ),
        # Only the active name's A record counts.
        (
            holding(a_record("lb1", A3), a_record("lb", A1)),
            plan(MOVED, TO_A2),
            FailoverMode.DNS,
            f"failover:{A1}->{A2}",
        ),
        (holding(eip="i-lb1"), plan(MOVED, EIP), FailoverMode.EIP, "failover:i-lb1->i-lb2"),
        (holding(), plan(MOVED, EIP), FailoverMode.EIP, "failover:->i-lb2"),
        # EIP mode moves the address, not the record: without its change there is no move.
        (holding(a_record("lb", A1), eip="i-lb1"), plan(MOVED, TO_A2), FailoverMode.EIP, ""),
    ],
    ids=[
        "stays",
        "dns-moves",
        "dns-no-record-yet",
        "dns-sorted",
        "dns-other-names",
        "eip-moves",
        "eip-unheld",
        "eip-no-address-change",
    ],
)
def test_move_of(before: World, planned: Plan, mode: str, expected: str) -> None:
    assert move_of(before, planned, mode=mode, active_fqdn=ACTIVE) == expected


def test_move_of_a_long_active_active_record_is_a_short_digest() -> None:
    many = tuple(f"203.0.113.{n}" for n in range(1, 40))
    moved = plan(ActiveDecision(many[1:], (), "r", moved_from="lb1"), TO_A2)

    key = move_of(holding(a_record("lb", *many)), moved, mode=FailoverMode.DNS, active_fqdn=ACTIVE)

    assert key.startswith("failover:")
    assert len(key) == len("failover:") + 32


@pytest.mark.parametrize(
    ("planned", "outcomes", "expected"),
    [
        (plan(STAYS), [], False),
        (plan(MOVED, TO_A2), [Outcome(TO_A2, ok=True)], True),
        (plan(MOVED, EIP), [Outcome(EIP, ok=True)], True),
        # A dry run reports the failover it would make.
        (plan(MOVED, TO_A2), [Outcome(TO_A2, ok=True, printed=True)], True),
        (plan(MOVED, TO_A2), [Outcome(TO_A2, ok=False, error="throttled")], False),
        (plan(MOVED, TO_A2), [Outcome(TO_A2, ok=False, rejected=True)], False),
        # The move went through; a push beside it failed: still a failover.
        (
            plan(MOVED, TO_A2, PUSH),
            [Outcome(TO_A2, ok=True), Outcome(PUSH, ok=False, error="x")],
            True,
        ),
        # lbf:state left out after the move went through: the move stands.
        (
            plan(MOVED, TO_A2, STATE),
            [Outcome(TO_A2, ok=True), Outcome(STATE, ok=False, error="x")],
            True,
        ),
        # A record set where none pointed at an LB: a repair, not a failover.
        (plan(REPAIRED, TO_A2), [Outcome(TO_A2, ok=True)], False),
    ],
    ids=[
        "no-move",
        "records",
        FailoverMode.EIP,
        "printed",
        "failed",
        "stale",
        "push-failed-beside",
        "tags-failed-after",
        "repair",
    ],
)
def test_moved_role(planned: Plan, outcomes: list[Outcome], expected: bool) -> None:
    assert moved_role(planned, outcomes) is expected


@pytest.mark.parametrize(
    ("planned", "fresh", "mode", "expected"),
    [
        (plan(MOVED, TO_A2), holding(a_record("lb", A2)), FailoverMode.DNS, True),
        (plan(MOVED, TO_A2), holding(a_record("lb", A1)), FailoverMode.DNS, False),
        (plan(MOVED, TO_A2), holding(a_record("lb", A3)), FailoverMode.DNS, False),
        (plan(MOVED, TO_A2), holding(), FailoverMode.DNS, False),
        (
            plan(ActiveDecision((A1, A2), (), "r", moved_from="lb3"), TO_A2),
            holding(a_record("lb", A2, A1)),
            FailoverMode.DNS,
            True,
        ),
        # Planned no move: nothing to recognise, whatever the record holds.
        (plan(STAYS, TO_A2), holding(a_record("lb", A2)), FailoverMode.DNS, False),
        (plan(REPAIRED, TO_A2), holding(a_record("lb", A2)), FailoverMode.DNS, False),
        (plan(MOVED, EIP), holding(eip="i-lb2"), FailoverMode.EIP, True),
        (plan(MOVED, EIP), holding(eip="i-lb1"), FailoverMode.EIP, False),
        (plan(MOVED, TO_A2), holding(a_record("lb", A2), eip="i-lb2"), FailoverMode.EIP, False),
    ],
    ids=[
        "dns-as-planned",
        "dns-unchanged",
        "dns-elsewhere",
        "dns-gone",
        "dns-any-order",
        "no-move",
        "repair",
        "eip-as-planned",
        "eip-unchanged",
        "eip-without-its-change",
    ],
)
def test_recognised(planned: Plan, fresh: World, mode: str, expected: bool) -> None:
    assert recognised(planned, fresh, mode=mode, active_fqdn=ACTIVE) is expected


@pytest.mark.parametrize(
    ("was_recognised", "reason"),
    [(False, "lb1 unhealthy"), (True, "lb1 unhealthy" + RECOGNISED)],
    ids=["made", "recognised"],
)
def test_failover_of(was_recognised: bool, reason: str) -> None:
    made = failover_of(
        plan(MOVED, TO_A2), round=3, seconds=21.5, move="failover:a->b", recognised=was_recognised
    )

    assert made == Failover("lb1", "lb2", reason, round=3, seconds=21.5, move="failover:a->b")
    assert "re-read" in RECOGNISED
