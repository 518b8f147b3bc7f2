"""The operator's commands as jobs: pause, resume, drain, undrain, accept-drop; status, history.

Each is a round's shape: observe, decide in the core (core/commands.py, core/maintenance.py,
core/status.py), apply through the same executor as a scheduled run (`_carry_out`), so
LBF_DRY_RUN prints the changes and writes nothing. While paused, drain, undrain and accept-drop
refuse (the pause is the operator's word that nothing changes); pause and resume themselves
always write (a dry run aside). What each did goes into the history. `status` and `history` only
read: they return what the command line prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from chalicelib import move_active, probing, render
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.core import commands as core_commands
from chalicelib.core import failover_pair, history, maintenance
from chalicelib.core.commands import CommandPlan
from chalicelib.core.history import Event, Unreadable
from chalicelib.core.model import ProbeResult, Role, World
from chalicelib.core.outcome import Outcome
from chalicelib.core.planned_failover import Refused
from chalicelib.core.status import Serving
from chalicelib.errors import AwsError, DomainNotOwned, WorldNotRead
from chalicelib.executor import Executor, writes_for
from chalicelib.health_checks import ask_pair_checkers
from chalicelib.observe import observe
from chalicelib.report import Report, new_run_id
from chalicelib.services import Services


def pause_cluster(settings: Settings, services: Services, clock: Clock, *, reason: str) -> Report:
    """`pause [--reason TEXT]`: `<prefix>/paused` = true, and the reason in the history."""
    return _switch(settings, services, clock, paused=True, reason=reason)


def resume_cluster(settings: Settings, services: Services, clock: Clock) -> Report:
    """`resume`: `<prefix>/paused` = false. Not paused: nothing to write."""
    return _switch(settings, services, clock, paused=False, reason="")


def _switch(
    settings: Settings, services: Services, clock: Clock, *, paused: bool, reason: str
) -> Report:
    now = clock.now()
    report = _report("pause" if paused else "resume", settings)
    # The whole view, not the parameter alone: a pause is a write like any other, refused on a
    # domain another cluster owns (a typo in LBF_CLUSTER must not pause a cluster that isn't).
    world = _observed(
        settings, services, now, report, unread="could not read the cluster, nothing changed: "
    )
    if world is None:
        return report
    plan = core_commands.plan_switch(
        world, settings.paused_parameter_name, paused=paused, reason=reason, now=now
    )
    _carry_out(settings, services, clock, report, world, plan)
    return report


def drain(
    settings: Settings, services: Services, clock: Clock, name: str, *, wait: bool = True
) -> Report:
    """`drain NAME`: lbf:maintenance=drain on the LB or web server NAME names.

    The LB that holds the active role (or a place in the active-active record) is moved off
    first: the same plan as `move-active --drain NAME`.
    """
    report = _report("drain", settings)
    found = _find(settings, services, clock, name, report)
    if found is None:
        return report
    world, named = found
    if named.role is Role.LB:
        return move_active.move_active(
            settings, services, clock, drain=named.label, wait=wait, job="drain"
        )
    _carry_out(settings, services, clock, report, world, maintenance.plan_drain(named))
    return report


def undrain(settings: Settings, services: Services, clock: Clock, name: str) -> Report:
    """`undrain NAME`: removes lbf:maintenance. Nothing moves back (non-preemptive)."""
    report = _report("undrain", settings)
    found = _find(settings, services, clock, name, report)
    if found is not None:
        world, named = found
        _carry_out(settings, services, clock, report, world, maintenance.plan_undrain(named))
    return report


def accept_drop(settings: Settings, services: Services, clock: Clock) -> Report:
    """`accept-drop`: publishes the list LBF_MAX_POOL_DROP holds back, as it is now."""
    now = clock.now()
    report = _report("accept-drop", settings)
    world = _world(settings, services, now, report)
    if world is not None:
        rules = settings.rules
        plan = core_commands.plan_accept_drop(world, rules.plan, rules.thresholds, now=now)
        _carry_out(settings, services, clock, report, world, plan)
    return report


@dataclass(frozen=True)
class Status:
    """What `status` shows: the world as stored, the live probes (--probe), the history."""

    world: World
    probes: dict[str, ProbeResult] | None  # None: not probed live
    events: list[Event | Unreadable] | None  # None: the history could not be read
    history_error: str | None
    serving: Serving  # the exit code: 0 serving, 1 not or cannot tell


def status(settings: Settings, services: Services, clock: Clock, *, probe: bool) -> Status:
    """Raises DomainNotOwned and WorldNotRead: without the world there is nothing to show."""
    world = observe(settings, services, now=clock.now())
    assert world is not None  # only None for a run about one instance
    world = _with_route53_view(world, settings, services, now=clock.now())
    probes = probing.probe_all(world, settings, services) if probe else None
    # The history gives the pause's reason and the last failover; status goes on without it.
    try:
        events: list[Event | Unreadable] | None = read_history(settings, services)
        error = None
    except WorldNotRead as exc:
        events, error = None, str(exc)
    verdict = render.serving(world, settings, probes)
    return Status(world, probes, events, error, verdict)


def _with_route53_view(
    world: World, settings: Settings, services: Services, *, now: float
) -> World:
    """The failover pair's checks as Route 53's data plane sees them: which record it answers."""
    rules = settings.rules.pair
    if not rules.enabled:
        if not failover_pair.read_active_name(world.records, rules.records).is_pair:
            return world
        why = "LBF_DNS_FAILOVER is controller: the next run makes the pair a plain record"
        return replace(world, route53_view_unread=why)
    check_ids = sorted(failover_pair.checks_in_use(world.records, rules.records))
    statuses, error = ask_pair_checkers(services, check_ids)
    return replace(
        world,
        route53_view=failover_pair.route53_view(statuses, now=now, rules=rules),
        route53_view_unread=error,
    )


def history_events(
    settings: Settings, services: Services, *, limit: int
) -> list[Event | Unreadable]:
    """`history --limit N`: the newest N events. Raises WorldNotRead."""
    return read_history(settings, services)[:limit]


def read_history(settings: Settings, services: Services) -> list[Event | Unreadable]:
    """Every stored event, newest first. Raises WorldNotRead when it cannot be read."""
    if services.history is None:
        raise WorldNotRead("no history adapter: the history cannot be read here")
    try:
        versions = services.history.read(settings.history_parameter_name)
    except AwsError as exc:
        raise WorldNotRead(f"could not read {settings.history_parameter_name}: {exc}") from exc
    return history.newest_first(versions)


# ---------------------------------------------------------------------------------------------


def _report(job: str, settings: Settings) -> Report:
    return Report(job=job, run_id=new_run_id(), dry_run=settings.dry_run, rounds=1)


def _observed(
    settings: Settings, services: Services, now: float, report: Report, *, unread: str = ""
) -> World | None:
    """The world, or None (and the report says why) when it cannot be read."""
    try:
        world = observe(settings, services, now=now)
    except DomainNotOwned as exc:
        report.refuse(str(exc))
        return None
    except WorldNotRead as exc:
        report.error("not-read", f"{unread}{exc}")
        return None
    assert world is not None  # only None for a run about one instance
    return world


def _world(settings: Settings, services: Services, now: float, report: Report) -> World | None:
    """The world, or None (and the report says why) when it cannot be read or is paused."""
    world = _observed(settings, services, now, report)
    if world is None:
        return None
    paused = core_commands.refuse_paused(world, settings.paused_parameter_name)
    if paused is not None and paused.refused is not None:
        report.error(*paused.refused)
        return None
    return world


def _find(
    settings: Settings, services: Services, clock: Clock, name: str, report: Report
) -> tuple[World, maintenance.Named] | None:
    world = _world(settings, services, clock.now(), report)
    if world is None:
        return None
    named = maintenance.find(world, name)
    if isinstance(named, Refused):
        refusal = core_commands.refused(named.reason, code="unknown-name")
        _carry_out(settings, services, clock, report, world, refusal)
        return None
    return world, named


def _carry_out(
    settings: Settings,
    services: Services,
    clock: Clock,
    report: Report,
    world: World,
    plan: CommandPlan,
) -> None:
    """A command's plan: refused, or its changes through the executor, then its history.

    Never paused here: a command the pause refuses never gets here, and pause and resume write
    whether or not the cluster is paused.
    """
    if plan.refused is not None:
        report.error(*plan.refused)
        return
    for code, text in plan.notes:
        report.note(code, text)
    if plan.nothing_to_do:
        return
    executor = Executor(
        services, now=clock.now, writes=writes_for(dry_run=settings.dry_run, paused=False)
    )
    outcomes = executor.apply_changes(plan.changes)
    _report_outcomes(outcomes, report)
    if plan.events is not None:
        # The switch not written: nothing happened.
        events = list(plan.events) if all(o.ok for o in outcomes) else []
    else:
        events = history.round_events(
            world,
            outcomes,
            (),
            now=clock.now(),
            drop_taken=plan.drop_taken,
            by=f"{report.job} on the command line",
        )
    record = history.record(settings.history_parameter_name, events)
    if record is not None:
        _report_outcomes(executor.apply_changes([record]), report)


def _report_outcomes(outcomes: Sequence[Outcome], report: Report) -> None:
    for outcome in outcomes:
        text = outcome.change.describe()
        if outcome.printed:
            report.planned.append(text)
        elif outcome.ok:
            report.applied.append(text)
        else:
            report.error("action-failed", f"{text}: {outcome.error}")
