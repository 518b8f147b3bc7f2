"""The round loop: observe -> decide -> apply, in rounds, with a Report of what happened.

`reconcile` is the one job: the scheduled run, the event-triggered run (no probes) and the
command line's `reconcile` and `plan`. A run reads the world once (chalicelib/observe.py). Then
it probes in rounds, LBF_PROBE_INTERVAL apart start to start, and after each round plans and
applies at once, so a verdict that changes in round 3 moves the record in round 3, not at the end
of the minute. The decisions are the core's, every write is the executor's, and the Report and
the notices are chalicelib/report.py's bookkeeping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from chalicelib import interrupts, probing
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.core import conditions as condition_rules
from chalicelib.core import dns, history, pausing, rejections, timing
from chalicelib.core import pushes as push_rules
from chalicelib.core.backends import parse_list
from chalicelib.core.failover import failover_of, move_of, recognised
from chalicelib.core.model import World
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import (
    ChangeRecords,
    Plan,
    PushBackends,
    decide,
    fold_down_states,
    fold_probes,
    is_prober_fault,
)
from chalicelib.core.reread import fold_outcomes, merge_reread, rejected_batch, without_rejected
from chalicelib.errors import DomainNotOwned, ViewNotLoaded
from chalicelib.executor import Executor, mode_of
from chalicelib.health_checks import SecondOpinion, keep_health_checks
from chalicelib.observe import observe, refresh_pushes
from chalicelib.report import Report, RoundDone, log_changes, new_run_id, notify, record_round
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
    round_needs = timing.round_seconds(
        probes=probe, probe_timeout=settings.probe_timeout, prober_invoke=invoke
    )
    if not timing.round_fits(starts_at=started, deadline=deadline, needs=round_needs):
        # Not even one round fits: reading the world would only spend the time left.
        report.error(
            "no-time-for-a-round",
            _no_time_for(1, started, deadline, round_needs, probes=probe, invoke=invoke),
        )
        return report
    try:
        observed = observe(settings, services, now=started, concerning=concerning)
    except DomainNotOwned as exc:
        report.seconds = clock.now() - started
        return report.refuse(str(exc))
    except ViewNotLoaded as exc:
        report.error("view-not-loaded", str(exc))
        report.seconds = clock.now() - started
        return report
    if observed is None:
        report.note(
            "other-cluster", f"{concerning} is not an instance of cluster {settings.cluster}"
        )
        report.seconds = clock.now() - started
        return report
    world = observed

    report.dry_run = dry_run or settings.dry_run or world.paused
    if world.paused:
        report.note(
            "paused",
            f"paused: {pausing.describe(world, settings.paused_parameter_name)}; planning only",
        )
    if world.health_checks_error is not None:
        report.error("health-checks-unread", world.health_checks_error)
    second_opinion = SecondOpinion(services, clock)
    rejected: dict[str, str] = {}  # record names Route 53 rejects this run, left out after
    unregistered: dict[str, str] = {}  # LBs SSM does not know this run -> their condition or ""
    # Every write of the run goes through this one executor: its mode decides what is written
    # and what only printed, per kind of change (paused: notices still go out, marked paused).
    executor = Executor(
        services,
        now=clock.now,
        mode=mode_of(dry_run=dry_run or settings.dry_run, paused=world.paused),
    )
    thresholds = settings.rules.thresholds
    world = fold_down_states(world, thresholds)
    count = settings.probe_rounds if rounds is None else rounds
    # LBF_MAX_POOL_DROP bounds the whole run against the list published when it started.
    start_list = parse_list(world.backends_parameter)

    # Whether a probe path was taken as a fault on the prober's side this run: such a run does
    # not count toward releasing a list LBF_MAX_POOL_DROP holds (core.held_drop).
    faults: list[str] = []
    verdicts = _verdicts(observed)
    round_probes = probing.RoundProbes(settings, services, deadline=deadline)
    number = 0
    try:
        for number in range(count):
            starts_at = max(clock.now(), started + number * settings.probe_interval)
            if not timing.round_fits(starts_at=starts_at, deadline=deadline, needs=round_needs):
                # A round cut short by the invocation's end could stop mid-change; the next run
                # starts within the minute and does this round's work.
                text = _no_time_for(
                    number + 1, starts_at, deadline, round_needs, probes=probe, invoke=invoke
                )
                if number > 0:
                    report.note("round-not-started", text)
                else:
                    report.error("no-time-for-a-round", text)
                log.warning(text)
                break
            done_before = (len(report.applied), len(report.planned), len(report.errors))
            if number > 0:
                wait = starts_at - clock.now()
                if wait > 0:
                    clock.sleep(wait)
            conditions: dict[str, str] = {}
            if probe:
                last = number == count - 1
                scheduled_at = started + number * settings.probe_interval
                for path in round_probes.probe(world, starts_at, scheduled_at, last=last):
                    world = _judge_path(
                        world, path, settings, conditions, report, second_opinion, faults
                    )
                round_probes.keep_conditions(conditions)
            pushes_before = world.pushes
            world = refresh_pushes(world, services, report)
            events = history.push_events(world, pushes_before, world.pushes, now=clock.now())
            # From here the round writes: Ctrl-C waits for its writes (and their record in the
            # Report), so that what the Report says was applied is what was.
            with interrupts.writes_finish_first() as held:
                world, plan = _plan_and_apply(
                    world,
                    settings,
                    services,
                    executor,
                    report,
                    clock,
                    started,
                    rejected,
                    unregistered,
                    start_list,
                    prober_fault=bool(faults) if probe else None,
                    events=events,
                )
                if report.configuration_error is not None:
                    break  # the domain is no longer this cluster's: not another write, nor a notice
                if number == 0:  # after the records: a failover never waits for a health check
                    keep_health_checks(world, settings, executor, report, started)
                conditions.update(plan.conditions)
                conditions.update(pausing.conditions(world, settings.paused_parameter_name))
                report.rounds = number + 1
                world = notify(world, settings, services, report, conditions, executor)
                _record_history(settings, executor, report, events)
            if progress is not None:
                now_verdicts = _verdicts(world)
                seconds = clock.now() - started
                progress(
                    _round_done(
                        number + 1,
                        report,
                        done_before,
                        verdicts,
                        now_verdicts,
                        seconds,
                        clock.now(),
                    )
                )
                verdicts = now_verdicts
            if held.interrupted:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        # Between steps (a wait, a probe round, a printed line) or right after a round's writes:
        # the Report holds every change applied, and nothing was left half-done.
        report.interrupted = True
        where = "after" if report.rounds == number + 1 else "in"
        report.note(
            "interrupted",
            f"interrupted {where} round {number + 1}: what is reported as changed was applied, "
            "nothing after it; the next scheduled run carries on",
        )

    report.world = world
    report.healthy_lbs = sum(1 for lb in world.lbs if dns.is_eligible(lb))
    report.seconds = clock.now() - started
    return report


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


def _record_history(
    settings: Settings, executor: Executor, report: Report, events: list[history.Event]
) -> None:
    """The round's events, one version of `<prefix>/history`; a steady round writes nothing."""
    change = history.record(settings.history_parameter_name, events)
    if change is None:
        return
    for outcome in executor.apply_changes([change]):
        if outcome.printed:
            report.planned.append(change.describe())
        elif outcome.ok:
            report.applied.append(change.describe())
        else:
            report.error("history-not-stored", f"history not stored: {outcome.error}")


