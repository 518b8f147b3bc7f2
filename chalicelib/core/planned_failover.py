"""A planned failover (`move-active`) as a Plan: the observed world and a live probe in. Pure.

The same world a scheduled run reads (`chalicelib.observe`), judged by the same rules: an LB may be
newly made active only if the scheduled run could choose it (`dns.is_eligible`, and the
LBF_LB_MIN_BACKENDS requirement `confirmed_current_list`). The plan is applied by the same executor,
with the same compare-and-swap (`dns.active_change`, or `MoveAddress`'s check-then-move), so a
planned failover can never do what a scheduled run would refuse to.

Two steps, because the candidates are probed live in between: `resolve` names the LBs to probe
(or refuses), `plan_move` turns their answers into the Plan (or refuses). A refusal writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from chalicelib.core import dns, failover_pair, pausing
from chalicelib.core.addresses import sort_key as address_key
from chalicelib.core.changes import Change, ChangeRecords, MoveAddress, SetTags
from chalicelib.core.failover import Failover
from chalicelib.core.inventory import natural_key
from chalicelib.core.model import (
    TAG_MAINTENANCE,
    TAG_STATE,
    ActiveMode,
    FailoverMode,
    Instance,
    LbState,
    ProbeResult,
    Record,
    Skipped,
    Verdict,
    World,
)
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import ActiveRules, Plan, confirmed_current_list


@dataclass(frozen=True)
class MoveRules:
    """What a planned failover reads of the settings: the scheduled run's rules, and the pause."""

    records: dns.RecordRules
    active: ActiveRules
    paused_parameter_name: str  # named when a paused controller refuses the move
    pair: failover_pair.PairRules | None = None  # LBF_DNS_FAILOVER


@dataclass(frozen=True)
class MoveRequest:
    to: str | None = None  # an LB's name
    drain: str | None = None  # an LB's name, or an instance id (for an LB whose tags do not parse)


@dataclass(frozen=True)
class Refused:
    reason: str


@dataclass(frozen=True)
class Drained:
    instance_id: str
    label: str  # its name, or its instance id when its tags do not parse
    holds: bool  # it holds the active record (or the Elastic IP)
    already: bool  # it carries lbf:maintenance=drain already: no tag to write


@dataclass(frozen=True)
class Resolved:
    """The request against the world: what to probe, and whether anything has to move."""

    drained: Drained | None
    target: Instance | None  # --to
    holders: tuple[str, ...]  # instance ids that hold the active role now
    needs_move: bool
    why_not: str  # when nothing has to move: why
    candidates: tuple[Instance, ...]  # may newly become active, natural order; probed live
    kept: tuple[Instance, ...]  # active-active: stay in the record; probed live too

    @property
    def to_probe(self) -> tuple[Instance, ...]:
        return self.kept + self.candidates


def candidates(world: World, rules: ActiveRules, *, excluding: Collection[str]) -> list[Instance]:
    """The LBs the scheduled run could newly make active, in natural order."""
    confirmed = confirmed_current_list(world, rules.min_backends)
    return [
        lb
        for lb in dns.by_name(world.lbs)
        if dns.is_eligible(lb) and confirmed(lb) and lb.instance_id not in excluding
    ]


def resolve(world: World, rules: MoveRules, request: MoveRequest) -> Resolved | Refused:
    """The request against the world: the LBs to probe live, or why nothing has to move."""
    named = _named(world, rules, request)
    if isinstance(named, Refused):
        return named
    target, drained = named
    holders = _holders(world, rules)
    if drained is not None and not drained.holds:
        why = f"{drained.label} does not hold the active role"
        if target is not None:
            why += f" (--to {target.name} not used: only a move off {drained.label} is asked)"
        return Resolved(drained, target, holders, False, why, (), ())
    if drained is None and target is not None and target.instance_id in holders:
        return Resolved(None, target, holders, False, f"{target.name} holds it already", (), ())
    drained_id = drained.instance_id if drained is not None else None
    excluding = {*holders, *([drained_id] if drained_id is not None else [])}
    found = candidates(world, rules.active, excluding=excluding)
    if rules.records.active_mode is ActiveMode.ALL:
        return _resolve_active_active(world, drained, holders, found)
    if target is not None:
        if target not in found:
            why = _why_not_candidate(world, rules.active, target)
            return Refused(f"{target.name} cannot take over: {why}")
        return Resolved(drained, target, holders, True, "", (target,), ())
    if not found:
        return Refused(_no_candidate(rules.active))
    return Resolved(drained, None, holders, True, "", tuple(found), ())


