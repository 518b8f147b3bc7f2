"""A run's Report, and the bookkeeping that fills it: outcomes, failovers, changes, notices.

Words, as the logs and the docs use them: a *condition* is what is wrong (keyed, so that it is
notified once), a *notice* is the message sent about one (or about a failover), and a *note* is
a line of the report that is neither an action nor an error (a round not started for lack of
time, a push waiting for an LB's SSM agent, a view re-read after a rejected change): it is
reported, not sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from chalicelib.config import Settings
from chalicelib.core import conditions as condition_rules
from chalicelib.core import notices as notice_policy
from chalicelib.core.failover import Failover, failover_of, moved_role
from chalicelib.core.model import Record, World
from chalicelib.core.outcome import Outcome, applied
from chalicelib.core.plan import (
    Change,
    ChangeRecords,
    MoveAddress,
    NoticeChange,
    Notify,
    Plan,
    PutParameter,
    SetTags,
)
from chalicelib.errors import AwsError
from chalicelib.executor import Executor, Mode
from chalicelib.services import Services

log = logging.getLogger(__name__)


@dataclass
class Report:
    job: str
    run_id: str
    dry_run: bool = False
    rounds: int = 0
    applied: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)  # printed only: dry run, paused
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # the messages sent
    failovers: list[Failover] = field(default_factory=list)
    probe_failures: int = 0
    healthy_lbs: int = 0
    seconds: float = 0.0
    plan: Plan | None = None
    world: World | None = None
    timeline: list[tuple[float, str]] = field(default_factory=list)
    # Set when the run was refused for its configuration before anything was planned (the domain
    # is another cluster's): exit 2, and in a function the configuration-error metric alone.
    configuration_error: str | None = None
    # Ctrl-C ended the run between two steps: what it holds is what was applied until then.
    interrupted: bool = False
    codes: dict[str, str] = field(default_factory=dict)  # an error's or a note's text -> its code

    @property
    def ok(self) -> bool:
        return not self.errors

    def refuse(self, reason: str) -> Report:
        """The run stops here, for its configuration: nothing was written."""
        self.configuration_error = reason
        self.error("domain-not-owned", reason)
        return self

    def error(self, code: str, text: str) -> None:
        """An action that failed (the run exits 1), with a stable code for --json."""
        self.errors.append(text)
        self.codes.setdefault(text, code)

    def note(self, code: str, text: str) -> None:
        """A line that is neither an action nor an error, with a stable code for --json."""
        self.notes.append(text)
        self.codes.setdefault(text, code)

    def code_of(self, text: str, default: str) -> str:
        return self.codes.get(text, default)


@dataclass(frozen=True)
class RoundDone:
    """One round of a run as it ends, for whoever shows progress (the command line)."""

    number: int
    at: float  # the clock's time (epoch seconds)
    seconds: float  # since the run started
    verdicts: tuple[str, ...]  # "lb1 healthy -> unhealthy"
    applied: tuple[str, ...]
    planned: tuple[str, ...]  # printed only: dry run, paused
    errors: tuple[str, ...]


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def report_outcomes(outcomes: Sequence[Outcome], report: Report) -> None:
    """Each outcome in the report: applied or planned (printed only), failed, or not attempted."""
    for outcome in outcomes:
        text = outcome.change.describe()
        if outcome.ok:
            (report.planned if outcome.printed else report.applied).append(text)
        elif outcome.skipped:
            report.note("not-attempted", f"not attempted (records did not change): {text}")
        elif outcome.rejected:
            # Judged rejections (stale, permanent) are reported where they are judged; this one
            # could not be, its re-read failed.
            report.error(
                "route53-rejected",
                f"{text}: rejected, and not judged (no re-read); the next round tries again: "
                f"{outcome.error}",
            )
        else:
            report.error("action-failed", f"{text}: {outcome.error}")


def record_round(
    plan: Plan,
    outcomes: list[Outcome],
    report: Report,
    *,
    elapsed: float,
    move: str,
) -> dict[str, str]:
    """Adds the round to the report; returns its failed actions as conditions to notify."""
    report.plan = plan
    failed = condition_rules.failed_actions(outcomes)
    report_outcomes(outcomes, report)
    if moved_role(plan, outcomes):
        report.failovers.append(
            failover_of(plan, round=report.rounds + 1, seconds=elapsed, move=move)
        )
    for note in plan.notes:
        if note not in report.notes:
            report.note("plan", note)
    for key, text in plan.conditions.items():
        # A push sent again past its step's timeout: in the report as well as the notice.
        if key.startswith("push-overdue:") and text not in report.notes:
            report.note("push-overdue", text)
    return failed


def log_changes(world: World, outcomes: Sequence[Outcome]) -> None:
    """One "changed" line per applied change, with what it replaced in `world`."""
    for change in applied(outcomes):
        before, now = before_and_after(world, change)
        log.info("changed", extra={"change": change.describe(), "before": before, "after": now})


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
            _record_key(r): list(r.values) for r in world.records if (r.name, r.type) in names
        }
        after_records = {
            _record_key(c.record): list(c.record.values)
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


def notify(
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
    failovers = condition_rules.failovers_to_notify(report.failovers, round=report.rounds)

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
        # What an overlapping run notified since this run read the parameter counts as notified.
        # A read, not a write; if it fails, the notice goes out (better twice than never).
        try:
            stored = services.parameters.read([settings.notices_parameter_name])
        except AwsError:
            pass
        else:
            reread = condition_rules.notified_after_reread(
                world.notices, stored.get(settings.notices_parameter_name)
            )
            if reread is not None:
                changes, remembered = planned(*reread)
    for outcome in executor.apply_changes(changes):
        change = outcome.change
        if outcome.printed:
            if isinstance(change, Notify):
                report.note("would-notify", f"would notify: {change.message}")
            else:
                report.planned.append(change.describe())
        elif isinstance(change, Notify):
            report.notices.append(change.message)
            if not outcome.ok:
                report.error("notice-not-sent", f"notice not sent: {outcome.error}")
        elif outcome.ok:
            report.applied.append(change.describe())
        else:
            report.error("notices-not-stored", f"storing notified conditions: {outcome.error}")
    return replace(world, notices=remembered)


def _record_key(record: Record) -> str:
    """A failover pair's two records of one name and type, told apart by their role."""
    key = f"{record.name} {record.type}"
    return f"{key} {record.failover}" if record.failover else key
