"""Which notices a round sends, and what `<prefix>/notices` remembers afterwards. Pure.

Notices go out when something changes (SPEC): a failover (an event, sent once when it happens),
or a condition not notified before (no eligible LB, a held list, a failed action, a skipped
instance, ...). The conditions already notified are kept in the notices parameter, so a condition
that lasts for hours is sent once, and sent again only after it cleared and came back.

Both are Plan changes applied by the executor: while paused they are still sent (marked paused),
under LBF_DRY_RUN they are only printed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from chalicelib.core.plan import NoticeChange, Notify, StoreNotices

# What the notices parameter holds when no condition is current (SSM refuses an empty value).
NO_CONDITIONS = "none"


@dataclass(frozen=True)
class Failover:
    """A move of the active record (or the Elastic IP) this round: told once, when it happens."""

    moved: str  # old -> new, what the notice is about
    reason: str


def subject_of(cluster: str) -> str:
    return f"lb-failover {cluster}"


def parse_notified(stored: str | None) -> frozenset[str]:
    """The condition keys in the notices parameter, one a line."""
    return frozenset(line for line in (stored or "").splitlines() if line and line != NO_CONDITIONS)


def plan_notices(
    *,
    notified: Collection[str],
    conditions: Mapping[str, str],
    failovers: Sequence[Failover],
    paused: bool,
    subject: str,
    parameter: str,
) -> tuple[tuple[NoticeChange, ...], frozenset[str]]:
    """The notices of one round, and the condition keys remembered after it.

    One Notify per failover and per condition not notified before; then, if what is remembered
    changed, the parameter that keeps it. A condition that cleared is forgotten, so that it is
    notified again if it comes back.

    While paused nothing moves, so a failover is only planned: it is told as a condition ("would
    move"), once. And nothing is forgotten: a paused run starts each minute from the same stored
    verdicts, so a condition comes and goes within every run, and would otherwise be told anew
    each minute. Unpausing forgets what no longer holds.
    """
    current = dict(conditions)
    events: list[NoticeChange] = []
    for failover in failovers:
        if paused:
            current[f"would-move:{failover.moved}"] = (
                f"active record would move, not moved while paused: {failover.reason}"
            )
        else:
            events.append(
                Notify(
                    f"failover:{failover.moved}", subject, f"active record moved: {failover.reason}"
                )
            )
    remembered = frozenset(current) | (frozenset(notified) if paused else frozenset())
    changes = events + [
        Notify(key, subject, text) for key, text in current.items() if key not in notified
    ]
    if remembered != frozenset(notified):
        changes.append(StoreNotices(parameter, "\n".join(sorted(remembered)) or NO_CONDITIONS))
    return tuple(changes), remembered
