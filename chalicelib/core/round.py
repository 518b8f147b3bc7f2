"""One round of a run as values: what it writes, decided from what it saw; what it did, folded.

Follow one probe result from the loop (chalicelib/jobs.py) to its Route 53 batch:

1. `decide_round` takes the world, the round's probe paths, the run's state and the rules. Each
   path is folded into the verdicts (`fold_paths`), unless it is a fault on the prober's side:
   then no verdict changes and Route 53's second opinion (the statuses the loop read for the
   checks `checks_to_ask` named) goes into the conditions. `plan_round` asks `core.plan.decide`
   for the Plan, leaves out what this run already knows will not go through (record names Route
   53 rejects for good, pushes to LBs whose SSM agent is unknown) and, in round 1, adds the
   Route 53 health checks after the rest. One Plan comes back, in a RoundPlan.
2. The loop hands that Plan to chalicelib/executor.py, once. When Route 53 rejects a record
   batch, the loop re-reads the world and `judge_reread` says what the rejection was: stale (plan
   once more from the re-read), permanent (each compare-and-swap in a batch of its own:
   `after_refusal`), or a lost answer (the move is recognised as this run's).
3. `fold_round` takes the outcomes: the Report's lines (core.round_lines), the failover, the
   failed actions, the round's conditions, the next RunState, and the round's tail: its notices
   and its history, one more Plan that the same executor applies.

Everything here is pure: no clock (time comes in as `now`), no AWS, no state outside RunState.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from chalicelib.core import conditions as condition_rules
from chalicelib.core import failover_pair, history, pausing, rejections, timing
from chalicelib.core import notices as notice_policy
from chalicelib.core import pushes as push_rules
from chalicelib.core.changes import (
    Change,
    ChangeRecords,
    DeleteHealthCheck,
    HealthCheckChange,
    Notify,
    PushBackends,
)
from chalicelib.core.dns import apply_record_changes
from chalicelib.core.failover import Failover, failover_of, move_of, moved_role, recognised
from chalicelib.core.health import Thresholds
from chalicelib.core.model import FailoverMode, HealthCheck, ProbeResult, ProbeTarget, Push, World
from chalicelib.core.observed import fold_probes, is_prober_fault, probed_lbs
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import Plan, PlanRules, decide
from chalicelib.core.reread import WithoutRejected, merge_reread, rejected_batch, without_rejected
from chalicelib.core.round_lines import Line, Lines, outcome_lines, plan_lines
from chalicelib.core.second_opinion import (
    CheckerObservation,
    SecondOpinionRules,
    checks_to_consult,
    opinions_of,
    plan_health_checks,
)

# The conditions of the probe paths' faults (chalicelib/probing.py names the paths).
IN_PROCESS = "prober-fault"
PRIVATE = "prober-fault:private"
PATHS = (IN_PROCESS, PRIVATE)
# A path's condition the run found notified stays until the path is probed again.
_NOT_PROBED_AGAIN = "as last notified: not probed again yet"


class ProbePath(Protocol):
    """One probe path's share of a round (chalicelib/probing.PathRound): results, or a fault."""

    @property
    def condition(self) -> str: ...
    @property
    def targets(self) -> Sequence[ProbeTarget]: ...
    @property
    def results(self) -> Mapping[str, ProbeResult]: ...
    @property
    def fault(self) -> str | None: ...


@dataclass(frozen=True)
class PoolSchedule:
    """When the pool is probed beside the LB rounds (SPEC "Time"): every `pool_interval`."""

    probe_interval: float  # LBF_PROBE_INTERVAL: where the schedule puts each round
    pool_interval: float  # LBF_POOL_INTERVAL
    pool_seconds: float  # the pool's path: its probes' timeout, and the invoke's margin


@dataclass(frozen=True)
class RoundRules:
    """Everything a round reads of the settings (built once per run from Settings)."""

    plan: PlanRules
    thresholds: Thresholds
    prober_fault_percent: int
    second_opinion: SecondOpinionRules
    mode: FailoverMode
    active_fqdn: str
    subject: str  # of every notice
    paused_parameter_name: str
    notices_parameter_name: str
    history_parameter_name: str
    pool: PoolSchedule | None = None  # None: the pool is probed in every round


