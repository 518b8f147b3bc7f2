"""The operator's commands that write: pause, resume, drain, undrain, accept-drop; and history.

Each reads what it needs, asks the core for the changes, and applies them with the same executor
as a scheduled run, so LBF_DRY_RUN prints them and writes nothing. While paused, drain, undrain
and accept-drop refuse (the pause is the operator's word that nothing changes); pause and resume
themselves always write (a dry run aside). What each did goes into the history.
"""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib import move_active
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.core import history, maintenance, pausing
from chalicelib.core.changes import (
    Change,
    PushBackends,
    PutBackendList,
    PutHeldDrop,
    PutPaused,
    RemoveTags,
    SetTags,
)
from chalicelib.core.history import Event, EventCode, Unreadable
from chalicelib.core.model import TAG_MAINTENANCE, Role, World
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import decide, fold_down_states
from chalicelib.core.planned_failover import Refused
from chalicelib.errors import AwsError, DomainNotOwned, WorldNotRead
from chalicelib.executor import Executor, writes_for
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
    name = settings.paused_parameter_name
    # The whole view, not the parameter alone: a pause is a write like any other, refused on a
    # domain another cluster owns (a typo in LBF_CLUSTER must not pause a cluster that isn't).
    try:
        world = observe(settings, services, now=now)
    except DomainNotOwned as exc:
        return report.refuse(str(exc))
    except WorldNotRead as exc:
        report.error("not-read", f"could not read the cluster, nothing changed: {exc}")
        return report
    assert world is not None  # only None for a run about one instance
    if not paused and not world.paused:
        report.note("nothing-to-do", f"not paused ({name} is not true): nothing to resume")
        return report
    changes: list[Change] = []
    value = "true" if paused else "false"
    # Already what it should be: only the history hears the (new) reason. An unclear value is
    # written over either way.
    if paused != world.paused or world.paused_unclear is not None:
        changes.append(PutPaused(name, value))
    code = EventCode.PAUSED if paused else EventCode.RESUMED
    text = (
        f"{name} = {value}: runs plan and notify, change nothing"
        if paused
        else f"{name} = {value}: runs change what they plan again"
    )
    events = [history.event(now, code, text, reason)]
    _apply(settings, services, clock, report, changes, events)
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
    refused = maintenance.refuse_frozen(named)
    if refused is not None:
        return _refuse(report, refused.reason)
    if named.draining:
        report.note("nothing-to-do", f"{named.label} is draining already: nothing to write")
        return report
    tag = SetTags((named.instance_id,), ((TAG_MAINTENANCE, maintenance.DRAIN),))
    report.note("next-run", f"the next run takes {named.label} out of the backend list")
    _apply(settings, services, clock, report, [tag], world=world)
    return report


def undrain(settings: Settings, services: Services, clock: Clock, name: str) -> Report:
    """`undrain NAME`: removes lbf:maintenance. Nothing moves back (non-preemptive)."""
    report = _report("undrain", settings)
    found = _find(settings, services, clock, name, report)
    if found is None:
        return report
    world, named = found
    if not named.draining:
        report.note("nothing-to-do", f"{named.label} is not draining: nothing to write")
        return report
    untag = RemoveTags((named.instance_id,), (TAG_MAINTENANCE,))
    report.note(
        "next-run",
        f"{named.label} is eligible again once healthy; nothing moves back to it"
        if named.role is Role.LB
        else f"the next run puts {named.label} back in the backend list once it is healthy",
    )
    _apply(settings, services, clock, report, [untag], world=world)
    return report


def accept_drop(settings: Settings, services: Services, clock: Clock) -> Report:
    """`accept-drop`: publishes the list LBF_MAX_POOL_DROP holds back, as it is now."""
    now = clock.now()
    report = _report("accept-drop", settings)
    world = _world(settings, services, now, report)
    if world is None:
        return report
    plan = decide(
        fold_down_states(world, settings.rules.thresholds),
        settings.rules.plan,
        run_started_at=now,
        accept_drop=True,
    )
    if plan.held is not None:
        # Another guard holds the list: never an empty one, whatever an operator accepts.
        return _refuse(
            report, f"the list is held back, and not by LBF_MAX_POOL_DROP: {plan.held.reason}"
        )
    if not plan.drop_taken:
        report.note("nothing-to-do", "LBF_MAX_POOL_DROP holds nothing back: nothing to publish")
        return report
    lists = settings.rules.plan.lists
    changes: list[Change] = [
        c for c in plan.changes if isinstance(c, PushBackends | PutBackendList)
    ]
    if world.held_drop_parameter not in (None, "none"):
        changes.append(PutHeldDrop(lists.held_drop_parameter_name, "none"))
    _apply(settings, services, clock, report, changes, world=world, drop_taken=plan.drop_taken)
    return report


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


def _refuse(report: Report, reason: str, code: str = "refused") -> Report:
    report.error(code, f"refused, nothing changed: {reason}")
    return report


def _world(settings: Settings, services: Services, now: float, report: Report) -> World | None:
    """The world, or None (and the report says why) when it cannot be read or is paused."""
    try:
        world = observe(settings, services, now=now)
    except DomainNotOwned as exc:
        report.refuse(str(exc))
        return None
    except WorldNotRead as exc:
        report.error("not-read", str(exc))
        return None
    assert world is not None  # only None for a run about one instance
    if world.paused:
        _refuse(
            report,
            f"paused: {pausing.describe(world, settings.paused_parameter_name)}; `resume` first",
        )
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
        _refuse(report, named.reason, code="unknown-name")
        return None
    return world, named


def _apply(
    settings: Settings,
    services: Services,
    clock: Clock,
    report: Report,
    changes: Sequence[Change],
    events: Sequence[Event] = (),
    *,
    world: World | None = None,
    drop_taken: Sequence[str] = (),
) -> None:
    """The changes through the executor (never paused here: a refused command never gets here,
    and pause and resume write whether or not the cluster is paused), then the history."""
    executor = Executor(
        services, now=clock.now, writes=writes_for(dry_run=settings.dry_run, paused=False)
    )
    outcomes = executor.apply_changes(changes)
    _report_outcomes(outcomes, report)
    done = list(events)
    if world is not None:
        done += history.round_events(
            world,
            outcomes,
            (),
            now=clock.now(),
            drop_taken=drop_taken,
            by=f"{report.job} on the command line",
        )
    elif any(not o.ok for o in outcomes):
        done = []  # the switch was not written: nothing happened
    record = history.record(settings.history_parameter_name, done)
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
