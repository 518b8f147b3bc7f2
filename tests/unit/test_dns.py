"""Which records should exist, and how the active record moves (SPEC: "DNS records").

Each case is one bullet of the SPEC, seen the way an operator would: where `lb.example.com` points
after the round, and which change batch Route 53 receives.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chalicelib.core.dns import (
    ActiveDecision,
    RecordChange,
    RecordRules,
    active_change,
    addresses_held,
    apply_record_changes,
    decide_active,
    decide_holder,
    foreign_addresses,
    handover_change,
    ownership_of,
    refusal,
    release_active,
)
from chalicelib.core.inventory import build_inventory
from chalicelib.core.model import ActiveMode, Instance, RawInstance, Record, Skipped
from chalicelib.core.record_batch import record_plan
from tests.kit.settings import CLUSTER
from tests.kit.world import TTL, a_record, fqdn, lb, ownership, parse_rules, raw, skipped

RULES = RecordRules(domain="example.com", ttl=TTL, active_name="lb", cluster=CLUSTER)
ALL = RecordRules(
    domain="example.com", ttl=TTL, active_name="lb", active_mode=ActiveMode.ALL, cluster=CLUSTER
)

A1, A2, A3, A10 = "203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.10"
NEW1 = "203.0.113.101"  # lb1 after a stop/start
NEW3 = "203.0.113.103"  # lb3 after a stop/start
FOREIGN = "198.51.100.7"  # an address no instance of the cluster has


def decide(
    current: Sequence[str] | None,
    lbs: Sequence[Instance],
    frozen: Sequence[Skipped] = (),
    rules: RecordRules = RULES,
) -> ActiveDecision:
    record = a_record("lb", *current) if current is not None else None
    return decide_active(record, lbs, frozen, rules)


def holder_names(
    decision: ActiveDecision, lbs: Sequence[Instance], frozen: Sequence[Skipped] = ()
) -> list[str | None]:
    by_id = {x.instance_id: x.name for x in lbs} | {s.instance_id: s.name for s in frozen}
    return [by_id[i] for i in decision.holders]


# --- the active record, one SPEC bullet at a time ----------------------------------------------

# (current record values or None, LBs, skipped, values afterwards or None = left as it is,
#  the LB names it points at afterwards, the LB it left)
ACTIVE_CASES = [
    # absent: created, pointing at a healthy LB (lowest name first)
    pytest.param(
        None,
        [lb("lb10", A10), lb("lb2", A2), lb("lb1", A1, "unhealthy")],
        [],
        (A2,),
        ["lb2"],
        None,
        id="absent-created-on-lowest-healthy-lb2-before-lb10",
    ),
    pytest.param(
        None,
        [lb("lb1", A1, draining=True), lb("lb2", A2)],
        [],
        (A2,),
        ["lb2"],
        None,
        id="absent-never-created-on-a-draining-lb",
    ),
    pytest.param(
        None,
        [lb("lb1", A1, "unknown"), lb("lb2", A2)],
        [],
        (A2,),
        ["lb2"],
        None,
        id="absent-never-created-on-an-unknown-lb",
    ),
    pytest.param(
        None,
        [lb("lb1", A1, state="stopped"), lb("lb2", A2)],
        [],
        (A2,),
        ["lb2"],
        None,
        id="absent-never-created-on-a-stopped-lb",
    ),
    # points at a healthy LB: left alone (non-preemptive)
    pytest.param(
        (A2,),
        [lb("lb1", A1), lb("lb2", A2)],
        [],
        None,
        ["lb2"],
        None,
        id="healthy-holder-kept-though-lb1-is-healthy",
    ),
    pytest.param(
        (A2,),
        [lb("lb1", A1, "unhealthy"), lb("lb2", A2)],
        [],
        None,
        ["lb2"],
        None,
        id="healthy-holder-kept",
    ),
    # its LB is unhealthy or draining (or stopped) and a healthy LB exists: moved
    pytest.param(
        (A1,),
        [lb("lb1", A1, "unhealthy"), lb("lb2", A2), lb("lb3", A3)],
        [],
        (A2,),
        ["lb2"],
        "lb1",
        id="unhealthy-holder-moved-to-lowest-healthy",
    ),
    pytest.param(
        (A1,),
        [lb("lb1", A1, draining=True), lb("lb2", A2)],
        [],
        (A2,),
        ["lb2"],
        "lb1",
        id="draining-holder-moved",
    ),
    pytest.param(
        (A1,),
        [lb("lb1", A1, "unknown", draining=True), lb("lb2", A2)],
        [],
        (A2,),
        ["lb2"],
        "lb1",
        id="draining-holder-moved-even-without-verdict",
    ),
    pytest.param(
        (A1,),
        [lb("lb1", A1, "unhealthy", state="stopping"), lb("lb2", A2)],
        [],
        (A2,),
        ["lb2"],
        "lb1",
        id="stopping-holder-moved",
    ),
    pytest.param(
        (A1,),
        [
            lb("lb1", None, "unhealthy", state="stopped", lb_state="active"),
            lb("lb2", A2, lb_state="standby"),
        ],
        [],
        (A2,),
        ["lb2"],
        "lb1",
        id="stopped-holder-that-lost-its-public-ip-moved",
    ),
    pytest.param(
        (A1,),
        [lb("lb1", A1, "unhealthy"), lb("lb2", A2, draining=True), lb("lb3", A3, "unknown")],
        [],
        None,
        ["lb1"],
        None,
        id="only-draining-or-unknown-standbys-left-as-is",
    ),
    # unknown is never a reason to move
    pytest.param(
        (A1,),
        [lb("lb1", A1, "unknown"), lb("lb2", A2)],
        [],
        None,
        ["lb1"],
        None,
        id="unknown-holder-never-moved",
    ),
    # the active LB's IP changed: follows it
    pytest.param(
        (A1,),
        [lb("lb1", NEW1, lb_state="active"), lb("lb2", A2, lb_state="standby")],
        [],
        (NEW1,),
        ["lb1"],
        None,
        id="ip-changed-record-follows-the-active-lb",
    ),
    pytest.param(
        (A1,),
        [lb("lb1", NEW1, "unhealthy", lb_state="active"), lb("lb2", A2, lb_state="standby")],
        [],
        (A2,),
        ["lb2"],
        "lb1",
        id="ip-changed-but-unhealthy-moved-instead",
    ),
    pytest.param(
        (A1,),
        [lb("lb1", NEW1, "unknown", lb_state="active"), lb("lb2", A2, lb_state="standby")],
        [],
        None,
        ["lb1"],
        None,
        id="ip-changed-but-unknown-waits",
    ),
    # no LB is healthy: left as it is
    pytest.param(
        (A1,),
        [lb("lb1", A1, "unhealthy"), lb("lb2", A2, "unhealthy")],
        [],
        None,
        ["lb1"],
        None,
        id="no-healthy-lb-left-as-is",
    ),
    # the record points at no LB of the cluster: repaired
    pytest.param(
        (FOREIGN,),
        [lb("lb2", A2), lb("lb1", A1)],
        [],
        (A1,),
        ["lb1"],
        None,
        id="foreign-address-repaired-to-lowest-healthy",
    ),
    # a skipped LB is frozen
    pytest.param(
        (A1,),
        [lb("lb2", A2)],
        [skipped("i-frozen", name="lb1", address=A1)],
        None,
        ["lb1"],
        None,
        id="points-at-a-skipped-lb-left-as-is",
    ),
    pytest.param(
        (A1,),
        [lb("lb2", A2)],
        [skipped("i-frozen", name=None, address=A1, reason="lbf:name 'LB1' is not a DNS label")],
        None,
        [None],
        None,
        id="points-at-a-skipped-lb-without-a-valid-name-left-as-is",
    ),
    pytest.param(
        (A1,),
        [lb("lb2", A2)],
        [skipped("i-frozen", name="lb1", address=A1, health="unknown")],
        None,
        ["lb1"],
        None,
        id="skipped-holder-without-a-verdict-left-as-is",
    ),
    pytest.param(
        (A1,),
        [lb("lb2", A2)],
        [skipped("i-frozen", name=None, address=A1, role=None)],
        None,
        [],
        None,
        id="points-at-a-running-instance-of-unknown-role-left-as-is",
    ),
    # EC2's state outranks a tag; a skipped LB's health is not frozen
    pytest.param(
        (A1,),
        [lb("lb2", A2)],
        [skipped("i-frozen", name="lb1", address=A1, state="stopped", health="unhealthy")],
        (A2,),
        ["lb2"],
        "lb1",
        id="skipped-holder-stopped-moved-off",
    ),
    pytest.param(
        (A1,),
        [lb("lb2", A2)],
        [skipped("i-frozen", address=A1, state="stopping", health="unhealthy")],
        (A2,),
        ["lb2"],
        "i-frozen",
        id="skipped-holder-without-a-name-stopping-moved-off",
    ),
    pytest.param(
        (A1,),
        [lb("lb2", A2)],
        [skipped("i-frozen", name=None, address=A1, role=None, state="stopped")],
        (A2,),
        ["lb2"],
        None,
        id="stopped-instance-of-unknown-role-repaired",
    ),
    pytest.param(
        (A1,),
        [lb("lb2", A2)],
        [skipped("i-frozen", name=None, address=None, state="stopped", lb_state="active")],
        (A2,),
        ["lb2"],
        "i-frozen",
        id="skipped-holder-stopped-without-its-public-address-moved-off",
    ),
    pytest.param(
        (A1,),
        [lb("lb2", A2)],
        [skipped("i-frozen", name="lb1", address=A1, health="unhealthy")],
        (A2,),
        ["lb2"],
        "lb1",
        id="skipped-holder-unhealthy-moved-off",
    ),
    pytest.param(
        (A1,),
        [lb("lb2", A2, "unhealthy")],
        [skipped("i-frozen", name="lb1", address=A1, health="unhealthy")],
        None,
        ["lb1"],
        None,
        id="skipped-holder-unhealthy-no-eligible-left-as-is",
    ),
    pytest.param(
        None,
        [lb("lb2", A2, "unhealthy")],
        [skipped("i-frozen", name="lb1", address=A1)],
        None,
        [],
        None,
        id="skipped-lb-never-chosen-when-absent",
    ),
    pytest.param(
        (A2,),
        [lb("lb2", A2, "unhealthy"), lb("lb3", A3)],
        [skipped("i-frozen", name="lb1", address=A1)],
        (A3,),
        ["lb3"],
        "lb2",
        id="skipped-lb-never-chosen-on-failover",
    ),
    # a single-LB record left with two addresses (say, by an active-active setup) is narrowed
    pytest.param(
        (A1, A2),
        [lb("lb1", A1), lb("lb2", A2)],
        [],
        (A1,),
        ["lb1"],
        None,
        id="two-addresses-narrowed-to-the-holder",
    ),
]


@pytest.mark.parametrize(
    ("current", "lbs", "frozen", "values", "holders", "moved_from"), ACTIVE_CASES
)
def test_the_active_record(
    current: tuple[str, ...] | None,
    lbs: list[Instance],
    frozen: list[Skipped],
    values: tuple[str, ...] | None,
    holders: list[str],
    moved_from: str | None,
) -> None:
    decision = decide(current, lbs, frozen)
    assert decision.values == values, decision.reason
    assert holder_names(decision, lbs, frozen) == holders, decision.reason
    assert decision.moved_from == moved_from, decision.reason


@pytest.mark.parametrize(
    ("current", "lbs"),
    [
        pytest.param(None, [lb("lb1", A1, "unhealthy"), lb("lb2", A2, "unknown")], id="absent"),
        pytest.param((A1,), [lb("lb1", A1, "unhealthy"), lb("lb2", A2, "unhealthy")], id="present"),
    ],
)
def test_no_eligible_lb_is_flagged_for_a_notice(
    current: tuple[str, ...] | None, lbs: list[Instance]
) -> None:
    decision = decide(current, lbs)
    assert (decision.values, decision.no_eligible) == (None, True)


def test_a_failover_says_where_from_and_where_to() -> None:
    decision = decide((A1,), [lb("lb1", A1, "unhealthy"), lb("lb2", A2)])
    assert (decision.moved_from, decision.moved_to) == ("lb1", "lb2")
    assert "lb1" in decision.reason
    assert "unhealthy" in decision.reason
    assert not decision.repaired


def test_a_record_pointing_nowhere_is_flagged_repaired() -> None:
    decision = decide((FOREIGN,), [lb("lb1", A1)])
    assert decision.repaired
    assert FOREIGN in decision.reason


def test_a_kept_record_is_not_a_failover() -> None:
    decision = decide((A1,), [lb("lb1", A1), lb("lb2", A2)])
    assert (decision.moved_from, decision.no_eligible, decision.repaired) == (None, False, False)


# --- compare-and-swap ------------------------------------------------------------------------


def test_an_absent_active_record_is_created() -> None:
    assert active_change(None, [A1], TTL, fqdn("lb")) == [
        RecordChange("CREATE", a_record("lb", A1))
    ]


@pytest.mark.parametrize(
    "current",
    [
        pytest.param(a_record("lb", A1), id="same-ttl"),
        pytest.param(a_record("lb", A1, ttl=300), id="other-ttl"),
        pytest.param(a_record("lb", A1, A3), id="two-values"),
    ],
)
def test_an_active_record_moves_by_deleting_exactly_what_was_read(current: Record) -> None:
    """One batch: DELETE the exact current record, CREATE the new one. Never an UPSERT."""
    assert active_change(current, [A2], TTL, fqdn("lb")) == [
        RecordChange("DELETE", current),
        RecordChange("CREATE", a_record("lb", A2)),
    ]


# --- every record of a round -----------------------------------------------------------------


def records_plan(
    records: Sequence[Record],
    lbs: Sequence[Instance],
    frozen: Sequence[Skipped] = (),
    rules: RecordRules = RULES,
) -> list[RecordChange]:
    active = next((r for r in records if r.name == fqdn("lb") and r.type == "A"), None)
    decision = decide_active(active, lbs, frozen, rules)
    return list(record_plan(records, lbs, frozen, decision, rules).changes)


def changes_of(changes: list[RecordChange]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(c.action, c.record.name, c.record.type, c.record.values) for c in changes]


def txt_swap(
    before: Sequence[str], after: Sequence[str]
) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The TXT's compare-and-swap: the exact TXT read deleted, the new one created, one batch."""
    return [
        ("DELETE", fqdn("_lbf"), "TXT", ownership(*before).values),
        ("CREATE", fqdn("_lbf"), "TXT", ownership(*after).values),
    ]