@dataclass(frozen=True)
class RunState:
    """What one run carries from round to round, and nothing else does."""

    started_at: float
    start_list: tuple[str, ...]  # published when the run started: LBF_MAX_POOL_DROP's base
    probes: bool  # False: the event run, whose rounds make no probes
    notified: frozenset[str]  # conditions and the last move already notified
    dry_run: bool = False  # LBF_DRY_RUN: notices only printed
    paused: bool = False  # paused: notices still sent, marked paused; moves only planned
    rejected: Mapping[str, str] = field(default_factory=dict)  # record name -> Route 53's message
    # LBs whose SSM agent SendCommand did not know -> their condition ("" within the grace time).
    unregistered: Mapping[str, str] = field(default_factory=dict)
    faults: tuple[str, ...] = ()  # probe paths taken as a prober fault so far
    second_opinion_unavailable: str | None = None  # asked once a run, not again after a failure
    # LBF_DNS_FAILOVER=route53: when Route 53's view of the pair's checks was last read (the
    # view itself is in the World): read again once a check interval has passed.
    route53_view_read_at: float | None = None
    rounds_done: int = 0
    failovers: tuple[Failover, ...] = ()
    # The pool's schedule: the scheduled start of the round that last probed it (None: none yet).
    pool_probed_at: float | None = None
    # The pool's latest results on each path, for the rounds that probe only the LBs there.
    pool_results: Mapping[str, Mapping[str, ProbeResult]] = field(default_factory=dict)
    # Each path's condition when it was last judged, and whether that round carried the pool
    # (`keep_conditions`); None before the first round: what the run found notified.
    path_conditions: Mapping[str, tuple[str, bool]] | None = None

    @property
    def prober_fault(self) -> bool | None:
        """For core.held_drop: None when the run makes no probes (its clock neither runs nor
        restarts), else whether a path of it was a fault on the prober's side."""
        return bool(self.faults) if self.probes else None


@dataclass(frozen=True)
class SecondOpinionAnswer:
    """What the loop read of Route 53's checkers for `checks_to_ask`."""

    statuses: Mapping[str, Sequence[CheckerObservation]] = field(default_factory=dict)
    error: str | None = None  # a read failed: not asked again this run
    # The failover pair's checks (`pair_checks_to_read`), by check id; None: not read this round.
    pair_statuses: Mapping[str, Sequence[CheckerObservation]] | None = None


NO_ANSWER = SecondOpinionAnswer()


@dataclass(frozen=True)
class RoundPlan:
    world: World  # the view with this round's verdicts and pushes in it: the plan's base
    plan: Plan
    state: RunState
    conditions: Mapping[str, str]  # of the probes and the second opinion
    lines: Lines
    events: tuple[history.Event, ...]  # pushes that ended without success
    probe_failures: int


# ---------------------------------------------------------------------------------------------
# Deciding a round.


def checks_to_ask(
    world: World, paths: Sequence[ProbePath], state: RunState, rules: RoundRules
) -> dict[str, HealthCheck]:
    """The checks whose checkers the loop should read: the LBs whose probes failed in a path
    taken as a prober fault. Nothing once a read failed this run (each try costs the rounds)."""
    if state.second_opinion_unavailable is not None or not rules.second_opinion.enabled:
        # The failover pair's checks are read with LBF_ROUTE53_HEALTH_CHECKS off too: they are
        # the pair's, and the second opinion stays the option the operator turned off.
        return {}
    asked: dict[str, HealthCheck] = {}
    lb_ids = _lb_ids(world)
    for path in paths:
        judged = judged_results(path, state, lb_ids)
        if path.fault is None and is_prober_fault(judged, rules.prober_fault_percent):
            asked |= checks_to_consult(world, _failed(path))
    return asked


def pool_due(
    state: RunState,
    rules: RoundRules,
    *,
    number: int,
    starts_at: float,
    deadline: float | None,
    busy: bool = False,
) -> tuple[bool, RunState]:
    """Whether round `number` (from 0) probes the pool beside the LBs (`timing.pool_due`), and
    the state that remembers it. Not while the pool's last invoke is still out (`busy`): its
    results are judged first."""
    schedule = rules.pool
    if schedule is None:
        return True, state
    scheduled_at = state.started_at + number * schedule.probe_interval
    due = not busy and timing.pool_due(
        scheduled_at=scheduled_at,
        starts_at=starts_at,
        pool_probed_at=state.pool_probed_at,
        pool_interval=schedule.pool_interval,
        pool_seconds=schedule.pool_seconds,
        deadline=deadline,
    )
    if not due:
        return False, state
    return True, replace(state, pool_probed_at=scheduled_at)


