"""The round function and its fold (core/round.py), table by table, without AWS or a clock.

Each table is a decision the loop used to make between its AWS calls: which probe path counts,
whom to ask Route 53 about, what the run leaves out of a round's Plan, what a re-read after a
rejection means, and what the outcomes add to the Report, the notices and the history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pytest

from chalicelib.core.changes import (
    ChangeRecords,
    CreateHealthCheck,
    Notify,
    PushBackends,
    RecordHistory,
    SetTags,
    StoreNotices,
)
from chalicelib.core.dns import RecordChange
from chalicelib.core.failover import RECOGNISED
from chalicelib.core.model import HealthCheck, HealthCheckSpec, ProbeResult, ProbeTarget, World
from chalicelib.core.outcome import Outcome
from chalicelib.core.pushes import AGENT_NOT_REGISTERED
from chalicelib.core.round import (
    Applied,
    Attempt,
    RoundPlan,
    RunState,
    SecondOpinionAnswer,
    after_refusal,
    agents_not_registered,
    checks_to_ask,
    decide_round,
    fold_paths,
    fold_round,
    judge_reread,
    keep_conditions,
    move_key,
    plan_round,
    pool_due,
    with_stored_notices,
)
from chalicelib.core.round_lines import Line, Lines, outcome_lines, tail_lines
from chalicelib.core.second_opinion import CheckerObservation
from chalicelib.jobs import round_rules
from chalicelib.report import Report
from tests.kit.settings import settings
from tests.kit.world import a_record, fqdn, lb, observed, settled, web

NOW = 1_700_000_000.0
A1, A2 = "52.1.2.11", "52.1.2.12"
RULES = round_rules(settings())
CHECKED = round_rules(settings(route53_health_checks=True))
LB1, LB2 = lb("lb1", A1), lb("lb2", A2)
STEADY = settled([LB1, LB2], [web("10.0.0.1"), web("10.0.0.2")], active="lb1")
# lb1, the active one, judged unhealthy this round: the round moves the active record to lb2.
FAILING = replace(STEADY, lbs=(observed(STEADY.lbs[0], health="unhealthy"), STEADY.lbs[1]))
ACTIVE = fqdn("lb")


@dataclass(frozen=True)
class Path:
    """A probe path's round, as chalicelib/probing.PathRound gives it."""

    condition: str
    results: Mapping[str, ProbeResult] = field(default_factory=dict)
    fault: str | None = None
    targets: Sequence[ProbeTarget] = ()


def ok(up: bool) -> ProbeResult:
    return ProbeResult(ok=up, detail="" if up else "connection refused", seconds=0.01)


def state(**changes: object) -> RunState:
    fresh = RunState(started_at=NOW, start_list=(), probes=True, notified=frozenset())
    return replace(fresh, **changes)  # type: ignore[arg-type]


def check(instance_id: str, address: str) -> HealthCheck:
    spec = HealthCheckSpec(kind="HTTP", address=address, port=80, resource_path="/health")
    return HealthCheck(
        health_check_id=f"hc-{instance_id}", instance_id=instance_id, version=1, spec=spec
    )


def verdicts(world: World) -> dict[str, str]:
    return {i.instance_id: i.verdict.value for i in (*world.lbs, *world.webs)}


# --- which probe path counts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "condition", "failures", "fault"),
    [
        # Every LB answers: the round counts.
        (Path("prober-fault", {"i-lb1": ok(True), "i-lb2": ok(True)}), None, 0, False),
        # One of two fails: a real failure, counted, no fault.
        (Path("prober-fault", {"i-lb1": ok(False), "i-lb2": ok(True)}), None, 1, False),
        # Every target fails at once: the prober's network, not theirs.
        (
            Path("prober-fault", {"i-lb1": ok(False), "i-lb2": ok(False)}),
            "2 of 2 probes failed in one round",
            2,
            True,
        ),
        (
            Path("prober-fault:private", {"i-lb1": ok(False), "i-lb2": ok(False)}),
            "2 of 2 probes of the prober function failed",
            2,
            True,
        ),
        # The prober function did not answer: no results, a fault, nothing counted.
        (
            Path("prober-fault:private", fault="timed out", targets=(ProbeTarget("i-lb1", None),)),  # type: ignore[arg-type]
            "did not answer for 1 private target(s): timed out",
            0,
            True,
        ),
    ],
)
def test_a_path_is_folded_unless_it_is_a_prober_fault(
    path: Path, condition: str | None, failures: int, fault: bool
) -> None:
    folded = fold_paths(STEADY, [path], state(), RULES, SecondOpinionAnswer(), now=NOW)
    assert folded.probe_failures == failures
    assert folded.faults == ((path.condition,) if fault else ())
    if condition is None:
        assert folded.conditions == {}
        # lbf:probe counts on from each result
        runs = {i.instance_id: i.damping.run for i in folded.world.lbs}
        assert {key: (run.ok if run else None) for key, run in runs.items()} == {
            key: result.ok for key, result in path.results.items()
        }
    else:
        assert condition in folded.conditions[path.condition]
        assert verdicts(folded.world) == verdicts(STEADY)
        assert folded.world == STEADY  # no count moved