STEADY_LBS = [lb("lb1", A1, lb_state="active"), lb("lb2", A2, lb_state="standby")]
STEADY_RECORDS = [
    a_record("lb1", A1),
    a_record("lb2", A2),
    a_record("lb", A1),
    ownership("lb", "lb1", "lb2"),
]
OTHERS = [
    a_record("www", FOREIGN),
    Record(fqdn("www"), "TXT", TTL, ('"v=spf1 -all"',)),
    a_record("lb7", FOREIGN),  # an A record the TXT does not list: not ours
    Record(fqdn("lb1"), "AAAA", TTL, ("2001:db8::1",)),
]


def test_a_steady_world_changes_no_record() -> None:
    assert records_plan(STEADY_RECORDS, STEADY_LBS) == []


def test_records_the_controller_does_not_own_are_never_touched() -> None:
    changes = records_plan(
        [*STEADY_RECORDS, *OTHERS], [lb("lb1", A1, "unhealthy"), lb("lb2", A2, state="stopped")]
    )
    touched = {(c.record.name, c.record.type) for c in changes}
    assert touched.isdisjoint({(r.name, r.type) for r in OTHERS})
    assert changes  # the case does change records: lb2 is removed, the active record stays


@pytest.mark.parametrize(
    ("records", "lbs", "frozen", "expected"),
    [
        pytest.param(
            STEADY_RECORDS,
            [lb("lb1", NEW1, lb_state="active"), lb("lb2", A2, lb_state="standby")],
            [],
            [
                ("UPSERT", fqdn("lb1"), "A", (NEW1,)),
                ("DELETE", fqdn("lb"), "A", (A1,)),
                ("CREATE", fqdn("lb"), "A", (NEW1,)),
            ],
            id="ip-change-updates-the-lb-record-and-the-active-one-follows",
        ),
        pytest.param(
            STEADY_RECORDS,
            [lb("lb1", A1, lb_state="active"), lb("lb2", NEW1, lb_state="standby")],
            [],
            [("UPSERT", fqdn("lb2"), "A", (NEW1,))],
            id="standby-ip-change-updates-only-its-record",
        ),
        pytest.param(
            [a_record("lb1", A1, ttl=300), *STEADY_RECORDS[1:]],
            STEADY_LBS,
            [],
            [("UPSERT", fqdn("lb1"), "A", (A1,))],
            id="ttl-brought-to-LBF_TTL",
        ),
        pytest.param(
            STEADY_RECORDS,
            [*STEADY_LBS, lb("lb3", A3)],
            [],
            [
                ("UPSERT", fqdn("lb3"), "A", (A3,)),
                *txt_swap(["lb", "lb1", "lb2"], ["lb", "lb1", "lb2", "lb3"]),
            ],
            id="new-lb-gets-its-record-and-is-listed",
        ),
        pytest.param(
            STEADY_RECORDS,
            [lb("lb1", A1, lb_state="active"), lb("lb2", None, "unhealthy", state="stopped")],
            [],
            [
                ("DELETE", fqdn("lb2"), "A", (A2,)),
                *txt_swap(["lb", "lb1", "lb2"], ["lb", "lb1"]),
            ],
            id="stopped-lb-record-removed",
        ),
        pytest.param(
            STEADY_RECORDS,
            [lb("lb1", A1, lb_state="active"), lb("lb2", None, "unhealthy", state="terminated")],
            [],
            [
                ("DELETE", fqdn("lb2"), "A", (A2,)),
                *txt_swap(["lb", "lb1", "lb2"], ["lb", "lb1"]),
            ],
            id="terminated-lb-record-removed",
        ),
        pytest.param(
            STEADY_RECORDS,
            [lb("lb1", A1, lb_state="active"), lb("lb2", A2, "unhealthy", state="stopping")],
            [],
            [],
            id="stopping-lb-keeps-its-record-until-stopped",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], a_record("lb3", A3), ownership("lb", "lb1", "lb2", "lb3")],
            STEADY_LBS,
            [],
            [
                ("DELETE", fqdn("lb3"), "A", (A3,)),
                *txt_swap(["lb", "lb1", "lb2", "lb3"], ["lb", "lb1", "lb2"]),
            ],
            id="vanished-lb-listed-in-txt-record-removed",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], ownership("lb", "lb1", "lb2", "lb3")],
            STEADY_LBS,
            [],
            txt_swap(["lb", "lb1", "lb2", "lb3"], ["lb", "lb1", "lb2"]),
            id="vanished-lb-without-record-only-unlisted",
        ),
        pytest.param(
            STEADY_RECORDS[:3],
            STEADY_LBS,
            [],
            [],
            id="missing-txt-not-claimed-by-a-run-that-writes-no-record",
        ),
        pytest.param(
            STEADY_RECORDS[:2],
            STEADY_LBS,
            [],
            [
                ("CREATE", fqdn("lb"), "A", (A1,)),
                ("CREATE", fqdn("_lbf"), "TXT", ownership("lb", "lb1", "lb2").values),
            ],
            id="missing-txt-created-by-the-first-run-that-writes-a-record",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], ownership("lb2", "lb", "lb1")],
            STEADY_LBS,
            [],
            [],
            id="txt-order-does-not-matter",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], a_record("lb3", FOREIGN), ownership("lb", "lb1", "lb2", "lb3")],
            STEADY_LBS,
            [skipped("i-frozen", name="lb3", address=A3)],
            [("UPSERT", fqdn("lb3"), "A", (A3,))],
            id="skipped-lb-record-follows-its-address-and-is-still-listed",
        ),
        pytest.param(
            [],
            [lb("lb1", A1), lb("lb2", A2)],
            [],
            [
                ("UPSERT", fqdn("lb1"), "A", (A1,)),
                ("UPSERT", fqdn("lb2"), "A", (A2,)),
                ("CREATE", fqdn("lb"), "A", (A1,)),
                ("CREATE", fqdn("_lbf"), "TXT", ('"cluster=prod"', '"lb"', '"lb1"', '"lb2"')),
            ],
            id="empty-zone-gets-everything",
        ),
        pytest.param(
            [a_record("lb1", A1), a_record("lb2", A2), ownership("lb1", "lb2")],
            [lb("lb1", A1, "unknown"), lb("lb2", A2, "unknown")],
            [],
            [],
            id="no-verdict-yet-no-active-record-created",
        ),
        pytest.param(
            [*STEADY_RECORDS[:2], a_record("lb", FOREIGN), ownership("lb", "lb1", "lb2")],
            [lb("lb1", A1), lb("lb2", A2)],
            [],
            [("DELETE", fqdn("lb"), "A", (FOREIGN,)), ("CREATE", fqdn("lb"), "A", (A1,))],
            id="foreign-active-record-repaired-by-compare-and-swap",
        ),
    ],
)
def test_the_records_of_a_round(
    records: list[Record],
    lbs: list[Instance],
    frozen: list[Skipped],
    expected: list[tuple[str, str, str, tuple[str, ...]]],
) -> None:
    assert changes_of(records_plan(records, lbs, frozen)) == expected