def judged_results(
    path: ProbePath, state: RunState, lb_ids: frozenset[str]
) -> Mapping[str, ProbeResult]:
    """What the prober-fault rule judges on a path: every target of it by its latest result this
    run. A round that probes only the LBs there judges them with the pool's latest results:
    otherwise all LBs failing between the pool's probes would be a prober fault in that round
    and not in the next one with the pool, and the condition would come and go."""
    if path.fault is not None or _carries_pool(path, lb_ids):
        return path.results
    earlier = state.pool_results.get(path.condition)
    return {**earlier, **path.results} if earlier else path.results


def keep_conditions(
    paths: Sequence[ProbePath],
    conditions: Mapping[str, str],
    state: RunState,
    lb_ids: frozenset[str],
) -> tuple[dict[str, str], dict[str, tuple[str, bool]]]:
    """The round's path conditions, each kept until a round probes again what it was judged on:
    the pool's fault is not over because a round probed only the LBs (a notice would go out
    again each time the pool is probed). With the memory for the next round."""
    judged = {path.condition for path in paths}
    with_pool = {path.condition for path in paths if _carries_pool(path, lb_ids)}
    memory = dict(
        state.path_conditions
        if state.path_conditions is not None
        else {key: (_NOT_PROBED_AGAIN, True) for key in PATHS if key in state.notified}
    )
    kept = dict(conditions)
    for key in PATHS:
        before = memory.get(key)
        if key in conditions:
            memory[key] = (conditions[key], key in with_pool)
        elif before is not None and (key not in judged or (before[1] and key not in with_pool)):
            kept[key] = before[0]
        else:
            memory.pop(key, None)
    return kept, memory


def _lb_ids(world: World) -> frozenset[str]:
    # A skipped LB is probed as an LB: on the LBs' path (chalicelib/probing.split_targets).
    return frozenset(lb.instance_id for lb in probed_lbs(world))


def _carries_pool(path: ProbePath, lb_ids: frozenset[str]) -> bool:
    return any(target.key not in lb_ids for target in path.targets)


def pair_checks_to_read(
    world: World, state: RunState, rules: RoundRules, *, now: float
) -> tuple[str, ...]:
    """The failover pair's checks whose checkers the loop should read this round: those its
    records are bound to, once per check interval (`failover_pair.view_due`), in any round."""
    pair = rules.plan.pair
    if pair is None or not pair.enabled:
        return ()
    if not failover_pair.view_due(state.route53_view_read_at, now, pair):
        return ()
    return tuple(sorted(failover_pair.checks_in_use(world.records, pair.records)))


def with_route53_view(
    world: World, state: RunState, rules: RoundRules, answer: SecondOpinionAnswer, *, now: float
) -> tuple[World, RunState]:
    """Route 53's view of the pair's checks, as read this round, into the world the pair is
    decided from; a check not read (or with no recent report) is left out: unknown."""
    pair = rules.plan.pair
    if answer.pair_statuses is None or pair is None:
        return world, state
    view = failover_pair.route53_view(answer.pair_statuses, now=now, rules=pair)
    return replace(world, route53_view=view), replace(state, route53_view_read_at=now)


def decide_round(
    world: World,
    paths: Sequence[ProbePath],
    state: RunState,
    rules: RoundRules,
    *,
    now: float,
    pushes: tuple[Push, ...] | None = None,
    answer: SecondOpinionAnswer = NO_ANSWER,
) -> RoundPlan:
    """The round's one Plan. `pushes`: the pushes as SSM reports them now (None: as read)."""
    if answer.error is not None and state.second_opinion_unavailable is None:
        unavailable = f"Route 53's checkers could not be asked (not again this run): {answer.error}"
        state = replace(state, second_opinion_unavailable=unavailable)
    world, state = with_route53_view(world, state, rules, answer, now=now)
    folded = fold_paths(world, paths, state, rules, answer, now=now)
    world = folded.world
    events: tuple[history.Event, ...] = ()
    if pushes is not None:
        events = tuple(history.push_events(world, world.pushes, pushes, now=now))
        world = replace(world, pushes=pushes)
    state = replace(
        state,
        faults=state.faults + folded.faults,
        pool_results=folded.pool_results,
        path_conditions=folded.path_conditions,
    )
    return RoundPlan(
        world=world,
        plan=plan_round(world, state, rules, now=now),
        state=state,
        conditions=folded.conditions,
        lines=folded.lines,
        events=events,
        probe_failures=folded.probe_failures,
    )


