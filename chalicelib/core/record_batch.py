"""A round's record batch: the per-LB records, the active record's change and the `_lbf` TXT.

`record_plan` puts together the sub-decisions below, each a pure function of what was read. They
run in this order, because each one leaves alone what an earlier one decided about a name: the
records of the inventory's LBs, the records of skipped LBs (moved along, or deleted when gone),
the records of LBs that vanished, the values no instance holds any more, the active record, and
last the TXT, which lists what exists after all of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from chalicelib.core.dns import (
    ActiveDecision,
    RecordChange,
    RecordRules,
    active_change,
    address_record,
    apply_record_changes,
    owned_names,
    ownership_of,
    ownership_record,
)
from chalicelib.core.inventory import natural_key
from chalicelib.core.model import GONE_STATES, Instance, Record, Skipped

# Records as read, by (name, type): what every sub-decision looks a record up in.
Current = Mapping[tuple[str, str], Record]


@dataclass(frozen=True)
class RecordPlan:
    """A round's record changes, and the values they take out because no LB holds them."""

    changes: tuple[RecordChange, ...]
    released: Mapping[str, tuple[str, ...]]  # record name -> values taken out of it


def record_plan(
    records: Sequence[Record],
    lbs: Sequence[Instance],
    skipped: Sequence[Skipped],
    decision: ActiveDecision,
    rules: RecordRules,
    *,
    former: Collection[str] = (),
    addresses: Collection[str] | None = None,
) -> RecordPlan:
    """Every record change of this round, for one change batch (Route 53: 5 requests/s).

    `former`: addresses the cluster's LBs are known to have held; an active record left on one
    of them is still the cluster's, and takes a new LBF_TTL like the rest.

    `addresses`: the addresses the cluster's instances hold now (`dns.addresses_held`). A per-LB
    record the TXT lists loses every value outside it: a released public IP may be given to
    anyone's instance next, and a record must never send clients there. None: not judged. The
    active record's values are the decision's (`dns.release_active`).
    """
    if rules.cluster is None:
        raise ValueError("planning records needs the cluster that owns them (RecordRules.cluster)")
    current = {(r.name, r.type): r for r in records}
    ownership = current.get((rules.ownership_fqdn, "TXT"))
    owned = owned_names(ownership, rules)
    # EC2's state outranks a tag: a skipped LB that is gone loses its record like any other.
    live_skipped = [s for s in skipped if s.state not in GONE_STATES]
    by_label = lbs_by_name(lbs)
    changes = lb_record_changes(by_label, current, live_skipped, rules)
    changes += skipped_record_moves(live_skipped, set(by_label), current, owned, rules)
    known = frozen_names(live_skipped, current, owned, rules) | {rules.fqdn(n) for n in by_label}
    gone = gone_skipped_deletes(skipped, set(by_label), current, known, rules)
    changes += gone
    # Deleted as a gone skipped LB's record, not again as a vanished name.
    known |= {change.record.name for change in gone}
    changes += vanished_deletes(owned - known, current, rules)
    released: dict[str, tuple[str, ...]] = {}
    if addresses is not None:
        changed = {c.record.name for c in changes if c.record.type == "A"}
        more, released = released_value_changes(owned - changed, current, addresses, rules)
        changes += more
    if decision.released:
        released[rules.active_fqdn] = decision.released
    reachable = _addresses(lbs, skipped) | set(former)
    changes += active_record_changes(
        current.get((rules.active_fqdn, "A")), decision, reachable, rules
    )
    after = apply_record_changes(records, changes)
    changes += ownership_changes(
        ownership, after, owned, lbs, changes, rules, cluster=rules.cluster
    )
    return RecordPlan(tuple(changes), released)


def lbs_by_name(lbs: Sequence[Instance]) -> dict[str, list[Instance]]:
    """The inventory's LBs by name. Several instances can carry one name (a replacement and the
    one it replaced): the record follows the running one."""
    by_label: dict[str, list[Instance]] = {}
    for lb in lbs:
        if lb.name is not None:
            by_label.setdefault(lb.name, []).append(lb)
    return by_label