def test_a_failover_is_one_batch_deleting_the_exact_record_and_creating_the_new() -> None:
    current = a_record("lb", A1, ttl=300)  # whatever was read, TTL included, is what is deleted
    records = [*STEADY_RECORDS[:2], current, ownership("lb", "lb1", "lb2")]
    changes = records_plan(records, [lb("lb1", A1, "unhealthy"), lb("lb2", A2)])
    active = [c for c in changes if c.record.name == fqdn("lb")]
    assert active == [
        RecordChange("DELETE", current),
        RecordChange("CREATE", a_record("lb", A2)),
    ]
    assert all(c.action != "UPSERT" for c in active)


@pytest.mark.parametrize(
    "raws",
    [
        pytest.param(
            [
                raw("i-old", name="lb1", state="terminated", launched=100.0, public_ip=None),
                raw("i-new", name="lb1", launched=200.0, public_ip=NEW1),
            ],
            id="replacement-reuses-the-name-of-a-terminated-lb",
        ),
        pytest.param(
            [
                raw("i-old", name="lb1", launched=100.0, public_ip=NEW1),
                raw("i-dup", name="lb1", state="terminated", launched=200.0, public_ip=None),
            ],
            id="a-terminated-duplicate-of-the-holder",
        ),
        pytest.param(
            [
                raw("i-old", name="lb1", state="stopped", launched=100.0, public_ip=None),
                raw("i-new", name="lb1", launched=200.0, public_ip=NEW1),
            ],
            id="replacement-of-a-stopped-lb",
        ),
    ],
)
def test_a_terminated_lb_never_removes_the_record_of_the_lb_that_holds_its_name(
    raws: list[RawInstance],
) -> None:
    """SPEC: every running LB has its record; a gap would be cached by clients as NXDOMAIN."""
    inventory = build_inventory([*raws, raw("i-lb2", name="lb2", public_ip=A2)], parse_rules())
    records = [a_record("lb1", A1), a_record("lb2", A2), ownership("lb1", "lb2")]
    changes = records_plan(records, inventory.lbs, inventory.skipped)
    assert [c for c in changes if c.record.name == fqdn("lb1")] == [
        RecordChange("UPSERT", a_record("lb1", NEW1))
    ]