def _named(
    world: World, rules: MoveRules, request: MoveRequest
) -> tuple[Instance | None, Drained | None] | Refused:
    """The LBs `--to` and `--drain` name, or why the request is refused as it stands."""
    if world.paused:
        return Refused(
            f"paused: {pausing.describe(world, rules.paused_parameter_name)}, and a planned "
            "failover is a change"
        )
    if request.to is not None and rules.records.active_mode is ActiveMode.ALL:
        return Refused(
            "--to: with LBF_ACTIVE_MODE=all the active record holds every eligible LB; there is "
            "no single active LB to move (use --drain NAME to take one out)"
        )
    target = _lb_named(world, request.to) if request.to is not None else None
    if isinstance(target, Refused):
        return target
    if request.drain is None:
        return target, None
    drained = _drained(world, request.drain, _holders(world, rules))
    if isinstance(drained, Refused):
        return drained
    if target is not None and target.instance_id == drained.instance_id:
        return Refused(f"--to {request.to} is the LB being drained")
    return target, drained


def _resolve_active_active(
    world: World, drained: Drained | None, holders: tuple[str, ...], found: list[Instance]
) -> Resolved | Refused:
    """Only --drain gets here: it takes one LB out and leaves every other that stays."""
    drained_id = drained.instance_id if drained is not None else None
    kept = [
        lb
        for lb in dns.by_name(world.lbs)
        if lb.instance_id in holders and lb.instance_id != drained_id and _stays(lb)
    ]
    if not kept and not found:
        return Refused("no other LB could stay in the active record, and it is never emptied")
    return Resolved(drained, None, holders, True, "", tuple(found), tuple(kept))


def _no_candidate(rules: ActiveRules) -> str:
    if rules.min_backends <= 0:
        return "no LB can take over: none other is eligible"
    return (
        "no LB can take over: none other is eligible and has confirmed the current backend list "
        f"(LBF_LB_MIN_BACKENDS={rules.min_backends})"
    )


@dataclass(frozen=True)
class _Move:
    """The one write that moves the active role, and what it leaves."""

    change: Change
    holders: tuple[str, ...]
    values: tuple[str, ...]
    moved_to: str
    reason: str


def plan_move(
    world: World,
    rules: MoveRules,
    resolved: Resolved,
    probes: Mapping[str, ProbeResult],
) -> Plan | Refused:
    """The move, the lbf:state tags that follow it, and the drain tag, after the move."""
    drain_tag = _drain_tag(resolved.drained)
    if not resolved.needs_move:
        return Plan(
            changes=(*_secondary_leaves(world, rules, resolved.drained), *drain_tag),
            active=dns.ActiveDecision(
                None, resolved.holders, f"nothing to move: {resolved.why_not}"
            ),
            backends=None,
            held=None,
        )
    names = {lb.instance_id: lb.name or lb.instance_id for lb in world.lbs}
    names |= {s.instance_id: s.instance_id for s in world.skipped}
    moved_from = " ".join(names.get(h, h) for h in resolved.holders) or None
    if rules.records.active_mode is ActiveMode.ALL:
        move = _move_active_active(world, rules, resolved, probes, names)
    else:
        move = _move_single(world, rules, resolved, probes, moved_from)
    if isinstance(move, Refused):
        return move
    changes: tuple[Change, ...] = (move.change, *_state_tags(world, move.holders), *drain_tag)
    # In Elastic IP mode the record holds the Elastic IP and does not change.
    record_values = None if isinstance(move.change, MoveAddress) else move.values
    return Plan(
        changes=changes,
        active=dns.ActiveDecision(
            record_values,
            move.holders,
            move.reason,
            moved_from=moved_from,
            moved_to=move.moved_to,
        ),
        backends=None,
        held=None,
    )


def _secondary_leaves(
    world: World, rules: MoveRules, drained: Drained | None
) -> tuple[Change, ...]:
    """Draining the failover pair's SECONDARY: the pair's batch that takes it out, before its
    tag. Left there until the next scheduled run, Route 53 could still fail clients over to it,
    and with no controller running, for as long as none runs."""
    if drained is None or rules.pair is None or not rules.pair.enabled:
        return ()
    current = failover_pair.read_active_name(world.records, rules.records)
    lbs = [*world.lbs, *dns.frozen_lbs(world.skipped)]
    primary = next((lb for lb in lbs if _holds(lb, current.primary)), None)
    secondary = next((lb for lb in lbs if _holds(lb, current.secondary)), None)
    if primary is None or secondary is None or secondary.instance_id != drained.instance_id:
        return ()
    batch = failover_pair.planned_pair(
        world,
        primary,
        rules.pair,
        leaving=(drained.instance_id,),
        can_take_over=confirmed_current_list(world, rules.active.min_backends),
    )
    why = f"planned: {drained.label} (drained) leaves the failover pair's SECONDARY"
    return (ChangeRecords(batch, why),) if batch else ()


