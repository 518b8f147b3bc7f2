"""What applying one change came to: the executor's answer, judged by the rules after it.

The executor makes Outcomes; the core reads them (which changes now hold, whether the role moved,
whether a record batch was rejected) without calling anything, so those rules have table tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib.core.changes import Change
from chalicelib.core.model import Push


@dataclass(frozen=True)
class Outcome:
    change: Change
    ok: bool
    error: str | None = None
    # Refused as a compare-and-swap (ChangeRejected): not yet stale nor permanent; the job's
    # re-read judges which.
    rejected: bool = False
    push: Push | None = None
    skipped: bool = False  # not attempted: it depended on a change that failed
    code: str | None = None  # AWS's error code when the call failed
    # Not applied: planned and printed only (dry run, paused). Nothing was written, and no push
    # was sent; the next round plans as if it had been (core.reread.fold_outcomes).
    printed: bool = False
    change_id: str | None = None  # a Route 53 change batch's id, to wait for INSYNC
    created_id: str | None = None  # the id Route 53 gave a health check this change created


def applied(outcomes: Sequence[Outcome]) -> list[Change]:
    """The changes that hold now, or would (printed ones): what the next round plans against."""
    return [o.change for o in outcomes if o.ok]