def _judge_path(
    world: World,
    path: probing.PathRound,
    settings: Settings,
    conditions: dict[str, str],
    report: Report,
    second_opinion: SecondOpinion,
    faults: list[str],
) -> World:
    """Folds one probe path's round into the view, unless it is a fault on the prober's side."""
    where = "" if path.condition == probing.IN_PROCESS else " of the prober function"
    if path.fault is not None or is_prober_fault(path.judged, settings.prober_fault_percent):
        faults.append(path.condition)
    if path.fault is not None:
        conditions[path.condition] = (
            f"the prober function did not answer for {len(path.targets)} private target(s): "
            f"{path.fault}; taken as a fault on the prober's side; no verdict changed from them"
        )
        return world
    failed = [key for key, result in path.results.items() if not result.ok]
    report.probe_failures += len(failed)
    if is_prober_fault(path.judged, settings.prober_fault_percent):
        conditions[path.condition] = (
            f"{len(failed)} of {len(path.results)} probes{where} failed in one round: taken as "
            "a fault on the prober's side; no verdict changed"
        )
        second_opinion.consult(world, failed, conditions, report)
        return world
    return fold_probes(world, path.results, settings.rules.thresholds)


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


def _plan_and_apply(
    world: World,
    settings: Settings,
    services: Services,
    executor: Executor,
    report: Report,
    clock: Clock,
    started: float,
    rejected: dict[str, str] | None = None,
    unregistered: dict[str, str] | None = None,
    start_list: tuple[str, ...] | None = None,
    *,
    prober_fault: bool | None = None,
    events: list[history.Event] | None = None,
) -> tuple[World, Plan]:
    """One round's plan, applied; a rejected record batch is judged by a re-read.

    `rejected` (record name -> Route 53's message) holds this run's permanent rejections, and
    `unregistered` the LBs whose SSM agent SendCommand did not know: their changes are left out
    of the later rounds' plans, and tried again by the next run. `start_list` is the backend
    list published when the run started: LBF_MAX_POOL_DROP is counted against it. What the
    round did is added to `events` (core.history).
    """
    rejected = {} if rejected is None else rejected
    unregistered = {} if unregistered is None else unregistered
    active_fqdn = settings.rules.records.active_fqdn

    def decided(world: World) -> Plan:
        plan = rejections.without(
            decide(
                world,
                settings.rules.plan,
                run_started_at=started,
                run_start_list=start_list,
                prober_fault=prober_fault,
            ),
            rejected,
            active_fqdn=active_fqdn,
        )
        kept = tuple(
            c
            for c in plan.changes
            if not (isinstance(c, PushBackends) and c.instance_id in unregistered)
        )
        return replace(plan, changes=kept)

    plan = decided(world)
    planned_from = world
    failovers_before = len(report.failovers)
    move = move_of(world, plan, mode=settings.mode, active_fqdn=active_fqdn)
    outcomes = executor.apply(plan)
    world = _folded(world, outcomes)
    planned_again = False
    while any(o.rejected for o in outcomes):
        # Route 53 rejects a stale compare-and-swap, a batch that can never go through, and the
        # retry of a batch that went through but whose answer was lost, all alike (and moto
        # words them otherwise than AWS). Only a re-read tells them apart; until then the
        # rejection is only that.
        try:
            fresh = observe(settings, services, now=clock.now())
        except DomainNotOwned as exc:
            # The TXT changed hands since the run read it (a handover): it stops here.
            report.refuse(str(exc))
            break
        except ViewNotLoaded as exc:
            report.error("reread-failed", f"re-reading after a rejected change failed: {exc}")
            break
        assert fresh is not None  # only a run `concerning` one instance can read None
        batch = rejected_batch(outcomes)
        if batch is not None and rejections.unchanged(
            world.records, fresh.records, batch[0].changes
        ):
            world, plan, outcomes = _apply_without_rejected(
                world, plan, outcomes, batch, executor, report, rejected, active_fqdn
            )
            break
        # Stale: someone changed the record since we read it, most likely an overlapping run,
        # whose view is newer than ours in more than the record (its verdicts, its pushes):
        # plan once more from everything read again, or the LB it chose would be judged by our
        # older verdicts and the record moved a second time.
        if recognised(plan, fresh, mode=settings.mode, active_fqdn=active_fqdn):
            report.failovers.append(
                failover_of(
                    plan,
                    round=report.rounds + 1,
                    seconds=clock.now() - started,
                    move=move,
                    recognised=True,
                )
            )
        world = merge_reread(world, fresh, settings.rules.thresholds)
        if planned_again:
            for outcome in outcomes:
                if outcome.rejected:
                    report.error(
                        "stale",
                        f"{outcome.change.describe()}: still stale after a re-read (the records "
                        f"changed again); the next round plans from this re-read: {outcome.error}",
                    )
            outcomes = [o for o in outcomes if not o.rejected]
            break
        planned_again = True
        report.note(
            "newer-view",
            "a change was rejected and a re-read shows its records changed since (stale): "
            "planned again from the re-read",
        )
        first = outcomes
        plan = decided(world)
        move = move_of(world, plan, mode=settings.mode, active_fqdn=active_fqdn)
        outcomes = executor.apply(plan)
        world = _folded(world, outcomes)
        outcomes = [o for o in first if not o.rejected and not o.skipped] + outcomes
    outcomes = _agents_not_registered(outcomes, world, report, unregistered, now=clock.now())
    failed = record_round(plan, outcomes, report, elapsed=clock.now() - started, move=move)
    if events is not None:
        events += history.round_events(
            planned_from,
            outcomes,
            report.failovers[failovers_before:],
            now=clock.now(),
            drop_taken=plan.drop_taken,
        )
    failed.update(condition_rules.unregistered_agents(unregistered))
    failed.update(condition_rules.rejected_records(rejected))
    return world, replace(plan, conditions={**plan.conditions, **failed})


