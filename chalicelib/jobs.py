"""The jobs: observe -> decide -> apply, in rounds, and a Report of what happened.

A run reads the inventory, the records and the parameters once. Then it probes in rounds,
LBF_PROBE_INTERVAL apart start to start, and after each round plans and applies at once, so a
verdict that changes in round 3 moves the record in round 3, not at the end of the minute.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Protocol

from chalicelib import probing
from chalicelib.config import Settings
from chalicelib.core import dns
from chalicelib.core.health import Thresholds
from chalicelib.core.inventory import ParseRules, build_inventory
from chalicelib.core.model import (
    Command,
    HealthCheck,
    Instance,
    World,
)
from chalicelib.core.plan import (
    Change,
    ChangeRecords,
    MoveAddress,
    Plan,
    PutParameter,
    SetTags,
    after,
    decide,
    fold_down_states,
    fold_probes,
    is_prober_fault,
    latest_commands,
    thresholds_of,
)
from chalicelib.core.second_opinion import (
    CheckerObservation,
    CreateHealthCheck,
    UpdateHealthCheck,
    checks_to_consult,
    opinions_of,
    plan_health_checks,
)
from chalicelib.errors import AwsError, ViewNotLoaded
from chalicelib.executor import DryRunExecutor, Executor, Outcome, applied
from chalicelib.services import Services

log = logging.getLogger(__name__)

# Pushes older than this are not looked up again: an LB that never answered is pushed anew.
COMMAND_LOOKBACK_SECONDS = 3600


class Clock(Protocol):
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Failover:
    moved_from: str | None
    moved_to: str | None
    reason: str
    round: int
    seconds: float  # since the run started


@dataclass
class Report:
    job: str
    run_id: str
    dry_run: bool = False
    rounds: int = 0
    applied: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    failovers: list[Failover] = field(default_factory=list)
    probe_failures: int = 0
    healthy_lbs: int = 0
    seconds: float = 0.0
    plan: Plan | None = None
    world: World | None = None
    timeline: list[tuple[float, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def observe(
    settings: Settings, services: Services, *, now: float, concerning: str | None = None
) -> World | None:
    """One read of everything. If any part fails the run stops: never act on half a view.

    With `concerning`, None when that instance is not in the cluster (nothing more is read).
    """
    try:
        raws = services.inventory.describe(settings.cluster)
        inventory = build_inventory(
            raws,
            ParseRules(
                active_name=settings.active_name,
                lb_address=settings.lb_address,
                pool_address=settings.pool_address,
                pool_port=settings.pool_port,
            ),
        )
        if concerning is not None and concerning not in {r.instance_id for r in raws}:
            return None
        records = services.records.read(settings.domain)
        names = [
            settings.backends_parameter,
            settings.lbs_parameter,
            settings.paused_parameter,
            settings.notices_parameter,
        ]
        parameters = services.parameters.read(names)
        commands = services.commands.recent(since=now - COMMAND_LOOKBACK_SECONDS)
        eip_instance_id = eip_address = None
        if settings.mode == "eip" and settings.eip_allocation_id:
            eip_instance_id, eip_address = services.inventory.address_holder(
                settings.eip_allocation_id
            )
    except AwsError as exc:
        raise ViewNotLoaded(f"could not read the world, acting on nothing: {exc}") from exc
    notices = parameters.get(settings.notices_parameter, "")
    health_checks, health_checks_error = _read_health_checks(settings, services)
    return World(
        lbs=inventory.lbs,
        webs=inventory.webs,
        skipped=inventory.skipped,
        records=records,
        backends_parameter=parameters.get(settings.backends_parameter),
        lbs_parameter=parameters.get(settings.lbs_parameter),
        paused=parameters.get(settings.paused_parameter, "").strip().lower() == "true",
        commands=tuple(commands),
        notices=frozenset(line for line in notices.splitlines() if line and line != "none"),
        eip_instance_id=eip_instance_id,
        eip_address=eip_address,
        health_checks=health_checks,
        health_checks_error=health_checks_error,
    )


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
) -> Report:
    """One invocation's work: `rounds` probe rounds (default LBF_PROBE_ROUNDS), acting each round.

    With probe=False (the event-triggered run) no probe is made: it acts on EC2's states and the
    stored verdicts only, and leaves the rise/fall counts to the scheduled rounds. With
    `concerning`, a run about an instance outside the cluster stops after the inventory read.
    """
    started = clock.now()
    report = Report(job=job, run_id=run_id or new_run_id())
    try:
        observed = observe(settings, services, now=started, concerning=concerning)
    except ViewNotLoaded as exc:
        report.errors.append(str(exc))
        report.seconds = clock.now() - started
        return report
    if observed is None:
        report.notes.append(f"{concerning} is not an instance of cluster {settings.cluster}")
        report.seconds = clock.now() - started
        return report
    world = observed

    report.dry_run = dry_run or settings.dry_run or world.paused
    if world.paused:
        report.notes.append(f"paused: {settings.paused_parameter} is true; planning only")
    if world.health_checks_error is not None:
        report.errors.append(world.health_checks_error)
    second_opinion = _SecondOpinion(services, clock)
    executor: Executor = (
        DryRunExecutor(now=clock.now) if report.dry_run else Executor(services, now=clock.now)
    )
    thresholds = thresholds_of(settings)
    world = fold_down_states(world, thresholds)
    count = settings.probe_rounds if rounds is None else rounds

    for number in range(count):
        if number > 0:
            wait = started + number * settings.probe_interval - clock.now()
            if wait > 0:
                clock.sleep(wait)
        conditions: dict[str, str] = {}
        if probe:
            for path in probing.probe_round(world, settings, services):
                world = _judge_path(world, path, settings, conditions, report, second_opinion)
        world = _refresh_commands(world, services, report)
        world, plan = _plan_and_apply(world, settings, services, executor, report, clock, started)
        if number == 0:  # after the records: a failover never waits for a health check
            _keep_health_checks(world, settings, services, report, executor.dry_run, started)
        conditions.update(plan.conditions)
        report.rounds = number + 1
        _notify(world, settings, services, report, conditions, executor)
        world = replace(world, notices=frozenset(conditions))

    report.world = world
    report.healthy_lbs = sum(1 for lb in world.lbs if dns.is_eligible(lb))
    report.seconds = clock.now() - started
    return report


def _judge_path(
    world: World,
    path: probing.PathRound,
    settings: Settings,
    conditions: dict[str, str],
    report: Report,
    second_opinion: _SecondOpinion,
) -> World:
    """Folds one probe path's round into the view, unless it is a fault on the prober's side."""
    where = "" if path.condition == probing.IN_PROCESS else " of the prober function"
    if path.fault is not None:
        conditions[path.condition] = (
            f"the prober function did not answer for {len(path.targets)} private target(s): "
            f"{path.fault}; taken as a fault on the prober's side; no verdict changed from them"
        )
        return world
    failed = [key for key, result in path.results.items() if not result.ok]
    report.probe_failures += len(failed)
    if is_prober_fault(path.results, settings.prober_fault_percent):
        conditions[path.condition] = (
            f"{len(failed)} of {len(path.results)} probes{where} failed in one round: taken as "
            "a fault on the prober's side; no verdict changed"
        )
        second_opinion.consult(world, failed, conditions, report)
        return world
    return fold_probes(world, path.results, thresholds_of(settings))


def _plan_and_apply(
    world: World,
    settings: Settings,
    services: Services,
    executor: Executor,
    report: Report,
    clock: Clock,
    started: float,
) -> tuple[World, Plan]:
    plan = decide(world, settings, run_started_at=started)
    outcomes = executor.apply(plan)
    world = _fold_outcomes(world, outcomes)
    if any(o.stale for o in outcomes):
        # Someone changed the record since we read it, most likely an overlapping run. Its view
        # is newer than ours in more than the record (the verdicts in its tags, its pushes), so
        # read everything again and plan once more: re-planning from a fresh record alone would
        # judge the LB it chose by our older verdicts, and move the record a second time.
        try:
            fresh = observe(settings, services, now=clock.now())
        except ViewNotLoaded as exc:
            report.errors.append(f"re-reading after a stale change failed: {exc}")
        else:
            assert fresh is not None  # only a run `concerning` one instance can read None
            world = merge_reread(world, fresh, thresholds_of(settings))
            report.notes.append("a change met a newer view; re-read and planned again")
            first = outcomes
            plan = decide(world, settings, run_started_at=started)
            outcomes = executor.apply(plan)
            world = _fold_outcomes(world, outcomes)
            outcomes = [o for o in first if not o.stale and not o.skipped] + outcomes
    failed = _record(plan, outcomes, report, executor.dry_run, clock.now() - started)
    return world, replace(plan, conditions={**plan.conditions, **failed})


def merge_reread(ours: World, fresh: World, thresholds: Thresholds) -> World:
    """The world read again after a stale change, keeping what this run knows better.

    An instance whose controller tags are still what this run last saw written has been counted
    by nobody else since: its damping, with this run's rounds in it, is kept. Where another run
    wrote them, that run's verdict is the newer one and is taken. Pushes: the union, each with
    the most settled status either view has.
    """
    own = {i.instance_id: i for i in (*ours.lbs, *ours.webs)}

    def keep_counts(instances: tuple[Instance, ...]) -> tuple[Instance, ...]:
        merged = []
        for instance in instances:
            mine = own.get(instance.instance_id)
            if mine is not None and mine.written == instance.written:
                instance = replace(instance, damping=mine.damping)
            merged.append(instance)
        return tuple(merged)

    commands = {c.command_id: c for c in fresh.commands}
    for command in ours.commands:
        known = commands.get(command.command_id)
        if known is None or (known.in_flight and not command.in_flight):
            commands[command.command_id] = command
    world = replace(
        fresh,
        lbs=keep_counts(fresh.lbs),
        webs=keep_counts(fresh.webs),
        commands=tuple(commands.values()),
    )
    return fold_down_states(world, thresholds)


def _fold_outcomes(world: World, outcomes: list[Outcome]) -> World:
    for change in applied(outcomes):
        before, now = before_and_after(world, change)
        log.info("changed", extra={"change": change.describe(), "before": before, "after": now})
    world = after(world, applied(outcomes))
    sent = tuple(o.command for o in outcomes if o.command is not None)
    return replace(world, commands=world.commands + sent) if sent else world


def before_and_after(world: World, change: Change) -> tuple[object, object]:
    """What one applied change replaced, for the log: operators ask "what was it before?"."""
    if isinstance(change, SetTags):
        written = {i.instance_id: dict(i.written) for i in (*world.lbs, *world.webs)}
        keys = [key for key, _ in change.tags]
        before = {
            instance_id: {key: written.get(instance_id, {}).get(key) for key in keys}
            for instance_id in change.instance_ids
        }
        return before, dict(change.tags)
    if isinstance(change, ChangeRecords):
        names = {(c.record.name, c.record.type) for c in change.changes}
        before_records = {
            f"{r.name} {r.type}": list(r.values) for r in world.records if (r.name, r.type) in names
        }
        after_records = {
            f"{c.record.name} {c.record.type}": list(c.record.values)
            for c in change.changes
            if c.action != "DELETE"
        }
        return before_records, after_records
    if isinstance(change, PutParameter):
        stored = {"backends": world.backends_parameter, "lbs": world.lbs_parameter}
        return stored.get(change.name.rsplit("/", 1)[-1]), change.value
    if isinstance(change, MoveAddress):
        return world.eip_instance_id, change.instance_id
    return None, change.describe()


def _record(
    plan: Plan, outcomes: list[Outcome], report: Report, dry_run: bool, elapsed: float
) -> dict[str, str]:
    """Adds the round to the report; returns its failed actions as conditions to notify."""
    report.plan = plan
    failed: dict[str, str] = {}
    for outcome in outcomes:
        if not outcome.ok and not outcome.skipped:
            failed[f"failed:{outcome.change.describe()[:120]}"] = (
                f"action failed, retried next round or run: {outcome.change.describe()}: "
                f"{outcome.error}"
            )
    for outcome in outcomes:
        text = outcome.change.describe()
        if outcome.ok:
            (report.planned if dry_run else report.applied).append(text)
        elif outcome.skipped:
            report.notes.append(f"not attempted (records did not change): {text}")
        elif outcome.stale:
            report.errors.append(f"{text}: still stale after a re-read; the next run retries")
        else:
            report.errors.append(f"{text}: {outcome.error}")
    records_ok = all(o.ok for o in outcomes if isinstance(o.change, ChangeRecords | MoveAddress))
    active = plan.active
    if records_ok and active.values is not None and active.moved_from is not None:
        report.failovers.append(
            Failover(
                moved_from=active.moved_from,
                moved_to=active.moved_to,
                reason=active.reason,
                round=report.rounds + 1,
                seconds=elapsed,
            )
        )
    for note in plan.notes:
        if note not in report.notes:
            report.notes.append(note)
    return failed


def _refresh_commands(world: World, services: Services, report: Report) -> World:
    """Ask SSM how the pushes in flight are doing; their outcome decides lbf:backends."""
    updated: list[Command] = []
    for command in latest_commands(world.commands).values():
        if not command.in_flight or command.command_id == "dry-run":
            continue
        try:
            status = services.commands.status(command)
        except AwsError as exc:
            report.errors.append(f"reading push {command.command_id}: {exc}")
            continue
        if status != command.status:
            updated.append(replace(command, status=status))
    if not updated:
        return world
    changed = {c.command_id for c in updated}
    kept = tuple(c for c in world.commands if c.command_id not in changed)
    return replace(world, commands=kept + tuple(updated))


def _notify(
    world: World,
    settings: Settings,
    services: Services,
    report: Report,
    conditions: dict[str, str],
    executor: Executor,
) -> None:
    """Notices go out when something changes: a failover, a new condition, a failed action."""
    messages = [
        f"active record moved: {f.reason}" for f in report.failovers if f.round == report.rounds
    ]
    new = {key: text for key, text in conditions.items() if key not in world.notices}
    messages += list(new.values())
    if not messages and set(conditions) == set(world.notices):
        return
    if executor.dry_run:
        report.notes.extend(f"would notify: {m}" for m in messages)
        return
    subject = f"lb-failover {settings.cluster}"
    for message in messages:
        report.notices.append(message)
        if services.notifier is not None:
            try:
                services.notifier.publish(subject, message)
            except AwsError as exc:
                report.errors.append(f"notice not sent: {exc}")
        log.warning("notice: %s", message)
    if set(conditions) == set(world.notices):
        return
    stored = "\n".join(sorted(conditions)) or "none"
    try:
        services.parameters.put(settings.notices_parameter, stored)
    except AwsError as exc:
        report.errors.append(f"storing notified conditions: {exc}")


def _read_health_checks(
    settings: Settings, services: Services
) -> tuple[tuple[HealthCheck, ...] | None, str | None]:
    """The cluster's health checks, or why not. No call at all while the setting is off.

    A failed read fails the run (reported) but stops nothing else: failover runs on the
    controller's own probes, and a missing permission here must not take that away.
    """
    if not settings.route53_health_checks or services.health_checks is None:
        return None, None
    try:
        return services.health_checks.read(settings.cluster), None
    except AwsError as exc:
        return None, f"Route 53 health checks not read; none changed or asked this run: {exc}"


def _keep_health_checks(
    world: World,
    settings: Settings,
    services: Services,
    report: Report,
    dry_run: bool,
    started: float,
) -> None:
    """Once per run, as the inventory is read once: each LB's check follows its address."""
    checks = services.health_checks
    if checks is None:
        return
    for change in plan_health_checks(world, settings, run_started_at=started):
        text = change.describe()
        if dry_run:
            report.planned.append(text)
            continue
        try:
            if isinstance(change, CreateHealthCheck):
                checks.create(change.spec, change.caller_reference, change.tags)
            elif isinstance(change, UpdateHealthCheck):
                checks.update(change.health_check_id, change.version, change.spec)
            else:
                checks.delete(change.health_check_id)
        except AwsError as exc:
            log.error("failed: %s: %s", text, exc)
            report.errors.append(f"{text}: {exc}")
        else:
            log.info("changed", extra={"change": text})
            report.applied.append(text)