def _holds(lb: Instance, record: Record | None) -> bool:
    return record is not None and lb.address is not None and lb.address in record.values


def _answered(lb: Instance, probes: Mapping[str, ProbeResult]) -> bool:
    result = probes.get(lb.instance_id)
    return result is not None and result.ok


def _move_active_active(
    world: World,
    rules: MoveRules,
    resolved: Resolved,
    probes: Mapping[str, ProbeResult],
    names: Mapping[str, str],
) -> _Move | Refused:
    """The record without the drained LB: every LB that stays, and every candidate that answered."""
    joining = [lb for lb in resolved.candidates if _answered(lb, probes)]
    staying = list(resolved.kept)
    if not any(_answered(lb, probes) for lb in (*staying, *joining)):
        return Refused(
            "no LB that would stay in the active record answered the live probe: "
            + _probe_summary(resolved.to_probe, probes)
        )
    holders = tuple(lb.instance_id for lb in dns.by_name([*staying, *joining]))
    values = sorted({lb.address or "" for lb in (*staying, *joining)}, key=address_key)
    taken_out = resolved.drained.label if resolved.drained is not None else ""
    reason = f"planned: now {' '.join(values)} ({taken_out} taken out)"
    records = rules.records
    current = dns.active_record(world.records, records)
    change = ChangeRecords(
        tuple(dns.active_change(current, values, records.ttl, records.active_fqdn)), reason
    )
    moved_to = " ".join(names[h] for h in holders)
    return _Move(change, holders, tuple(values), moved_to, reason)


def _move_single(
    world: World,
    rules: MoveRules,
    resolved: Resolved,
    probes: Mapping[str, ProbeResult],
    moved_from: str | None,
) -> _Move | Refused:
    """To the first candidate that answered: the record's compare-and-swap, or the Elastic IP."""
    target = next((lb for lb in resolved.candidates if _answered(lb, probes)), None)
    if target is None:
        which = (
            f"{resolved.target.name} did not answer"
            if resolved.target is not None
            else "no candidate answered"
        )
        return Refused(f"{which} the live probe: " + _probe_summary(resolved.candidates, probes))
    values = (target.address or "",)
    moved_to = target.name or target.instance_id
    drained_why = " (drained)" if resolved.drained is not None else ""
    reason = (
        f"planned: moved off {moved_from}{drained_why} to {moved_to}"
        if moved_from
        else f"planned: created on {moved_to}"
    )
    change: Change
    if rules.active.mode is FailoverMode.EIP:
        change = MoveAddress(
            allocation_id=rules.active.eip_allocation_id or "",
            instance_id=target.instance_id,
            expected_instance_id=world.eip_instance_id,
            lb_name=moved_to,
        )
    else:
        change = ChangeRecords(_record_move(world, rules, target, resolved), reason)
    return _Move(change, (target.instance_id,), values, moved_to, reason)


def _record_move(
    world: World, rules: MoveRules, target: Instance, resolved: Resolved
) -> tuple[dns.RecordChange, ...]:
    """The active name's compare-and-swap onto `target`: the plain record's, or the pair's."""
    records = rules.records
    if rules.pair is not None:
        leaving = (resolved.drained.instance_id,) if resolved.drained is not None else ()
        pair = failover_pair.planned_pair(
            world,
            target,
            rules.pair,
            leaving=leaving,
            can_take_over=confirmed_current_list(world, rules.active.min_backends),
        )
        if pair is not None:
            return pair
    current = dns.active_record(world.records, records)
    values = [target.address or ""]
    return tuple(dns.active_change(current, values, records.ttl, records.active_fqdn))


def probed_world(world: World, resolved: Resolved) -> World:
    """The world a round would probe to answer for these LBs alone: move-active's candidates go
    through the round's own probe paths (`chalicelib.probing`), nothing else is probed."""
    return replace(world, lbs=resolved.to_probe, webs=(), skipped=())


def moved(plan: Plan, outcomes: Sequence[Outcome], *, seconds: float) -> Failover | None:
    """The failover the move made: its move applied (a dry run prints it and moves nothing)."""
    moves = [o for o in outcomes if isinstance(o.change, ChangeRecords | MoveAddress)]
    if not moves or not all(o.ok for o in moves) or plan.active.moved_to is None:
        return None  # none made, or only the pair's SECONDARY changed (a drain): no failover
    active = plan.active
    return Failover(
        moved_from=active.moved_from,
        moved_to=active.moved_to,
        reason=active.reason,
        round=1,
        seconds=seconds,
    )


def move_change_id(outcomes: Sequence[Outcome]) -> str | None:
    """The Route 53 change to wait on for INSYNC (none for an Elastic IP or a dry run)."""
    moves = [o for o in outcomes if isinstance(o.change, ChangeRecords | MoveAddress)]
    return next((o.change_id for o in moves if o.ok and o.change_id is not None), None)


