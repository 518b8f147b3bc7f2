"""The view after a round's outcomes, and the view a run plans from after a stale change.

Table tests of core/reread.py: what of an outcome folds into the view (applied and printed
changes, pushes sent), which rejected batch a re-read judges, and what the run keeps of its own
view when it merges a re-read (its damping where nobody else wrote since, the most settled status
of each push, the counts of skipped instances).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.core.changes import (
    Change,
    ChangeRecords,
    MoveAddress,
    PushBackends,
    PutBackendList,
    SetTags,
)
from chalicelib.core.dns import ActiveDecision, RecordChange
from chalicelib.core.health import Thresholds
from chalicelib.core.model import Damping, Instance, Push, World
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import Plan
from chalicelib.core.reread import fold_outcomes, merge_reread, rejected_batch, without_rejected
from tests.kit.world import (
    FALL,
    RISE,
    a_push,
    a_record,
    damping,
    fqdn,
    lb,
    observed,
    retag,
    skipped,
    world,
)

A1, A2 = "203.0.113.1", "203.0.113.2"
THRESHOLDS = Thresholds(rise=RISE, fall=FALL)
LB1 = lb("lb1", A1, lb_state="active")
BACKENDS = PutBackendList("/lbf/prod/backends", "10.0.0.1:80")
TO_A2 = ChangeRecords(
    (RecordChange("DELETE", a_record("lb", A1)), RecordChange("CREATE", a_record("lb", A2))),
    "lb1 unhealthy",
)
STANDBY = SetTags(("i-lb1",), (("lbf:state", "standby"),), after_records=True)
PUSH = PushBackends("i-lb1", "lb1", "10.0.0.1:80", "c1")
SENT = a_push("i-lb1", "c1", command_id="cmd-sent")
MOVE = MoveAddress("eipalloc-1", "i-lb2", "i-lb1", "lb2")


def view(outcome_world: World) -> tuple[object, ...]:
    """What an operator would compare: the active record, the list, lbf:state, the pushes."""
    active = next((r.values for r in outcome_world.records if r.name == "lb.example.com"), ())
    return (
        active,
        outcome_world.backends_parameter,
        outcome_world.lbs[0].lb_state.value if outcome_world.lbs[0].lb_state else None,
        tuple(c.command_id for c in outcome_world.pushes),
    )


BEFORE = world([LB1], records=[a_record("lb", A1)], backends="10.0.0.9:80")


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], ((A1,), "10.0.0.9:80", "active", ())),
        ([Outcome(BACKENDS, ok=True)], ((A1,), "10.0.0.1:80", "active", ())),
        ([Outcome(BACKENDS, ok=False, error="throttled")], ((A1,), "10.0.0.9:80", "active", ())),
        # Printed only (dry run, paused): the next round plans as if it held.
        ([Outcome(TO_A2, ok=True, printed=True)], ((A2,), "10.0.0.9:80", "active", ())),
        (
            [Outcome(TO_A2, ok=False, rejected=True), Outcome(STANDBY, ok=False, skipped=True)],
            ((A1,), "10.0.0.9:80", "active", ()),
        ),
        (
            [Outcome(TO_A2, ok=True), Outcome(STANDBY, ok=True)],
            ((A2,), "10.0.0.9:80", "standby", ()),
        ),
        ([Outcome(PUSH, ok=True, push=SENT)], ((A1,), "10.0.0.9:80", "active", ("cmd-sent",))),
        (
            [Outcome(PUSH, ok=False, error="InvalidInstanceId")],
            ((A1,), "10.0.0.9:80", "active", ()),
        ),
    ],
    ids=[
        "nothing",
        "parameter-put",
        "parameter-failed",
        "printed-holds",
        "stale-and-skipped",
        "moved-then-tagged",
        "push-sent",
        "push-refused",
    ],
)
def test_fold_outcomes(outcomes: list[Outcome], expected: tuple[object, ...]) -> None:
    assert view(fold_outcomes(BEFORE, outcomes)) == expected


def test_fold_outcomes_adds_the_pushes_sent_after_those_known() -> None:
    known = a_push("i-lb2", "c0", "Success", command_id="cmd-known")
    folded = fold_outcomes(world([LB1], pushes=[known]), [Outcome(PUSH, ok=True, push=SENT)])

    assert [c.command_id for c in folded.pushes] == ["cmd-known", "cmd-sent"]


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], None),
        ([Outcome(TO_A2, ok=True), Outcome(BACKENDS, ok=False, error="x")], None),
        (
            [Outcome(TO_A2, ok=False, rejected=True, error="InvalidChangeBatch")],
            "InvalidChangeBatch",
        ),
        ([Outcome(TO_A2, ok=False, rejected=True)], ""),
        # The rejected batch, with a failed push beside it: still the one to judge.
        (
            [
                Outcome(TO_A2, ok=False, rejected=True, error="m"),
                Outcome(PUSH, ok=False, error="x"),
            ],
            "m",
        ),
        # The Elastic IP moved since it was read: not a record batch, nothing to judge.
        ([Outcome(MOVE, ok=False, rejected=True, error="AddressMoved")], None),
        # Two stale changes: the whole view is old, not one batch rejected.
        ([Outcome(TO_A2, ok=False, rejected=True), Outcome(MOVE, ok=False, rejected=True)], None),
    ],
    ids=["none", "nothing-stale", "one-batch", "no-message", "beside-a-failure", "eip", "two"],
)
def test_rejected_batch(outcomes: list[Outcome], expected: str | None) -> None:
    found = rejected_batch(outcomes)

    if expected is None:
        assert found is None
    else:
        assert found == (TO_A2, expected)


# merge_reread: this run counted lb1 one failure further than its tags say (`observed`).
COUNTED = observed(LB1, health="healthy", probe="fail:1")


def dampings(merged: World) -> dict[str, Damping]:
    found = {i.instance_id: i.damping for i in (*merged.lbs, *merged.webs)}
    return found | {s.instance_id: s.frozen.damping for s in merged.skipped if s.frozen is not None}


@pytest.mark.parametrize(
    ("ours", "fresh", "expected"),
    [
        # Nobody wrote lb1's tags since: this run's count stands.
        ([COUNTED], [LB1], {"i-lb1": damping("healthy", "fail:1")}),
        # Another run wrote them (its verdict is newer): taken.
        (
            [COUNTED],
            [retag(LB1, health="unhealthy", lb_state="standby")],
            {"i-lb1": damping("unhealthy", f"fail:{FALL}")},
        ),
        # New since this run read: as read.
        (
            [COUNTED],
            [LB1, lb("lb2", A2)],
            {"i-lb1": damping("healthy", "fail:1"), "i-lb2": damping("healthy", f"ok:{RISE}")},
        ),
        # Gone since this run read: gone.
        ([COUNTED, lb("lb2", A2)], [LB1], {"i-lb1": damping("healthy", "fail:1")}),
        # EC2 says stopped now: unhealthy at once, whatever this run counted.
        (
            [COUNTED],
            [observed(LB1, state="stopped")],
            {"i-lb1": damping("unhealthy", f"fail:{FALL}")},
        ),
    ],
    ids=["own-count-kept", "other-run-wrote", "new-instance", "gone-instance", "stopped-since"],
)
def test_merge_reread_keeps_this_runs_counts_where_nobody_wrote(
    ours: list[Instance], fresh: list[Instance], expected: dict[str, Damping]
) -> None:
    assert dampings(merge_reread(world(ours), world(fresh), THRESHOLDS)) == expected


@pytest.mark.parametrize(
    ("ours", "fresh", "expected"),
    [
        (["InProgress"], ["InProgress"], {"cmd": "InProgress"}),
        # The more settled status wins, whichever view has it.
        (["Success"], ["InProgress"], {"cmd": "Success"}),
        (["InProgress"], ["Failed"], {"cmd": "Failed"}),
        # Both settled: the re-read's.
        (["Success"], ["Failed"], {"cmd": "Failed"}),
        # A push only this run knows (sent after the re-read's lookback began): kept.
        (["Pending"], [], {"cmd": "Pending"}),
        ([], ["Success"], {"cmd": "Success"}),
    ],
    ids=["same", "ours-settled", "fresh-settled", "both-settled", "only-ours", "only-fresh"],
)
def test_merge_reread_keeps_the_most_settled_status_of_each_push(
    ours: list[str], fresh: list[str], expected: dict[str, str]
) -> None:
    def pushes(statuses: list[str]) -> list[Push]:
        return [a_push("i-lb1", "c1", s, command_id="cmd") for s in statuses]

    merged = merge_reread(
        world([LB1], pushes=pushes(ours)), world([LB1], pushes=pushes(fresh)), THRESHOLDS
    )

    assert {c.command_id: c.status for c in merged.pushes} == expected


def test_merge_reread_keeps_a_skipped_instances_counts_and_takes_the_rest_as_read() -> None:
    mine = skipped("i-odd", name="lb9", address=A2, health="healthy")
    assert mine.frozen is not None
    counted = observed(mine.frozen, health="healthy", probe="fail:2")
    ours = world(skipped=[replace(mine, frozen=counted)])
    fresh = world(skipped=[skipped("i-odd", name="lb9", address=A1, health="healthy")])

    merged = merge_reread(ours, fresh, THRESHOLDS)

    assert dampings(merged) == {"i-odd": damping("healthy", "fail:2")}
    assert merged.skipped[0].address == A1  # the re-read's address, this run's count


# without_rejected: lb1 failed, the active record moves to lb2's address; Route 53 rejects names.
LB2_RECORD = RecordChange("UPSERT", a_record("lb2", A2))
MOVE_AND_OWN = ChangeRecords((*TO_A2.changes, LB2_RECORD), "lb1 unhealthy")
VERDICT = SetTags(
    ("i-lb1",), (("lbf:health", "unhealthy"), ("lbf:state", "standby")), after_records=True
)
ACTIVE_TAG = SetTags(("i-lb2",), (("lbf:state", "active"),), after_records=True)
EIP_TO_LB2 = MoveAddress("eipalloc-1", "i-lb2", "i-lb1", "lb2")
OWN_RECORD = ChangeRecords((LB2_RECORD,), "lb2's own record")
TO_LB2 = ActiveDecision((A2,), ("i-lb2",), "lb1 unhealthy", moved_from="lb1", moved_to="lb2")
DNS_PLAN = Plan((MOVE_AND_OWN, VERDICT, BACKENDS), TO_LB2, backends=None, held=None)
DNS_FIRST = [
    Outcome(MOVE_AND_OWN, ok=False, rejected=True, error="rejected"),
    Outcome(VERDICT, ok=False, skipped=True),
    Outcome(BACKENDS, ok=False, skipped=True),
]
EIP_PLAN = Plan((EIP_TO_LB2, OWN_RECORD, ACTIVE_TAG, BACKENDS), TO_LB2, backends=None, held=None)


# The batch split after a permanent rejection: the active record's compare-and-swap alone, then
# lb2's own record alone (rejected again).
CAS_ALONE = ChangeRecords(TO_A2.changes, "lb1 unhealthy")
OWN_ALONE = ChangeRecords((LB2_RECORD,), "lb1 unhealthy")


def split(cas_ok: bool) -> list[Outcome]:
    return [
        *DNS_FIRST,
        Outcome(CAS_ALONE, ok=cas_ok, error=None if cas_ok else "Throttling"),
        Outcome(OWN_ALONE, ok=False, rejected=True, error="rejected again"),
    ]


def eip_first(moved: bool) -> list[Outcome]:
    return [
        Outcome(EIP_TO_LB2, ok=moved, error=None if moved else "throttled"),
        Outcome(OWN_RECORD, ok=False, rejected=True, error="rejected"),
        Outcome(ACTIVE_TAG, ok=False, skipped=True),
        Outcome(BACKENDS, ok=False, skipped=True),
    ]


def described(changes: tuple[Change, ...] | list[Change]) -> list[str]:
    return [c.describe() for c in changes]


@pytest.mark.parametrize(
    ("plan", "first", "names", "rest", "attempted", "waiting", "moves_to"),
    [
        # The active name is rejected: the role does not move, lb1's verdict is still written
        # (without lbf:state), lb2's own record goes in a second batch.
        (
            DNS_PLAN,
            DNS_FIRST,
            {fqdn("lb")},
            [
                f"records (lb1 unhealthy): UPSERT {fqdn('lb2')} A {A2}",
                "tag i-lb1: lbf:health=unhealthy",
                "parameter /lbf/prod/backends = 10.0.0.1:80",
            ],
            [],
            [],
            None,
        ),
        # Only lb2's own name is rejected: the role still moves, in the second batch.
        (
            DNS_PLAN,
            DNS_FIRST,
            {fqdn("lb2")},
            [TO_A2.describe(), VERDICT.describe(), BACKENDS.describe()],
            [],
            [],
            (A2,),
        ),
        # Every name of the batch rejected: no second batch at all.
        (
            DNS_PLAN,
            DNS_FIRST,
            {fqdn("lb"), fqdn("lb2")},
            ["tag i-lb1: lbf:health=unhealthy", BACKENDS.describe()],
            [],
            [],
            None,
        ),
        # EIP mode: the Elastic IP moved already; it is not moved twice, and lbf:state follows it.
        (
            EIP_PLAN,
            eip_first(moved=True),
            {fqdn("lb2")},
            [ACTIVE_TAG.describe(), BACKENDS.describe()],
            [EIP_TO_LB2.describe()],
            [],
            (A2,),
        ),
        # Its move failed: lbf:state waits with it; the rest goes on.
        (
            EIP_PLAN,
            eip_first(moved=False),
            {fqdn("lb2")},
            [BACKENDS.describe()],
            [EIP_TO_LB2.describe()],
            [ACTIVE_TAG.describe()],
            (A2,),
        ),
        # Split: the active record went through alone; it is not sent again, and the role moves.
        (
            DNS_PLAN,
            split(cas_ok=True),
            {fqdn("lb2")},
            [VERDICT.describe(), BACKENDS.describe()],
            [CAS_ALONE.describe()],
            [],
            (A2,),
        ),
        # Split: the active record failed alone (not rejected: throttled); lbf:state waits.
        (
            DNS_PLAN,
            split(cas_ok=False),
            {fqdn("lb2")},
            [BACKENDS.describe()],
            [CAS_ALONE.describe()],
            [VERDICT.describe()],
            (A2,),
        ),
    ],
    ids=[
        "active-name",
        "own-name",
        "every-name",
        "eip-moved",
        "eip-failed",
        "split-applied",
        "split-failed",
    ],
)
def test_without_rejected(
    plan: Plan,
    first: list[Outcome],
    names: set[str],
    rest: list[str],
    attempted: list[str],
    waiting: list[str],
    moves_to: tuple[str, ...] | None,
) -> None:
    left = without_rejected(plan, first, names, active_fqdn=fqdn("lb"))

    assert described(left.rest.changes) == rest
    assert described([o.change for o in left.attempted]) == attempted
    assert described([o.change for o in left.waiting]) == waiting
    assert all(o.skipped and not o.ok for o in left.waiting)
    assert left.plan.active.values == moves_to
    assert left.rest.active == left.plan.active


def test_a_printed_push_is_kept_as_printed_and_no_push_is_made_up() -> None:
    """Dry run, paused: the executor sends nothing, so no command exists to stand for it."""
    folded = fold_outcomes(BEFORE, [Outcome(PUSH, ok=True, printed=True)])
    assert folded.pushes == ()
    assert folded.pushes_printed == (("i-lb1", "c1"),)
    sent = fold_outcomes(BEFORE, [Outcome(PUSH, ok=True, push=SENT)])
    assert (sent.pushes, sent.pushes_printed) == ((SENT,), ())
