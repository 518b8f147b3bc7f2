"""The round loop: observe, then in rounds: probe -> decide_round -> executor -> fold_round.

`reconcile` is the one job: the scheduled run, the event-triggered run (no probes) and the
command line's `reconcile` and `plan`. A run reads the world once (chalicelib/observe.py). Then
it probes in rounds, LBF_PROBE_INTERVAL apart start to start, and after each round acts at once,
so a verdict that changes in round 3 moves the record in round 3, not at the end of the minute.

One round, as `_Loop.decide` makes it: the probe paths (chalicelib/probing.py; the pool's in the
rounds `core.round.pool_due` picks, its invoke beside the rounds) and the reads the
core asks for (Route 53's checkers in a prober-fault round, its view of the failover pair's
checks once per check interval, SSM's pushes in flight) go into
`core.round.decide_round`, which returns the round's one Plan; the executor (chalicelib/
executor.py) applies it; a rejected record batch is re-read here and judged by the core
(`judge_reread`); `core.round.fold_round` turns the outcomes into the Report's lines, the next
RunState and the round's tail Plan (notices, history), which the same executor applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from chalicelib import interrupts, probing
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.core import dns, pausing, rejections, timing
from chalicelib.core import notices as notice_policy
from chalicelib.core.backends import parse_list
from chalicelib.core.changes import ChangeRecords
from chalicelib.core.failover import Failover
from chalicelib.core.model import World
from chalicelib.core.observed import fold_down_states
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import Plan
from chalicelib.core.reread import fold_outcomes
from chalicelib.core.round import (
    Applied,
    Attempt,
    PoolSchedule,
    RoundFold,
    RoundPlan,
    RoundRules,
    RunState,
    SecondOpinionAnswer,
    after_refusal,
    checks_to_ask,
    decide_round,
    fold_round,
    judge_reread,
    move_key,
    pair_checks_to_read,
    pool_due,
    with_stored_notices,
)
from chalicelib.core.round_lines import Line, Lines, tail_lines
from chalicelib.errors import AwsError, DomainNotOwned, WorldNotRead
from chalicelib.executor import Executor, writes_for
from chalicelib.health_checks import ask_checkers, ask_pair_checkers
from chalicelib.observe import observe, refresh_pushes
from chalicelib.report import Report, RoundDone, log_changes, new_run_id
from chalicelib.services import Services

log = logging.getLogger(__name__)


def reconcile(
    settings: Settings,
    services: Services,
    clock: Clock,
    *,
    rounds: int | None = None,
    probe: bool = True,
    dry_run: bool = False,
    job: str = "reconcile",
    concerning: str | None = None,
    run_id: str | None = None,
    deadline: float | None = None,
    progress: Callable[[RoundDone], None] | None = None,
) -> Report:
    """One invocation's work: `rounds` probe rounds (default LBF_PROBE_ROUNDS), acting each round.

    With probe=False (the event-triggered run) no probe is made: it acts on EC2's states and the
    stored verdicts only, and leaves the rise/fall counts to the scheduled rounds. With
    `concerning`, a run about an instance outside the cluster stops after the inventory read.
    `deadline` (the clock's time when the invocation ends) lets a round start only if its probes
    and its writes fit before it (SPEC "Where two rules meet", Time). `progress` is told of each
    round as it ends (the command line prints it). Ctrl-C ends the run between steps: the Report
    returned says `interrupted` and holds what was applied until then.
    """
    started = clock.now()
    report = Report(job=job, run_id=run_id or new_run_id(), dry_run=dry_run or settings.dry_run)
    # The LBs' invoke of the prober function may outlast the probes (the pool's: core.timing).
    invoke = settings.lbs_through_prober
    needs = timing.round_seconds(
        probes=probe, probe_timeout=settings.probe_timeout, prober_invoke=invoke
    )
    if not timing.round_fits(starts_at=started, deadline=deadline, needs=needs):
        # Not even one round fits: reading the world would only spend the time left.
        report.error(
            "no-time-for-a-round",
            _no_time_for(1, started, deadline, needs, probes=probe, invoke=invoke),
        )
        return report
    world = _observed(settings, services, clock, report, started=started, concerning=concerning)
    if world is None:
        return report
    executor, world, state = _start(
        world, settings, services, clock, report, started=started, probe=probe, dry_run=dry_run
    )
    probes = probing.RoundProbes(settings, services)
    rules = round_rules(settings)
    loop = _Loop(settings, services, clock, executor, report, rules, probes, progress)
    world, state = loop.rounds(
        world,
        state,
        count=settings.probe_rounds if rounds is None else rounds,
        deadline=deadline,
        needs=needs,
    )
    report.world = replace(world, notices=state.notified)
    report.healthy_lbs = sum(1 for lb in world.lbs if dns.is_eligible(lb))
    report.seconds = clock.now() - started
    return report


def _start(
    world: World,
    settings: Settings,
    services: Services,
    clock: Clock,
    report: Report,
    *,
    started: float,
    probe: bool,
    dry_run: bool,
) -> tuple[Executor, World, RunState]:
    """The run's executor and its first state, from the world it read."""
    writes_only_printed = dry_run or settings.dry_run
    report.dry_run = writes_only_printed or world.paused
    if world.paused:
        report.note(
            "paused",
            f"paused: {pausing.describe(world, settings.paused_parameter_name)}; planning only",
        )
    if world.health_checks_error is not None:
        report.error("health-checks-unread", world.health_checks_error)
    # Every write of the run goes through this one executor: its mode decides what is written
    # and what only printed, per kind of change (paused: notices still go out, marked paused).
    executor = Executor(
        services, now=clock.now, writes=writes_for(dry_run=writes_only_printed, paused=world.paused)
    )
    world = fold_down_states(world, settings.rules.thresholds)
    state = RunState(
        started_at=started,
        # LBF_MAX_POOL_DROP bounds the whole run against the list published when it started.
        start_list=parse_list(world.backends_parameter),
        probes=probe,
        notified=world.notices,
        dry_run=writes_only_printed,
        paused=world.paused,
    )
    return executor, world, state


def round_rules(settings: Settings) -> RoundRules:
    """What a round reads of the settings, built once per run."""
    rules = settings.rules
    return RoundRules(
        plan=rules.plan,
        thresholds=rules.thresholds,
        prober_fault_percent=settings.prober_fault_percent,
        second_opinion=rules.second_opinion,
        mode=settings.mode,
        active_fqdn=rules.records.active_fqdn,
        subject=notice_policy.subject_of(settings.cluster),
        paused_parameter_name=settings.paused_parameter_name,
        notices_parameter_name=settings.notices_parameter_name,
        history_parameter_name=settings.history_parameter_name,
        pool=PoolSchedule(
            probe_interval=settings.probe_interval,
            pool_interval=settings.pool_interval,
            pool_seconds=timing.path_seconds(
                settings.probe_timeout, invoke=settings.pool_through_prober
            ),
        ),
    )


def _observed(
    settings: Settings,
    services: Services,
    clock: Clock,
    report: Report,
    *,
    started: float,
    concerning: str | None,
) -> World | None:
    """The run's one read of the world; None (the Report says why) when there is none to act on."""
    try:
        world = observe(settings, services, now=started, concerning=concerning)
    except DomainNotOwned as exc:
        report.refuse(str(exc))
    except WorldNotRead as exc:
        report.error("view-not-loaded", str(exc))
    else:
        if world is not None:
            return world
        report.note(
            "other-cluster", f"{concerning} is not an instance of cluster {settings.cluster}"
        )
    report.seconds = clock.now() - started
    return None


@dataclass(frozen=True)
class _RoundStart:
    number: int  # from 0
    starts_at: float
    deadline: float | None  # the run's, as its rounds are budgeted (timing.round_fits)
    last: bool  # no round follows: the count's last, or the next would not fit the deadline


@dataclass(frozen=True)
class _Loop:
    """What stays the same through a run's rounds; the world and the RunState are passed along."""

    settings: Settings
    services: Services
    clock: Clock
    executor: Executor
    report: Report
    rules: RoundRules
    probes: probing.RoundProbes  # the pool's invoke beside the rounds is its only state
    progress: Callable[[RoundDone], None] | None

    def rounds(
        self, world: World, state: RunState, *, count: int, deadline: float | None, needs: float
    ) -> tuple[World, RunState]:
        clock, report = self.clock, self.report
        verdicts = _verdicts(world)
        previous = state.started_at - self.settings.probe_interval  # before the first round
        written = False  # the last round started has written all it had to
        try:
            for number in range(count):
                start = self._slot(number, count, state.started_at, previous, deadline, needs)
                if start is None:
                    continue  # overrun by the round before: not made up back to back
                # The first round's reads are start-up: they shift no round after it.
                previous = start.starts_at if number > 0 else state.started_at
                if not timing.round_fits(starts_at=start.starts_at, deadline=deadline, needs=needs):
                    self._not_started(state.rounds_done, start, needs, probes=state.probes)
                    break
                written = False
                done_before = (len(report.applied), len(report.planned), len(report.errors))
                wait = start.starts_at - clock.now() if number > 0 else 0.0
                if wait > 0:
                    clock.sleep(wait)
                planned = self.decide(world, state, start)
                # From here the round writes: Ctrl-C waits for its writes (and their record in
                # the Report), so that what the Report says was applied is what was.
                with interrupts.writes_finish_first() as held:
                    ended = self.write(planned)
                if ended is None:
                    break  # the domain is no longer this cluster's: not another write
                world, state = ended
                written = True
                if self.progress is not None:
                    now_verdicts = _verdicts(world)
                    self.progress(
                        _round_done(
                            state.rounds_done,
                            report,
                            done_before,
                            verdicts,
                            now_verdicts,
                            clock.now() - state.started_at,
                            clock.now(),
                        )
                    )
                    verdicts = now_verdicts
                if held.interrupted:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            self._interrupted(state.rounds_done, written=written)
        return world, state

    def _interrupted(self, done: int, *, written: bool) -> None:
        """Ctrl-C between steps (a wait, a probe round, a printed line) or right after a round's
        writes: the Report holds every change applied, and nothing was left half-done."""
        self.report.interrupted = True
        where = f"after round {done}" if written else f"in round {done + 1}"
        self.report.note(
            "interrupted",
            f"interrupted {where}: what is reported as changed was applied, nothing after "
            "it; the next scheduled run carries on",
        )

    def _slot(
        self,
        number: int,
        count: int,
        started_at: float,
        previous: float,
        deadline: float | None,
        needs: float,
    ) -> _RoundStart | None:
        """When the round of schedule slot `number` starts (`timing.round_start`), or None: it
        is dropped. The `last` round is the count's last, or one after which none would fit."""
        interval = self.settings.probe_interval
        last = number == count - 1
        starts_at = timing.round_start(
            scheduled_at=started_at + number * interval,
            now=self.clock.now(),
            previous=previous,
            interval=interval,
            last=last,
        )
        if starts_at is None:
            return None
        after = max(started_at + (number + 1) * interval, starts_at + interval)
        last = last or not timing.round_fits(starts_at=after, deadline=deadline, needs=needs)
        return _RoundStart(number, starts_at, deadline, last)

    def _not_started(self, done: int, start: _RoundStart, needs: float, *, probes: bool) -> None:
        """A round cut short by the invocation's end could stop mid-change; the next run starts
        within the minute and does this round's work. `done`: the rounds made before it."""
        invoke = self.settings.lbs_through_prober
        text = _no_time_for(
            done + 1, start.starts_at, start.deadline, needs, probes=probes, invoke=invoke
        )
        if done > 0:
            self.report.note("round-not-started", text)
        else:
            self.report.error("no-time-for-a-round", text)
        log.warning(text)

    def decide(self, world: World, state: RunState, start: _RoundStart) -> RoundPlan:
        """Probe, read what the core asks for, and decide: the round's Plan, nothing written."""
        report = self.report
        paths: list[probing.PathRound] = []
        if state.probes:
            pool, state = pool_due(
                state,
                self.rules,
                number=start.number,
                starts_at=start.starts_at,
                deadline=start.deadline,
                busy=self.probes.busy(start.starts_at),
            )
            paths = self.probes.probe(world, start.starts_at, pool=pool, last=start.last)
        asked = checks_to_ask(world, paths, state, self.rules)
        statuses, error = ask_checkers(self.services, asked) if asked else ({}, None)
        answer = SecondOpinionAnswer(statuses, error)
        pair_checks = pair_checks_to_read(world, state, self.rules, now=self.clock.now())
        if pair_checks:
            pair_statuses, pair_error = ask_pair_checkers(self.services, pair_checks)
            answer = replace(answer, pair_statuses=pair_statuses)
            if pair_error is not None:
                report.note("route53-view-unread", f"Route 53's view not read: {pair_error}")
        pushes, unread = refresh_pushes(world, self.services)
        planned = decide_round(
            world, paths, state, self.rules, now=self.clock.now(), pushes=pushes, answer=answer
        )
        report.probe_failures += planned.probe_failures
        report.add(planned.lines)
        for text in unread:
            report.error("push-unread", text)
        return planned

    def write(self, planned: RoundPlan) -> tuple[World, RunState] | None:
        """Apply, fold, and apply the tail: the round's writes. None when the run is refused
        mid-round (the domain changed hands): not another write, nor a notice."""
        report = self.report
        applied, refused = self.apply(planned)
        fold = fold_round(planned, applied, self.rules, now=self.clock.now())
        report.plan = applied.plan
        report.failovers = list(fold.state.failovers)
        if refused is not None:
            report.refuse(refused)
            report.add(fold.lines)
            return None
        report.add(fold.lines)
        report.rounds = fold.state.rounds_done
        fold = self._notices_reread(fold)
        report.add(tail_lines(self.executor.apply_changes(fold.tail)))
        return fold.world, fold.state

    def _notices_reread(self, fold: RoundFold) -> RoundFold:
        """Before a notice goes out: what an overlapping run notified since counts as notified.
        A read, not a write; if it fails, the notice goes out (better twice than never)."""
        if not fold.asks_stored_notices:
            return fold
        name = self.settings.notices_parameter_name
        try:
            stored = self.services.parameters.read([name])
        except AwsError:
            return fold
        return with_stored_notices(fold, stored.get(name), self.rules)

    def apply(self, planned: RoundPlan) -> tuple[Applied, str | None]:
        """The round's Plan, applied; a rejected record batch judged by a re-read (the core's
        `judge_reread`). The refusal's reason when the re-read finds the domain another's."""
        attempt = self._attempt(planned.world, planned.plan)
        state, lines = planned.state, Lines()
        failovers: tuple[Failover, ...] = ()
        refused = None
        while any(o.rejected for o in attempt.outcomes):
            try:
                fresh = observe(self.settings, self.services, now=self.clock.now())
            except DomainNotOwned as exc:
                refused = str(exc)  # the TXT changed hands since the run read it (a handover)
                break
            except WorldNotRead as exc:
                text = f"re-reading after a rejected change failed: {exc}"
                lines += Lines(errors=(Line("reread-failed", text),))
                break
            assert fresh is not None  # only a run `concerning` one instance can read None
            reread = judge_reread(attempt, fresh, state, self.rules, now=self.clock.now())
            state, lines, failovers = (
                reread.state,
                lines + reread.lines,
                failovers + reread.failovers,
            )
            if reread.permanent is not None:
                attempt, state, more = self._without_refused(attempt, reread.permanent, state)
                lines += more
                break
            if reread.again is None:  # stale twice: the next round plans from this re-read
                attempt = replace(attempt, world=reread.world, outcomes=reread.outcomes)
                break
            stood = tuple(o for o in attempt.outcomes if not o.rejected and not o.skipped)
            attempt = self._attempt(reread.world, reread.again, planned_again=True)
            attempt = replace(attempt, outcomes=stood + attempt.outcomes)
        applied = Applied(
            attempt.world, attempt.plan, attempt.outcomes, state, lines, failovers, attempt.move
        )
        return applied, refused

    def _attempt(self, world: World, plan: Plan, *, planned_again: bool = False) -> Attempt:
        outcomes = tuple(self.executor.apply(plan))
        move = move_key(world, plan, self.rules)
        return Attempt(_folded(world, outcomes), plan, outcomes, move, planned_again)

    def _without_refused(
        self, attempt: Attempt, batch: tuple[ChangeRecords, str], state: RunState
    ) -> tuple[Attempt, RunState, Lines]:
        """A permanent rejection: each compare-and-swap of the batch alone, when it held more
        than one (the ones rejected again are the refused ones), then the rest of the round."""
        alone = rejections.compare_and_swaps(batch[0])
        tried = self.executor.apply_changes(alone) if len(alone) > 1 else []
        world = _folded(attempt.world, tried)
        state, lines, left = after_refusal(attempt, batch, tried, state, self.rules)
        later = self.executor.apply(left.rest)
        world = _folded(world, later)
        outcomes = (*left.attempted, *later, *left.waiting)
        return replace(attempt, world=world, plan=left.plan, outcomes=outcomes), state, lines


def _verdicts(world: World) -> dict[str, tuple[str, str]]:
    """instance id -> (name as shown, verdict), to tell a round's verdict changes."""
    return {
        instance.instance_id: (
            instance.name or instance.address or instance.instance_id,
            instance.verdict.value,
        )
        for instance in (*world.lbs, *world.webs)
    }


def _round_done(
    number: int,
    report: Report,
    done_before: tuple[int, int, int],
    before: dict[str, tuple[str, str]],
    after: dict[str, tuple[str, str]],
    seconds: float,
    at: float,
) -> RoundDone:
    applied, planned, errors = done_before
    changed = []
    for key, (name, verdict) in after.items():
        was = before.get(key, (name, "unknown"))[1]
        if was != verdict:
            changed.append(f"{name} {was} -> {verdict}")
    return RoundDone(
        number=number,
        at=at,
        seconds=seconds,
        verdicts=tuple(changed),
        applied=tuple(report.applied[applied:]),
        planned=tuple(report.planned[planned:]),
        errors=tuple(report.errors[errors:]),
    )


def on_instance_change(
    settings: Settings,
    services: Services,
    clock: Clock,
    instance_id: str,
    *,
    run_id: str | None = None,
    deadline: float | None = None,
) -> Report:
    """The event-triggered run (EC2 state change of `instance_id`): one round, no probes."""
    return reconcile(
        settings,
        services,
        clock,
        rounds=1,
        probe=False,
        job="on_instance_change",
        concerning=instance_id,
        run_id=run_id,
        deadline=deadline,
    )


def _no_time_for(
    number: int,
    starts_at: float,
    deadline: float | None,
    needs: float,
    *,
    probes: bool,
    invoke: bool = False,
) -> str:
    left = (starts_at if deadline is None else deadline) - starts_at
    parts = f"{timing.ROUND_WRITE_SECONDS:g} s for its writes"
    if probes and invoke:
        parts = (
            f"its probes' LBF_PROBE_TIMEOUT, {timing.PROBER_INVOKE_SECONDS:g} s for the prober "
            f"function's invoke and {parts}"
        )
    elif probes:
        parts = f"its probes' LBF_PROBE_TIMEOUT and {parts}"
    return (
        f"round {number} not started: {max(0.0, left):.1f} s of the run left when it would "
        f"start (probes before the next scheduled run, writes before the invocation's end), "
        f"and a round needs {needs:g} s ({parts})"
    )


def _folded(world: World, outcomes: Sequence[Outcome]) -> World:
    """The view after a batch of outcomes, each applied change logged with what it replaced."""
    log_changes(world, outcomes)
    return fold_outcomes(world, outcomes)
