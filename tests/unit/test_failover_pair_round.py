"""The failover pair in the round (core/round.py): what the core asks the loop to read of Route 53,
the round's time for the swap limit, the second opinion kept to its own setting, and the checks the
pair stops naming. Table tests, without AWS or a clock; the executor's part on the in-memory AWS.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.core.changes import ChangeRecords, CreateHealthCheck, DeleteHealthCheck, SetTags
from chalicelib.core.dns import RecordChange
from chalicelib.core.failover_pair import PRIMARY, SECONDARY, SWAP_HELD, pair_record
from chalicelib.core.model import HealthCheck, HealthCheckSpec, ProbeResult, Record, World
from chalicelib.core.outcome import Outcome
from chalicelib.core.reread import merge_reread
from chalicelib.core.round import (
    Applied,
    RoundRules,
    RunState,
    SecondOpinionAnswer,
    checks_to_ask,
    decide_round,
    fold_paths,
    fold_round,
    pair_checks_to_read,
    plan_round,
)
from chalicelib.core.second_opinion import CheckerObservation
from chalicelib.errors import AwsError
from chalicelib.executor import Executor
from chalicelib.jobs import round_rules
from tests.kit.cloud import FakeCloud
from tests.kit.settings import settings
from tests.kit.world import fqdn, lb, observed, settled, web

NOW = 1_700_000_000.0
A1, A2 = "52.1.2.11", "52.1.2.12"
PAIR = settings(dns_failover="route53")
RULES = round_rules(PAIR)  # LBF_ROUTE53_HEALTH_CHECKS off: the second opinion is off
BOTH = round_rules(settings(dns_failover="route53", route53_health_checks=True))
PLAIN = round_rules(settings())
RECORDS = PAIR.rules.records
ACTIVE = fqdn("lb")


def check(instance_id: str, address: str, check_id: str) -> HealthCheck:
    spec = HealthCheckSpec(kind="HTTP", address=address, port=80, resource_path="/health")
    return HealthCheck(health_check_id=check_id, instance_id=instance_id, version=1, spec=spec)


CHECKS = (check("i-lb1", A1, "hc-1"), check("i-lb2", A2, "hc-2"))
PAIR_RECORDS = (
    pair_record(RECORDS, PRIMARY, (A1,), "hc-1"),
    pair_record(RECORDS, SECONDARY, (A2,), "hc-2"),
)


def paired(world: World) -> World:
    """The settled world with the active name as the pair lb1 (PRIMARY) / lb2, on their checks."""
    others = tuple(r for r in world.records if r.name != ACTIVE)
    return replace(world, records=(*others, *PAIR_RECORDS), health_checks=CHECKS)


STEADY = paired(settled([lb("lb1", A1), lb("lb2", A2)], [web("10.0.0.1")], active="lb1"))
# lb1, PRIMARY, judged unhealthy: the pair swaps to lb2, unless the swap limit holds it.
FAILING = replace(STEADY, lbs=(observed(STEADY.lbs[0], health="unhealthy"), STEADY.lbs[1]))


def state(**changes: object) -> RunState:
    fresh = RunState(started_at=NOW, start_list=(), probes=True, notified=frozenset())
    return replace(fresh, **changes)  # type: ignore[arg-type]


def primary_of(plan_changes: object) -> tuple[str, ...]:
    assert isinstance(plan_changes, tuple)
    [batch] = [c for c in plan_changes if isinstance(c, ChangeRecords)]
    [created] = [
        c.record
        for c in batch.changes
        if c.action == "CREATE" and c.record.failover == PRIMARY and c.record.name == ACTIVE
    ]
    return created.values


# --- the swap limit counts from the round's time ------------------------------------------------


@pytest.mark.parametrize(
    ("round_at", "swaps"),
    [
        # The run started 60 s after the last swap: inside Route 53's 30 s x 3 at its start...
        (NOW, False),
        (NOW + 29, False),
        # ...but a later round of the same run is past it: it swaps then, not a minute later.
        (NOW + 30, True),
        (NOW + 50, True),
    ],
)
def test_the_swap_limit_counts_from_the_rounds_time_not_the_runs_start(
    round_at: float, swaps: bool
) -> None:
    world = replace(FAILING, pair_swapped_at=NOW - 60)

    planned = decide_round(world, [], state(rounds_done=2), RULES, now=round_at)

    if swaps:
        assert planned.plan.active.holders == ("i-lb2",)
        assert primary_of(planned.plan.changes) == (A2,)
    else:
        assert planned.plan.active.holders == ("i-lb1",)
        assert SWAP_HELD in planned.plan.conditions


def test_a_swap_in_one_round_holds_the_next_rounds_of_the_run() -> None:
    planned = decide_round(FAILING, [], state(), RULES, now=NOW + 10)
    outcomes = tuple(Outcome(c, ok=True) for c in planned.plan.changes)
    applied = Applied(planned.world, planned.plan, outcomes, planned.state, planned.lines)

    fold = fold_round(planned, applied, RULES, now=NOW + 11)

    assert fold.world.pair_swapped_at == NOW + 11
    # Without a swap, the time stays what the history said.
    calm = decide_round(STEADY, [], state(), RULES, now=NOW + 10)
    kept = Applied(calm.world, calm.plan, (), calm.state, calm.lines)
    assert fold_round(calm, kept, RULES, now=NOW + 11).world.pair_swapped_at is None


# --- Route 53's view: read when the core says, at most once per check interval ------------------


@pytest.mark.parametrize(
    ("rules", "read_at", "rounds_done", "asked"),
    [
        (RULES, None, 0, ("hc-1", "hc-2")),  # never read this run: read now
        (RULES, None, 3, ("hc-1", "hc-2")),  # in any round
        (RULES, NOW - 29, 2, ()),  # within LBF_ROUTE53_INTERVAL (30 s): not again
        (RULES, NOW - 30, 3, ("hc-1", "hc-2")),  # an interval later: again, mid-run
        (round_rules(settings(dns_failover="route53", route53_interval=10)), NOW - 10, 1, None),
        (PLAIN, None, 0, ()),  # no pair: nothing is read
    ],
)
def test_route53s_view_is_read_when_the_core_says(
    rules: RoundRules, read_at: float | None, rounds_done: int, asked: tuple[str, ...] | None
) -> None:
    found = pair_checks_to_read(
        STEADY, state(route53_view_read_at=read_at, rounds_done=rounds_done), rules, now=NOW
    )
    assert found == (asked if asked is not None else ("hc-1", "hc-2"))


def observation(healthy: bool) -> CheckerObservation:
    return CheckerObservation(region="us-east-1", healthy=healthy, checked_at=NOW - 5)


def test_the_view_read_goes_into_the_world_and_its_time_into_the_run_state() -> None:
    answer = SecondOpinionAnswer(
        pair_statuses={"hc-1": (observation(False),) * 3, "hc-2": (observation(True),), "hc-9": ()}
    )

    planned = decide_round(STEADY, [], state(), RULES, now=NOW, answer=answer)

    # hc-9 has no recent report: unknown, left out (Route 53 counts it healthy).
    assert planned.world.route53_view == (("hc-1", False), ("hc-2", True))
    assert planned.state.route53_view_read_at == NOW
    # Not read this round: the view and its time stay.
    again = decide_round(planned.world, [], planned.state, RULES, now=NOW + 10)
    assert again.world.route53_view == (("hc-1", False), ("hc-2", True))
    assert again.state.route53_view_read_at == NOW


def test_a_reread_after_a_rejection_keeps_the_view_read_this_run() -> None:
    ours = replace(STEADY, route53_view=(("hc-1", False),), pair_swapped_at=NOW - 5)
    fresh = replace(STEADY, pair_swapped_at=NOW - 100)

    merged = merge_reread(ours, fresh, PAIR.rules.thresholds)

    assert merged.route53_view == (("hc-1", False),)
    assert merged.pair_swapped_at == NOW - 5


# --- the second opinion stays LBF_ROUTE53_HEALTH_CHECKS's --------------------------------------


FAULT = {"i-lb1": ProbeResult(False, "refused", 0.1), "i-lb2": ProbeResult(False, "refused", 0.1)}


class Path:
    condition = "prober-fault"
    targets = ()
    fault = None
    results = FAULT


@pytest.mark.parametrize(("rules", "asked"), [(RULES, set()), (BOTH, {"i-lb1", "i-lb2"})])
def test_the_pairs_checks_do_not_turn_the_second_opinion_on(
    rules: RoundRules, asked: set[str]
) -> None:
    """The pair's checks are read with LBF_ROUTE53_HEALTH_CHECKS off, so world.health_checks is
    set; the second opinion (asking the checkers in a prober-fault round) stays off all the
    same: the operator turned it off, and each ask costs the round time and API calls."""
    assert set(checks_to_ask(STEADY, [Path()], state(), rules)) == asked
    answer = SecondOpinionAnswer(statuses={"i-lb1": (observation(True),)})
    folded = fold_paths(STEADY, [Path()], state(), rules, answer, now=NOW)
    opinions = [key for key in folded.conditions if key != "prober-fault"]
    assert bool(opinions) is bool(asked)


# --- the checks the pair stops naming -----------------------------------------------------------


def test_a_check_the_pair_stops_naming_is_deleted_only_after_its_batch() -> None:
    """lb1 left the cluster's LBs: its check goes, but the pair's batch in the same plan is what
    stops naming it. The delete follows that batch (skipped if it fails); a check the pair names
    after the plan is never deleted."""
    gone = replace(STEADY, lbs=(observed(STEADY.lbs[0], state="terminated"), STEADY.lbs[1]))

    plan = plan_round(gone, state(), RULES, now=NOW)

    deletes = [c for c in plan.changes if isinstance(c, DeleteHealthCheck)]
    assert [(d.health_check_id, d.after_records) for d in deletes] == [("hc-1", True)]
    assert primary_of(plan.changes) == (A2,)


def test_a_check_the_pair_still_names_is_never_deleted() -> None:
    """LBF_ROUTE53_INTERVAL changed to 10: Route 53 cannot change a check's interval, so each LB
    gets a new check; the old ones stay while the pair names them (a later run moves the pair
    to the new checks, once they exist, and then deletes the old)."""
    fast = round_rules(settings(dns_failover="route53", route53_interval=10))

    plan = plan_round(STEADY, state(), fast, now=NOW)

    assert not [c for c in plan.changes if isinstance(c, DeleteHealthCheck)]
    made = [c for c in plan.changes if isinstance(c, CreateHealthCheck)]
    assert sorted((c.instance_id, c.spec.request_interval) for c in made) == [
        ("i-lb1", 10),
        ("i-lb2", 10),
    ]
    assert not [c for c in plan.changes if isinstance(c, ChangeRecords)]


def test_the_executor_skips_a_delete_that_follows_a_failed_batch() -> None:
    cloud = FakeCloud()
    cloud.route53.fail_next.append(
        AwsError("route53", "ChangeResourceRecordSets", "Throttling", "slow down")
    )
    record = Record(ACTIVE, "A", 60, (A1,))
    batch = ChangeRecords((RecordChange("CREATE", record),), "test")
    follows = DeleteHealthCheck("hc-1", "i-lb1", "lb1 is terminated", after_records=True)
    alone = DeleteHealthCheck("hc-2", "i-lb2", "lb2 is terminated")
    tags = SetTags(("i-lb2",), (("lbf:state", "active"),), after_records=True)
    executor = Executor(cloud.services(), now=cloud.clock.now)

    outcomes = {o.change: o for o in executor.apply_changes([batch, follows, alone, tags])}

    assert not outcomes[batch].ok
    assert outcomes[follows].skipped
    assert outcomes[tags].skipped
    assert not outcomes[alone].skipped
