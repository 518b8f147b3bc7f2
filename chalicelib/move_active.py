"""A planned failover: `python -m chalicelib move-active --to lb2` (and `--drain lb1`).

For maintenance windows and drills. It reads the world as a scheduled run does, probes its
candidates live, asks the pure planner (`core/planned_failover.py`) for a Plan and applies it with
the same executor as a scheduled run: the same compare-and-swap, the same dry run (LBF_DRY_RUN
prints the plan and changes nothing). Then, unless told not to, it waits until Route 53 reports the
change INSYNC on all its name servers, and keeps a timeline of each step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chalicelib import interrupts, probing
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.core import history
from chalicelib.core.changes import ChangeRecords, MoveAddress, SetTags
from chalicelib.core.failover import Failover
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import fold_down_states
from chalicelib.core.planned_failover import MoveRequest, Refused, plan_move, resolve
from chalicelib.errors import AwsError, DomainNotOwned, WorldNotRead
from chalicelib.executor import Executor, writes_for
from chalicelib.observe import observe
from chalicelib.report import Report, new_run_id
from chalicelib.services import Services


def move_active(
    settings: Settings,
    services: Services,
    clock: Clock,
    *,
    to: str | None = None,
    drain: str | None = None,
    wait: bool = True,
    insync_timeout: float = 300.0,
    job: str = "move-active",
) -> Report:
    """Exit 0 (report ok) when it moved or nothing had to move; an error when refused or failed."""
    started = clock.now()
    report = Report(job=job, run_id=new_run_id(), dry_run=settings.dry_run, rounds=1)

    def step(text: str) -> None:
        report.timeline.append((clock.now() - started, text))

    def refuse(reason: str) -> Report:
        report.error("refused", f"refused, nothing changed: {reason}")
        report.seconds = clock.now() - started
        return report

    try:
        observed = observe(settings, services, now=started)
    except DomainNotOwned as exc:
        return report.refuse(str(exc))
    except WorldNotRead as exc:
        report.error("view-not-loaded", str(exc))
        return report
    assert observed is not None  # only None for a run about one instance
    world = fold_down_states(observed, settings.rules.thresholds)

    resolved = resolve(world, settings.rules.move, MoveRequest(to=to, drain=drain))
    if isinstance(resolved, Refused):
        return refuse(resolved.reason)
    # The candidates are probed as a round probes LBs: through the prober function where the
    # LBs are private and the stage has one (from here, a private address may not answer).
    probes = probing.probe_lbs(resolved.to_probe, settings, services) if resolved.to_probe else {}
    for lb in resolved.to_probe:
        result = probes.get(lb.instance_id)
        answer = "answered" if result is not None and result.ok else "FAILED"
        detail = result.detail if result is not None else "not probed"
        what = "stays in the record" if lb in resolved.kept else "healthy, backend list current"
        step(f"checked {lb.name} ({lb.address}): {what}; live probe {answer} ({detail})")

    plan = plan_move(world, settings.rules.move, resolved, probes)
    if isinstance(plan, Refused):
        return refuse(plan.reason)
    report.plan = plan
    # Paused was refused above; what is written still comes from the one policy every write obeys.
    executor = Executor(
        services, now=clock.now, writes=writes_for(dry_run=settings.dry_run, paused=world.paused)
    )
    # Ctrl-C from here waits for the move's writes: the Report must say whether it moved.
    with interrupts.writes_finish_first() as held:
        outcomes = executor.apply(plan)
    _report(outcomes, report, step)
    if held.interrupted:
        report.interrupted = True
        report.note("interrupted", "interrupted after the move's writes; INSYNC not waited for")
        wait = False
    moves = [o for o in outcomes if isinstance(o.change, ChangeRecords | MoveAddress)]
    if moves and all(o.ok for o in moves):
        active = plan.active
        report.failovers.append(
            Failover(
                moved_from=active.moved_from,
                moved_to=active.moved_to,
                reason=active.reason,
                round=1,
                seconds=clock.now() - started,
            )
        )
    if not moves:
        step(plan.active.reason)
    events = history.round_events(
        world, outcomes, report.failovers, now=clock.now(), by=f"{job} on the command line"
    )
    record = history.record(settings.history_parameter_name, events)
    if record is not None:
        for outcome in executor.apply_changes([record]):
            if not outcome.ok:
                report.errors.append(f"history not stored: {outcome.error}")
            else:
                (report.planned if outcome.printed else report.applied).append(record.describe())
    change_ids = [o.change_id for o in moves if o.ok and o.change_id is not None]
    if change_ids and wait:
        try:
            _wait_insync(services, clock, change_ids[0], report, step, insync_timeout)
        except KeyboardInterrupt:
            report.interrupted = True
            report.note(
                "interrupted",
                f"stopped waiting for change {change_ids[0]} to be INSYNC; the move was applied",
            )
    report.seconds = clock.now() - started
    return report


def _report(outcomes: Sequence[Outcome], report: Report, step: Callable[[str], None]) -> None:
    for outcome in outcomes:
        change, text = outcome.change, outcome.change.describe()
        if outcome.printed:
            report.planned.append(text)
            step(f"would apply: {text}")
        elif outcome.ok:
            report.applied.append(text)
            suffix = f" (change {outcome.change_id})" if outcome.change_id else ""
            step(f"applied: {text}{suffix}")
        elif outcome.skipped:
            report.note("not-written", f"not written, the move did not go through: {text}")
        elif outcome.rejected:
            report.error(
                "route53-rejected",
                f"{text}: rejected, nothing moved: the active record (or the Elastic IP) "
                "changed since it was read, or Route 53 refuses the change for good (a CNAME "
                f"at the name); look at `status` and run again: {outcome.error}",
            )
        elif isinstance(change, SetTags):
            report.error("action-failed", f"{text}: {outcome.error}")
        else:
            report.error("move-failed", f"{text} failed, nothing moved: {outcome.error}")


def _wait_insync(
    services: Services,
    clock: Clock,
    change_id: str,
    report: Report,
    step: Callable[[str], None],
    timeout: float,
) -> None:
    deadline = clock.now() + timeout
    while True:
        try:
            status = services.records.change_status(change_id)
        except AwsError as exc:
            report.error("insync-unread", f"reading change {change_id}: {exc}")
            return
        if status == "INSYNC":
            step("INSYNC: every Route 53 name server answers with the new address")
            return
        if clock.now() >= deadline:
            report.error(
                "insync-timeout", f"change {change_id} still {status} after {timeout:.0f} s"
            )
            return
        clock.sleep(2.0)
