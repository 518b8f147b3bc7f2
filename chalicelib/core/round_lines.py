"""The Report's lines of a round, as values: a pure function of its Plan and its outcomes.

Words, as the logs and the docs use them: a *condition* is what is wrong (keyed, so that it is
notified once), a *notice* is the message sent about one (or about a failover), and a *note* is
a line of the report that is neither an action nor an error (a round not started for lack of
time, a push waiting for an LB's SSM agent, a view re-read after a rejected change): it is
reported, not sent. chalicelib/report.py adds these lines to the run's Report, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib.core.changes import Notify, RecordHistory
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import Plan


@dataclass(frozen=True)
class Line:
    """An error or a note, with its stable code for --json."""

    code: str
    text: str
    once: bool = False  # a note the Report holds already is not added again


@dataclass(frozen=True)
class Lines:
    applied: tuple[str, ...] = ()
    planned: tuple[str, ...] = ()  # printed only: dry run, paused
    errors: tuple[Line, ...] = ()
    notes: tuple[Line, ...] = ()
    notices: tuple[str, ...] = ()  # the messages sent

    def __add__(self, other: Lines) -> Lines:
        return Lines(
            applied=self.applied + other.applied,
            planned=self.planned + other.planned,
            errors=self.errors + other.errors,
            notes=self.notes + other.notes,
            notices=self.notices + other.notices,
        )


def outcome_lines(outcomes: Sequence[Outcome]) -> Lines:
    """Each outcome: applied or planned (printed only), failed, or not attempted."""
    applied: list[str] = []
    planned: list[str] = []
    errors: list[Line] = []
    notes: list[Line] = []
    for outcome in outcomes:
        text = outcome.change.describe()
        if outcome.ok:
            (planned if outcome.printed else applied).append(text)
        elif outcome.skipped:
            notes.append(Line("not-attempted", f"not attempted (records did not change): {text}"))
        elif outcome.rejected:
            # Judged rejections (stale, permanent) are reported where they are judged; this one
            # could not be, its re-read failed.
            errors.append(
                Line(
                    "route53-rejected",
                    f"{text}: rejected, and not judged (no re-read); the next round tries again: "
                    f"{outcome.error}",
                )
            )
        else:
            errors.append(Line("action-failed", f"{text}: {outcome.error}"))
    return Lines(tuple(applied), tuple(planned), tuple(errors), tuple(notes))


def plan_lines(plan: Plan) -> Lines:
    """The plan's notes, and a push sent again past its step's timeout (also a notice)."""
    notes = [Line("plan", note, once=True) for note in plan.notes]
    notes += [
        Line("push-overdue", text, once=True)
        for key, text in plan.conditions.items()
        if key.startswith("push-overdue:")
    ]
    return Lines(notes=tuple(notes))


def tail_lines(outcomes: Sequence[Outcome]) -> Lines:
    """The round's notices and its history as applied (paused: sent; dry run: printed)."""
    lines = Lines()
    for outcome in outcomes:
        change = outcome.change
        if outcome.printed:
            if isinstance(change, Notify):
                lines += Lines(notes=(Line("would-notify", f"would notify: {change.message}"),))
            else:
                lines += Lines(planned=(change.describe(),))
        elif isinstance(change, Notify):
            lines += Lines(notices=(change.message,))
            if not outcome.ok:
                lines += Lines(
                    errors=(Line("notice-not-sent", f"notice not sent: {outcome.error}"),)
                )
        elif outcome.ok:
            lines += Lines(applied=(change.describe(),))
        elif isinstance(change, RecordHistory):
            lines += Lines(
                errors=(Line("history-not-stored", f"history not stored: {outcome.error}"),)
            )
        else:
            lines += Lines(
                errors=(
                    Line("notices-not-stored", f"storing notified conditions: {outcome.error}"),
                )
            )
    return lines