def test_a_frozen_lb_record_is_not_taken_by_a_newer_lb_with_its_name() -> None:
    """The older keeps the name; a skipped LB is frozen: its record is left as it is."""
    raws = [
        raw("i-old", name="lb1", maintenance="Drain", launched=100.0, public_ip=A1),
        raw("i-new", name="lb1", launched=200.0, public_ip=NEW1),
        raw("i-lb2", name="lb2", launched=300.0, public_ip=A2),
    ]
    inventory = build_inventory(raws, parse_rules())
    records = [a_record("lb1", A1), a_record("lb2", A2), ownership("lb1", "lb2")]
    changes = records_plan(records, inventory.lbs, inventory.skipped)
    assert [c for c in changes if c.record.name == fqdn("lb1")] == []


# --- active-active mode ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "lbs", "values"),
    [
        pytest.param(
            None,
            [lb("lb2", A2), lb("lb1", A1), lb("lb3", A3, "unhealthy")],
            (A1, A2),
            id="absent-holds-every-eligible-lb",
        ),
        pytest.param(
            (A1, A2),
            [lb("lb1", A1), lb("lb2", A2)],
            None,
            id="steady-left-alone",
        ),
        pytest.param(
            (A2, A1),
            [lb("lb1", A1), lb("lb2", A2)],
            None,
            id="order-in-the-record-does-not-matter",
        ),
        pytest.param(
            (A1, A2),
            [lb("lb1", A1), lb("lb2", A2, "unhealthy")],
            (A1,),
            id="failed-lb-dropped",
        ),
        pytest.param(
            (A1, A2),
            [lb("lb1", A1), lb("lb2", A2, draining=True)],
            (A1,),
            id="draining-lb-dropped",
        ),
        pytest.param(
            (A1,),
            [lb("lb1", A1), lb("lb2", A2)],
            (A1, A2),
            id="recovered-lb-added",
        ),
        pytest.param(
            (A1, A2),
            [lb("lb1", A1, "unhealthy"), lb("lb2", A2, "unhealthy")],
            None,
            id="never-empty-when-all-fail",
        ),
        pytest.param(
            (A1, A2),
            [lb("lb1", A1), lb("lb2", A2, "unknown")],
            None,
            id="unknown-lb-in-the-record-kept",
        ),
        pytest.param(
            (A1,),
            [lb("lb1", A1), lb("lb2", A2, "unknown")],
            None,
            id="unknown-lb-not-added",
        ),
        pytest.param(
            (A1, FOREIGN),
            [lb("lb1", A1), lb("lb2", A2)],
            (A1, A2),
            id="foreign-address-dropped",
        ),
        pytest.param(
            (A10, A2),
            [lb("lb2", A2), lb("lb10", A10)],
            None,
            id="addresses-compared-numerically",
        ),
    ],
)
def test_active_active_record(
    current: tuple[str, ...] | None, lbs: list[Instance], values: tuple[str, ...] | None
) -> None:
    decision = decide(current, lbs, rules=ALL)
    assert decision.values == values, decision.reason
    if decision.values is not None:
        assert decision.values  # never an empty record