def test_a_prober_fault_in_an_earlier_round_counts_for_the_held_drop_clock() -> None:
    assert state(faults=()).prober_fault is False
    assert state(faults=("prober-fault",)).prober_fault is True
    assert state(probes=False, faults=("prober-fault",)).prober_fault is None


# --- whom to ask Route 53 about -----------------------------------------------------------------

ALL_FAIL = Path("prober-fault", {"i-lb1": ok(False), "i-lb2": ok(False)})
CHECKS = replace(STEADY, health_checks=(check("i-lb1", A1), check("i-lb2", A2)))


@pytest.mark.parametrize(
    ("paths", "run", "asked"),
    [
        ([ALL_FAIL], state(), {"i-lb1", "i-lb2"}),
        ([Path("prober-fault", {"i-lb1": ok(False), "i-lb2": ok(True)})], state(), set()),
        ([ALL_FAIL], state(second_opinion_unavailable="throttled"), set()),
        ([Path("prober-fault:private", fault="timed out")], state(), set()),
    ],
)
def test_route53_is_asked_only_about_the_lbs_of_a_prober_fault_round(
    paths: list[Path], run: RunState, asked: set[str]
) -> None:
    assert set(checks_to_ask(CHECKS, paths, run, CHECKED)) == asked


def test_the_second_opinion_holds_and_a_failed_ask_is_not_repeated() -> None:
    healthy = (
        CheckerObservation("us-east-1", True, NOW),
        CheckerObservation("eu-west-1", True, NOW),
    )
    answer = SecondOpinionAnswer({"i-lb1": healthy, "i-lb2": healthy})
    planned = decide_round(CHECKS, [ALL_FAIL], state(), CHECKED, now=NOW, answer=answer)
    assert "still see lb1 healthy: holding" in planned.conditions["second-opinion:i-lb1:healthy"]
    assert [line.code for line in planned.lines.notes] == ["second-opinion", "second-opinion"]
    assert planned.state.faults == ("prober-fault",)

    failed = decide_round(
        CHECKS, [ALL_FAIL], state(), CHECKED, now=NOW, answer=SecondOpinionAnswer(error="denied")
    )
    assert failed.state.second_opinion_unavailable is not None
    assert "denied" in failed.conditions["second-opinion-unavailable"]
    assert checks_to_ask(CHECKS, [ALL_FAIL], failed.state, CHECKED) == {}


# --- what the run leaves out of a round's Plan --------------------------------------------------


def records_of(changes: Sequence[object]) -> set[str]:
    return {
        c.record.name
        for change in changes
        if isinstance(change, ChangeRecords)
        for c in change.changes
    }


def test_the_round_moves_the_active_record_off_a_failed_lb() -> None:
    plan = plan_round(FAILING, state(rounds_done=1), RULES)
    assert ACTIVE in records_of(plan.changes)
    assert plan.active.moved_to == "lb2"


def test_names_route53_rejects_this_run_are_left_out_and_the_role_stays() -> None:
    plan = plan_round(FAILING, state(rounds_done=1, rejected={ACTIVE: "CNAME"}), RULES)
    assert ACTIVE not in records_of(plan.changes)
    assert plan.active.values is None
    assert not any(isinstance(c, SetTags) and dict(c.tags).get("lbf:state") for c in plan.changes)


def test_pushes_to_lbs_ssm_does_not_know_wait_for_the_next_run() -> None:
    # Neither LB confirmed the current list: a push to each.
    changed = replace(STEADY, lbs=tuple(replace(x, backends_checksum="old") for x in STEADY.lbs))
    pushed = {
        c.instance_id
        for c in plan_round(changed, state(rounds_done=1), RULES).changes
        if isinstance(c, PushBackends)
    }
    assert pushed == {"i-lb1", "i-lb2"}
    left = plan_round(changed, state(rounds_done=1, unregistered={"i-lb2": ""}), RULES)
    assert {c.instance_id for c in left.changes if isinstance(c, PushBackends)} == {"i-lb1"}


