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
class Event:
    """Something that happened this round and is told once: a failover of the active record."""

    key: str
    text: str


def subject_of(cluster: str) -> str:
    return f"lb-failover {cluster}"


def parse_notified(stored: str | None) -> frozenset[str]:
    """The condition keys in the notices parameter, one a line."""
    return frozenset(line for line in (stored or "").splitlines() if line and line != NO_CONDITIONS)


def plan_notices(
    *,
    notified: Collection[str],
    conditions: Mapping[str, str],
    events: Sequence[Event],
    subject: str,
    parameter: str,
) -> tuple[NoticeChange, ...]:
    """One Notify per event and per condition not notified before; then, if the set of current
    conditions changed, the parameter that remembers it (a cleared condition is forgotten, so it
    is notified again if it comes back)."""
    changes: list[NoticeChange] = [Notify(e.key, subject, e.text) for e in events]
    changes += [
        Notify(key, subject, text) for key, text in conditions.items() if key not in notified
    ]
    if set(conditions) != set(notified):
        changes.append(StoreNotices(parameter, "\n".join(sorted(conditions)) or NO_CONDITIONS))
    return tuple(changes)