def lb_record_changes(
    by_label: Mapping[str, Sequence[Instance]],
    current: Current,
    live_skipped: Sequence[Skipped],
    rules: RecordRules,
) -> list[RecordChange]:
    """Each LB name's record points at its running LB's address; it is deleted only when every
    instance of that name is gone and no live skipped LB still answers for the name."""
    frozen_labels = {s.name for s in live_skipped if s.name is not None}
    changes: list[RecordChange] = []
    for label, holders in by_label.items():
        fqdn = rules.fqdn(label)
        record = current.get((fqdn, "A"))
        live = [lb for lb in holders if lb.running and lb.address is not None]
        if live:
            wanted = address_record(fqdn, [live[0].address or ""], rules.ttl)
            if record != wanted:
                changes.append(RecordChange("UPSERT", wanted))
        elif (
            record is not None
            and all(lb.state in GONE_STATES for lb in holders)
            and label not in frozen_labels
        ):
            changes.append(RecordChange("DELETE", record))
    return changes


def skipped_record_moves(
    live_skipped: Sequence[Skipped],
    lb_names: Collection[str],
    current: Current,
    owned: Collection[str],
    rules: RecordRules,
) -> list[RecordChange]:
    """Its name is frozen, its address is EC2's: a running skipped LB that came back with a new
    address takes its record along (the active record follows it the same way), rather than
    leaving its name on an address it no longer has. A record it has not got is not created.

    Two skipped instances with one name (a replacement and the one it replaced): both are
    frozen, neither moves the record. An LB of the inventory with that name owns the record.
    """
    names = Counter(s.name for s in live_skipped)
    changes: list[RecordChange] = []
    for s in live_skipped:
        if s.state != "running" or s.address is None or s.name is None:
            continue
        if s.name in lb_names or names[s.name] > 1:
            continue
        fqdn = rules.fqdn(s.name)
        if fqdn not in owned or fqdn in (rules.active_fqdn, rules.ownership_fqdn):
            continue  # only a per-LB record of the cluster's, never one a hostile tag names
        record = current.get((fqdn, "A"))
        if record is not None and record.values != (s.address,):
            changes.append(RecordChange("UPSERT", address_record(fqdn, [s.address], rules.ttl)))
    return changes


def frozen_names(
    live_skipped: Sequence[Skipped], current: Current, owned: Collection[str], rules: RecordRules
) -> set[str]:
    """Names a skipped instance of the cluster still answers for: they are left as they are.

    A skipped LB that has not given up its address is frozen: the record of its name stays, and
    so does its own record found by address (an owned name whose record holds it) when its name
    tag no longer parses.
    """
    known = {rules.fqdn(s.name) for s in live_skipped if s.name is not None}
    frozen_addresses = {s.address for s in live_skipped if s.address is not None}
    known |= {
        name
        for name in owned
        if (record := current.get((name, "A"))) is not None
        and frozen_addresses.intersection(record.values)
    }
    return known


def gone_skipped_deletes(
    skipped: Sequence[Skipped],
    lb_names: Collection[str],
    current: Current,
    known: Collection[str],
    rules: RecordRules,
) -> list[RecordChange]:
    """The record of a skipped LB that is gone (stopped for good or terminated) is deleted,
    unless something live still answers for the name."""
    live_labels = {s.name for s in skipped if s.name is not None and s.state not in GONE_STATES}
    gone_labels = (
        {s.name for s in skipped if s.name is not None and s.state in GONE_STATES}
        - live_labels
        - set(lb_names)
    )
    changes: list[RecordChange] = []
    for label in sorted(gone_labels, key=natural_key):
        fqdn = rules.fqdn(label)
        record = current.get((fqdn, "A"))
        if record is not None and fqdn not in known:
            changes.append(RecordChange("DELETE", record))
    return changes


def vanished_deletes(
    unknown: Collection[str], current: Current, rules: RecordRules
) -> list[RecordChange]:
    """A record we created for an LB that has since vanished while no run was looking.

    `unknown`: the names the TXT lists that no instance answers for any more.
    """
    return [
        RecordChange("DELETE", record)
        for fqdn in sorted(set(unknown) - {rules.active_fqdn})
        if (record := current.get((fqdn, "A"))) is not None
    ]