@pytest.mark.parametrize(("rounds_done", "created"), [(0, 2), (1, 0)])
def test_health_checks_are_kept_in_the_first_round_after_the_rest(
    rounds_done: int, created: int
) -> None:
    world = replace(FAILING, health_checks=())
    changes = plan_round(world, state(rounds_done=rounds_done), CHECKED).changes
    creates = [i for i, c in enumerate(changes) if isinstance(c, CreateHealthCheck)]
    assert len(creates) == created
    if creates:
        assert creates == list(range(len(changes) - created, len(changes)))


# --- a rejection, judged by the re-read ---------------------------------------------------------


def attempt_of(world: World, *, planned_again: bool = False) -> Attempt:
    plan = plan_round(world, state(rounds_done=1), RULES)
    batch = next(c for c in plan.changes if isinstance(c, ChangeRecords))
    outcomes = (Outcome(batch, ok=False, rejected=True, error="InvalidChangeBatch"),)
    return Attempt(world, plan, outcomes, move_key(world, plan, RULES), planned_again)


def with_active(world: World, *addresses: str) -> World:
    records = (*tuple(r for r in world.records if r.name != ACTIVE), a_record("lb", *addresses))
    return replace(world, records=records)


def test_records_as_read_mean_a_permanent_rejection() -> None:
    reread = judge_reread(attempt_of(FAILING), FAILING, state(), RULES, now=NOW)
    assert reread.permanent is not None
    assert reread.again is None


def test_records_changed_since_mean_stale_and_the_round_is_planned_again() -> None:
    fresh = replace(with_active(FAILING, "52.1.2.99"), notices=frozenset({"x"}))
    reread = judge_reread(attempt_of(FAILING), fresh, state(), RULES, now=NOW)
    assert reread.permanent is None
    assert reread.again is not None
    assert [line.code for line in reread.lines.notes] == ["newer-view"]
    assert reread.state.notified == frozenset({"x"})  # what an overlapping run notified
    assert reread.failovers == ()


def test_the_planned_move_found_made_is_this_runs_failover() -> None:
    reread = judge_reread(
        attempt_of(FAILING), with_active(FAILING, A2), state(), RULES, now=NOW + 3
    )
    (failover,) = reread.failovers
    assert failover.moved_to == "lb2"
    assert failover.reason.endswith(RECOGNISED)
    assert failover.round == 1
    assert failover.seconds == 3


def test_stale_twice_stops_with_an_error_and_no_third_plan() -> None:
    attempt = attempt_of(FAILING, planned_again=True)
    reread = judge_reread(attempt, with_active(FAILING, "52.1.2.99"), state(), RULES, now=NOW)
    assert reread.again is None
    assert reread.outcomes == ()
    assert [line.code for line in reread.lines.errors] == ["stale"]


def test_a_refused_batch_of_one_is_left_out_for_the_rest_of_the_run() -> None:
    attempt = attempt_of(FAILING)
    change = attempt.outcomes[0].change
    assert isinstance(change, ChangeRecords)
    run, lines, left = after_refusal(attempt, (change, "CNAME at lb"), [], state(), RULES)
    assert run.rejected == {ACTIVE: "CNAME at lb"}
    assert [line.code for line in lines.errors] == ["route53-rejected"]
    assert ACTIVE not in records_of(left.plan.changes)


def test_a_batch_whose_records_each_go_through_alone_is_a_note() -> None:
    one = ChangeRecords((RecordChange("UPSERT", a_record("lb1", A1)),), "r")
    two = ChangeRecords((RecordChange("UPSERT", a_record("lb2", A2)),), "r")
    both = ChangeRecords(one.changes + two.changes, "r")
    attempt = replace(attempt_of(FAILING), outcomes=(Outcome(both, ok=False, rejected=True),))
    tried = [Outcome(one, ok=True), Outcome(two, ok=True)]
    run, lines, _ = after_refusal(attempt, (both, "?"), tried, state(), RULES)
    assert run.rejected == {}
    assert [line.code for line in lines.notes] == ["route53-rejected-whole"]


# --- the fold: Report lines, state, notices, history --------------------------------------------