def test_active_active_record_moves_by_compare_and_swap() -> None:
    records = [*STEADY_RECORDS[:2], a_record("lb", A1, A2), ownership("lb", "lb1", "lb2")]
    changes = records_plan(records, [lb("lb1", A1), lb("lb2", A2, "unhealthy")], rules=ALL)
    assert changes_of(changes) == [
        ("DELETE", fqdn("lb"), "A", (A1, A2)),
        ("CREATE", fqdn("lb"), "A", (A1,)),
    ]


# --- applying a batch ------------------------------------------------------------------------


def test_applied_changes_give_the_records_the_next_round_plans_against() -> None:
    lbs = [lb("lb1", A1, "unhealthy"), lb("lb2", A2), lb("lb3", None, state="terminated")]
    records = [*STEADY_RECORDS[:3], a_record("lb3", A3), ownership("lb", "lb1", "lb2", "lb3")]
    changes = records_plan(records, lbs)
    after = apply_record_changes(records, changes)
    assert {(r.name, r.values) for r in after if r.type == "A"} == {
        (fqdn("lb1"), (A1,)),
        (fqdn("lb2"), (A2,)),
        (fqdn("lb"), (A2,)),
    }
    assert records_plan(after, lbs) == []


def test_a_stopped_lb_does_not_remove_the_record_a_frozen_lb_of_its_name_answers_for() -> None:
    """A running LB whose tags do not parse is frozen: its record stays, even when a stopped LB
    that parses carries the same name."""
    lbs = [lb("lb1", None, "unhealthy", "stopped", instance_id="i-stopped"), lb("lb2", A2)]
    frozen = [skipped("i-frozen", name="lb1", address=A1)]
    records = [a_record("lb1", A1), a_record("lb2", A2), ownership("lb1", "lb2")]
    changes = records_plan(records, lbs, frozen)
    assert [c for c in changes if c.record.name == fqdn("lb1")] == []


