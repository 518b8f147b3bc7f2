"""A planned failover: `python -m chalicelib move-active --to lb2` (and `--drain lb1`).

For maintenance windows and drills. It reads the world as a scheduled run does, probes its
candidates live, asks the pure planner (`core/planned_failover.py`) for a Plan and applies it with
the same executor as a scheduled run: the same compare-and-swap, the same dry run (LBF_DRY_RUN
prints the plan and changes nothing). Then, unless told not to, it waits until Route 53 reports the
change INSYNC on all its name servers, and keeps a timeline of each step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chalicelib import interrupts, probing
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.core import history
from chalicelib.core.changes import ChangeRecords, MoveAddress, SetTags
from chalicelib.core.model import ProbeResult, World
from chalicelib.core.observed import fold_down_states
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import Plan
from chalicelib.core.planned_failover import (
    MoveRequest,
    Refused,
    Resolved,
    move_change_id,
    moved,
    plan_move,
    probed_world,
    resolve,
)
from chalicelib.errors import AwsError, DomainNotOwned, WorldNotRead
from chalicelib.executor import Executor, writes_for
from chalicelib.observe import observe
from chalicelib.report import Report, new_run_id
from chalicelib.services import Services


@dataclass(frozen=True)
class _Run:
    """One move-active run: what it works with, and the Report it fills in as it goes."""

    settings: Settings
    services: Services
    clock: Clock
    report: Report
    started: float

    def step(self, text: str) -> None:
        """One line of the timeline, timed from the start."""
        self.report.timeline.append((self.clock.now() - self.started, text))


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
    report = Report(job=job, run_id=new_run_id(), dry_run=settings.dry_run, rounds=1)
    run = _Run(settings, services, clock, report, started=clock.now())
    world = _observed(run)
    if world is None:
        return report
    rules = settings.rules.move
    resolved = resolve(world, rules, MoveRequest(to=to, drain=drain))
    plan = (
        resolved
        if isinstance(resolved, Refused)
        else plan_move(world, rules, resolved, _probe(run, world, resolved))
    )
    if isinstance(plan, Refused):
        report.error("refused", f"refused, nothing changed: {plan.reason}")
    else:
        report.plan = plan
        change_id = _apply(run, world, plan)
        if change_id is not None and wait and not report.interrupted:
            _wait(run, change_id, insync_timeout)
    report.seconds = clock.now() - run.started
    return report


def _observed(run: _Run) -> World | None:
    """The world as a round reads it, its down states folded; None when the report says why."""
    try:
        observed = observe(run.settings, run.services, now=run.started)
    except DomainNotOwned as exc:
        run.report.refuse(str(exc))
        return None
    except WorldNotRead as exc:
        run.report.error("view-not-loaded", str(exc))
        return None
    assert observed is not None  # only None for a run about one instance
    return fold_down_states(observed, run.settings.rules.thresholds)


def _probe(run: _Run, world: World, resolved: Resolved) -> dict[str, ProbeResult]:
    """The candidates probed as a round probes LBs, on the round's paths: through the prober
    function where the LBs are private and the stage has one (from here, a private address may
    not answer). A path that cannot answer fails each of its targets: never a move on no answer."""
    if not resolved.to_probe:
        return {}
    probes = probing.probe_all(probed_world(world, resolved), run.settings, run.services)
    for lb in resolved.to_probe:
        result = probes.get(lb.instance_id)
        answer = "answered" if result is not None and result.ok else "FAILED"
        detail = result.detail if result is not None else "not probed"
        what = "stays in the record" if lb in resolved.kept else "healthy, backend list current"
        run.step(f"checked {lb.name} ({lb.address}): {what}; live probe {answer} ({detail})")
    return probes


def _apply(run: _Run, world: World, plan: Plan) -> str | None:
    """The Plan through the executor, then its history; the Route 53 change to wait for."""
    report, clock = run.report, run.clock
    # Paused was refused above; what is written still comes from the one policy every write obeys.
    executor = Executor(
        run.services,
        now=clock.now,
        writes=writes_for(dry_run=run.settings.dry_run, paused=world.paused),
    )
    # Ctrl-C from here waits for the move's writes: the Report must say whether it moved.
    with interrupts.writes_finish_first() as held:
        outcomes = executor.apply(plan)
    _report(outcomes, report, run.step)
    if held.interrupted:
        report.interrupted = True
        report.note("interrupted", "interrupted after the move's writes; INSYNC not waited for")
    failover = moved(plan, outcomes, seconds=clock.now() - run.started)
    if failover is not None:
        report.failovers.append(failover)
    if not any(isinstance(o.change, ChangeRecords | MoveAddress) for o in outcomes):
        run.step(plan.active.reason)
    events = history.round_events(
        world, outcomes, report.failovers, now=clock.now(), by=f"{report.job} on the command line"
    )
    record = history.record(run.settings.history_parameter_name, events)
    if record is not None:
        for outcome in executor.apply_changes([record]):
            if not outcome.ok:
                report.errors.append(f"history not stored: {outcome.error}")
            else:
                (report.planned if outcome.printed else report.applied).append(record.describe())
    return move_change_id(outcomes)


def _wait(run: _Run, change_id: str, timeout: float) -> None:
    try:
        _wait_insync(run.services, run.clock, change_id, run.report, run.step, timeout)
    except KeyboardInterrupt:
        run.report.interrupted = True
        run.report.note(
            "interrupted",
            f"stopped waiting for change {change_id} to be INSYNC; the move was applied",
        )


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
