"""A rejected Route 53 batch, judged by a re-read: permanent, stale, or this run's own change.

Nothing here reads Route 53's message: which records a permanent rejection refuses is found by
sending each record's compare-and-swap alone (`compare_and_swaps`), never by parsing its wording.
"""

from __future__ import annotations

import pytest

from chalicelib.core.changes import ChangeRecords, SetTags
from chalicelib.core.dns import RecordChange
from chalicelib.core.model import Record
from chalicelib.core.plan import decide
from chalicelib.core.rejections import compare_and_swaps, holds, left_out, unchanged, without
from tests.kit.settings import settings
from tests.kit.world import a_record, fqdn, lb, settled, world

A1, A2 = "203.0.113.1", "203.0.113.2"
ACTIVE = fqdn("lb")
ON_A1 = a_record("lb", A1)
ON_A2 = a_record("lb", A2)
CAS = [RecordChange("DELETE", ON_A1), RecordChange("CREATE", ON_A2)]
LB1_NEW = [RecordChange("UPSERT", a_record("lb1", "203.0.113.9"))]


@pytest.mark.parametrize(
    ("ours", "fresh", "changes", "expected"),
    [
        ([ON_A1], [ON_A1], CAS, True),  # nothing changed: a permanent rejection
        ([ON_A1], [ON_A2], CAS, False),  # changed (by us, lost answer, or by someone else)
        ([ON_A1], [], CAS, False),  # deleted since
        ([], [], [RecordChange("CREATE", ON_A2)], True),  # a CNAME is not read: unchanged
        # A change elsewhere does not make this batch stale.
        ([ON_A1], [ON_A1, a_record("lb7", A2)], CAS, True),
        ([ON_A1, a_record("lb1", A1)], [ON_A1, a_record("lb1", A2)], CAS + LB1_NEW, False),
        # TTL is part of the record a DELETE must match.
        ([ON_A1], [a_record("lb", A1, ttl=300)], CAS, False),
    ],
    ids=["same", "moved", "gone", "cname-invisible", "other-name", "own-name", "ttl"],
)
def test_unchanged(
    ours: list[Record], fresh: list[Record], changes: list[RecordChange], expected: bool
) -> None:
    assert unchanged(ours, fresh, changes) is expected


TXT = RecordChange("UPSERT", Record("_lbf.example.com", "TXT", 60, ('"lb"', '"lb1"')))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # The active record's DELETE and CREATE stay together, whatever lies between them.
        (
            [CAS[0], *LB1_NEW, CAS[1], TXT],
            [[CAS[0], CAS[1]], LB1_NEW, [TXT]],
        ),
        ([*CAS], [[*CAS]]),
        # A name's A record and a TXT of the same name are two records.
        (
            [LB1_NEW[0], RecordChange("UPSERT", Record(fqdn("lb1"), "TXT", 60, ('"x"',)))],
            [[LB1_NEW[0]], [RecordChange("UPSERT", Record(fqdn("lb1"), "TXT", 60, ('"x"',)))]],
        ),
    ],
    ids=["cas-pair-and-txt", "one-cas", "name-and-type"],
)
def test_compare_and_swaps_keeps_each_records_changes_together(
    changes: list[RecordChange], expected: list[list[RecordChange]]
) -> None:
    batch = ChangeRecords(tuple(changes), "lb1 unhealthy")

    alone = compare_and_swaps(batch)

    assert [list(b.changes) for b in alone] == expected
    assert {b.reason for b in alone} == {"lb1 unhealthy"}
    # Every change of the batch, once.
    assert sorted(map(repr, (c for b in alone for c in b.changes))) == sorted(map(repr, changes))


def test_holds() -> None:
    assert holds([ON_A2], ACTIVE, [A2])
    assert not holds([ON_A1], ACTIVE, [A2])
    assert not holds([], ACTIVE, [A2])
    assert holds([a_record("lb", A1, A2)], ACTIVE, [A2, A1])


def test_without_the_active_record_the_role_does_not_move_but_verdicts_are_written() -> None:
    config = settings()
    # lb1 just turned unhealthy: its verdict is to be written, and the role to move.
    was = {"lbf:health": "healthy", "lbf:state": "active", "lbf:probe": "fail:3"}
    lbs = [lb("lb1", A1, "unhealthy", lb_state="active", written=was), lb("lb2", A2)]
    before = settled([lb("lb1", A1), lb("lb2", A2)], active="lb1")
    plan = decide(world(lbs, records=before.records), config.rules.plan, run_started_at=0.0)
    assert plan.active.moved_to == "lb2"

    rest = without(plan, {ACTIVE}, active_fqdn=ACTIVE)
    assert rest.active.values is None
    assert rest.active.moved_from is None
    assert (
        rest.active.reason == f"left as it is: Route 53 rejects the change ({plan.active.reason})"
    )
    records = [c for c in rest.changes if isinstance(c, ChangeRecords)]
    assert all(r.record.name != ACTIVE for batch in records for r in batch.changes)
    tags = [c for c in rest.changes if isinstance(c, SetTags)]
    assert tags
    assert all(key != "lbf:state" for change in tags for key, _ in change.tags)
    assert not any(change.after_records for change in tags)
    assert {c.record.name for c in left_out(plan, {ACTIVE})} == {ACTIVE}


def test_without_another_name_keeps_the_move() -> None:
    config = settings()
    lbs = [lb("lb1", A1, "unhealthy"), lb("lb2", "203.0.113.9")]
    before = settled([lb("lb1", A1), lb("lb2", A2)], active="lb1")
    plan = decide(world(lbs, records=before.records), config.rules.plan, run_started_at=0.0)
    rest = without(plan, {fqdn("lb2")}, active_fqdn=ACTIVE)
    assert rest.active == plan.active
    assert any(
        key == "lbf:state" for c in rest.changes if isinstance(c, SetTags) for key, _ in c.tags
    )
    assert without(plan, set(), active_fqdn=ACTIVE) == plan
