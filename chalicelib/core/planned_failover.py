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
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from chalicelib.core import dns, failover_pair, pausing
from chalicelib.core.addresses import sort_key as address_key
from chalicelib.core.inventory import natural_key
from chalicelib.core.model import (
    TAG_MAINTENANCE,
    TAG_STATE,
    ActiveMode,
    FailoverMode,
    Instance,
    LbState,
    ProbeResult,
    Skipped,
    Verdict,
    World,
)
from chalicelib.core.plan import (
    ActiveRules,
    Change,
    ChangeRecords,
    MoveAddress,
    Plan,
    SetTags,
    confirmed_current_list,
)


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
    if world.paused:
        return Refused(
            f"paused: {pausing.describe(world, rules.paused_parameter_name)}, and a planned "
            "failover is a change"
        )
    all_active = rules.records.active_mode is ActiveMode.ALL
    if request.to is not None and all_active:
        return Refused(
            "--to: with LBF_ACTIVE_MODE=all the active record holds every eligible LB; there is "
            "no single active LB to move (use --drain NAME to take one out)"
        )
    target: Instance | None = None
    if request.to is not None:
        found = _lb_named(world, request.to)
        if isinstance(found, Refused):
            return found
        target = found
    drained: Drained | None = None
    holders = _holders(world, rules)
    if request.drain is not None:
        found_drained = _drained(world, request.drain, holders)
        if isinstance(found_drained, Refused):
            return found_drained
        drained = found_drained
        if target is not None and target.instance_id == drained.instance_id:
            return Refused(f"--to {request.to} is the LB being drained")

    if drained is not None and not drained.holds:
        why = f"{drained.label} does not hold the active role"
        if target is not None:
            why += f" (--to {target.name} not used: only a move off {drained.label} is asked)"
        return Resolved(drained, target, holders, False, why, (), ())
    if drained is None and target is not None and target.instance_id in holders:
        return Resolved(None, target, holders, False, f"{target.name} holds it already", (), ())

    drained_id = drained.instance_id if drained is not None else None
    excluding = {*holders, *([drained_id] if drained_id is not None else [])}
    found_candidates = candidates(world, rules.active, excluding=excluding)
    kept: list[Instance] = []
    if all_active:
        # Only --drain gets here: it takes one LB out and leaves every other that stays.
        kept = [
            lb
            for lb in dns.by_name(world.lbs)
            if lb.instance_id in holders and lb.instance_id != drained_id and _stays(lb)
        ]
        if not kept and not found_candidates:
            return Refused("no other LB could stay in the active record, and it is never emptied")
        return Resolved(drained, None, holders, True, "", tuple(found_candidates), tuple(kept))
    if target is not None:
        if target not in found_candidates:
            return Refused(
                f"{target.name} cannot take over: {_why_not_candidate(world, rules.active, target)}"
            )
        return Resolved(drained, target, holders, True, "", (target,), ())
    if not found_candidates:
        return Refused(
            "no LB can take over: none other is eligible"
            + (
                f" and has confirmed the current backend list (LBF_LB_MIN_BACKENDS="
                f"{rules.active.min_backends})"
                if rules.active.min_backends > 0
                else ""
            )
        )
    return Resolved(drained, None, holders, True, "", tuple(found_candidates), ())


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
            changes=drain_tag,
            active=dns.ActiveDecision(
                None, resolved.holders, f"nothing to move: {resolved.why_not}"
            ),
            backends=None,
            held=None,
        )

    def answered(lb: Instance) -> bool:
        result = probes.get(lb.instance_id)
        return result is not None and result.ok

    names = {lb.instance_id: lb.name or lb.instance_id for lb in world.lbs}
    names |= {s.instance_id: s.instance_id for s in world.skipped}
    moved_from = " ".join(names.get(h, h) for h in resolved.holders) or None
    drained_why = " (drained)" if resolved.drained is not None else ""
    records = rules.records
    current = dns.active_record(world.records, records)
    move: Change
    if records.active_mode is ActiveMode.ALL:
        joining = [lb for lb in resolved.candidates if answered(lb)]
        staying = list(resolved.kept)
        if not any(answered(lb) for lb in (*staying, *joining)):
            return Refused(
                "no LB that would stay in the active record answered the live probe: "
                + _probe_summary(resolved.to_probe, probes)
            )
        holders = tuple(lb.instance_id for lb in dns.by_name([*staying, *joining]))
        values = sorted({lb.address or "" for lb in (*staying, *joining)}, key=address_key)
        taken_out = resolved.drained.label if resolved.drained is not None else ""
        reason = f"planned: now {' '.join(values)} ({taken_out} taken out)"
        move = ChangeRecords(
            tuple(dns.active_change(current, values, records.ttl, records.active_fqdn)), reason
        )
        moved_to = " ".join(names[h] for h in holders)
    else:
        target = next((lb for lb in resolved.candidates if answered(lb)), None)
        if target is None:
            which = (
                f"{resolved.target.name} did not answer"
                if resolved.target is not None
                else "no candidate answered"
            )
            return Refused(
                f"{which} the live probe: " + _probe_summary(resolved.candidates, probes)
            )
        holders = (target.instance_id,)
        values = [target.address or ""]
        moved_to = target.name or target.instance_id
        reason = (
            f"planned: moved off {moved_from}{drained_why} to {moved_to}"
            if moved_from
            else f"planned: created on {moved_to}"
        )
        if rules.active.mode is FailoverMode.EIP:
            move = MoveAddress(
                allocation_id=rules.active.eip_allocation_id or "",
                instance_id=target.instance_id,
                expected_instance_id=world.eip_instance_id,
                lb_name=moved_to,
            )
        else:
            move = ChangeRecords(_record_move(world, rules, target, resolved), reason)
    changes: tuple[Change, ...] = (move, *_state_tags(world, holders), *drain_tag)
    # In Elastic IP mode the record holds the Elastic IP and does not change.
    record_values = None if isinstance(move, MoveAddress) else tuple(values)
    return Plan(
        changes=changes,
        active=dns.ActiveDecision(
            record_values, holders, reason, moved_from=moved_from, moved_to=moved_to
        ),
        backends=None,
        held=None,
    )


# ---------------------------------------------------------------------------------------------


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