@pytest.mark.parametrize(
    ("launched", "code", "notified"),
    [(NOW - 30, "ssm-agent-waiting", False), (NOW - 3600, "ssm-agent-missing", True)],
)
def test_an_unknown_ssm_agent_is_news_only_after_its_grace(
    launched: float, code: str, notified: bool
) -> None:
    world = replace(STEADY, lbs=(lb("lb1", A1, launched=launched),))
    push = PushBackends("i-lb1", "lb1", "10.0.0.1:80", "c")
    outcomes = [Outcome(push, ok=False, error="InvalidInstanceId", code=AGENT_NOT_REGISTERED)]
    rest, agents = agents_not_registered(outcomes, world, now=NOW)
    assert rest == ()
    assert [line.code for line in (*agents.lines.errors, *agents.lines.notes)] == [code]
    assert bool(agents.unregistered["i-lb1"]) is notified


def applied_round(run: RunState, *, ok: bool = True) -> tuple[RoundPlan, Applied]:
    planned = decide_round(FAILING, [], run, RULES, now=NOW)
    outcomes = tuple(
        Outcome(c, ok=ok, error=None if ok else "throttled") for c in planned.plan.changes
    )
    applied = Applied(
        FAILING,
        planned.plan,
        outcomes,
        planned.state,
        Lines(),
        move=move_key(FAILING, planned.plan, RULES),
    )
    return planned, applied


def test_a_failover_is_counted_notified_and_written_to_the_history() -> None:
    planned, applied = applied_round(state(rounds_done=1))
    fold = fold_round(planned, applied, RULES, now=NOW + 4)
    (failover,) = fold.state.failovers
    assert (failover.moved_to, failover.round, failover.seconds) == ("lb2", 2, 4)
    assert fold.state.rounds_done == 2
    notices = [c for c in fold.tail if isinstance(c, Notify)]
    assert any("active record moved" in n.message for n in notices)
    assert isinstance(fold.tail[-1], RecordHistory)
    assert "failover" in fold.tail[-1].codes
    assert fold.asks_stored_notices
    assert "lb2" in " ".join(line for line in fold.lines.applied)


def test_a_failed_action_is_a_condition_notified_and_no_failover() -> None:
    planned, applied = applied_round(state(rounds_done=1), ok=False)
    fold = fold_round(planned, applied, RULES, now=NOW)
    assert fold.state.failovers == ()
    assert any(key.startswith("failed:records") for key in fold.conditions)
    assert {line.code for line in fold.lines.errors} == {"action-failed"}


def test_a_dry_run_plans_its_notices_but_reads_nothing_for_them() -> None:
    planned, applied = applied_round(state(rounds_done=1, dry_run=True))
    fold = fold_round(planned, applied, RULES, now=NOW)
    assert any(isinstance(c, Notify) for c in fold.tail)
    assert not fold.asks_stored_notices


def test_what_an_overlapping_run_notified_since_is_not_sent_again() -> None:
    planned, applied = applied_round(state(rounds_done=1))
    fold = fold_round(planned, applied, RULES, now=NOW)
    sent = {c.key for c in fold.tail if isinstance(c, Notify)}
    again = with_stored_notices(fold, "\n".join(sorted(sent)), RULES)
    assert not any(isinstance(c, Notify) for c in again.tail)
    assert not any(isinstance(c, StoreNotices) for c in again.tail)
    unchanged = with_stored_notices(fold, None, RULES)
    assert unchanged.tail == fold.tail


# --- the Report's lines -------------------------------------------------------------------------

PUSH = PushBackends("i-lb1", "lb1", "10.0.0.1:80", "c")
NOTICE = Notify("k", "s", "lb1 is down")


@pytest.mark.parametrize(
    ("outcome", "lines"),
    [
        (Outcome(PUSH, ok=True), Lines(applied=(PUSH.describe(),))),
        (Outcome(PUSH, ok=True, printed=True), Lines(planned=(PUSH.describe(),))),
        (
            Outcome(PUSH, ok=False, error="boom"),
            Lines(errors=(Line("action-failed", f"{PUSH.describe()}: boom"),)),
        ),
        (
            Outcome(PUSH, ok=False, skipped=True),
            Lines(
                notes=(
                    Line(
                        "not-attempted",
                        f"not attempted (records did not change): {PUSH.describe()}",
                    ),
                )
            ),
        ),
    ],
)
def test_each_outcome_is_one_line(outcome: Outcome, lines: Lines) -> None:
    assert outcome_lines([outcome]) == lines