# --- where two rules meet: a skipped LB in every mode -----------------------------------------

# (where the Elastic IP is, LBs, skipped, the LB it moves to or None = left, holders afterwards)
EIP_CASES = [
    pytest.param(
        "i-frozen",
        [lb("lb2", A2)],
        [skipped("i-frozen", name="lb1", address=A1)],
        None,
        ["i-frozen"],
        id="skipped-healthy-holder-keeps-the-address",
    ),
    pytest.param(
        "i-frozen",
        [lb("lb2", A2)],
        [skipped("i-frozen", name="lb1", address=A1, health="unhealthy")],
        "i-lb2",
        ["i-lb2"],
        id="skipped-unhealthy-holder-loses-it",
    ),
    pytest.param(
        "i-frozen",
        [lb("lb2", A2)],
        [skipped("i-frozen", name="lb1", address=A1, state="stopped", health="unhealthy")],
        "i-lb2",
        ["i-lb2"],
        id="skipped-stopped-holder-loses-it",
    ),
    pytest.param(
        "i-frozen",
        [lb("lb2", A2)],
        [skipped("i-frozen", address=A1, role=None)],
        None,
        [],
        id="running-instance-of-unknown-role-keeps-it",
    ),
    pytest.param(
        "i-lb2",
        [lb("lb2", A2, "unhealthy")],
        [skipped("i-frozen", name="lb1", address=A1)],
        None,
        ["i-lb2"],
        id="skipped-lb-never-newly-chosen",
    ),
]


@pytest.mark.parametrize(("holder", "lbs", "frozen", "moved_to", "holders"), EIP_CASES)
def test_the_elastic_ip_and_a_skipped_lb(
    holder: str,
    lbs: list[Instance],
    frozen: list[Skipped],
    moved_to: str | None,
    holders: list[str],
) -> None:
    decision = decide_holder(holder, lbs, frozen)
    assert (decision.holders[0] if decision.values else None) == moved_to, decision.reason
    assert list(decision.holders) == holders, decision.reason


# (record values, LBs, skipped, values afterwards or None = left as it is)
ACTIVE_ACTIVE_CASES = [
    pytest.param(
        (A1, A2),
        [lb("lb2", A2)],
        [skipped("i-frozen", name="lb1", address=A1)],
        None,
        id="skipped-healthy-lb-keeps-its-place",
    ),
    pytest.param(
        (A2,),
        [lb("lb2", A2)],
        [skipped("i-frozen", name="lb1", address=A1)],
        None,
        id="skipped-lb-never-added",
    ),
    pytest.param(
        (A1, A2),
        [lb("lb2", A2)],
        [skipped("i-frozen", name="lb1", address=A1, health="unhealthy")],
        (A2,),
        id="skipped-unhealthy-lb-removed",
    ),
    pytest.param(
        (A1, A2),
        [lb("lb2", A2)],
        [skipped("i-frozen", name="lb1", address=A1, state="stopped", health="unhealthy")],
        (A2,),
        id="skipped-stopped-lb-removed",
    ),
    pytest.param(
        (A1, A2),
        [lb("lb2", A2), lb("lb3", A3)],
        [skipped("i-frozen", address=A1, role=None)],
        (A1, A2, A3),
        id="running-instance-of-unknown-role-keeps-its-place",
    ),
]


@pytest.mark.parametrize(
    ("frozen", "own", "values"),
    [
        pytest.param(
            skipped("i-frozen", name="lb1", address=NEW1),
            {"lb1": (A1,)},
            (A2, NEW1),
            id="back-with-a-new-address-keeps-its-place-there",
        ),
        pytest.param(
            skipped("i-frozen", name="lb1", address=NEW1, health="unhealthy"),
            {"lb1": (A1,)},
            (A2,),
            id="back-with-a-new-address-but-failing-loses-it",
        ),
        pytest.param(
            skipped("i-frozen", name="lb1", address=NEW1),
            {"lb1": (A3,)},
            (A2,),
            id="its-own-record-not-in-the-active-record-had-no-place",
        ),
        pytest.param(
            skipped("i-frozen", name="lb1", address=NEW1),
            {},
            (A2,),
            id="no-own-record-no-place-known",
        ),
    ],
)
def test_active_active_a_skipped_lb_back_with_a_new_address(
    frozen: Skipped, own: dict[str, tuple[str, ...]], values: tuple[str, ...]
) -> None:
    """Its place is the address its own record still holds; an address is EC2's, not a tag."""
    record = a_record("lb", A1, A2)
    decision = decide_active(record, [lb("lb2", A2)], [frozen], ALL, own=own)
    assert decision.values == values


