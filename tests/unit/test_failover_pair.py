"""The failover pair (LBF_DNS_FAILOVER=route53), table by table: from what Route 53 holds at the
active name, the LBs, their checks, Route 53's view of each check and the last swap, to the pair
and the one compare-and-swap batch that gets there.

The plain rules' decision comes from core.dns.decide_active, as in a round: the pair builds on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

from chalicelib.core.dns import RecordChange, decide_active
from chalicelib.core.failover_pair import (
    PRIMARY,
    SECONDARY,
    SWAP_HELD,
    VANTAGES_DISAGREE,
    ActiveName,
    PairDecision,
    PairInputs,
    back_to_plain,
    bound_checks,
    checks_in_use,
    decide_pair,
    judged_healthy,
    pair_record,
    planned_pair,
    read_active_name,
    route53_answers,
    view_due,
    with_pair,
)
from chalicelib.core.model import HealthCheck, HealthCheckSpec, Instance, Record, Skipped
from chalicelib.core.plan import ChangeRecords
from chalicelib.core.second_opinion import CheckerObservation
from tests.kit.settings import settings
from tests.kit.world import lb, skipped, world

CONFIG = settings(dns_failover="route53")
RULES = CONFIG.rules.pair
RECORDS = CONFIG.rules.records
ACTIVE = RECORDS.active_fqdn
NOW = 1_700_000_000.0
# Route 53's checkers reach global addresses only: these are such, and nothing is sent to them.
LB1, LB2, LB3, LB1_NEW = "52.1.2.11", "52.1.2.12", "52.1.2.13", "52.1.2.99"
CHECKS = {"i-lb1": "hc-1", "i-lb2": "hc-2", "i-lb3": "hc-3"}


def primary(address: str, check: str | None = None, ttl: int = 60) -> Record:
    return replace(pair_record(RECORDS, PRIMARY, (address,), check), ttl=ttl)


def secondary(address: str, check: str | None = None) -> Record:
    return pair_record(RECORDS, SECONDARY, (address,), check)


def plain(address: str) -> Record:
    return Record(ACTIVE, "A", 60, (address,))


PAIR_1_2 = (primary(LB1, "hc-1"), secondary(LB2, "hc-2"))


def decide(
    records: Sequence[Record],
    lbs: Sequence[Instance],
    *,
    view: Mapping[str, bool] | None = None,
    last_swap_at: float | None = None,
    checks: Mapping[str, str] = CHECKS,
    frozen: Sequence[Skipped] = (),
) -> PairDecision:
    current = read_active_name(records, RECORDS)
    base = decide_active(current.answered, lbs, frozen, RECORDS)
    inputs = PairInputs(lbs, frozen, checks, view or {}, last_swap_at, NOW)
    return decide_pair(current, base, inputs, RULES)


def batch(before: Sequence[Record], after: Sequence[Record]) -> tuple[RecordChange, ...]:
    """The one compare-and-swap batch: every record read deleted, every wanted one created."""
    return (
        *(RecordChange("DELETE", r) for r in before),
        *(RecordChange("CREATE", r) for r in after),
    )


HEALTHY_1_2 = [lb("lb1", LB1), lb("lb2", LB2)]


@pytest.mark.parametrize(
    ("case", "records", "lbs", "after"),
    [
        ("created on the lowest name, the next as SECONDARY", [], HEALTHY_1_2, PAIR_1_2),
        (
            "a plain record becomes the pair in one batch",
            [plain(LB1)],
            HEALTHY_1_2,
            PAIR_1_2,
        ),
        (
            "a plain record on lb2 keeps lb2 PRIMARY (non-preemptive)",
            [plain(LB2)],
            HEALTHY_1_2,
            (primary(LB2, "hc-2"), secondary(LB1, "hc-1")),
        ),
        (
            "the only eligible LB: SECONDARY holds its address without a check",
            [],
            [lb("lb1", LB1), lb("lb2", LB2, "unhealthy")],
            (primary(LB1, "hc-1"), secondary(LB1)),
        ),
        (
            "PRIMARY failed: SECONDARY takes over, no other LB is eligible",
            PAIR_1_2,
            [lb("lb1", LB1, "unhealthy"), lb("lb2", LB2)],
            (primary(LB2, "hc-2"), secondary(LB2)),
        ),
        (
            "three LBs: SECONDARY (lb3) takes over, not the lowest name; lb2 is next",
            (primary(LB1, "hc-1"), secondary(LB3, "hc-3")),
            [lb("lb1", LB1, "unhealthy"), lb("lb2", LB2), lb("lb3", LB3)],
            (primary(LB3, "hc-3"), secondary(LB2, "hc-2")),
        ),
        (
            "three LBs: only two in the pair",
            [],
            [lb("lb1", LB1), lb("lb2", LB2), lb("lb3", LB3)],
            PAIR_1_2,
        ),
        (
            "a draining PRIMARY is moved off like a failed one",
            PAIR_1_2,
            [lb("lb1", LB1, draining=True), lb("lb2", LB2)],
            (primary(LB2, "hc-2"), secondary(LB2)),
        ),
        (
            "SECONDARY failed: the next eligible LB replaces it",
            PAIR_1_2,
            [lb("lb1", LB1), lb("lb2", LB2, "unhealthy"), lb("lb3", LB3)],
            (primary(LB1, "hc-1"), secondary(LB3, "hc-3")),
        ),
        (
            "SECONDARY failed and none other: PRIMARY's address without a check",
            PAIR_1_2,
            [lb("lb1", LB1), lb("lb2", LB2, "unhealthy")],
            (primary(LB1, "hc-1"), secondary(LB1)),
        ),
        (
            "addresses follow the LBs",
            PAIR_1_2,
            [lb("lb1", LB1_NEW, lb_state="active"), lb("lb2", LB2)],
            (primary(LB1_NEW, "hc-1"), secondary(LB2, "hc-2")),
        ),
        (
            "a recovered LB is SECONDARY, never PRIMARY again (non-preemptive)",
            (primary(LB2, "hc-2"), secondary(LB2)),
            HEALTHY_1_2,
            (primary(LB2, "hc-2"), secondary(LB1, "hc-1")),
        ),
        (
            "a PRIMARY with no verdict yet is kept",
            PAIR_1_2,
            [lb("lb1", LB1, "unknown"), lb("lb2", LB2)],
            PAIR_1_2,
        ),
        (
            "LBF_TTL changed: the pair is restated with it",
            (primary(LB1, "hc-1", ttl=300), secondary(LB2, "hc-2")),
            HEALTHY_1_2,
            PAIR_1_2,
        ),
    ],
)
def test_the_pair_follows_the_lbs(
    case: str, records: Sequence[Record], lbs: Sequence[Instance], after: Sequence[Record]
) -> None:
    decision = decide(records, lbs)
    expected = () if set(records) == set(after) else batch(records, after)
    assert decision.changes == expected, case


@pytest.mark.parametrize(
    ("case", "records", "lbs"),
    [
        ("steady", PAIR_1_2, HEALTHY_1_2),
        (
            "no LB eligible: the pair stays, SECONDARY included (Route 53 may answer it)",
            PAIR_1_2,
            [lb("lb1", LB1, "unhealthy"), lb("lb2", LB2, "unhealthy")],
        ),
        (
            "never a new pair with an ineligible PRIMARY",
            [plain(LB1)],
            [lb("lb1", LB1, "unhealthy"), lb("lb2", LB2, "unknown")],
        ),
        ("nothing eligible, nothing there: nothing made", [], [lb("lb1", LB1, "unknown")]),
    ],
)
def test_the_pair_is_left_as_it_is(
    case: str, records: Sequence[Record], lbs: Sequence[Instance]
) -> None:
    assert decide(records, lbs).changes == (), case


def test_route53_answering_the_secondary_is_matched_once_the_controller_agrees() -> None:
    view = {"hc-1": False, "hc-2": True}
    agreed = decide(PAIR_1_2, [lb("lb1", LB1, "unhealthy"), lb("lb2", LB2)], view=view)

    assert agreed.changes == batch(PAIR_1_2, (primary(LB2, "hc-2"), secondary(LB2)))
    assert (agreed.active.moved_from, agreed.active.moved_to, agreed.swapped) == (
        "lb1",
        "lb2",
        True,
    )
    assert VANTAGES_DISAGREE not in agreed.conditions


def test_route53_failing_a_primary_the_controller_sees_healthy_leaves_the_pair_with_one_notice() -> (
    None
):
    view = {"hc-1": False, "hc-2": True}
    first = decide(PAIR_1_2, HEALTHY_1_2, view=view)
    again = decide(PAIR_1_2, HEALTHY_1_2, view=view)

    assert first.changes == again.changes == ()
    assert first.active.holders == ("i-lb1",)
    # One key whatever the run: the notices module sends a key once while it lasts.
    assert set(first.conditions) == set(again.conditions) == {VANTAGES_DISAGREE}
    assert "Route 53's checkers see it unhealthy" in first.conditions[VANTAGES_DISAGREE]


def test_route53_failing_the_secondary_the_controller_sees_healthy_is_the_one_notice() -> None:
    """Route 53's checkers cannot reach lb2 (a security group, a firewall): with no controller
    running, a dead lb1 would leave clients on it, as Route 53 fails open when both checks fail.
    The operator hears it once, under the one key, while the pair stays; a disagreement on the
    PRIMARY is the one told when both disagree."""
    secondary_only = decide(PAIR_1_2, HEALTHY_1_2, view={"hc-1": True, "hc-2": False})
    both = decide(PAIR_1_2, HEALTHY_1_2, view={"hc-1": False, "hc-2": False})

    assert secondary_only.changes == both.changes == ()
    assert set(secondary_only.conditions) == set(both.conditions) == {VANTAGES_DISAGREE}
    assert secondary_only.conditions[VANTAGES_DISAGREE] == (
        "vantages disagree on SECONDARY lb2: Route 53's checkers see it unhealthy, the "
        "controller healthy; Route 53 would not fail over to it, and the pair stays as it is"
    )
    assert "on PRIMARY lb1" in both.conditions[VANTAGES_DISAGREE]
    # The SECONDARY the controller replaces is no lasting disagreement.
    replaced = decide(PAIR_1_2, [lb("lb1", LB1), lb("lb2", LB2, "unhealthy")], view={"hc-2": False})
    assert VANTAGES_DISAGREE not in replaced.conditions


def test_the_reverse_disagreement_is_one_notice_too_while_the_pair_stays() -> None:
    """The controller fails lb1, Route 53 does not, and no other LB can take it over."""
    lbs = [lb("lb1", LB1, "unhealthy"), lb("lb2", LB2, "unhealthy")]
    decision = decide(PAIR_1_2, lbs, view={"hc-1": True, "hc-2": False})
    assert decision.changes == ()
    assert "see it healthy, the controller unhealthy" in decision.conditions[VANTAGES_DISAGREE]


def test_a_move_is_no_disagreement_route53_is_only_slower() -> None:
    decision = decide(PAIR_1_2, [lb("lb1", LB1, "unhealthy"), lb("lb2", LB2)], view={"hc-1": True})
    assert decision.swapped
    assert decision.conditions == {}


@pytest.mark.parametrize(
    ("case", "ago", "state", "swaps"),
    [
        ("a second swap within 30 s x 3 is held", 30.0, "running", False),
        ("just inside the window", 89.0, "running", False),
        ("after the window it swaps", 90.0, "running", True),
        ("EC2 reports PRIMARY stopped: it swaps at once", 30.0, "stopped", True),
        ("EC2 reports PRIMARY stopping: it swaps at once", 30.0, "stopping", True),
        ("no swap before", None, "running", True),
    ],
)
def test_at_most_one_swap_per_route53_detection_time(
    case: str, ago: float | None, state: str, swaps: bool
) -> None:
    lbs = [lb("lb1", LB1, "unhealthy", state), lb("lb2", LB2)]
    last = None if ago is None else NOW - ago
    decision = decide(PAIR_1_2, lbs, last_swap_at=last)

    assert decision.swapped is swaps, case
    if swaps:
        assert decision.active.holders == ("i-lb2",)
        assert SWAP_HELD not in decision.conditions
    else:
        assert decision.changes == ()
        assert decision.active.holders == ("i-lb1",)
        assert decision.active.moved_to is None  # no failover reported while held
        assert "would move to lb2" in decision.conditions[SWAP_HELD]


def test_the_swap_limit_follows_the_check_interval_and_lbf_fall() -> None:
    fast = settings(dns_failover="route53", route53_interval=10, fall=2).rules.pair
    current = read_active_name(PAIR_1_2, RECORDS)
    lbs = [lb("lb1", LB1, "unhealthy"), lb("lb2", LB2)]
    base = decide_active(current.answered, lbs, (), RECORDS)
    inputs = PairInputs(lbs, (), CHECKS, {}, NOW - 20, NOW)
    assert decide_pair(current, base, inputs, fast).swapped


def test_a_new_check_replaces_the_old_in_the_same_batch_as_any_change() -> None:
    """A check of another interval is made first; the pair moves to it; the old one goes later."""
    decision = decide(PAIR_1_2, HEALTHY_1_2, checks={"i-lb1": "hc-9", "i-lb2": "hc-2"})
    assert decision.changes == batch(PAIR_1_2, (primary(LB1, "hc-9"), secondary(LB2, "hc-2")))


def test_an_lb_without_a_check_yet_is_in_the_pair_without_one() -> None:
    """Route 53 answers a record without a check as healthy: the pair then acts as the plain
    record until the check exists, and the round after it is made binds it."""
    decision = decide([plain(LB1)], HEALTHY_1_2, checks={"i-lb2": "hc-2"})
    assert decision.changes == batch([plain(LB1)], (primary(LB1), secondary(LB2, "hc-2")))


def test_a_frozen_secondary_is_replaced_never_newly_chosen() -> None:
    frozen = skipped("i-lb3", name="lb3", address=LB3)
    records = (primary(LB1, "hc-1"), secondary(LB3, "hc-3"))
    decision = decide(records, HEALTHY_1_2, frozen=[frozen])
    assert decision.changes == batch(records, PAIR_1_2)


def test_records_of_another_routing_policy_at_the_name_are_left_alone() -> None:
    weighted = Record(ACTIVE, "A", 60, (LB1,), set_identifier="blue")
    decision = decide([weighted], HEALTHY_1_2)
    assert decision.changes == ()
    assert "another routing policy" in decision.conditions["pair-foreign-records"]


def test_switching_back_to_the_plain_record_is_one_batch() -> None:
    current = read_active_name(
        [*PAIR_1_2, Record(f"lb1.{CONFIG.domain}", "A", 60, (LB1,))], RECORDS
    )
    assert back_to_plain(current, RECORDS) == batch(PAIR_1_2, [plain(LB1)])
    assert back_to_plain(read_active_name([plain(LB1)], RECORDS), RECORDS) == ()


@pytest.mark.parametrize(
    ("view", "answered"),
    [
        ({}, LB1),  # a new check counts as healthy until Route 53 has data
        ({"hc-1": True, "hc-2": True}, LB1),
        ({"hc-1": False, "hc-2": True}, LB2),
        ({"hc-1": False}, LB2),
        ({"hc-1": False, "hc-2": False}, LB1),  # both fail: Route 53 fails open to PRIMARY
    ],
)
def test_what_route53_answers(view: Mapping[str, bool], answered: str) -> None:
    record = route53_answers(read_active_name(PAIR_1_2, RECORDS), view)
    assert record is not None
    assert record.values == (answered,)


def test_route53_is_asked_at_most_once_per_check_interval() -> None:
    assert view_due(None, NOW, RULES)
    assert not view_due(NOW - 29, NOW, RULES)
    assert view_due(NOW - 30, NOW, RULES)


def test_each_lb_is_bound_to_the_check_at_its_address_or_keeps_its_own_until_a_new_one_exists() -> (
    None
):
    spec = HealthCheckSpec("HTTP", LB1, 80, "/health")
    old = HealthCheck("hc-old", "i-lb1", 1, spec)
    fast = settings(dns_failover="route53", route53_interval=10).rules.second_opinion
    current = read_active_name((primary(LB1, "hc-old"), secondary(LB1)), RECORDS)
    lbs = [lb("lb1", LB1)]

    # 10 s asked, only a 30 s check exists: the record keeps naming it.
    assert bound_checks([old], lbs, (), current, fast) == {"i-lb1": "hc-old"}
    new = HealthCheck("hc-new", "i-lb1", 1, replace(spec, request_interval=10))
    assert bound_checks([old, new], lbs, (), current, fast) == {"i-lb1": "hc-new"}
    # An address change is an update of the same check: the id stays bound.
    moved = [lb("lb1", LB1_NEW)]
    assert bound_checks([old], moved, (), current, CONFIG.rules.second_opinion) == {
        "i-lb1": "hc-old"
    }


def test_an_active_name_is_read_as_plain_pair_or_other() -> None:
    assert read_active_name([plain(LB1)], RECORDS) == ActiveName(plain=plain(LB1))
    read = read_active_name(PAIR_1_2, RECORDS)
    assert (read.primary, read.secondary, read.is_pair) == (*PAIR_1_2, True)


@pytest.mark.parametrize(
    ("healthy", "of", "judged"),
    [
        (0, 16, False),
        (2, 16, False),  # 12.5%: Route 53 calls it unhealthy
        (3, 16, True),  # 18.75%: more than 18% of its checkers see it healthy
        (16, 16, True),
    ],
)
def test_route53_calls_a_check_healthy_while_more_than_18_percent_of_checkers_do(
    healthy: int, of: int, judged: bool
) -> None:
    reports = [CheckerObservation(f"r{n}", n < healthy, NOW - 5) for n in range(of)]
    assert judged_healthy(reports, now=NOW, rules=RULES) is judged


def test_old_reports_say_nothing_about_now() -> None:
    stale = [CheckerObservation("us-east-1", False, NOW - 3 * RULES.request_interval - 1)]
    assert judged_healthy(stale, now=NOW, rules=RULES) is None


def test_a_planned_move_is_not_held_and_never_makes_the_leaving_lb_secondary() -> None:
    lbs = [lb("lb1", LB1), lb("lb2", LB2), lb("lb3", LB3)]
    view = replace(world(lbs), records=PAIR_1_2)
    target = lbs[1]

    changes = planned_pair(view, target, CONFIG.rules.pair, leaving={"i-lb1"})

    # The checks were not read here (no health checks in this world): each LB keeps the check
    # its pair record names, and lb3, in no record, is named with none.
    assert changes == batch(PAIR_1_2, (primary(LB2, "hc-2"), secondary(LB3)))
    kept = planned_pair(view, target, CONFIG.rules.pair)
    assert kept == batch(PAIR_1_2, (primary(LB2, "hc-2"), secondary(LB1, "hc-1")))


def test_the_pairs_batch_replaces_the_active_records_changes_and_its_checks_are_in_use() -> None:
    other = RecordChange("UPSERT", Record(f"lb1.{CONFIG.domain}", "A", 60, (LB1,)))
    plain_swap = RecordChange("CREATE", plain(LB2))
    pair_swap = batch(PAIR_1_2, (primary(LB2, "hc-2"), secondary(LB2)))

    decision = PairDecision(decide_active(None, [], [], RECORDS), pair_swap, None, None, False)
    assert with_pair([other, plain_swap], decision, RECORDS) == (other, *pair_swap)
    assert with_pair([other, plain_swap], None, RECORDS) == (other, plain_swap)
    assert checks_in_use(PAIR_1_2, RECORDS) == {"hc-1", "hc-2"}


def test_a_dry_run_shows_each_records_role_and_check() -> None:
    shown = ChangeRecords(batch(PAIR_1_2[:1], [primary(LB2, "hc-2")]), "moved").describe()
    assert shown == (
        f"records (moved): DELETE {ACTIVE} A {LB1} PRIMARY check hc-1; "
        f"CREATE {ACTIVE} A {LB2} PRIMARY check hc-2"
    )


def test_a_secondary_whose_address_was_released_never_stays() -> None:
    """No LB is eligible, so the pair stays, but lb2 was terminated and its public IP may be
    anyone's next: SECONDARY takes PRIMARY's address, without a check."""
    lbs = [lb("lb1", LB1, "unhealthy"), lb("lb2", None, "unhealthy", "terminated")]
    current = read_active_name(PAIR_1_2, RECORDS)
    base = decide_active(current.answered, lbs, (), RECORDS)
    inputs = PairInputs(lbs, (), CHECKS, {}, None, NOW, addresses={LB1})

    decision = decide_pair(current, base, inputs, RULES)

    assert decision.changes == batch(PAIR_1_2, (primary(LB1, "hc-1"), secondary(LB1)))
    held = replace(inputs, addresses={LB1, LB2})
    assert decide_pair(current, base, held, RULES).changes == ()


def test_checks_not_read_leave_each_lb_the_check_its_pair_record_names() -> None:
    """A failed ListHealthChecks is no view of the checks: the pair keeps what it is bound to
    (written without them, Route 53 would answer PRIMARY whatever its checkers saw), a check
    follows its LB across a swap, and a record no LB holds the address of binds no one."""
    current = read_active_name(PAIR_1_2, RECORDS)
    rules = CONFIG.rules.second_opinion
    lbs = [lb("lb1", LB1), lb("lb2", LB2)]

    assert bound_checks(None, lbs, (), current, rules) == {"i-lb1": "hc-1", "i-lb2": "hc-2"}
    assert bound_checks(None, [lb("lb1", LB1_NEW), lb("lb2", LB2)], (), current, rules) == {
        "i-lb2": "hc-2"
    }
    frozen = [skipped("i-lb1", name="lb1", address=LB1)]
    assert bound_checks(None, [lb("lb2", LB2)], frozen, current, rules) == {
        "i-lb1": "hc-1",
        "i-lb2": "hc-2",
    }


def test_a_released_secondary_goes_even_while_the_primary_points_where_an_operator_put_it() -> None:
    """PRIMARY pointed by hand at an address no LB holds, no LB eligible: PRIMARY is left as it
    is, but SECONDARY's lb1 was terminated and its address released, so anyone's next; Route 53
    would send clients there when PRIMARY's check fails. It takes PRIMARY's values, without a
    check, at LBF_TTL (found by the model-based test: the released address stayed for good)."""
    by_hand = "198.51.100.77"
    records = (primary(by_hand, "hc-1", ttl=300), secondary(LB1))
    lbs = [lb("lb2", LB2, "unhealthy")]
    current = read_active_name(records, RECORDS)
    base = decide_active(current.answered, lbs, (), RECORDS)

    released = PairInputs(lbs, (), CHECKS, {}, None, NOW, addresses={LB2})
    held = PairInputs(lbs, (), CHECKS, {}, None, NOW, addresses={LB1, LB2})

    assert decide_pair(current, base, released, RULES).changes == batch(
        records, (records[0], secondary(by_hand))
    )
    assert decide_pair(current, base, held, RULES).changes == ()


def test_a_new_ttl_reaches_the_secondary_while_the_primary_points_where_an_operator_put_it() -> (
    None
):
    """PRIMARY pointed by hand, no LB eligible: PRIMARY is left as the operator put it (its
    values, its TTL, its check), but SECONDARY, on lb2's address which lb2 still holds, is the
    controller's record: a new LBF_TTL reaches it in the pair's one batch, as every record the
    controller writes (found by make soak: it kept the old TTL for good)."""
    by_hand = "198.51.100.77"
    old_ttl = replace(secondary(LB2, "hc-2"), ttl=10)
    records = (primary(by_hand, "hc-1", ttl=300), old_ttl)
    lbs = [lb("lb2", LB2, "unhealthy")]
    current = read_active_name(records, RECORDS)
    base = decide_active(current.answered, lbs, (), RECORDS)
    inputs = PairInputs(lbs, (), CHECKS, {}, None, NOW, addresses={LB2})

    assert decide_pair(current, base, inputs, RULES).changes == batch(
        records, (records[0], secondary(LB2, "hc-2"))
    )
    restated = read_active_name((records[0], secondary(LB2, "hc-2")), RECORDS)
    assert decide_pair(restated, base, inputs, RULES).changes == ()