def _agents_not_registered(
    outcomes: list[Outcome],
    world: World,
    report: Report,
    unregistered: dict[str, str],
    *,
    now: float,
) -> list[Outcome]:
    """Pushes SendCommand refused because SSM does not know the LB's agent (yet).

    Not tried again this run; reported as a failure, and notified, only once the refusal outlasts
    a grace period after the LB's launch: an LB that is still booting is not news. The other
    outcomes are returned for the usual record.
    """
    launched = {lb.instance_id: lb.launch_time for lb in world.lbs}
    rest = []
    for outcome in outcomes:
        change = outcome.change
        if not (
            isinstance(change, PushBackends) and outcome.code == push_rules.AGENT_NOT_REGISTERED
        ):
            rest.append(outcome)
            continue
        launch = launched.get(change.instance_id, 0.0)
        if push_rules.agent_missing_is_news(launch, now=now):
            text = (
                f"{change.describe()}: SSM does not know the LB's agent {now - launch:.0f} s after "
                f"its launch; tried again next run: {outcome.error}"
            )
            report.error("ssm-agent-missing", text)
        else:
            text = ""
            report.note(
                "ssm-agent-waiting",
                f"{change.describe()}: waits for the LB's SSM agent to register (launched "
                f"{now - launch:.0f} s ago); tried again next run",
            )
        unregistered[change.instance_id] = text
    return rest


