"""Where the active record points, who owns the domain, and the compare-and-swap that changes them.

The round's whole record batch (per-LB records, the active record's change, the `_lbf` TXT) is put
together in core/record_batch.py from these.

Names here are fully qualified, lower case, without Route 53's trailing dot; the adapter adds and
strips it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from chalicelib.core.addresses import sort_key as address_key
from chalicelib.core.inventory import lowest_free_name, natural_key
from chalicelib.core.model import (
    DOWN_STATES,
    GONE_STATES,
    TAG_CLUSTER,
    ActiveMode,
    Instance,
    RawInstance,
    Record,
    Role,
    Skipped,
    Verdict,
    World,
)
from chalicelib.core.names import is_label, record_name

# The `_lbf` TXT's first string names the cluster that owns the domain: `"cluster=<LBF_CLUSTER>"`.
OWNER_PREFIX = "cluster="


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
    # The cluster a run writes into the `_lbf` TXT as the domain's owner. None only where the
    # rules serve to read the TXT (infra/teardown.py): planning records then refuses.
    cluster: str | None = None

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
    released: tuple[str, ...] = ()  # values taken out because no LB holds them any more


def find_record(records: Iterable[Record], name: str, kind: str = "A") -> Record | None:
    """The record of that name and type among those read, or None.

    Of a failover pair (LBF_DNS_FAILOVER=route53), its PRIMARY: the record that holds the
    active LB, which every rule of the plain record judges.
    """
    found = [r for r in records if r.name == name and r.type == kind]
    plain = next((r for r in found if r.set_identifier is None), None)
    return plain or next((r for r in found if r.failover == "PRIMARY"), None)


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


def address_record(name: str, values: Sequence[str], ttl: int) -> Record:
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

    claim = TaggedClaim(pointed[0]) if pointed else tagged_claim(known, values, former)
    holder, followed, keeps = claim
    if keeps is not None and keeps in candidates:
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


class TaggedClaim(NamedTuple):
    """Which LB the active record is taken to be, when it holds no current LB address."""

    holder: Instance | None = None
    followed: bool = False  # the record follows the holder to its new address
    keeps: Instance | None = None  # keeps lbf:state=active while the record waits for it


def tagged_claim(
    known: Sequence[Instance], values: Collection[str], former: Collection[str] | None
) -> TaggedClaim:
    """The record holds no current LB address: either the active LB came back with a new IP
    (it still carries lbf:state=active), or someone pointed the record elsewhere.

    Only an LB that is the one tagged active has a claim; `former` as in `decide_active`.
    """
    tagged = [lb for lb in known if lb.lb_state is not None and lb.lb_state.value == "active"]
    if len(tagged) != 1:
        return TaggedClaim()
    if tagged[0].address is None:
        # A stopped LB has no public address, but the record is still its: moving off it is a
        # failover (with its notice), not the repair of a record no LB of the cluster holds.
        return TaggedClaim(tagged[0])
    if former is None or set(values) <= set(former):
        return TaggedClaim(tagged[0], followed=True)
    # Pointed by hand at an address no LB ever had: repaired, back to the LB still tagged
    # active as soon as it is eligible; until then it keeps the tag, and with it the claim.
    return TaggedClaim(keeps=tagged[0])


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
    new = address_record(name, values, ttl)
    if not values:
        # Route 53 has no A record without a value: left with none, the record goes.
        return [RecordChange("DELETE", current)] if current is not None else []
    if current is None:
        return [RecordChange("CREATE", new)]
    return [RecordChange("DELETE", current), RecordChange("CREATE", new)]


def ownership_record(cluster: str, labels: Sequence[str], rules: RecordRules) -> Record:
    """The `_lbf` TXT: the owning cluster first, then the labels it owns, one string each."""
    return Record(
        name=rules.ownership_fqdn,
        type="TXT",
        ttl=rules.ttl,
        values=(f'"{OWNER_PREFIX}{cluster}"', *(f'"{label}"' for label in labels)),
    )


@dataclass(frozen=True)
class Ownership:
    """What the `_lbf` TXT says: who owns the domain, and which labels."""

    record: Record | None
    owner: str | None  # None: no TXT, or one written before clusters owned domains
    labels: tuple[str, ...]


def ownership_of(records: Iterable[Record], rules: RecordRules) -> Ownership:
    record = find_record(records, rules.ownership_fqdn, "TXT")
    if record is None:
        return Ownership(None, None, ())
    owner = None
    labels = []
    for value in record.values:
        text = value.strip('"')
        if text.startswith(OWNER_PREFIX):
            owner = owner or text.removeprefix(OWNER_PREFIX)
        elif is_label(text):
            labels.append(text)
    return Ownership(record, owner, tuple(labels))


def foreign_addresses(raws: Iterable[RawInstance], cluster: str) -> dict[str, tuple[str, str]]:
    """Address -> (instance id, its cluster) of every instance tagged with another cluster.

    Both addresses of each: a record may hold either kind, whatever this run's settings select.
    """
    found: dict[str, tuple[str, str]] = {}
    for raw in raws:
        theirs = dict(raw.tags).get(TAG_CLUSTER)
        if theirs is None or theirs == cluster:
            continue
        for address in (raw.private_ip, raw.public_ip):
            if address:
                found.setdefault(address, (raw.instance_id, theirs))
    return found


def refusal(
    records: Sequence[Record],
    rules: RecordRules,
    *,
    foreign: Mapping[str, tuple[str, str]] | None = None,
) -> str | None:
    """Why this run must write nothing in the domain, or None when it may.

    The domain is another cluster's when its TXT names that cluster; a TXT that names none is
    adopted, unless a record it lists holds an address of another cluster's instance (`foreign`,
    read only for such a TXT). A domain without a TXT is nobody's yet.
    """
    cluster = rules.cluster
    ownership = ownership_of(records, rules)
    advice = (
        "check LBF_CLUSTER; a renamed cluster is handed the domain with "
        "`python -m chalicelib handover NEW`, run as the owner"
    )
    if ownership.owner is not None:
        if ownership.owner == cluster:
            return None
        return (
            f"domain {rules.domain} is owned by cluster {ownership.owner!r} (its "
            f"{rules.ownership_fqdn} TXT says {OWNER_PREFIX}{ownership.owner}), not by "
            f"LBF_CLUSTER {cluster!r}: nothing written; {advice}"
        )
    if ownership.record is None or not foreign:
        return None
    held = []
    for label_ in ownership.labels:
        record = find_record(records, rules.fqdn(label_))
        if record is None:
            continue
        for value in record.values:
            if value in foreign:
                instance_id, theirs = foreign[value]
                held.append(f"{record.name} {value} is {instance_id} of cluster {theirs!r}")
    if not held:
        return None
    return (
        f"domain {rules.domain}'s {rules.ownership_fqdn} TXT names no cluster and its records hold "
        f"addresses of another cluster's instances ({'; '.join(held)}), so it is not LBF_CLUSTER "
        f"{cluster!r}'s to adopt: nothing written; {advice}"
    )


def handover_change(
    records: Sequence[Record], rules: RecordRules, new_cluster: str
) -> list[RecordChange]:
    """The compare-and-swap of the TXT that hands the domain to `new_cluster`, labels unchanged.

    Empty when there is nothing to hand over (no TXT) or `new_cluster` owns it already.
    """
    ownership = ownership_of(records, rules)
    if ownership.record is None or ownership.owner == new_cluster:
        return []
    wanted = replace(
        ownership_record(new_cluster, ownership.labels, rules), ttl=ownership.record.ttl
    )
    return [RecordChange("DELETE", ownership.record), RecordChange("CREATE", wanted)]


def addresses_held(
    instances: Iterable[Instance], skipped: Iterable[Skipped], *, also: Iterable[str] = ()
) -> frozenset[str]:
    """The addresses the cluster's instances hold now, in the kinds the settings select.

    A stopped instance keeps its private IP (EC2 keeps it) and loses its public one; a
    terminated one holds nothing. `also`: addresses held otherwise (the Elastic IP).
    """
    found = {
        i.address for i in instances if i.address is not None and i.state not in _RELEASED_STATES
    }
    found |= {
        s.address for s in skipped if s.address is not None and s.state not in _RELEASED_STATES
    }
    return frozenset(found | set(also))


# States in which an instance holds no address any more.
_RELEASED_STATES = frozenset({"shutting-down", "terminated"})


def release_active(
    decision: ActiveDecision,
    current: Record | None,
    addresses: Collection[str],
    *,
    former: Collection[str],
) -> ActiveDecision:
    """A value no LB holds leaves the active record, even when no LB is eligible: a released
    public IP may be given to anyone's instance next, and clients must never be sent there.

    `addresses`: what the cluster's instances hold now (`addresses_held`); `former`: what its
    LBs are known to have held. A value in neither was pointed there by hand: the repair rule's,
    not this one's. With no value left the record goes, and no LB holds the active role; it is
    created again, on an eligible LB, when there is one. The record never follows an LB that is
    not eligible to a new address (a healthy one it follows already: `decide_active`). A decision
    that rewrites the record holds LB addresses only.
    """
    if decision.values is not None or current is None:
        return decision
    gone = tuple(v for v in current.values if v not in addresses and v in former)
    if not gone:
        return decision
    kept = tuple(v for v in current.values if v not in gone)
    what = "removed" if kept else "deleted"
    return replace(
        decision,
        values=kept,
        holders=decision.holders if kept else (),
        released=gone,
        reason=f"{decision.reason}; {' '.join(gone)} {what}: no LB holds it",
    )


def owned_names(record: Record | None, rules: RecordRules) -> set[str]:
    """The TXT record lists the labels the controller owns, one quoted string each (after the
    owner's `cluster=` string, which names no record)."""
    if record is None:
        return set()
    return {rules.fqdn(label) for label in ownership_of([record], rules).labels}


def apply_record_changes(
    records: Sequence[Record], changes: Sequence[RecordChange]
) -> tuple[Record, ...]:
    """The records after a change batch that succeeded: what the next round plans against."""
    # A failover pair is two records of one name and type: its SetIdentifier tells them apart.
    current = {(r.name, r.type, r.set_identifier): r for r in records}
    for change in changes:
        key = (change.record.name, change.record.type, change.record.set_identifier)
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
    owned = owned_names(current.get((rules.ownership_fqdn, "TXT")), rules)
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