class _SecondOpinion:
    """In a prober-fault round, asks Route 53's checkers about the LBs whose probes failed.

    Their answer changes no verdict: the round's results are discarded as before, and the answer
    goes into the notice and the report ("... still see lb1 healthy: holding"). A fault on the
    prober's side is often the controller's own network, so a failed read is not tried again in
    the same run: each try could cost seconds of the rounds.
    """

    def __init__(self, services: Services, clock: Clock) -> None:
        self._services = services
        self._clock = clock
        self._unavailable: str | None = None

    def consult(
        self, world: World, failed: list[str], conditions: dict[str, str], report: Report
    ) -> None:
        checks = self._services.health_checks
        if checks is None or not world.health_checks:
            return
        statuses: dict[str, tuple[CheckerObservation, ...]] = {}
        if self._unavailable is None:
            for instance_id, check in checks_to_consult(world, failed).items():
                try:
                    statuses[instance_id] = checks.status(check.health_check_id)
                except AwsError as exc:
                    self._unavailable = (
                        f"Route 53's checkers could not be asked (not again this run): {exc}"
                    )
                    break
        found = {
            o.condition: o.describe() for o in opinions_of(world, statuses, now=self._clock.now())
        }
        if self._unavailable is not None:
            found["second-opinion-unavailable"] = self._unavailable
        conditions.update(found)
        report.notes.extend(text for text in found.values() if text not in report.notes)