@dataclass(frozen=True)
class PathsFolded:
    world: World
    conditions: dict[str, str]
    lines: Lines
    faults: tuple[str, ...]
    probe_failures: int
    pool_results: Mapping[str, Mapping[str, ProbeResult]]  # the next RunState's
    path_conditions: Mapping[str, tuple[str, bool]] | None  # the next RunState's


def fold_paths(
    world: World,
    paths: Sequence[ProbePath],
    state: RunState,
    rules: RoundRules,
    answer: SecondOpinionAnswer,
    *,
    now: float,
) -> PathsFolded:
    """Each path folded into the verdicts, unless it is a fault on the prober's side (judged on
    every target's latest result: `judged_results`); its condition kept until a round probes
    again what it was judged on (`keep_conditions`)."""
    conditions: dict[str, str] = {}
    notes: list[Line] = []
    faults: list[str] = []
    failures = 0
    lb_ids = _lb_ids(world)
    pool_results = dict(state.pool_results)
    for path in paths:
        if _carries_pool(path, lb_ids):
            pool_results[path.condition] = {
                key: result for key, result in path.results.items() if key not in lb_ids
            }
        judged = judged_results(path, state, lb_ids)
        faulted = is_prober_fault(judged, rules.prober_fault_percent)
        if path.fault is not None or faulted:
            faults.append(path.condition)
        if path.fault is not None:
            conditions[path.condition] = (
                f"the prober function did not answer for {len(path.targets)} private target(s): "
                f"{path.fault}; taken as a fault on the prober's side; no verdict changed from them"
            )
            continue
        failed = _failed(path)
        failures += len(failed)
        if not faulted:
            world = fold_probes(world, path.results, rules.thresholds)
            continue
        where = "" if path.condition == IN_PROCESS else " of the prober function"
        conditions[path.condition] = (
            f"{len(failed)} of {len(path.results)} probes{where} failed in one round: taken as "
            "a fault on the prober's side; no verdict changed"
        )
        found = (
            second_opinion(world, failed, state, answer, now=now)
            if rules.second_opinion.enabled
            else {}
        )
        conditions.update(found)
        notes += [Line("second-opinion", text, once=True) for text in found.values()]
    kept = state.path_conditions
    if state.probes:  # a run without probes judges no path: nothing to keep
        conditions, kept = keep_conditions(paths, conditions, state, lb_ids)
    return PathsFolded(
        world, conditions, Lines(notes=tuple(notes)), tuple(faults), failures, pool_results, kept
    )


def second_opinion(
    world: World,
    failed: Sequence[str],
    state: RunState,
    answer: SecondOpinionAnswer,
    *,
    now: float,
) -> dict[str, str]:
    """Route 53's checkers on the LBs whose probes failed: conditions that change no verdict."""
    if not world.health_checks:
        return {}
    statuses = {key: answer.statuses[key] for key in failed if key in answer.statuses}
    found = {o.condition: o.describe() for o in opinions_of(world, statuses, now=now)}
    if state.second_opinion_unavailable is not None:
        found["second-opinion-unavailable"] = state.second_opinion_unavailable
    return found


def plan_round(
    world: World, state: RunState, rules: RoundRules, *, now: float | None = None
) -> Plan:
    """`decide`'s Plan less what this run knows will not go through; round 1 keeps the health
    checks too, after the rest: a failover never waits for a health check. A check the failover
    pair names is never deleted from under it (the pair moves to its new check first)."""
    plan = rejections.without(
        decide(
            world,
            rules.plan,
            run_started_at=state.started_at,
            run_start_list=state.start_list,
            prober_fault=state.prober_fault,
            now=now,
        ),
        state.rejected,
        active_fqdn=rules.active_fqdn,
    )
    changes: tuple[Change, ...] = tuple(
        c
        for c in plan.changes
        if not (isinstance(c, PushBackends) and c.instance_id in state.unregistered)
    )
    if state.rounds_done == 0:
        changes += _health_checks(world, changes, state, rules)
    return replace(plan, changes=changes)


