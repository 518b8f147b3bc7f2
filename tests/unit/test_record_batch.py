"""The record batch's sub-decisions, one table each (core/record_batch.py).

test_dns.py walks whole rounds through `record_plan`; here each decision is seen on its own, the
way an operator reads a change batch: which record is written or deleted, and with what values.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chalicelib.core.dns import (
    ActiveDecision,
    RecordChange,
    RecordRules,
    TaggedClaim,
    tagged_claim,
)
from chalicelib.core.model import Instance, Record, Skipped
from chalicelib.core.record_batch import (
    Current,
    active_record_changes,
    frozen_names,
    gone_skipped_deletes,
    lb_record_changes,
    lbs_by_name,
    ownership_changes,
    released_value_changes,
    skipped_record_moves,
    vanished_deletes,
)
from tests.kit.settings import CLUSTER, DOMAIN
from tests.kit.world import TTL, a_record, fqdn, lb, ownership, skipped

RULES = RecordRules(domain=DOMAIN, ttl=TTL, active_name="lb", cluster=CLUSTER)

A1, A2, A3 = "203.0.113.1", "203.0.113.2", "203.0.113.3"
NEW1, NEW3 = "203.0.113.101", "203.0.113.103"  # lb1 and lb3 after a stop and start
BY_HAND = "198.51.100.7"  # an address no LB of the cluster ever had

Change = tuple[str, str, tuple[str, ...]]  # action, record name, values


def current(*records: Record) -> Current:
    return {(r.name, r.type): r for r in records}


def seen(changes: Sequence[RecordChange]) -> list[Change]:
    return [(c.action, c.record.name, c.record.values) for c in changes]


# --- the inventory's LBs: each name's record follows its running LB ---------------------------

LB_RECORD_CASES = [
    pytest.param([lb("lb1", A1)], [a_record("lb1", A1)], [], [], id="right-already-no-change"),
    pytest.param(
        [lb("lb1", NEW1)],
        [a_record("lb1", A1)],
        [],
        [("UPSERT", fqdn("lb1"), (NEW1,))],
        id="follows-its-lb-to-a-new-address",
    ),
    pytest.param(
        [lb("lb1", A1)], [], [], [("UPSERT", fqdn("lb1"), (A1,))], id="missing-is-written"
    ),
    pytest.param(
        [
            lb("lb1", None, state="stopped", instance_id="i-old"),
            lb("lb1", A2, instance_id="i-replacement"),
        ],
        [a_record("lb1", A1)],
        [],
        [("UPSERT", fqdn("lb1"), (A2,))],
        id="replacement-takes-the-name-of-the-stopped-one",
    ),
    pytest.param(
        [lb("lb1", None, state="terminated")],
        [a_record("lb1", A1)],
        [],
        [("DELETE", fqdn("lb1"), (A1,))],
        id="every-instance-of-the-name-gone-deleted",
    ),
    pytest.param(
        [lb("lb1", A1, state="stopping")],
        [a_record("lb1", A1)],
        [],
        [],
        id="stopping-is-not-gone-yet-kept",
    ),
    pytest.param(
        [lb("lb1", None, state="terminated")],
        [a_record("lb1", A1)],
        [skipped("i-frozen", name="lb1", address=A1)],
        [],
        id="gone-but-a-live-skipped-lb-answers-for-the-name-kept",
    ),
    pytest.param(
        [lb("lb1", None, state="terminated")], [], [], [], id="gone-and-no-record-nothing"
    ),
]


@pytest.mark.parametrize(("lbs", "records", "live_skipped", "expected"), LB_RECORD_CASES)
def test_each_lb_name_has_its_record_on_its_running_lb(
    lbs: list[Instance], records: list[Record], live_skipped: list[Skipped], expected: list[Change]
) -> None:
    changes = lb_record_changes(lbs_by_name(lbs), current(*records), live_skipped, RULES)
    assert seen(changes) == expected


# --- a running skipped LB takes its own record along to its new address ----------------------

SKIPPED_MOVE_CASES = [
    pytest.param(
        [skipped("i-3", name="lb3", address=NEW3)],
        [],
        [a_record("lb3", A3)],
        {fqdn("lb3")},
        [("UPSERT", fqdn("lb3"), (NEW3,))],
        id="back-with-a-new-address-moves-its-record",
    ),
    pytest.param(
        [skipped("i-3", name="lb3", address=A3)],
        [],
        [a_record("lb3", A3)],
        {fqdn("lb3")},
        [],
        id="same-address-no-change",
    ),
    pytest.param(
        [skipped("i-3", name="lb3", address=NEW3)],
        [],
        [],
        {fqdn("lb3")},
        [],
        id="no-record-none-created",
    ),
    pytest.param(
        [skipped("i-3", name="lb3", address=NEW3)],
        [],
        [a_record("lb3", A3)],
        set(),
        [],
        id="a-name-the-txt-does-not-list-is-never-written",
    ),
    pytest.param(
        [skipped("i-a", name="lb3", address=NEW3), skipped("i-b", name="lb3", address=A1)],
        [],
        [a_record("lb3", A3)],
        {fqdn("lb3")},
        [],
        id="two-skipped-with-one-name-neither-moves-it",
    ),
    pytest.param(
        [skipped("i-3", name="lb3", address=NEW3)],
        ["lb3"],
        [a_record("lb3", A3)],
        {fqdn("lb3")},
        [],
        id="an-lb-of-the-inventory-owns-the-name",
    ),
    pytest.param(
        [skipped("i-3", name="lb3", address=NEW3, state="stopping")],
        [],
        [a_record("lb3", A3)],
        {fqdn("lb3")},
        [],
        id="not-running-not-moved",
    ),
    pytest.param(
        [skipped("i-x", name="lb", address=NEW3)],
        [],
        [a_record("lb", A3)],
        {fqdn("lb")},
        [],
        id="a-tag-naming-the-active-record-never-moves-it",
    ),
]


@pytest.mark.parametrize(
    ("live_skipped", "lb_names", "records", "owned", "expected"), SKIPPED_MOVE_CASES
)
def test_a_running_skipped_lb_takes_its_record_to_its_new_address(
    live_skipped: list[Skipped],
    lb_names: list[str],
    records: list[Record],
    owned: set[str],
    expected: list[Change],
) -> None:
    changes = skipped_record_moves(live_skipped, lb_names, current(*records), owned, RULES)
    assert seen(changes) == expected


# --- names a skipped instance still answers for ----------------------------------------------

FROZEN_NAME_CASES = [
    pytest.param(
        [skipped("i-3", name="lb3", address=A3)], [], set(), {fqdn("lb3")}, id="by-its-name"
    ),
    pytest.param(
        [skipped("i-3", address=A3)],
        [a_record("lb4", A3)],
        {fqdn("lb4")},
        {fqdn("lb4")},
        id="nameless-by-the-owned-record-holding-its-address",
    ),
    pytest.param(
        [skipped("i-3", address=A3)],
        [a_record("lb4", A3)],
        set(),
        set(),
        id="a-record-the-txt-does-not-list-is-not-its",
    ),
    pytest.param(
        [skipped("i-3", address=A3)],
        [a_record("lb4", A1)],
        {fqdn("lb4")},
        set(),
        id="an-owned-record-on-another-address-is-not-its",
    ),
]


@pytest.mark.parametrize(("live_skipped", "records", "owned", "expected"), FROZEN_NAME_CASES)
def test_a_skipped_instance_keeps_the_names_it_answers_for(
    live_skipped: list[Skipped], records: list[Record], owned: set[str], expected: set[str]
) -> None:
    assert frozen_names(live_skipped, current(*records), owned, RULES) == expected


# --- the record of a skipped LB that is gone -------------------------------------------------

GONE_SKIPPED_CASES = [
    pytest.param(
        [skipped("i-3", name="lb3", address=None, state="terminated")],
        [],
        set(),
        [("DELETE", fqdn("lb3"), (A3,))],
        id="terminated-deleted",
    ),
    pytest.param(
        [
            skipped("i-old", name="lb3", state="terminated"),
            skipped("i-new", name="lb3", address=A1),
        ],
        [],
        set(),
        [],
        id="a-live-skipped-lb-of-that-name-keeps-it",
    ),
    pytest.param(
        [skipped("i-3", name="lb3", state="stopped")],
        ["lb3"],
        set(),
        [],
        id="an-lb-of-the-inventory-of-that-name-keeps-it",
    ),
    pytest.param(
        [skipped("i-3", name="lb3", state="stopped")],
        [],
        {fqdn("lb3")},
        [],
        id="a-name-something-answers-for-is-kept",
    ),
]


@pytest.mark.parametrize(("skipped_", "lb_names", "known", "expected"), GONE_SKIPPED_CASES)
def test_the_record_of_a_gone_skipped_lb_is_deleted(
    skipped_: list[Skipped], lb_names: list[str], known: set[str], expected: list[Change]
) -> None:
    records = current(a_record("lb3", A3))
    assert seen(gone_skipped_deletes(skipped_, lb_names, records, known, RULES)) == expected


def test_gone_skipped_records_are_deleted_in_name_order() -> None:
    gone = [skipped(f"i-{n}", name=n, state="terminated") for n in ("lb10", "lb2")]
    records = current(a_record("lb10", A1), a_record("lb2", A2))
    changes = gone_skipped_deletes(gone, [], records, set(), RULES)
    assert [c.record.name for c in changes] == [fqdn("lb2"), fqdn("lb10")]


# --- a record the TXT lists whose LB vanished -------------------------------------------------

VANISHED_CASES = [
    pytest.param({fqdn("lb5")}, [("DELETE", fqdn("lb5"), (A3,))], id="vanished-deleted"),
    pytest.param({fqdn("lb6")}, [], id="listed-but-no-record-nothing"),
    pytest.param({fqdn("lb")}, [], id="never-the-active-record"),
    pytest.param(
        {fqdn("lb5"), fqdn("lb4")},
        [("DELETE", fqdn("lb4"), (A2,)), ("DELETE", fqdn("lb5"), (A3,))],
        id="in-name-order",
    ),
]


@pytest.mark.parametrize(("unknown", "expected"), VANISHED_CASES)
def test_a_listed_record_no_instance_answers_for_is_deleted(
    unknown: set[str], expected: list[Change]
) -> None:
    records = current(a_record("lb4", A2), a_record("lb5", A3), a_record("lb", A1))
    assert seen(vanished_deletes(unknown, records, RULES)) == expected


# --- values no instance holds leave the per-LB records ----------------------------------------

RELEASED_CASES = [
    pytest.param(
        [a_record("lb2", A2)],
        {A1},
        [("DELETE", fqdn("lb2"), (A2,))],
        {fqdn("lb2"): (A2,)},
        id="its-only-value-released-deleted",
    ),
    pytest.param(
        [a_record("lb2", A1, A2)],
        {A1},
        [("UPSERT", fqdn("lb2"), (A1,))],
        {fqdn("lb2"): (A2,)},
        id="one-of-two-released-the-other-kept",
    ),
    pytest.param([a_record("lb2", A2)], {A2}, [], {}, id="all-held-no-change"),
    pytest.param([a_record("lb", A2)], {A1}, [], {}, id="never-the-active-record"),
    pytest.param([], {A1}, [], {}, id="no-record-nothing"),
]


@pytest.mark.parametrize(("records", "addresses", "expected", "released"), RELEASED_CASES)
def test_a_value_no_instance_holds_leaves_a_per_lb_record(
    records: list[Record],
    addresses: set[str],
    expected: list[Change],
    released: dict[str, tuple[str, ...]],
) -> None:
    unchanged = {fqdn("lb2"), fqdn("lb")}
    changes, gone = released_value_changes(unchanged, current(*records), addresses, RULES)
    assert (seen(changes), gone) == (expected, released)


# --- the active record: the decision's values, or a changed LBF_TTL ---------------------------

ACTIVE_CASES = [
    pytest.param(
        a_record("lb", A1),
        ActiveDecision((A2,), ("i-lb2",), "moved"),
        {A1, A2},
        [("DELETE", fqdn("lb"), (A1,)), ("CREATE", fqdn("lb"), (A2,))],
        id="moved-by-compare-and-swap",
    ),
    pytest.param(
        None,
        ActiveDecision((A1,), ("i-lb1",), "created"),
        {A1},
        [("CREATE", fqdn("lb"), (A1,))],
        id="created",
    ),
    pytest.param(
        a_record("lb", A1),
        ActiveDecision((), (), "deleted"),
        set(),
        [("DELETE", fqdn("lb"), (A1,))],
        id="no-value-left-deleted",
    ),
    pytest.param(
        a_record("lb", A1, ttl=300),
        ActiveDecision(None, ("i-lb1",), "kept"),
        {A1},
        [("DELETE", fqdn("lb"), (A1,)), ("CREATE", fqdn("lb"), (A1,))],
        id="kept-with-a-new-ttl",
    ),
    pytest.param(
        a_record("lb", BY_HAND, ttl=300),
        ActiveDecision(None, (), "left as is"),
        {A1},
        [],
        id="pointed-by-hand-never-restated",
    ),
    pytest.param(a_record("lb", A1), ActiveDecision(None, ("i-lb1",), "kept"), {A1}, [], id="kept"),
]


@pytest.mark.parametrize(("active", "decision", "reachable", "expected"), ACTIVE_CASES)
def test_the_active_record_takes_the_decisions_values_or_the_new_ttl(
    active: Record | None, decision: ActiveDecision, reachable: set[str], expected: list[Change]
) -> None:
    changes = active_record_changes(active, decision, reachable, RULES)
    assert seen(changes) == expected
    assert all(c.record.ttl == TTL for c in changes if c.action == "CREATE")


# --- the `_lbf` TXT: who owns the domain, and what exists after the batch ---------------------

WRITE_LB1 = [RecordChange("UPSERT", a_record("lb1", A1))]

OWNERSHIP_CASES = [
    pytest.param(
        None,
        [a_record("lb1", A1)],
        WRITE_LB1,
        [("CREATE", fqdn("_lbf"), ownership("lb1").values)],
        id="first-write-claims-the-domain",
    ),
    pytest.param(None, [a_record("lb1", A1)], [], [], id="no-write-no-claim"),
    pytest.param(ownership("lb1"), [a_record("lb1", A1)], [], [], id="says-the-same-no-change"),
    pytest.param(
        ownership("lb1"),
        [a_record("lb1", A1), a_record("lb2", A2)],
        [],
        [
            ("DELETE", fqdn("_lbf"), ownership("lb1").values),
            ("CREATE", fqdn("_lbf"), ownership("lb1", "lb2").values),
        ],
        id="a-new-record-listed-by-compare-and-swap",
    ),
    pytest.param(
        ownership("lb1", "lb2"),
        [a_record("lb1", A1)],
        [],
        [
            ("DELETE", fqdn("_lbf"), ownership("lb1", "lb2").values),
            ("CREATE", fqdn("_lbf"), ownership("lb1").values),
        ],
        id="a-deleted-record-unlisted",
    ),
    pytest.param(
        ownership("lb1", ttl=300),
        [a_record("lb1", A1)],
        [],
        [
            ("DELETE", fqdn("_lbf"), ownership("lb1").values),
            ("CREATE", fqdn("_lbf"), ownership("lb1").values),
        ],
        id="a-new-ttl",
    ),
    pytest.param(
        ownership("lb1", cluster=None),
        [a_record("lb1", A1)],
        [],
        [
            ("DELETE", fqdn("_lbf"), ownership("lb1", cluster=None).values),
            ("CREATE", fqdn("_lbf"), ownership("lb1").values),
        ],
        id="a-txt-naming-no-cluster-adopted",
    ),
    pytest.param(
        ownership("lb1"),
        [a_record("lb1", A1), a_record("www", A3)],
        [],
        [],
        id="a-record-not-the-clusters-never-listed",
    ),
]


@pytest.mark.parametrize(("txt", "after", "changes", "expected"), OWNERSHIP_CASES)
def test_the_txt_names_the_owner_and_lists_what_exists_after_the_batch(
    txt: Record | None, after: list[Record], changes: list[RecordChange], expected: list[Change]
) -> None:
    owned = {fqdn("lb1")} if txt is not None and '"lb1"' in txt.values else set()
    lbs = [lb("lb1", A1), lb("lb2", A2)]
    found = ownership_changes(txt, after, owned, lbs, changes, RULES, cluster=CLUSTER)
    assert seen(found) == expected


# --- the record holds no current LB address: the LB tagged active may still claim it ---------

FORMER = {A1, A2}

TAGGED_CASES = [
    pytest.param([lb("lb1", NEW1), lb("lb2", A2)], None, TaggedClaim(), id="none-tagged"),
    pytest.param(
        [lb("lb1", NEW1, lb_state="active"), lb("lb2", A2, lb_state="active")],
        FORMER,
        TaggedClaim(),
        id="two-tagged-no-claim",
    ),
    pytest.param(
        [lb("lb1", None, "unknown", "stopped", lb_state="active")],
        FORMER,
        TaggedClaim(lb("lb1", None, "unknown", "stopped", lb_state="active")),
        id="stopped-without-address-still-holds-it",
    ),
    pytest.param(
        [lb("lb1", NEW1, lb_state="active")],
        FORMER,
        TaggedClaim(lb("lb1", NEW1, lb_state="active"), followed=True),
        id="back-with-a-new-address-followed",
    ),
    pytest.param(
        [lb("lb1", NEW1, lb_state="active")],
        None,
        TaggedClaim(lb("lb1", NEW1, lb_state="active"), followed=True),
        id="former-unknown-followed",
    ),
    pytest.param(
        [lb("lb1", NEW1, lb_state="active")],
        {A2},
        TaggedClaim(keeps=lb("lb1", NEW1, lb_state="active")),
        id="pointed-by-hand-repaired-but-the-tag-keeps-its-claim",
    ),
]


@pytest.mark.parametrize(("known", "former", "expected"), TAGGED_CASES)
def test_the_lb_tagged_active_claims_a_record_holding_no_current_address(
    known: list[Instance], former: set[str] | None, expected: TaggedClaim
) -> None:
    assert tagged_claim(known, {A1}, former) == expected