# ---------------------------------------------------------------------------------------------


def _lb_named(world: World, name: str) -> Instance | Refused:
    found = next((lb for lb in world.lbs if lb.name == name), None)
    if found is not None:
        return found
    skipped = next((s for s in world.skipped if s.name == name and s.role == "lb"), None)
    if skipped is not None:
        return Refused(
            f"{name} ({skipped.instance_id}) is skipped and never newly made active: "
            f"{skipped.reason}"
        )
    known = ", ".join(sorted((lb.name for lb in world.lbs if lb.name), key=natural_key))
    return Refused(f"no LB named {name!r} in the cluster (LBs: {known or 'none'})")


def _drained(world: World, name: str, holders: Collection[str]) -> Drained | Refused:
    """By name, or by instance id: an LB whose name does not parse has only its id."""
    found: Instance | Skipped | None = next((lb for lb in world.lbs if lb.name == name), None)
    if found is None:
        found = next((lb for lb in world.lbs if lb.instance_id == name), None)
    if found is None:
        found = next((s for s in world.skipped if s.instance_id == name and s.role == "lb"), None)
    if found is None:
        # A skipped LB whose name parses (the typo is in another tag) is drained by that name.
        named = [s for s in world.skipped if s.name == name and s.role == "lb"]
        if len(named) > 1:
            ids = ", ".join(s.instance_id for s in named)
            return Refused(f"{len(named)} skipped LBs are named {name!r} ({ids}): name one by id")
        found = named[0] if named else None
    if found is None:
        known = ", ".join(sorted((lb.name for lb in world.lbs if lb.name), key=natural_key))
        return Refused(
            f"no LB named {name!r}, nor an LB with that instance id, in the cluster "
            f"(LBs: {known or 'none'})"
        )
    label = found.name or found.instance_id
    already = isinstance(found, Instance) and found.draining
    return Drained(found.instance_id, label, found.instance_id in holders, already)


def _holders(world: World, rules: MoveRules) -> tuple[str, ...]:
    """The instances that hold the active role now: the Elastic IP's, or the active record's."""
    if rules.active.mode is FailoverMode.EIP:
        return (world.eip_instance_id,) if world.eip_instance_id is not None else ()
    current = dns.active_record(world.records, rules.records)
    values = set(current.values) if current is not None else set()
    held = [lb.instance_id for lb in dns.by_name(world.lbs) if lb.address in values]
    held += [s.instance_id for s in world.skipped if s.address is not None and s.address in values]
    return tuple(held)


def _stays(lb: Instance) -> bool:
    """Active-active: what the scheduled run keeps in the record (eligible, or not yet known)."""
    return dns.is_eligible(lb) or (lb.running and not lb.draining and lb.verdict is Verdict.UNKNOWN)


def _why_not_candidate(world: World, rules: ActiveRules, lb: Instance) -> str:
    if not lb.running:
        return f"it is {lb.state}"
    if lb.draining:
        return f"it is draining ({TAG_MAINTENANCE}=drain)"
    if lb.verdict is not Verdict.HEALTHY:
        return f"its verdict is {lb.verdict.value}, not healthy"
    if lb.address is None:
        return "it has no address"
    if not confirmed_current_list(world, rules.min_backends)(lb):
        return (
            "it has not confirmed the current backend list "
            f"(LBF_LB_MIN_BACKENDS={rules.min_backends})"
        )
    return "it holds the active role already"


def _probe_summary(lbs: tuple[Instance, ...], probes: Mapping[str, ProbeResult]) -> str:
    parts = []
    for lb in lbs:
        result = probes.get(lb.instance_id)
        detail = "not probed" if result is None else result.detail
        parts.append(f"{lb.name} ({'ok' if result is not None and result.ok else detail})")
    return ", ".join(parts) or "none"


def _state_tags(world: World, holders: tuple[str, ...]) -> list[SetTags]:
    """lbf:state on every LB whose value changes; written only if the move went through."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for lb in world.lbs:
        if lb.state in ("shutting-down", "terminated"):
            continue
        wanted = LbState.ACTIVE if lb.instance_id in holders else LbState.STANDBY
        if lb.lb_state is not wanted:
            grouped[wanted.value].append(lb.instance_id)
    return [
        SetTags(tuple(sorted(ids)), ((TAG_STATE, state),), after_records=True)
        for state, ids in sorted(grouped.items())
    ]


def _drain_tag(drained: Drained | None) -> tuple[Change, ...]:
    """The operator's tag, after the move it belongs to (the executor skips it if that failed)."""
    if drained is None or drained.already:
        return ()
    return (SetTags((drained.instance_id,), ((TAG_MAINTENANCE, "drain"),), after_records=True),)