def _health_checks(
    world: World, changes: Sequence[Change], state: RunState, rules: RoundRules
) -> tuple[HealthCheckChange, ...]:
    """The round's health-check changes. A check the failover pair names after this plan is
    never deleted; one that it names only before (the pair moves to a new check in this plan)
    is deleted only if the pair's batch goes through."""
    pair = rules.plan.pair
    if pair is None:
        return plan_health_checks(world, rules.second_opinion, run_started_at=state.started_at)
    batch = [c for change in changes if isinstance(change, ChangeRecords) for c in change.changes]
    before = failover_pair.checks_in_use(world.records, pair.records)
    after = failover_pair.checks_in_use(apply_record_changes(world.records, batch), pair.records)
    planned = plan_health_checks(
        world, rules.second_opinion, run_started_at=state.started_at, in_use=after
    )
    return tuple(
        replace(c, after_records=True)
        if isinstance(c, DeleteHealthCheck) and c.health_check_id in before
        else c
        for c in planned
    )


def _failed(path: ProbePath) -> list[str]:
    return [key for key, result in path.results.items() if not result.ok]


# ---------------------------------------------------------------------------------------------
# A rejected record batch, judged by the re-read the loop hands in.


@dataclass(frozen=True)
class Attempt:
    """The round as applied so far: what the rejection is judged against."""

    world: World  # the view with the applied changes in it
    plan: Plan
    outcomes: tuple[Outcome, ...]
    move: str  # the key of the move the plan makes (core.failover.move_of)
    planned_again: bool = False


@dataclass(frozen=True)
class Reread:
    """What a re-read after a rejection says, and what the round does next."""

    world: World
    state: RunState
    lines: Lines
    failovers: tuple[Failover, ...] = ()  # a move the re-read shows made: this run's
    permanent: tuple[ChangeRecords, str] | None = None  # a batch Route 53 refuses for good
    again: Plan | None = None  # stale: the plan from the re-read, applied once more
    outcomes: tuple[Outcome, ...] = ()  # stale twice: the outcomes that stand


def judge_reread(
    attempt: Attempt,
    fresh: World,
    state: RunState,
    rules: RoundRules,
    *,
    now: float,
) -> Reread:
    """Route 53 words a stale, a permanent and a lost answer's rejection alike (moto otherwise
    than AWS): the re-read tells them apart. Unchanged records: permanent. Changed: stale, and an
    overlapping run's view is newer than ours in more than the records (its verdicts, its
    pushes), so the round plans once more from everything read again, or the LB it chose would be
    judged by our older verdicts and the record moved a second time."""
    batch = rejected_batch(attempt.outcomes)
    if batch is not None and rejections.unchanged(
        attempt.world.records, fresh.records, batch[0].changes
    ):
        return Reread(attempt.world, state, Lines(), permanent=batch)
    failovers: tuple[Failover, ...] = ()
    if recognised(attempt.plan, fresh, mode=rules.mode, active_fqdn=rules.active_fqdn):
        failovers = (
            failover_of(
                attempt.plan,
                round=state.rounds_done + 1,
                seconds=now - state.started_at,
                move=attempt.move,
                recognised=True,
            ),
        )
    world = merge_reread(attempt.world, fresh, rules.thresholds)
    state = replace(state, notified=fresh.notices)
    if attempt.planned_again:
        errors = tuple(
            Line(
                "stale",
                f"{o.change.describe()}: still stale after a re-read (the records changed again); "
                f"the next round plans from this re-read: {o.error}",
            )
            for o in attempt.outcomes
            if o.rejected
        )
        kept = tuple(o for o in attempt.outcomes if not o.rejected)
        return Reread(world, state, Lines(errors=errors), failovers, outcomes=kept)
    note = Line(
        "newer-view",
        "a change was rejected and a re-read shows its records changed since (stale): "
        "planned again from the re-read",
    )
    again = plan_round(world, state, rules, now=now)
    return Reread(world, state, Lines(notes=(note,)), failovers, again=again)


