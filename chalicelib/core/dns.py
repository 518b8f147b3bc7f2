"""Which records should exist, and the one compare-and-swap change that gets there.

Names here are fully qualified, lower case, without Route 53's trailing dot; the adapter adds and
strips it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from chalicelib.core.addresses import sort_key as address_key
from chalicelib.core.inventory import lowest_free_name, natural_key
from chalicelib.core.model import (
    DOWN_STATES,
    GONE_STATES,
    ActiveMode,
    Instance,
    Record,
    Role,
    Skipped,
    Verdict,
    World,
)
from chalicelib.core.names import record_name


@dataclass(frozen=True)
class RecordChange:
    action: str  # CREATE | DELETE | UPSERT
    record: Record


@dataclass(frozen=True)
class RecordRules:
    domain: str
    ttl: int
    active_name: str
    active_mode: ActiveMode = ActiveMode.SINGLE

    @property
    def active_fqdn(self) -> str:
        return record_name(self.active_name, self.domain)

    @property
    def ownership_fqdn(self) -> str:
        return f"_lbf.{self.domain}"

    def fqdn(self, label: str) -> str:
        return record_name(label, self.domain)


@dataclass(frozen=True)
class ActiveDecision:
    """Where the active record should point after this plan, and why."""

    values: tuple[str, ...] | None  # None: leave the record as it is
    holders: tuple[str, ...]  # instance ids the record points at afterwards (lbf:state=active)
    reason: str
    moved_from: str | None = None  # LB name the record left, for a failover
    moved_to: str | None = None
    no_eligible: bool = False  # no LB can take the record (a notice, unless nothing is known yet)
    repaired: bool = False  # the record pointed at no LB of the cluster


def find_record(records: Iterable[Record], name: str, kind: str = "A") -> Record | None:
    """The record of that name and type among those read, or None."""
    return next((r for r in records if r.name == name and r.type == kind), None)


def active_record(records: Iterable[Record], rules: RecordRules) -> Record | None:
    return find_record(records, rules.active_fqdn)


def is_eligible(lb: Instance) -> bool:
    """SPEC: running, tags parse (it is an Instance), not draining, verdict healthy."""
    return keeps_role(lb) and lb.name is not None


def keeps_role(lb: Instance) -> bool:
    """The LB that holds the active role keeps it: running, not draining, healthy, reachable.

    A skipped LB is judged by this too (its tags are frozen, not its health), but it is never
    newly chosen: only `is_eligible` LBs of the inventory are candidates.
    """
    return (
        lb.running and not lb.draining and lb.verdict is Verdict.HEALTHY and lb.address is not None
    )


def frozen_lbs(skipped: Iterable[Skipped]) -> list[Instance]:
    """The skipped LBs whose role is known, as far as they parsed: they can hold what they have."""
    return [s.frozen for s in skipped if s.frozen is not None and s.frozen.role is Role.LB]


def _unjudged(skipped: Iterable[Skipped], values: Collection[str]) -> Skipped | None:
    """A running skipped instance of unknown role that a value points at: left as it is."""
    return next(
        (
            s
            for s in skipped
            if s.frozen is None
            and s.address is not None
            and s.address in values
            and s.state not in DOWN_STATES
        ),
        None,
    )


def label(lb: Instance) -> str:
    """How an LB is named in reasons: a skipped LB may have no valid name."""
    return lb.name or lb.instance_id


def by_name(lbs: Iterable[Instance]) -> list[Instance]:
    return sorted(lbs, key=lambda lb: natural_key(lb.name or ""))


def _a_record(name: str, values: Sequence[str], ttl: int) -> Record:
    return Record(name=name, type="A", ttl=ttl, values=tuple(values))


def anyone(lb: Instance) -> bool:
    return True


def decide_active(
    current: Record | None,
    lbs: Sequence[Instance],
    skipped: Sequence[Skipped],
    rules: RecordRules,
    *,
    can_take_over: Callable[[Instance], bool] = anyone,
    former: Collection[str] | None = None,
    own: Mapping[str, Collection[str]] | None = None,
) -> ActiveDecision:
    """Where the active record should point. `can_take_over` narrows which eligible LBs may be
    newly chosen (LBF_LB_MIN_BACKENDS); the LB that holds the record is judged on health alone.

    A skipped LB that holds the record is judged like any holder (EC2's state outranks its tags;
    its probes still count) and is never newly chosen.

    `former`: addresses LBs of the cluster are known to have held (their own records, the LB
    list parameter). A record holding none of the current LB addresses follows the LB tagged
    active only if it holds such a former address: that LB came back with a new IP. Anything
    else was pointed there by hand and is repaired, with a notice. None: not known, follow.

    `own`: each LB name's own record as read (its values), so that in active-active mode a skipped
    LB back with a new address is known by the place it had.
    """
    candidates = by_name(lb for lb in lbs if is_eligible(lb) and can_take_over(lb))
    frozen = frozen_lbs(skipped)
    if rules.active_mode is ActiveMode.ALL:
        return _decide_active_all(current, lbs, candidates, frozen, skipped, own or {})
    values = set(current.values) if current is not None else set()
    known = [*lbs, *frozen]
    pointed = [lb for lb in known if lb.address is not None and lb.address in values]
    if current is None:
        return _create(candidates)

    unjudged = _unjudged(skipped, values)
    if unjudged is not None and not pointed:
        return ActiveDecision(
            None, (), f"left as is: it points at skipped instance {unjudged.instance_id}"
        )

    holder: Instance | None = pointed[0] if pointed else None
    followed = False
    keeps: Instance | None = None  # keeps lbf:state=active while the record waits for it
    if holder is None:
        # The record holds no current LB address: either the active LB came back with a new IP
        # (it still carries lbf:state=active), or someone pointed the record elsewhere.
        tagged = [lb for lb in known if lb.lb_state is not None and lb.lb_state.value == "active"]
        if len(tagged) == 1 and tagged[0].address is None:
            # A stopped LB has no public address, but the record is still its: moving off it is a
            # failover (with its notice), not the repair of a record no LB of the cluster holds.
            holder = tagged[0]
        elif len(tagged) == 1 and (former is None or values <= set(former)):
            holder, followed = tagged[0], True
        elif len(tagged) == 1:
            # Pointed by hand at an address no LB ever had: repaired, back to the LB still tagged
            # active as soon as it is eligible; until then it keeps the tag, and with it the claim.
            keeps = tagged[0]
            if keeps in candidates:
                candidates = [keeps, *(lb for lb in candidates if lb is not keeps)]

    if holder is not None and keeps_role(holder):
        if not followed and len(current.values) == 1:
            return ActiveDecision(None, (holder.instance_id,), f"kept on {label(holder)}")
        return ActiveDecision(
            (holder.address or "",),
            (holder.instance_id,),
            f"follows {label(holder)} to its address {holder.address}",
        )
    return _off_holder(holder, candidates, pointed_at=", ".join(sorted(values)), keeps=keeps)


def decide_holder(
    holder_id: str | None,
    lbs: Sequence[Instance],
    skipped: Sequence[Skipped] = (),
    *,
    can_take_over: Callable[[Instance], bool] = anyone,
) -> ActiveDecision:
    """EIP mode: the same rules, applied to the instance the Elastic IP is associated with."""
    candidates = by_name(lb for lb in lbs if is_eligible(lb) and can_take_over(lb))
    if holder_id is None:
        return _create(candidates)
    holder = next((lb for lb in [*lbs, *frozen_lbs(skipped)] if lb.instance_id == holder_id), None)
    if holder is None:
        unknown = next((s for s in skipped if s.instance_id == holder_id), None)
        if unknown is not None and unknown.state not in DOWN_STATES:
            return ActiveDecision(
                None, (), f"left as is: it is on skipped instance {unknown.instance_id}"
            )
    if holder is not None and keeps_role(holder):
        return ActiveDecision(None, (holder.instance_id,), f"kept on {label(holder)}")
    return _off_holder(holder, candidates, pointed_at=holder_id)


def _create(candidates: Sequence[Instance]) -> ActiveDecision:
    if not candidates:
        return ActiveDecision(None, (), "nothing active yet and no eligible LB", no_eligible=True)
    first = candidates[0]
    return ActiveDecision(
        (first.address or "",),
        (first.instance_id,),
        f"created on {first.name}",
        moved_to=first.name,
    )


def _off_holder(
    holder: Instance | None,
    candidates: Sequence[Instance],
    *,
    pointed_at: str,
    keeps: Instance | None = None,
) -> ActiveDecision:
    """The holder is not eligible (or there is none): move to the first candidate, if any."""
    if (
        holder is not None
        and holder.running
        and not holder.draining
        and holder.verdict is Verdict.UNKNOWN
    ):
        # Unknown is never a reason to move (SPEC): no verdict yet after a start or an edit.
        return ActiveDecision(None, (holder.instance_id,), f"kept on {label(holder)} (unknown)")

    others = [lb for lb in candidates if holder is None or lb.instance_id != holder.instance_id]
    if not others:
        # The record stays the holder's even when it holds the holder's former address (it came
        # back with a new IP and has no verdict yet): lbf:state=active keeps that link, so that
        # the record can follow it later instead of being repaired to whichever LB is lowest.
        claimant = holder or keeps
        held = (claimant.instance_id,) if claimant is not None else ()
        what = label(holder) if holder is not None else pointed_at
        return ActiveDecision(None, held, f"left on {what}: no eligible LB", no_eligible=True)
    target = others[0]
    if holder is None:
        reason = f"repaired: pointed at {pointed_at}, no LB of the cluster"
    else:
        reason = f"moved off {label(holder)} ({_why_not(holder)}) to {target.name}"
    return ActiveDecision(
        (target.address or "",),
        (target.instance_id,),
        reason,
        moved_from=label(holder) if holder is not None else None,
        moved_to=target.name,
        repaired=holder is None,
    )


def _why_not(lb: Instance) -> str:
    if not lb.running:
        return lb.state
    if lb.draining:
        return "draining"
    if lb.address is None:
        return "no address"
    return lb.verdict.value


def _decide_active_all(
    current: Record | None,
    lbs: Sequence[Instance],
    candidates: Sequence[Instance],
    frozen: Sequence[Instance],
    skipped: Sequence[Skipped],
    own: Mapping[str, Collection[str]],
) -> ActiveDecision:
    """Active-active: every eligible LB, plus those in the record that have no verdict yet.

    A skipped LB keeps its place in the record while it is running and not failing (never added);
    an address of a running skipped instance of unknown role stays too.
    """
    values = set(current.values) if current is not None else set()
    chosen = {lb.instance_id for lb in candidates}

    def stays(lb: Instance) -> bool:
        return lb.address in values and (
            keeps_role(lb) or (lb.running and not lb.draining and lb.verdict is Verdict.UNKNOWN)
        )

    # A skipped LB back from a stop with a new address: its place is the address its own record
    # still holds, if the record has it and no LB has it now. It keeps that place, at its new
    # address (an address is EC2's, not a tag), as the single active record follows its holder.
    addresses = {lb.address for lb in [*lbs, *frozen]}

    def moved(lb: Instance) -> bool:
        had = set(own.get(lb.name or "", ())) - addresses
        return keeps_role(lb) and bool(had & values)

    keep = [lb for lb in lbs if lb.instance_id in chosen or stays(lb)]
    keep += [lb for lb in frozen if stays(lb) or moved(lb)]
    unjudged = {
        s.address
        for s in skipped
        if s.frozen is None
        and s.address is not None
        and s.address in values
        and s.state not in DOWN_STATES
    }
    if not any(keeps_role(lb) for lb in keep):
        # Never an empty record: with no eligible LB it stays as it is.
        return ActiveDecision(None, (), "no eligible LB", no_eligible=current is not None)
    ordered = by_name(keep)
    wanted = tuple(sorted({lb.address or "" for lb in ordered} | unjudged, key=address_key))
    holders = tuple(lb.instance_id for lb in ordered)
    if current is not None and tuple(sorted(current.values, key=address_key)) == wanted:
        return ActiveDecision(None, holders, "kept")
    gone = sorted(values - set(wanted))
    return ActiveDecision(
        wanted,
        holders,
        f"now {' '.join(wanted)}" + (f" (removed {' '.join(gone)})" if gone else ""),
        moved_from=" ".join(gone) or None,
    )


def active_change(
    current: Record | None, values: Sequence[str], ttl: int, name: str
) -> list[RecordChange]:
    """Compare-and-swap: DELETE the exact record we read and CREATE the new one, in one batch.

    Route 53 rejects the whole batch if the DELETE does not match the current record, so a stale
    or concurrent run fails instead of overwriting; clients never see the name missing.
    """
    new = _a_record(name, values, ttl)
    if current is None:
        return [RecordChange("CREATE", new)]
    return [RecordChange("DELETE", current), RecordChange("CREATE", new)]


def plan_records(
    records: Sequence[Record],
    lbs: Sequence[Instance],
    skipped: Sequence[Skipped],
    decision: ActiveDecision,
    rules: RecordRules,
    *,
    former: Collection[str] = (),
) -> list[RecordChange]:
    """Every record change of this round, for one change batch (Route 53: 5 requests/s).

    `former`: addresses the cluster's LBs are known to have held; an active record left on one
    of them is still the cluster's, and takes a new LBF_TTL like the rest.
    """
    current = {(r.name, r.type): r for r in records}
    changes: list[RecordChange] = []
    existing_after: set[str] = {name for (name, kind) in current if kind == "A"}
    owned = _owned_names(current.get((rules.ownership_fqdn, "TXT")), rules)

    # Names an instance of the cluster still answers for. A skipped LB that has not given up its
    # address is frozen: the record of its name stays as it is, and so does its own record found
    # by address (an owned name whose record holds it) when its name tag no longer parses.
    # EC2's state outranks a tag: a skipped LB that is gone loses its record like any other.
    live_skipped = [s for s in skipped if s.state not in GONE_STATES]
    frozen_labels = {s.name for s in live_skipped if s.name is not None}
    known_names: set[str] = {rules.fqdn(label) for label in frozen_labels}
    frozen_addresses = {s.address for s in live_skipped if s.address is not None}
    known_names |= {
        name
        for name in owned
        if (record := current.get((name, "A"))) is not None
        and frozen_addresses.intersection(record.values)
    }
    # Several instances can carry one name (a replacement and the one it replaced): the record
    # follows the running one, and is removed only when every one of them is gone.
    by_label: dict[str, list[Instance]] = {}
    for lb in lbs:
        if lb.name is not None:
            by_label.setdefault(lb.name, []).append(lb)
    for label_, holders in by_label.items():
        fqdn = rules.fqdn(label_)
        known_names.add(fqdn)
        record = current.get((fqdn, "A"))
        live = [lb for lb in holders if lb.running and lb.address is not None]
        if live:
            wanted = _a_record(fqdn, [live[0].address or ""], rules.ttl)
            if record != wanted:
                changes.append(RecordChange("UPSERT", wanted))
                existing_after.add(fqdn)
        elif (
            record is not None
            and all(lb.state in GONE_STATES for lb in holders)
            and label_ not in frozen_labels
        ):
            changes.append(RecordChange("DELETE", record))
            existing_after.discard(fqdn)
    # Its name is frozen, its address is EC2's: a running skipped LB that came back with a new
    # address takes its record along (the active record follows it the same way), rather than
    # leaving its name on an address it no longer has. A record it has not got is not created.
    # Two skipped instances with one name (a replacement and the one it replaced): both are
    # frozen, neither moves the record.
    names = Counter(s.name for s in live_skipped)
    for s in live_skipped:
        if s.state != "running" or s.address is None or s.name is None:
            continue
        if s.name in by_label or names[s.name] > 1:
            continue
        fqdn = rules.fqdn(s.name)
        if fqdn not in owned or fqdn in (rules.active_fqdn, rules.ownership_fqdn):
            continue  # only a per-LB record of the cluster's, never one a hostile tag names
        record = current.get((fqdn, "A"))
        if record is not None and record.values != (s.address,):
            changes.append(RecordChange("UPSERT", _a_record(fqdn, [s.address], rules.ttl)))
    gone_labels = (
        {s.name for s in skipped if s.name is not None and s.state in GONE_STATES}
        - frozen_labels
        - set(by_label)
    )
    for label_ in sorted(gone_labels, key=natural_key):
        fqdn = rules.fqdn(label_)
        record = current.get((fqdn, "A"))
        if record is not None and fqdn not in known_names:
            changes.append(RecordChange("DELETE", record))
            existing_after.discard(fqdn)
            known_names.add(fqdn)  # deleted here, not again as a vanished name below

    # A record we created for an LB that has since vanished while no run was looking.
    for fqdn in sorted(owned - known_names - {rules.active_fqdn}):
        record = current.get((fqdn, "A"))
        if record is not None:
            changes.append(RecordChange("DELETE", record))
        existing_after.discard(fqdn)

    active = current.get((rules.active_fqdn, "A"))
    if decision.values is not None:
        changes.extend(active_change(active, decision.values, rules.ttl, rules.active_fqdn))
        existing_after.add(rules.active_fqdn)
    elif (
        active is not None
        and active.ttl != rules.ttl
        and set(active.values) <= _addresses(lbs, skipped) | set(former)
    ):
        # LBF_TTL changed: the same values with the new TTL, through the same compare-and-swap.
        # Only while it holds the cluster's LBs: a record pointed by hand at no LB is rewritten
        # when it is repaired, never restated as it is.
        changes.extend(active_change(active, active.values, rules.ttl, rules.active_fqdn))

    mine = {rules.fqdn(lb.name) for lb in lbs if lb.name is not None} | {rules.active_fqdn}
    owned_after = {name for name in existing_after if name in owned or name in mine}
    labels = sorted(
        (name.removesuffix("." + rules.domain) for name in owned_after), key=natural_key
    )
    ownership = current.get((rules.ownership_fqdn, "TXT"))
    if labels and (
        _owned_names(ownership, rules) != owned_after
        or (ownership is not None and ownership.ttl != rules.ttl)
    ):
        record = Record(
            name=rules.ownership_fqdn,
            type="TXT",
            ttl=rules.ttl,
            values=tuple(f'"{label}"' for label in labels),
        )
        changes.append(RecordChange("UPSERT", record))
    elif not labels and ownership is not None and not owned_after:
        # Every record it listed is gone: a TXT naming none of them is removed, not left stale
        # (Route 53 has no empty TXT record).
        changes.append(RecordChange("DELETE", ownership))
    return changes


def _addresses(lbs: Sequence[Instance], skipped: Sequence[Skipped]) -> set[str]:
    return {lb.address for lb in lbs if lb.address is not None} | {
        s.address for s in skipped if s.address is not None
    }


def _owned_names(record: Record | None, rules: RecordRules) -> set[str]:
    """The TXT record lists the labels the controller owns, one quoted string each."""
    if record is None:
        return set()
    return {rules.fqdn(value.strip('"')) for value in record.values}


def apply_record_changes(
    records: Sequence[Record], changes: Sequence[RecordChange]
) -> tuple[Record, ...]:
    """The records after a change batch that succeeded: what the next round plans against."""
    current = {(r.name, r.type): r for r in records}
    for change in changes:
        key = (change.record.name, change.record.type)
        if change.action == "DELETE":
            current.pop(key, None)
        else:
            current[key] = change.record
    return tuple(current.values())


def reserve_frozen_names(world: World, rules: RecordRules) -> World:
    """A name assigned this run never takes the record of a skipped LB that still has it.

    A skipped LB whose lbf:name no longer parses is known to the inventory by no name, so the
    lowest free `lbN` may be its own: its record (an owned name whose record holds its address)
    would be rewritten to the newcomer. The newcomer gets the next free name instead.
    """
    current = {(r.name, r.type): r for r in world.records}
    addresses = {
        s.address for s in world.skipped if s.address is not None and s.state not in GONE_STATES
    }
    owned = _owned_names(current.get((rules.ownership_fqdn, "TXT")), rules)
    reserved = {
        name.removesuffix("." + rules.domain)
        for name in owned
        if (record := current.get((name, "A"))) is not None
        and addresses.intersection(record.values)
    }
    if not any(lb.name_assigned and lb.name in reserved for lb in world.lbs):
        return world
    taken = {lb.name for lb in world.lbs if lb.name is not None}
    taken |= {s.name for s in world.skipped if s.name is not None} | reserved
    taken.add(rules.active_name)
    lbs = []
    for lb in world.lbs:
        if lb.name_assigned and lb.name in reserved:
            lb = replace(lb, name=lowest_free_name(taken))
            taken.add(lb.name or "")
        lbs.append(lb)
    return replace(world, lbs=tuple(lbs))