@pytest.mark.parametrize(
    ("outcome", "lines"),
    [
        (Outcome(NOTICE, ok=True), Lines(notices=("lb1 is down",))),
        (
            Outcome(NOTICE, ok=True, printed=True),
            Lines(notes=(Line("would-notify", "would notify: lb1 is down"),)),
        ),
        (
            Outcome(NOTICE, ok=False, error="no topic"),
            Lines(
                notices=("lb1 is down",),
                errors=(Line("notice-not-sent", "notice not sent: no topic"),),
            ),
        ),
        (
            Outcome(RecordHistory("/h", "[]", ()), ok=False, error="throttled"),
            Lines(errors=(Line("history-not-stored", "history not stored: throttled"),)),
        ),
        (
            Outcome(StoreNotices("/n", "k"), ok=False, error="throttled"),
            Lines(errors=(Line("notices-not-stored", "storing notified conditions: throttled"),)),
        ),
    ],
)
def test_the_tail_says_what_was_sent_and_what_was_not(outcome: Outcome, lines: Lines) -> None:
    assert tail_lines([outcome]) == lines


def test_a_note_said_once_is_not_repeated_round_after_round() -> None:
    report = Report(job="reconcile", run_id="r")
    lines = Lines(notes=(Line("plan", "skipped i-1", once=True), Line("x", "said twice")))
    report.add(lines)
    report.add(lines)
    assert report.notes == ["skipped i-1", "said twice", "said twice"]
    assert report.code_of("skipped i-1", "") == "plan"


# --- the pool beside the LB rounds (SPEC "Time") ---------------------------------------------

W1, W2 = "i-web-10.0.0.1-80", "i-web-10.0.0.2-80"
LB_TARGETS = (ProbeTarget("i-lb1", None), ProbeTarget("i-lb2", None))  # type: ignore[arg-type]
POOL_TARGETS = (ProbeTarget(W1, None), ProbeTarget(W2, None))  # type: ignore[arg-type]
LB_IDS = frozenset({"i-lb1", "i-lb2"})


@pytest.mark.parametrize(
    ("number", "late", "probed_at", "busy", "deadline", "due", "probed_after"),
    [
        # The first round probes the pool, even when it starts late by the run's reads.
        (0, 0.7, None, False, None, True, 0.0),
        # At 2 s rounds and a 10 s pool interval: rounds 1..4 probe only the LBs, round 5 both.
        (1, 0.7, 0.0, False, None, False, 0.0),
        (4, 0.7, 0.0, False, None, False, 0.0),
        # Counted on the schedule (10 s after round 0's scheduled start), not from its late start.
        (5, 0.7, 0.0, False, None, True, 10.0),
        # The pool's last invoke still out: its results first, then the next probe.
        (5, 0.7, 0.0, True, None, False, 0.0),
        # A probe the run cannot use (its probes and writes end past the deadline) is not made.
        (5, 0.0, 0.0, False, 11.0, False, 0.0),
    ],
)
def test_which_rounds_probe_the_pool(
    number: int,
    late: float,
    probed_at: float | None,
    busy: bool,
    deadline: float | None,
    due: bool,
    probed_after: float,
) -> None:
    run = state(pool_probed_at=None if probed_at is None else NOW + probed_at)
    starts_at = NOW + number * 2.0 + late
    at_deadline = None if deadline is None else NOW + deadline
    pool, after = pool_due(
        run, RULES, number=number, starts_at=starts_at, deadline=at_deadline, busy=busy
    )
    assert pool is due
    assert after.pool_probed_at == NOW + probed_after


def lbs_failing(condition: str = "prober-fault") -> Path:
    return Path(condition, {"i-lb1": ok(False), "i-lb2": ok(False)}, targets=LB_TARGETS)