@pytest.mark.parametrize(("current", "lbs", "frozen", "values"), ACTIVE_ACTIVE_CASES)
def test_active_active_and_a_skipped_lb(
    current: tuple[str, ...],
    lbs: list[Instance],
    frozen: list[Skipped],
    values: tuple[str, ...] | None,
) -> None:
    assert decide(current, lbs, frozen, ALL).values == values


@pytest.mark.parametrize(
    ("records", "frozen", "expected"),
    [
        pytest.param(
            [*STEADY_RECORDS[:3], a_record("lb3", A3), ownership("lb", "lb1", "lb2", "lb3")],
            [skipped("i-frozen", name=None, address=A3, reason="lbf:name 'LB3' is not a label")],
            [],
            id="running-skipped-lb-keeps-its-own-record-found-by-address",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], a_record("lb3", A3), ownership("lb", "lb1", "lb2", "lb3")],
            [skipped("i-frozen", name="lb3", address=A3, state="stopped", health="unhealthy")],
            [
                ("DELETE", fqdn("lb3"), "A", (A3,)),
                *txt_swap(["lb", "lb1", "lb2", "lb3"], ["lb", "lb1", "lb2"]),
            ],
            id="stopped-skipped-lb-loses-its-record",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], a_record("lb3", A3), ownership("lb", "lb1", "lb2", "lb3")],
            [skipped("i-frozen", name=None, address=A3, state="terminated", health="unhealthy")],
            [
                ("DELETE", fqdn("lb3"), "A", (A3,)),
                *txt_swap(["lb", "lb1", "lb2", "lb3"], ["lb", "lb1", "lb2"]),
            ],
            id="terminated-skipped-lb-without-a-valid-name-loses-its-record",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], a_record("lb3", A3), ownership("lb", "lb1", "lb2", "lb3")],
            [skipped("i-frozen", name="lb3", address=A3, state="stopping", health="unhealthy")],
            [],
            id="stopping-skipped-lb-keeps-its-record-until-stopped",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], a_record("lb3", A3), ownership("lb", "lb1", "lb2", "lb3")],
            [skipped("i-frozen", name="lb3", address=NEW3)],
            [("UPSERT", fqdn("lb3"), "A", (NEW3,))],
            id="running-skipped-lb-back-with-a-new-address-takes-its-record-along",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], a_record("lb3", A3), ownership("lb", "lb1", "lb2", "lb3")],
            [skipped("i-frozen", name="lb3", address=NEW3, state="pending")],
            [],
            id="pending-skipped-lb-with-a-new-address-not-yet-followed",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], a_record("lb3", A3), ownership("lb", "lb1", "lb2", "lb3")],
            [skipped("i-frozen", name="lb3", address=None, reason="no public IPv4")],
            [],
            id="running-skipped-lb-without-the-selected-address-keeps-its-record",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], a_record("lb3", A3), ownership("lb", "lb1", "lb2", "lb3")],
            [
                skipped("i-frozen", name="lb3", address=NEW3),
                skipped("i-other", name="lb3", address=NEW1),
            ],
            [],
            id="two-skipped-lbs-with-one-name-leave-its-record-as-it-is",
        ),
        pytest.param(
            [*STEADY_RECORDS[:3], a_record("lb3", A3), ownership("lb", "lb1", "lb2")],
            [skipped("i-frozen", name="lb3", address=NEW3)],
            [],
            id="a-record-the-txt-does-not-own-is-not-taken-along",
        ),
    ],
)
def test_the_records_of_a_skipped_lb(
    records: list[Record],
    frozen: list[Skipped],
    expected: list[tuple[str, str, str, tuple[str, ...]]],
) -> None:
    assert changes_of(records_plan(records, STEADY_LBS, frozen)) == expected


@pytest.mark.parametrize("rules", [RULES, ALL], ids=["single", "active-active"])
def test_a_changed_ttl_reaches_the_active_record_and_the_txt_by_compare_and_swap(
    rules: RecordRules,
) -> None:
    old = [
        a_record("lb1", A1, ttl=300),
        a_record("lb2", A2, ttl=300),
        a_record("lb", *((A1,) if rules is RULES else (A1, A2)), ttl=300),
        ownership("lb", "lb1", "lb2", ttl=300),
    ]
    changes = records_plan(old, STEADY_LBS, rules=rules)
    assert [(c.action, c.record.name, c.record.ttl) for c in changes] == [
        ("UPSERT", fqdn("lb1"), TTL),
        ("UPSERT", fqdn("lb2"), TTL),
        ("DELETE", fqdn("lb"), 300),
        ("CREATE", fqdn("lb"), TTL),
        ("DELETE", fqdn("_lbf"), 300),
        ("CREATE", fqdn("_lbf"), TTL),
    ]
    assert changes[2].record == old[2]  # the exact record read: a stale view fails the batch
    assert changes[3].record.values == old[2].values


def test_a_txt_naming_no_record_left_still_names_the_owner() -> None:
    """An empty cluster is still a cluster: with its last record gone, the TXT keeps saying whose
    the domain is, so that a run of another cluster (a typo) is still refused."""
    gone = [lb("lb1", A1, "unhealthy", "terminated"), lb("lb2", A2, "unhealthy", "terminated")]
    records = [a_record("lb1", A1), ownership("lb1")]
    assert changes_of(records_plan(records, gone)) == [
        ("DELETE", fqdn("lb1"), "A", (A1,)),
        *txt_swap(["lb1"], []),
    ]


# --- ownership by cluster -----------------------------------------------------------------------

OTHERS_LB = {"203.0.113.1": ("i-0000000000000000e", "edge")}