def _apply_without_rejected(
    world: World,
    plan: Plan,
    outcomes: list[Outcome],
    batch: tuple[ChangeRecords, str],
    executor: Executor,
    report: Report,
    rejected: dict[str, str],
    active_fqdn: str,
) -> tuple[World, Plan, list[Outcome]]:
    """A permanent rejection: the round goes on without the records Route 53 refuses.

    The re-read shows every record of the batch unchanged, so it cannot tell which of them Route
    53 refuses, and Route 53's message is not parsed for it (AWS and moto word it differently). A
    batch of one compare-and-swap is that one; otherwise each compare-and-swap is sent again in a
    batch of its own: the ones rejected again are the rejected ones, the others are applied.
    """
    change, message = batch
    alone = rejections.compare_and_swaps(change)
    tried: list[Outcome] = []
    if len(alone) == 1:
        refused = {change: message}
    else:
        tried = executor.apply_changes(alone)
        world = _folded(world, tried)
        refused = {
            o.change: o.error or ""
            for o in tried
            if o.rejected and isinstance(o.change, ChangeRecords)
        }
    for records, why in refused.items():
        names = {c.record.name for c in records.changes}
        rejected.update(dict.fromkeys(names, why))
        report.error(
            "route53-rejected",
            f"Route 53 rejected {records.describe()}: {why}; a re-read shows the records "
            "unchanged, so it is permanent, not a race: the run goes on without them",
        )
    if len(alone) > 1 and not refused:
        report.note(
            "route53-rejected-whole",
            f"Route 53 rejected {change.describe()} but took each of its records in a batch of "
            "its own",
        )
    left = without_rejected(
        plan,
        [*outcomes, *tried],
        {name for records in refused for name in (c.record.name for c in records.changes)},
        active_fqdn=active_fqdn,
    )
    later = executor.apply(left.rest)
    world = _folded(world, later)
    return world, left.plan, [*left.attempted, *later, *left.waiting]


def _folded(world: World, outcomes: list[Outcome]) -> World:
    """The view after a batch of outcomes, each applied change logged with what it replaced."""
    log_changes(world, outcomes)
    return fold_outcomes(world, outcomes)