def released_value_changes(
    unchanged: Collection[str],
    current: Current,
    addresses: Collection[str],
    rules: RecordRules,
) -> tuple[list[RecordChange], dict[str, tuple[str, ...]]]:
    """Values no instance of the cluster holds leave the per-LB records the TXT lists; a record
    left with none is deleted. Also: which values went, by record name (a condition each).

    `unchanged`: the owned names no earlier sub-decision changed (the active record is not one
    of these: its values are the decision's).
    """
    changes: list[RecordChange] = []
    released: dict[str, tuple[str, ...]] = {}
    for fqdn in sorted(set(unchanged) - {rules.active_fqdn}):
        record = current.get((fqdn, "A"))
        if record is None:
            continue
        gone = tuple(v for v in record.values if v not in addresses)
        if not gone:
            continue
        kept = tuple(v for v in record.values if v in addresses)
        released[fqdn] = gone
        if kept:
            changes.append(RecordChange("UPSERT", address_record(fqdn, kept, rules.ttl)))
        else:
            changes.append(RecordChange("DELETE", record))
    return changes, released


def active_record_changes(
    active: Record | None,
    decision: ActiveDecision,
    reachable: Collection[str],
    rules: RecordRules,
) -> list[RecordChange]:
    """The active record's compare-and-swap: to the decision's values, or, when the decision
    leaves it as it is, to a changed LBF_TTL.

    `reachable`: the addresses the cluster's LBs hold or are known to have held. Only a record
    within them takes a new TTL: a record pointed by hand at no LB is rewritten when it is
    repaired, never restated as it is.
    """
    if decision.values is not None:
        return active_change(active, decision.values, rules.ttl, rules.active_fqdn)
    if active is not None and active.ttl != rules.ttl and set(active.values) <= set(reachable):
        return active_change(active, active.values, rules.ttl, rules.active_fqdn)
    return []


def ownership_changes(
    ownership: Record | None,
    after: Sequence[Record],
    owned: Collection[str],
    lbs: Sequence[Instance],
    changes: Sequence[RecordChange],
    rules: RecordRules,
    *,
    cluster: str,
) -> list[RecordChange]:
    """The `_lbf` TXT after the batch: it names `cluster` as the owner and lists every record
    of the cluster's that exists then.

    `after`: the records once `changes` are applied; `owned`: the names the TXT lists now.
    """
    mine = {rules.fqdn(lb.name) for lb in lbs if lb.name is not None} | {rules.active_fqdn}
    owned_after = {r.name for r in after if r.type == "A" and (r.name in owned or r.name in mine)}
    labels = sorted(
        (name.removesuffix("." + rules.domain) for name in owned_after), key=natural_key
    )
    wanted = ownership_record(cluster, labels, rules)
    if ownership is None:
        # A domain without a TXT gets one from the first run that writes a record in it: a run
        # that writes nothing (a typo in LBF_CLUSTER, say) never claims a domain.
        writes = any(c.action != "DELETE" and c.record.type == "A" for c in changes)
        return [RecordChange("CREATE", wanted)] if writes and labels else []
    if _says(ownership, rules) != _says(wanted, rules) or ownership.ttl != rules.ttl:
        # Compare-and-swap, as the active record: the TXT says who owns the domain, and a run
        # that read it before a handover (or another cluster's adoption) must fail, not undo it.
        # A TXT without a cluster string is adopted here, by the same swap. With no record left
        # it still names the owner: an empty cluster is still a cluster.
        return [RecordChange("DELETE", ownership), RecordChange("CREATE", wanted)]
    return []


def _says(record: Record, rules: RecordRules) -> tuple[str | None, frozenset[str]]:
    """What a TXT means, whatever order Route 53 gives its strings in."""
    ownership = ownership_of([record], rules)
    return ownership.owner, frozenset(ownership.labels)


def _addresses(lbs: Sequence[Instance], skipped: Sequence[Skipped]) -> set[str]:
    return {lb.address for lb in lbs if lb.address is not None} | {
        s.address for s in skipped if s.address is not None
    }