@pytest.mark.parametrize(
    ("txt", "foreign", "refused"),
    [
        pytest.param(None, None, None, id="no-txt-nobody-owns-it-yet"),
        pytest.param(ownership("lb", "lb1"), None, None, id="owned-by-this-cluster"),
        pytest.param(
            ownership("lb", "lb1", cluster="edge"),
            None,
            "owned by cluster 'edge' (its _lbf.example.com TXT says cluster=edge), not by "
            "LBF_CLUSTER 'prod'",
            id="owned-by-another-cluster",
        ),
        pytest.param(ownership("lb", "lb1", cluster=None), {}, None, id="old-txt-adopted"),
        pytest.param(
            ownership("lb", "lb1", cluster=None),
            OTHERS_LB,
            "lb1.example.com 203.0.113.1 is i-0000000000000000e of cluster 'edge'",
            id="old-txt-holding-another-clusters-lb",
        ),
    ],
)
def test_who_may_write_in_the_domain(
    txt: Record | None, foreign: dict[str, tuple[str, str]] | None, refused: str | None
) -> None:
    records = [a_record("lb1", A1), a_record("lb", A1), *([txt] if txt else [])]
    reason = refusal(records, RULES, foreign=foreign)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert refused in reason
        assert "nothing written" in reason


def test_the_owner_is_read_wherever_route53_puts_its_string() -> None:
    txt = Record(fqdn("_lbf"), "TXT", TTL, ('"lb1"', '"cluster=edge"', '"lb"'))
    read = ownership_of([txt], RULES)
    assert (read.owner, read.labels) == ("edge", ("lb1", "lb"))


def test_foreign_addresses_are_both_addresses_of_other_clusters_instances_only() -> None:
    raws = [
        raw("i-mine", public_ip="203.0.113.5", tags={"lbf:cluster": "prod"}),
        raw(
            "i-theirs", public_ip="203.0.113.6", private_ip="10.0.0.6", tags={"lbf:cluster": "edge"}
        ),
    ]
    assert foreign_addresses(raws, "prod") == {
        "203.0.113.6": ("i-theirs", "edge"),
        "10.0.0.6": ("i-theirs", "edge"),
    }


def test_an_old_txt_is_adopted_by_compare_and_swap_even_when_nothing_else_changes() -> None:
    old = ownership("lb", "lb1", "lb2", cluster=None)
    changes = records_plan([*STEADY_RECORDS[:3], old], STEADY_LBS)
    assert changes == [
        RecordChange("DELETE", old),
        RecordChange("CREATE", ownership("lb", "lb1", "lb2")),
    ]


def test_handover_is_one_compare_and_swap_of_the_txt_keeping_its_labels_and_ttl() -> None:
    current = ownership("lb", "lb1", ttl=300)
    assert handover_change([a_record("lb1", A1), current], RULES, "renamed") == [
        RecordChange("DELETE", current),
        RecordChange("CREATE", ownership("lb", "lb1", ttl=300, cluster="renamed")),
    ]
    assert handover_change([current], RULES, "prod") == []  # its own already
    assert handover_change([a_record("lb1", A1)], RULES, "renamed") == []  # no TXT


# --- a record never outlives its LB's address ---------------------------------------------------


@pytest.mark.parametrize(
    ("current", "holders", "addresses", "values", "released"),
    [
        pytest.param((A1,), (), {A2}, (), (A1,), id="released-address-deletes-the-record"),
        pytest.param((A1,), (), {A1}, None, (), id="held-address-left-as-it-is"),
        pytest.param((A1, A2), (), {A2}, (A2,), (A1,), id="active-active-keeps-the-rest"),
        pytest.param((FOREIGN,), (), set(), None, (), id="hand-pointed-is-the-repair-rules"),
        pytest.param(
            (A1,), ("i-lb1",), {NEW1}, (), (A1,), id="never-follows-a-failing-lb-to-a-new-address"
        ),
    ],
)
def test_a_value_no_lb_holds_leaves_the_active_record(
    current: tuple[str, ...],
    holders: tuple[str, ...],
    addresses: set[str],
    values: tuple[str, ...] | None,
    released: tuple[str, ...],
) -> None:
    left = ActiveDecision(None, holders, "left on lb1: no eligible LB", no_eligible=True)
    decision = release_active(left, a_record("lb", *current), addresses, former={A1, A2})
    assert (decision.values, decision.released) == (values, released)
    if values == ():
        assert decision.holders == ()
        assert active_change(a_record("lb", *current), (), TTL, fqdn("lb")) == [
            RecordChange("DELETE", a_record("lb", *current))
        ]


def test_a_per_lb_record_loses_a_value_no_instance_holds() -> None:
    pending = lb("lb2", "203.0.113.22", state="pending")
    plan = record_plan(
        STEADY_RECORDS,
        [lb("lb1", A1, lb_state="active"), pending],
        [],
        ActiveDecision(None, (), "kept"),
        RULES,
        addresses=addresses_held([lb("lb1", A1), pending], []),
    )
    assert plan.released == {fqdn("lb2"): (A2,)}
    assert changes_of(list(plan.changes)) == [
        ("DELETE", fqdn("lb2"), "A", (A2,)),
        *txt_swap(["lb", "lb1", "lb2"], ["lb", "lb1"]),
    ]


def test_terminated_instances_hold_no_address_and_stopped_ones_keep_what_ec2_keeps() -> None:
    held = addresses_held(
        [lb("lb1", A1, state="stopped"), lb("lb2", A2, state="terminated")],
        [skipped("i-frozen", name="lb3", address=A3, state="shutting-down")],
        also=(FOREIGN,),
    )
    assert held == {A1, FOREIGN}