@pytest.mark.parametrize(
    ("pool_results", "fault"),
    [
        # The pool answered at its last probe: both LBs failing is the LBs' failure, counted.
        ({"prober-fault": {W1: ok(True), W2: ok(True)}}, False),
        # The pool failed too at its last probe: every target is down from here, a prober fault.
        ({"prober-fault": {W1: ok(False), W2: ok(False)}}, True),
        # No pool result on this path yet (or only on the other path): judged on the LBs alone.
        ({}, True),
        ({"prober-fault:private": {W1: ok(True), W2: ok(True)}}, True),
    ],
)
def test_a_round_of_lbs_alone_is_judged_with_the_pool_s_latest_results(
    pool_results: Mapping[str, Mapping[str, ProbeResult]], fault: bool
) -> None:
    run = state(pool_results=pool_results)
    folded = fold_paths(STEADY, [lbs_failing()], run, RULES, SecondOpinionAnswer(), now=NOW)
    assert folded.faults == (("prober-fault",) if fault else ())
    assert ("prober-fault" in folded.conditions) is fault
    assert checks_to_ask(STEADY, [lbs_failing()], run, CHECKED) == {}  # no checks in STEADY
    # A fault changes no count; the LBs' failure moves each LB's run of failures.
    runs = {i.instance_id: i.damping.run for i in folded.world.lbs}
    assert all((run_ is None or run_.ok) for run_ in runs.values()) is fault


def test_a_round_with_the_pool_remembers_its_results_for_the_rounds_without_it() -> None:
    results = {"i-lb1": ok(True), "i-lb2": ok(True), W1: ok(False), W2: ok(True)}
    with_pool = Path("prober-fault", results, targets=LB_TARGETS + POOL_TARGETS)
    folded = fold_paths(STEADY, [with_pool], state(), RULES, SecondOpinionAnswer(), now=NOW)
    assert folded.pool_results == {"prober-fault": {W1: ok(False), W2: ok(True)}}
    plan = decide_round(STEADY, [with_pool], state(), RULES, now=NOW)
    assert plan.state.pool_results == folded.pool_results


POOL_DOWN = "2 of 2 probes of the prober function failed in one round"


@pytest.mark.parametrize(
    ("memory", "paths", "conditions", "kept", "memory_after"),
    [
        # The pool's path faulted; this round does not probe it at all: the condition stays.
        (
            {"prober-fault:private": (POOL_DOWN, True)},
            [],
            {},
            {"prober-fault:private": POOL_DOWN},
            {"prober-fault:private": (POOL_DOWN, True)},
        ),
        # This round probes only the LBs on that path: what it was judged on is not probed again.
        (
            {"prober-fault:private": (POOL_DOWN, True)},
            [Path("prober-fault:private", {"i-lb1": ok(True)}, targets=LB_TARGETS[:1])],
            {},
            {"prober-fault:private": POOL_DOWN},
            {"prober-fault:private": (POOL_DOWN, True)},
        ),
        # The pool probed again and answering: the condition is over.
        (
            {"prober-fault:private": (POOL_DOWN, True)},
            [Path("prober-fault:private", {W1: ok(True)}, targets=POOL_TARGETS[:1])],
            {},
            {},
            {},
        ),
        # Judged on the LBs alone, probed again on them: over.
        (
            {"prober-fault": ("LBs down", False)},
            [Path("prober-fault", {"i-lb1": ok(True)}, targets=LB_TARGETS[:1])],
            {},
            {},
            {},
        ),
        # A condition this round: remembered with whether the round carried the pool.
        (
            {},
            [Path("prober-fault", {W1: ok(False)}, targets=POOL_TARGETS[:1])],
            {"prober-fault": "new"},
            {"prober-fault": "new"},
            {"prober-fault": ("new", True)},
        ),
        # Other conditions pass through untouched.
        ({}, [], {"second-opinion:i-lb1": "x"}, {"second-opinion:i-lb1": "x"}, {}),
    ],
)
def test_a_path_keeps_its_condition_until_a_round_probes_again_what_it_was_judged_on(
    memory: Mapping[str, tuple[str, bool]],
    paths: Sequence[Path],
    conditions: Mapping[str, str],
    kept: Mapping[str, str],
    memory_after: Mapping[str, tuple[str, bool]],
) -> None:
    assert keep_conditions(paths, conditions, state(path_conditions=memory), LB_IDS) == (
        kept,
        memory_after,
    )


def test_a_path_condition_the_run_found_notified_stays_until_the_path_is_probed() -> None:
    run = state(notified=frozenset({"prober-fault:private", "lb-down:i-lb1"}))
    kept, memory = keep_conditions([], {}, run, LB_IDS)
    assert set(kept) == {"prober-fault:private"}  # a path's, not any notified condition
    assert memory == {"prober-fault:private": (kept["prober-fault:private"], True)}
    # A run that makes no probes (the event run) keeps nothing: it judges no path.
    no_probes = replace(run, probes=False)
    folded = fold_paths(STEADY, [], no_probes, RULES, SecondOpinionAnswer(), now=NOW)
    assert folded.conditions == {}
