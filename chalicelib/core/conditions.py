"""The conditions a round adds to its plan's own, and what counts as notified already.

A condition is what is wrong, keyed (`kind:subject`) so that core/notices.py can tell a new one
from one already notified; a notice is the message sent about it. The plan names the conditions of
the view (no eligible LB, a held list, a skipped instance, ...); applying it adds these: an action
that failed, an LB whose SSM agent is still unknown past its grace period, record names Route 53
rejects for good. The round's failovers are notified once per move.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from chalicelib.core import notices
from chalicelib.core.failover import Failover
from chalicelib.core.outcome import Outcome

# Route 53's rejections of a run: one condition, so one notice, however many names and rounds
# the rejection spans (a domain outside the zone rejects every name, some only in a later round).
ROUTE53_REJECTED = "route53-rejected"
_DESCRIBED = 120  # characters of a failed change's description in its key


def failed_actions(outcomes: Sequence[Outcome]) -> dict[str, str]:
    """Each change that was attempted and failed (not one left out because another failed)."""
    failed: dict[str, str] = {}
    for outcome in outcomes:
        if not outcome.ok and not outcome.skipped:
            described = outcome.change.describe()
            failed[f"failed:{described[:_DESCRIBED]}"] = (
                f"action failed, retried next round or run: {described}: {outcome.error}"
            )
    return failed


def unregistered_agents(unregistered: Mapping[str, str]) -> dict[str, str]:
    """LB -> its condition's text, "" while it is still within its agent's grace period."""
    return {
        f"push-unregistered:{instance_id}": text
        for instance_id, text in unregistered.items()
        if text
    }


def rejected_records(rejected: Mapping[str, str]) -> dict[str, str]:
    """Record name -> Route 53's message, as the one `route53-rejected` condition (none if none)."""
    if not rejected:
        return {}
    grouped = ", ".join(f"{names} ({message})" for names, message in by_message(rejected).items())
    return {
        ROUTE53_REJECTED: (
            f"Route 53 rejects changes to {grouped}; the runs go on without them and try again "
            "each run"
        )
    }


def by_message(rejected: Mapping[str, str]) -> dict[str, str]:
    """The rejected names grouped by Route 53's message: "a,b" -> message."""
    grouped: dict[str, list[str]] = {}
    for name, message in rejected.items():
        grouped.setdefault(message, []).append(name)
    return {",".join(sorted(names)): message for message, names in grouped.items()}


def failovers_to_notify(failovers: Sequence[Failover], *, round: int) -> list[notices.ReportedMove]:
    """The failovers of `round`, as core/notices notifies them: keyed by their move when known."""
    return [
        notices.ReportedMove(
            f.move.split(":", 1)[1] if f.move else f"{f.moved_from or ''}->{f.moved_to or ''}",
            f.reason,
            key=f.move,
        )
        for f in failovers
        if f.round == round
    ]


def notified_after_reread(
    remembered: Collection[str], stored: str | None
) -> tuple[frozenset[str], frozenset[str]] | None:
    """After re-reading `<prefix>/notices`: (what counts as notified, what the parameter holds).

    An overlapping run may have seen the same condition or made the same move, and sent it, since
    this run read the parameter: what it stored counts as notified. None when the parameter holds
    what this run read: the notices planned from it stand.
    """
    remembered = frozenset(remembered)
    notified = notices.parse_stored(stored)
    if notified == remembered:
        return None
    return remembered | notified, notified
