"""A run's Report: what the run did, as the command line prints it and a function logs it.

Each round's lines are the core's (core/round_lines.py, a pure function of the round's Plans and
their outcomes); the Report adds them up in order (`Report.add`), and the "changed" log lines say
what each applied change replaced.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from chalicelib.core.changes import (
    Change,
    ChangeRecords,
    MoveAddress,
    PutBackendList,
    PutLbList,
    PutParameter,
    SetTags,
)
from chalicelib.core.failover import Failover
from chalicelib.core.model import Record, World
from chalicelib.core.outcome import Outcome, applied
from chalicelib.core.plan import Plan
from chalicelib.core.round_lines import Lines

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

    def add(self, lines: Lines) -> None:
        """A round's lines, in order; a note marked `once` only if it is not here yet."""
        self.applied += lines.applied
        self.planned += lines.planned
        for line in lines.errors:
            self.error(line.code, line.text)
        for line in lines.notes:
            if not (line.once and line.text in self.notes):
                self.note(line.code, line.text)
        self.notices += lines.notices


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
        stored = {PutBackendList: world.backends_parameter, PutLbList: world.lbs_parameter}
        return stored.get(type(change)), change.value
    if isinstance(change, MoveAddress):
        return world.eip_instance_id, change.instance_id
    return None, change.describe()


def _record_key(record: Record) -> str:
    """A failover pair's two records of one name and type, told apart by their role."""
    key = f"{record.name} {record.type}"
    return f"{key} {record.failover}" if record.failover else key