def refused_records(
    batch: tuple[ChangeRecords, str], tried: Sequence[Outcome]
) -> dict[ChangeRecords, str]:
    """The batches Route 53 refuses for good. The re-read shows every record unchanged, so it
    cannot tell which (and Route 53's message is not parsed: AWS and moto word it otherwise): a
    batch of one compare-and-swap is that one; else each was `tried` alone, and the ones
    rejected again are the rejected ones."""
    change, message = batch
    if len(rejections.compare_and_swaps(change)) == 1:
        return {change: message}
    return {
        o.change: o.error or "" for o in tried if o.rejected and isinstance(o.change, ChangeRecords)
    }


def after_refusal(
    attempt: Attempt,
    batch: tuple[ChangeRecords, str],
    tried: Sequence[Outcome],
    state: RunState,
    rules: RoundRules,
) -> tuple[RunState, Lines, WithoutRejected]:
    """The round goes on without the records Route 53 refuses: what is left to apply."""
    refused = refused_records(batch, tried)
    rejected = dict(state.rejected)
    errors = []
    for records, why in refused.items():
        rejected.update(dict.fromkeys((c.record.name for c in records.changes), why))
        errors.append(
            Line(
                "route53-rejected",
                f"Route 53 rejected {records.describe()}: {why}; a re-read shows the records "
                "unchanged, so it is permanent, not a race: the run goes on without them",
            )
        )
    notes: tuple[Line, ...] = ()
    if tried and not refused:
        notes = (
            Line(
                "route53-rejected-whole",
                f"Route 53 rejected {batch[0].describe()} but took each of its records in a "
                "batch of its own",
            ),
        )
    names = {c.record.name for records in refused for c in records.changes}
    left = without_rejected(
        attempt.plan, [*attempt.outcomes, *tried], names, active_fqdn=rules.active_fqdn
    )
    state = replace(state, rejected=rejected)
    return state, Lines(errors=tuple(errors), notes=notes), left


# ---------------------------------------------------------------------------------------------
# Folding what the round did.


@dataclass(frozen=True)
class Applied:
    """The round after the executor: the loop's answer to `decide_round`."""

    world: World  # with the applied changes in it
    plan: Plan  # the plan the outcomes are of (re-planned after a stale view)
    outcomes: tuple[Outcome, ...]
    state: RunState
    lines: Lines  # the rejections' judgements
    failovers: tuple[Failover, ...] = ()  # recognised from a re-read
    move: str = ""


@dataclass(frozen=True)
class RoundFold:
    world: World
    state: RunState
    lines: Lines
    tail: tuple[Change, ...]  # the notices and the history, for the executor
    conditions: Mapping[str, str]
    moves: tuple[notice_policy.ReportedMove, ...]
    events: tuple[history.Event, ...]
    notified: frozenset[str]  # what counted as notified before this round's notices
    # A notice goes out: `<prefix>/notices` is read again first (an overlapping run may have
    # sent it), and `with_stored_notices` plans from what it holds.
    asks_stored_notices: bool


def fold_round(
    round_plan: RoundPlan, applied: Applied, rules: RoundRules, *, now: float
) -> RoundFold:
    """What the round did, as the Report's lines and the next state; its notices and history."""
    state = applied.state
    number = state.rounds_done + 1
    outcomes, agents = agents_not_registered(applied.outcomes, applied.world, now=now)
    unregistered = {**state.unregistered, **agents.unregistered}
    failovers = list(applied.failovers)
    if moved_role(applied.plan, outcomes):
        failovers.append(
            failover_of(
                applied.plan, round=number, seconds=now - state.started_at, move=applied.move
            )
        )
    # The health checks are kept once a run: a failure of theirs would clear in round 2 and be
    # told anew every run. It is in the Report (the run fails), not in the notices nor the history.
    told = [o for o in outcomes if not isinstance(o.change, HealthCheckChange)]
    events = (
        *round_plan.events,
        *history.round_events(
            round_plan.world, told, failovers, now=now, drop_taken=applied.plan.drop_taken
        ),
    )
    conditions = {
        **round_plan.conditions,
        **applied.plan.conditions,
        **condition_rules.failed_actions(told),
        **condition_rules.unregistered_agents(unregistered),
        **condition_rules.rejected_records(state.rejected),
        **pausing.conditions(applied.world, rules.paused_parameter_name),
    }
    all_failovers = (*state.failovers, *failovers)
    moves = tuple(condition_rules.failovers_to_notify(all_failovers, round=number))
    state = replace(state, unregistered=unregistered, failovers=all_failovers, rounds_done=number)
    world = applied.world
    if failovers:
        # The failover pair swaps at most once per Route 53 detection time: later rounds count
        # from this one, as the next run counts from the history's failover.
        world = replace(world, pair_swapped_at=now)
    lines = applied.lines + agents.lines + outcome_lines(outcomes) + plan_lines(applied.plan)
    return _with_tail(
        RoundFold(
            world=world,
            state=state,
            lines=lines,
            tail=(),
            conditions=conditions,
            moves=moves,
            events=events,
            notified=state.notified,
            asks_stored_notices=False,
        ),
        rules,
        notified=state.notified,
        stored=state.notified,
    )


