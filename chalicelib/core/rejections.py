"""What a rejected Route 53 change batch means, judged by a re-read.

Route 53 answers a rejection (InvalidChangeBatch on AWS; moto says InvalidInput for some) both
when a compare-and-swap is stale (the record it meant to delete has changed) and when the batch
can never go through (a CNAME at the active name, a name outside the zone). It also answers it
when the batch went through but its answer was lost and botocore's retry met the changed record.
Neither the code nor the wording of the message tells these apart (moto words them otherwise than
AWS); a re-read does:

- the records the batch touches are as this run read them: nothing changed, so the rejection is
  permanent. Which of its records Route 53 refuses the re-read cannot tell (they all read
  unchanged): a batch of one compare-and-swap is that one; otherwise each goes in a batch of its
  own (`compare_and_swaps`), and the ones rejected again are the rejected ones;
- they hold what this run wanted: the change is this run's (or an overlapping run made the same
  one), and a failover in it counts as this run's failover;
- anything else: stale; re-read and plan again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from chalicelib.core import dns
from chalicelib.core.changes import Change, ChangeRecords, DeleteHealthCheck, SetTags
from chalicelib.core.model import TAG_STATE, Record
from chalicelib.core.plan import Plan


def _touched(records: Sequence[Record], changes: Sequence[dns.RecordChange]) -> dict[str, object]:
    # A failover pair is two records of one name and type: its SetIdentifier tells them apart.
    keys = {(c.record.name, c.record.type) for c in changes}
    return {
        f"{r.name} {r.type} {r.set_identifier or ''}": r
        for r in records
        if (r.name, r.type) in keys
    }


def unchanged(
    ours: Sequence[Record], fresh: Sequence[Record], changes: Sequence[dns.RecordChange]
) -> bool:
    """The re-read shows every record the batch touches as this run read it."""
    return _touched(ours, changes) == _touched(fresh, changes)


def holds(fresh: Sequence[Record], name: str, values: Sequence[str]) -> bool:
    """The re-read record `name` holds exactly `values` (in any order; TTL aside)."""
    record = dns.find_record(fresh, name)
    return record is not None and set(record.values) == set(values)


def compare_and_swaps(batch: ChangeRecords) -> tuple[ChangeRecords, ...]:
    """Each record's compare-and-swap of `batch` as a batch of its own, in the batch's order.

    A record's changes (the active record's DELETE and CREATE, an UPSERT, the _lbf TXT's) stay
    together: Route 53 must see the DELETE of the exact record read beside what replaces it.
    """
    grouped: dict[tuple[str, str], list[dns.RecordChange]] = {}
    for change in batch.changes:
        grouped.setdefault((change.record.name, change.record.type), []).append(change)
    return tuple(replace(batch, changes=tuple(changes)) for changes in grouped.values())


def without(plan: Plan, names: Collection[str], *, active_fqdn: str) -> Plan:
    """The plan less its record changes to `names`.

    When the change that moves the active role is among them, the role does not move: lbf:state
    is taken out of the tags (the other tags, the verdicts, are still written).
    """
    names = set(names)
    role_left_out = any(
        c.record.name == active_fqdn
        and c.action != "DELETE"
        and plan.active.values is not None
        and set(c.record.values) == set(plan.active.values)
        for change in plan.changes
        if isinstance(change, ChangeRecords)
        for c in change.changes
        if c.record.name in names
    )
    changes: list[Change] = []
    for change in plan.changes:
        if isinstance(change, ChangeRecords):
            kept = tuple(c for c in change.changes if c.record.name not in names)
            if kept:
                changes.append(replace(change, changes=kept))
        elif (
            isinstance(change, DeleteHealthCheck) and change.after_records and active_fqdn in names
        ):
            continue  # the pair's batch that stopped naming the check is refused: still named
        elif isinstance(change, SetTags) and change.after_records and role_left_out:
            tags = tuple((k, v) for k, v in change.tags if k != TAG_STATE)
            if tags:
                changes.append(replace(change, tags=tags, after_records=False))
        else:
            changes.append(change)
    if not role_left_out:
        return replace(plan, changes=tuple(changes))
    # What the run reports as the active record's fate: not what it planned, what it did.
    reason = f"left as it is: Route 53 rejects the change ({plan.active.reason})"
    active = replace(plan.active, values=None, moved_from=None, moved_to=None, reason=reason)
    return replace(plan, changes=tuple(changes), active=active)


def left_out(plan: Plan, names: Collection[str]) -> tuple[dns.RecordChange, ...]:
    """The record changes of `plan` to `names`: what `without` takes out."""
    return tuple(
        c
        for change in plan.changes
        if isinstance(change, ChangeRecords)
        for c in change.changes
        if c.record.name in names
    )
