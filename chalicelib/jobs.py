"""The jobs: observe -> decide -> apply, in rounds, and a Report of what happened.

A run reads the inventory, the records and the parameters once. Then it probes in rounds,
LBF_PROBE_INTERVAL apart start to start, and after each round plans and applies at once, so a
verdict that changes in round 3 moves the record in round 3, not at the end of the minute.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from chalicelib import probing
from chalicelib.config import Settings
from chalicelib.core import dns, rejections, timing
from chalicelib.core import notices as notice_policy
from chalicelib.core import pushes as push_rules
from chalicelib.core.backends import parse_list
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
    NoticeChange,
    Notify,
    Plan,
    PutParameter,
    SendBackends,
    SetTags,
    after,
    decide,
    fold_down_states,
    fold_probes,
    is_prober_fault,
    latest_commands,
    record_rules,
    thresholds_of,
)
from chalicelib.core.second_opinion import (
    CheckerObservation,
    checks_to_consult,
    opinions_of,
    plan_health_checks,
)
from chalicelib.errors import AwsError, ViewNotLoaded
from chalicelib.executor import Executor, Mode, Outcome, applied, mode_of
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
    # The move, old values -> new values (core.notices.move_key): its notice goes out once, even
    # when two overlapping runs made or recognised it.
    move: str = ""


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
                mode=settings.mode,
            ),
        )
        if concerning is not None and concerning not in {r.instance_id for r in raws}:
            return None
        records = services.records.read(settings.domain)
        names = [
            settings.backends_parameter_name,
            settings.lbs_parameter_name,
            settings.paused_parameter_name,
            settings.notices_parameter_name,
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
    health_checks, health_checks_error = _read_health_checks(settings, services)
    world = World(
        lbs=inventory.lbs,
        webs=inventory.webs,
        skipped=inventory.skipped,
        records=records,
        backends_parameter=parameters.get(settings.backends_parameter_name),
        lbs_parameter=parameters.get(settings.lbs_parameter_name),
        paused=parameters.get(settings.paused_parameter_name, "").strip().lower() == "true",
        commands=tuple(commands),
        notices=notice_policy.parse_stored(parameters.get(settings.notices_parameter_name)),
        eip_instance_id=eip_instance_id,
        eip_address=eip_address,
        health_checks=health_checks,
        health_checks_error=health_checks_error,
    )
    return dns.reserve_frozen_names(world, record_rules(settings))


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
) -> Report:
    """One invocation's work: `rounds` probe rounds (default LBF_PROBE_ROUNDS), acting each round.

    With probe=False (the event-triggered run) no probe is made: it acts on EC2's states and the
    stored verdicts only, and leaves the rise/fall counts to the scheduled rounds. With
    `concerning`, a run about an instance outside the cluster stops after the inventory read.
    `deadline` (the clock's time when the invocation ends) lets a round start only if its probes
    and its writes fit before it (SPEC "Where two rules meet", Time).
    """
    started = clock.now()
    report = Report(job=job, run_id=run_id or new_run_id())
    # The prober function's invoke runs beside the public probes and may outlast them.
    invoke = settings.uses_prober_function
    round_needs = timing.round_seconds(
        probes=probe, probe_timeout=settings.probe_timeout, prober_invoke=invoke
    )
    if not timing.round_fits(starts_at=started, deadline=deadline, needs=round_needs):
        # Not even one round fits: reading the world would only spend the time left.
        report.errors.append(
            _no_time_for(1, started, deadline, round_needs, probes=probe, invoke=invoke)
        )
        return report
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
        report.notes.append(f"paused: {settings.paused_parameter_name} is true; planning only")
    if world.health_checks_error is not None:
        report.errors.append(world.health_checks_error)
    second_opinion = _SecondOpinion(services, clock)
    rejected: dict[str, str] = {}  # record names Route 53 rejects this run, left out after
    unregistered: dict[str, str] = {}  # LBs SSM does not know this run -> their condition or ""
    # Every write of the run goes through this one executor: its mode decides what is written
    # and what only printed, per kind of change (paused: notices still go out, marked paused).
    executor = Executor(
        services,
        now=clock.now,
        mode=mode_of(dry_run=dry_run or settings.dry_run, paused=world.paused),
    )
    thresholds = thresholds_of(settings)
    world = fold_down_states(world, thresholds)
    count = settings.probe_rounds if rounds is None else rounds
    # LBF_MAX_POOL_DROP bounds the whole run against the list published when it started.
    start_list = parse_list(world.backends_parameter)

    for number in range(count):
        starts_at = max(clock.now(), started + number * settings.probe_interval)
        if not timing.round_fits(starts_at=starts_at, deadline=deadline, needs=round_needs):
            # A round cut short by the invocation's end could stop mid-change; the next run
            # starts within the minute and does this round's work.
            text = _no_time_for(
                number + 1, starts_at, deadline, round_needs, probes=probe, invoke=invoke
            )
            (report.notes if number > 0 else report.errors).append(text)
            log.warning(text)
            break
        if number > 0:
            wait = starts_at - clock.now()
            if wait > 0:
                clock.sleep(wait)
        conditions: dict[str, str] = {}
        if probe:
            for path in probing.probe_round(world, settings, services):
                world = _judge_path(world, path, settings, conditions, report, second_opinion)
        world = _refresh_commands(world, services, report)
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
        )
        if number == 0:  # after the records: a failover never waits for a health check
            _keep_health_checks(world, settings, executor, report, started)
        conditions.update(plan.conditions)
        report.rounds = number + 1
        world = _notify(world, settings, services, report, conditions, executor)

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
        f"round {number} not started: {max(0.0, left):.1f} s of the invocation left when it "
        f"would start, and a round needs {needs:g} s ({parts})"
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
) -> tuple[World, Plan]:
    """One round's plan, applied; a rejected record batch is judged by a re-read.

    `rejected` (record name -> Route 53's message) holds this run's permanent rejections, and
    `unregistered` the LBs whose SSM agent SendCommand did not know: their changes are left out
    of the later rounds' plans, and tried again by the next run. `start_list` is the backend
    list published when the run started: LBF_MAX_POOL_DROP is counted against it.
    """
    rejected = {} if rejected is None else rejected
    unregistered = {} if unregistered is None else unregistered
    active_fqdn = record_rules(settings).active_fqdn

    def decided(world: World) -> Plan:
        plan = rejections.without(
            decide(world, settings, run_started_at=started, run_start_list=start_list),
            rejected,
            active_fqdn=active_fqdn,
        )
        kept = tuple(
            c
            for c in plan.changes
            if not (isinstance(c, SendBackends) and c.instance_id in unregistered)
        )
        return replace(plan, changes=kept)

    plan = decided(world)
    move = move_of(world, plan, settings)
    outcomes = executor.apply(plan)
    world = _fold_outcomes(world, outcomes)
    if any(o.stale for o in outcomes):
        # Route 53 says InvalidChangeBatch for a stale compare-and-swap, for a batch that can never
        # go through, and for a batch that went through but whose answer was lost (botocore's
        # retry then meets the changed record). Only a re-read tells them apart.
        try:
            fresh = observe(settings, services, now=clock.now())
        except ViewNotLoaded as exc:
            report.errors.append(f"re-reading after a rejected change failed: {exc}")
        else:
            assert fresh is not None  # only a run `concerning` one instance can read None
            batch = _rejected_batch(outcomes)
            if batch is not None and rejections.unchanged(
                world.records, fresh.records, batch[0].changes
            ):
                world, plan, outcomes = _apply_without_rejected(
                    world, plan, outcomes, batch, executor, report, rejected, active_fqdn
                )
            else:
                # Stale: someone changed the record since we read it, most likely an overlapping
                # run, whose view is newer than ours in more than the record (its verdicts, its
                # pushes): plan once more from everything read again, or the LB it chose would be
                # judged by our older verdicts and the record moved a second time.
                if _recognised(plan, fresh, active_fqdn, settings):
                    report.failovers.append(
                        _failover(plan, report, clock.now() - started, move, recognised=True)
                    )
                world = merge_reread(world, fresh, thresholds_of(settings))
                report.notes.append("a change met a newer view; re-read and planned again")
                first = outcomes
                plan = decided(world)
                move = move_of(world, plan, settings)
                outcomes = executor.apply(plan)
                world = _fold_outcomes(world, outcomes)
                outcomes = [o for o in first if not o.stale and not o.skipped] + outcomes
    outcomes = _agents_not_registered(outcomes, world, report, unregistered, now=clock.now())
    failed = _record(plan, outcomes, report, clock.now() - started, move)
    failed.update({key: text for key, text in _conditions_of(unregistered)})
    if rejected:
        # One condition, so one notice, however many names and rounds the rejection spans (a
        # domain outside the zone rejects every name, some of them only in a later round).
        failed["route53-rejected"] = (
            "Route 53 rejects changes to "
            + ", ".join(f"{names} ({message})" for names, message in _by_message(rejected).items())
            + "; the runs go on without them and try again each run"
        )
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
            isinstance(change, SendBackends) and outcome.code == push_rules.AGENT_NOT_REGISTERED
        ):
            rest.append(outcome)
            continue
        launch = launched.get(change.instance_id, 0.0)
        if push_rules.agent_missing_is_news(launch, now=now):
            text = (
                f"{change.describe()}: SSM does not know the LB's agent {now - launch:.0f} s after "
                f"its launch; tried again next run: {outcome.error}"
            )
            report.errors.append(text)
        else:
            text = ""
            report.notes.append(
                f"{change.describe()}: waits for the LB's SSM agent to register (launched "
                f"{now - launch:.0f} s ago); tried again next run"
            )
        unregistered[change.instance_id] = text
    return rest


def _conditions_of(unregistered: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (f"push-unregistered:{instance_id}", text)
        for instance_id, text in unregistered.items()
        if text
    ]


def _rejected_batch(outcomes: list[Outcome]) -> tuple[ChangeRecords, str] | None:
    """The record batch Route 53 rejected, when it is the only rejected change."""
    stale = [o for o in outcomes if o.stale]
    if len(stale) == 1 and isinstance(stale[0].change, ChangeRecords):
        return stale[0].change, stale[0].error or ""
    return None


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
    """A permanent rejection: the rest of the plan, the other records in a second batch."""
    change, message = batch
    names = rejections.rejected_names(change.changes, message)
    rejected.update(dict.fromkeys(names, message))
    left_out = ChangeRecords(rejections.left_out(plan, names), change.reason)
    report.errors.append(
        f"Route 53 rejected {left_out.describe()}: {message}; the rest of the run went on "
        "without it (a re-read shows the records unchanged: permanent, not a race)"
    )
    # What the first attempt skipped (everything after the rejected batch), less the rejected
    # changes; what it applied already (the Elastic IP) is not applied twice.
    remaining = rejections.without(plan, names, active_fqdn=active_fqdn)
    attempted = [o for o in outcomes if not o.skipped and not o.stale]
    done = {id(o.change) for o in attempted}
    # lbf:state follows the Elastic IP too: if its move failed, the state tags wait as well.
    role_failed = any(isinstance(o.change, MoveAddress) and not o.ok for o in attempted)
    waiting = [
        Outcome(c, ok=False, skipped=True)
        for c in remaining.changes
        if role_failed and isinstance(c, SetTags) and c.after_records
    ]
    held = {id(o.change) for o in waiting}
    second = replace(
        remaining,
        changes=tuple(c for c in remaining.changes if id(c) not in done and id(c) not in held),
    )
    later = executor.apply(second)
    world = _fold_outcomes(world, later)
    return world, remaining, attempted + later + waiting


def _by_message(rejected: dict[str, str]) -> dict[str, str]:
    """The rejected names grouped by Route 53's message, for the notice and the report."""
    grouped: dict[str, list[str]] = {}
    for name, message in rejected.items():
        grouped.setdefault(message, []).append(name)
    return {",".join(sorted(names)): message for message, names in grouped.items()}


def _recognised(plan: Plan, fresh: World, active_fqdn: str, settings: Settings) -> bool:
    """The rejected change moved the active role, and the re-read shows it moved as planned: a
    lost answer, or an overlapping run that made the same move. Either way, this run's failover."""
    active = plan.active
    if active.values is None or active.moved_from is None:
        return False
    if settings.mode == "eip":
        target = next((c for c in plan.changes if isinstance(c, MoveAddress)), None)
        return target is not None and fresh.eip_instance_id == target.instance_id
    return rejections.holds(fresh.records, active_fqdn, active.values)


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
    # A skipped instance's tags are never written: its counts are this run's alone.
    frozen = {s.instance_id: s.frozen for s in ours.skipped if s.frozen is not None}
    skipped = tuple(
        replace(s, frozen=replace(s.frozen, damping=frozen[s.instance_id].damping))
        if s.frozen is not None and frozen.get(s.instance_id) is not None
        else s
        for s in fresh.skipped
    )
    world = replace(
        fresh,
        lbs=keep_counts(fresh.lbs),
        webs=keep_counts(fresh.webs),
        skipped=skipped,
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


def move_of(world: World, plan: Plan, settings: Settings) -> str:
    """The key of the move this plan makes of the active role, "" if it makes none.

    DNS mode: the active record's values before -> after. EIP mode: the instance holding the
    Elastic IP before -> after.
    """
    if plan.active.values is None:
        return ""
    if settings.mode == "eip":
        target = next((c for c in plan.changes if isinstance(c, MoveAddress)), None)
        if target is None:
            return ""
        held = [world.eip_instance_id] if world.eip_instance_id else []
        return notice_policy.move_key(held, [target.instance_id])
    current = dns.active_record(world.records, record_rules(settings))
    return notice_policy.move_key(current.values if current else (), plan.active.values)


def _record(
    plan: Plan,
    outcomes: list[Outcome],
    report: Report,
    elapsed: float,
    move: str,
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
    report_outcomes(outcomes, report)
    moves = [o for o in outcomes if isinstance(o.change, ChangeRecords | MoveAddress)]
    active = plan.active
    if all(o.ok for o in moves) and active.values is not None and active.moved_from is not None:
        report.failovers.append(_failover(plan, report, elapsed, move))
    for note in plan.notes:
        if note not in report.notes:
            report.notes.append(note)
    for key, text in plan.conditions.items():
        # A push sent again past its step's timeout: in the report as well as the notice.
        if key.startswith("push-overdue:") and text not in report.notes:
            report.notes.append(text)
    return failed


def _failover(
    plan: Plan, report: Report, elapsed: float, move: str, *, recognised: bool = False
) -> Failover:
    reason = plan.active.reason
    if recognised:
        reason += " (its answer was lost, or an overlapping run made the same move: re-read)"
    return Failover(
        moved_from=plan.active.moved_from,
        moved_to=plan.active.moved_to,
        reason=reason,
        round=report.rounds + 1,
        seconds=elapsed,
        move=move,
    )


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


def report_outcomes(outcomes: Sequence[Outcome], report: Report) -> None:
    """Each outcome in the report: applied or planned (printed only), failed, or not attempted."""
    for outcome in outcomes:
        text = outcome.change.describe()
        if outcome.ok:
            (report.planned if outcome.printed else report.applied).append(text)
        elif outcome.skipped:
            report.notes.append(f"not attempted (records did not change): {text}")
        elif outcome.stale:
            report.errors.append(f"{text}: still stale after a re-read; the next run retries")
        else:
            report.errors.append(f"{text}: {outcome.error}")


def _notify(
    world: World,
    settings: Settings,
    services: Services,
    report: Report,
    conditions: dict[str, str],
    executor: Executor,
) -> World:
    """Notices go out when something changes: a failover, a new condition, a failed action.

    What goes out and what is remembered is `core.notices`' decision, applied as Plan changes by
    the executor (paused: still sent, marked paused; dry run: printed only).
    """
    failovers = [
        notice_policy.ReportedMove(
            f.move.split(":", 1)[1] if f.move else f"{f.moved_from or ''}->{f.moved_to or ''}",
            f.reason,
            key=f.move,
        )
        for f in report.failovers
        if f.round == report.rounds
    ]

    def planned(
        notified: frozenset[str], stored: frozenset[str]
    ) -> tuple[tuple[NoticeChange, ...], frozenset[str]]:
        return notice_policy.plan_notices(
            notified=notified,
            conditions=conditions,
            failovers=failovers,
            paused=executor.mode is Mode.PAUSED,
            subject=notice_policy.subject_of(settings.cluster),
            parameter=settings.notices_parameter_name,
            stored=stored,
        )

    changes, remembered = planned(world.notices, world.notices)
    if executor.mode is not Mode.DRY_RUN and any(isinstance(c, Notify) for c in changes):
        # An overlapping run may have seen the same condition or made the same move, and sent it,
        # since this run read the parameter: what it stored counts as said. A read, not a write;
        # if it fails, the notice goes out (better twice than never).
        try:
            stored = services.parameters.read([settings.notices_parameter_name])
        except AwsError:
            pass
        else:
            said = notice_policy.parse_stored(stored.get(settings.notices_parameter_name))
            if said != world.notices:
                changes, remembered = planned(world.notices | said, said)
    for outcome in executor.apply_changes(changes):
        change = outcome.change
        if outcome.printed:
            if isinstance(change, Notify):
                report.notes.append(f"would notify: {change.message}")
            else:
                report.planned.append(change.describe())
        elif isinstance(change, Notify):
            report.notices.append(change.message)
            if not outcome.ok:
                report.errors.append(f"notice not sent: {outcome.error}")
        elif outcome.ok:
            report.applied.append(change.describe())
        else:
            report.errors.append(f"storing notified conditions: {outcome.error}")
    return replace(world, notices=remembered)


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
    world: World, settings: Settings, executor: Executor, report: Report, started: float
) -> None:
    """Once per run, as the inventory is read once: each LB's check follows its address."""
    changes = plan_health_checks(world, settings, run_started_at=started)
    report_outcomes(executor.apply_changes(changes), report)


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