def with_stored_notices(fold: RoundFold, stored: str | None, rules: RoundRules) -> RoundFold:
    """The tail again after `<prefix>/notices` was read: what an overlapping run notified since
    this run read it counts as notified (it sent them)."""
    reread = condition_rules.notified_after_reread(fold.notified, stored)
    if reread is None:
        return replace(fold, asks_stored_notices=False)
    notified, held = reread
    return replace(
        _with_tail(fold, rules, notified=notified, stored=held), asks_stored_notices=False
    )


def _with_tail(
    fold: RoundFold, rules: RoundRules, *, notified: frozenset[str], stored: frozenset[str]
) -> RoundFold:
    state = fold.state
    notices, remembered = notice_policy.plan_notices(
        notified=notified,
        conditions=fold.conditions,
        failovers=fold.moves,
        paused=state.paused and not state.dry_run,
        subject=rules.subject,
        parameter=rules.notices_parameter_name,
        stored=stored,
    )
    recorded = history.record(rules.history_parameter_name, fold.events)
    tail = (*notices, *((recorded,) if recorded is not None else ()))
    return replace(
        fold,
        state=replace(state, notified=remembered),
        tail=tail,
        asks_stored_notices=not state.dry_run and any(isinstance(c, Notify) for c in notices),
    )


@dataclass(frozen=True)
class Agents:
    unregistered: dict[str, str]
    lines: Lines


def agents_not_registered(
    outcomes: Sequence[Outcome], world: World, *, now: float
) -> tuple[tuple[Outcome, ...], Agents]:
    """Pushes SendCommand refused because SSM does not know the LB's agent (yet).

    Not tried again this run; reported as a failure, and notified, only once the refusal outlasts
    a grace period after the LB's launch: an LB that is still booting is not news. The other
    outcomes are returned for the usual record.
    """
    launched = {lb.instance_id: lb.launch_time for lb in world.lbs}
    rest: list[Outcome] = []
    unregistered: dict[str, str] = {}
    errors: list[Line] = []
    notes: list[Line] = []
    for outcome in outcomes:
        change = outcome.change
        if not (
            isinstance(change, PushBackends) and outcome.code == push_rules.AGENT_NOT_REGISTERED
        ):
            rest.append(outcome)
            continue
        launch = launched.get(change.instance_id, 0.0)
        text = ""
        if push_rules.agent_missing_is_news(launch, now=now):
            text = (
                f"{change.describe()}: SSM does not know the LB's agent {now - launch:.0f} s after "
                f"its launch; tried again next run: {outcome.error}"
            )
            errors.append(Line("ssm-agent-missing", text))
        else:
            notes.append(
                Line(
                    "ssm-agent-waiting",
                    f"{change.describe()}: waits for the LB's SSM agent to register (launched "
                    f"{now - launch:.0f} s ago); tried again next run",
                )
            )
        unregistered[change.instance_id] = text
    return tuple(rest), Agents(unregistered, Lines(errors=tuple(errors), notes=tuple(notes)))


def move_key(world: World, plan: Plan, rules: RoundRules) -> str:
    """The key of the move `plan` makes of the active role ("" if none)."""
    return move_of(world, plan, mode=rules.mode, active_fqdn=rules.active_fqdn)
