"""Observed world in, Plan out: what one round writes to records, lists, pushes and tags.

`decide` is pure. core/round.py's `decide_round` folds the round's probes in (core.observed),
asks `decide` for a Plan of changes (core.changes) and leaves out what the run knows will not go
through; what was applied is folded back into the world (core.applied), so the next round plans
against what is now true without reading AWS again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from chalicelib.core import backends as backend_lists
from chalicelib.core import dns, failover_pair, held_drop, record_batch
from chalicelib.core import pushes as push_rules
from chalicelib.core.backends import POOL_DROP
from chalicelib.core.changes import (
    Change,
    ChangeRecords,
    MoveAddress,
    PutHeldDrop,
    SetTags,
)
from chalicelib.core.lists import ListRules, latest_sent, plan_backends
from chalicelib.core.model import (
    TAG_BACKENDS,
    TAG_HEALTH,
    TAG_NAME,
    TAG_PROBE,
    TAG_STATE,
    FailoverMode,
    Instance,
    LbState,
    Role,
    Verdict,
    World,
)
from chalicelib.core.observed import frozen_webs

# ---------------------------------------------------------------------------------------------
# What a round's plan reads of the settings, per concern (built from Settings in config.py).


@dataclass(frozen=True)
class ActiveRules:
    """How the active role is held (LBF_MODE) and who may take it over (LBF_LB_MIN_BACKENDS)."""

    mode: FailoverMode = FailoverMode.DNS
    eip_allocation_id: str | None = None  # set exactly when mode is eip
    min_backends: int = 0


@dataclass(frozen=True)
class PlanRules:
    """Everything `decide` reads: one rule object per concern it decides."""

    records: dns.RecordRules
    active: ActiveRules
    lists: ListRules
    pushes: push_rules.PushRules
    pair: failover_pair.PairRules | None = None  # LBF_DNS_FAILOVER


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    active: dns.ActiveDecision
    backends: backend_lists.BackendList | None  # the list in force after this plan
    held: backend_lists.Held | None
    conditions: Mapping[str, str] = field(default_factory=dict)  # key -> notice text
    notes: tuple[str, ...] = ()
    # Entries LBF_MAX_POOL_DROP held that this plan takes out after all (core.held_drop).
    drop_taken: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Deciding.


def decide(
    world: World,
    rules: PlanRules,
    *,
    run_started_at: float,
    run_start_list: Sequence[str] | None = None,
    prober_fault: bool | None = None,
    accept_drop: bool = False,
    now: float | None = None,
) -> Plan:
    """`run_start_list`: the backend list published when the run started, which bounds what the
    whole run may remove for failed probes (LBF_MAX_POOL_DROP); None: the one in `world`.

    A list that bound holds back is published after all once the same servers have failed every
    probe for 10 minutes (core.held_drop); `prober_fault` says whether a probe path of this run
    was taken as a fault on the prober's side (such a run restarts the 10 minutes), None when the
    run made no probes (the clock neither runs nor restarts). `accept_drop` (the command
    `accept-drop`) takes the held drop at once. `now`: the round's time, which the failover
    pair's swap limit counts from (None: the run's start).
    """
    at = run_started_at if now is None else now
    plan = _decide(world, rules, run_started_at, run_start_list, accepted=(), now=at)
    held = plan.held.entries if plan.held is not None and plan.held.guard == POOL_DROP else ()
    if accept_drop:
        if not held:
            return plan
        return replace(
            _decide(world, rules, run_started_at, run_start_list, accepted=held, now=at),
            drop_taken=held,
        )
    if prober_fault is None:
        return plan
    stored = held_drop.parse(world.held_drop_parameter)
    release = held_drop.decide_release(
        stored,
        held,
        now=run_started_at,
        counts=not prober_fault and _failing_every_probe(world, held),
    )
    changes = list(plan.changes)
    conditions = dict(plan.conditions)
    taken: tuple[str, ...] = ()
    if release.take:
        plan = _decide(world, rules, run_started_at, run_start_list, accepted=held, now=at)
        changes, conditions, taken = list(plan.changes), dict(plan.conditions), held
        conditions[f"drop-taken:{backend_lists.checksum(' '.join(held))[:16]}"] = (
            f"{len(held)} backend(s) failed every probe for "
            f"{held_drop.RELEASE_SECONDS / 60:g} minutes of runs whose other probes answered: "
            f"the drop LBF_MAX_POOL_DROP held back is taken ({' '.join(held)})"
        )
    text = held_drop.render(release.stored)
    if text != (world.held_drop_parameter or held_drop.NOTHING_HELD):
        changes.append(PutHeldDrop(rules.lists.held_drop_parameter_name, text))
    return replace(plan, changes=tuple(changes), conditions=conditions, drop_taken=taken)


def _failing_every_probe(world: World, entries: Sequence[str]) -> bool:
    """Whether the last probe of each server behind these entries failed."""
    servers = [*world.webs, *(web for web, _ in frozen_webs(world))]
    for entry in entries:
        owners = [w for w in servers if entry in backend_lists.entries_of(w, (entry,))]
        if not owners or any(w.damping.run is None or w.damping.run.ok for w in owners):
            return False
    return True


def _decide(
    world: World,
    rules: PlanRules,
    run_started_at: float,
    run_start_list: Sequence[str] | None,
    *,
    accepted: Sequence[str],
    now: float,
) -> Plan:
    notes: list[str] = [f"skipped {s.instance_id}: {s.reason}" for s in world.skipped]
    conditions = {
        f"skipped:{s.instance_id}": f"instance {s.instance_id} skipped: {s.reason}"
        for s in world.skipped
    }
    # Only values of records the cluster owns (the TXT lists the active name with the rest).
    addresses = _addresses_held(world, rules)
    active = _decide_active(world, rules, addresses)
    pair = _pair(world, active, rules, now)
    if pair is not None:
        active = pair.active
        conditions.update(pair.conditions)
    conditions.update(_view_conditions(world, active, rules.records))
    changes, released = _role_changes(world, rules, active, addresses, pair)
    conditions.update(released)

    start_list = (
        backend_lists.parse_list(world.backends_parameter)
        if run_start_list is None
        else tuple(run_start_list)
    )
    wanted, held, list_changes, list_conditions = plan_backends(
        world, rules.lists, rules.pushes, run_started_at, start_list, accepted
    )
    changes += list_changes
    conditions.update(list_conditions)
    if held is not None and not _pool_still_unknown(world):
        conditions[f"backends-held:{held.guard}"] = held.reason

    changes += _plan_tags(world, active)
    return Plan(
        changes=tuple(changes),
        active=active,
        backends=wanted,
        held=held,
        conditions=conditions,
        notes=tuple(notes),
    )


def _decide_active(world: World, rules: PlanRules, addresses: frozenset[str]) -> dns.ActiveDecision:
    """Who holds the active role after this round, and what the active record holds."""
    records = rules.records
    current_active = dns.active_record(world.records, records)
    can_take_over = confirmed_current_list(world, rules.active.min_backends)
    if rules.active.mode is FailoverMode.EIP:
        return dns.decide_holder(
            world.eip_instance_id, world.lbs, world.skipped, can_take_over=can_take_over
        )
    active = dns.decide_active(
        current_active,
        world.lbs,
        world.skipped,
        records,
        can_take_over=can_take_over,
        former=_former_lb_addresses(world, records),
        own=_own_records(world, records),
    )
    if records.active_fqdn not in _owned(world, records):
        return active
    # In eip mode the active record holds the Elastic IP, never an LB's own address.
    return dns.release_active(
        active, current_active, addresses, former=_former_lb_addresses(world, records)
    )


def _view_conditions(
    world: World, active: dns.ActiveDecision, records: dns.RecordRules
) -> dict[str, str]:
    """What is wrong with the view itself: no eligible LB, a repaired record, no instance."""
    conditions: dict[str, str] = {}
    # Nothing active yet and an LB still to be judged (a first run): `unknown` is no reason to
    # notify, even beside a stopped spare, whose verdict alone is known.
    judging = not active.holders and any(
        lb.running and not lb.draining and lb.verdict is Verdict.UNKNOWN for lb in world.lbs
    )
    if (
        active.no_eligible
        and not judging
        and any(lb.verdict is not Verdict.UNKNOWN for lb in world.lbs)
    ):
        conditions["no-eligible-lb"] = f"no load balancer is eligible to be active: {active.reason}"
    if active.repaired:
        conditions["active-repaired"] = f"active record {active.reason}"
    if not (world.lbs or world.webs or world.skipped):
        conditions["cluster-empty"] = (
            f"no instance carries lbf:cluster={records.cluster}: the cluster serves nothing; "
            f"{records.domain} stays its own, and a record no LB of it holds an address for goes"
        )
    return conditions


def _role_changes(
    world: World,
    rules: PlanRules,
    active: dns.ActiveDecision,
    addresses: frozenset[str],
    pair: failover_pair.PairDecision | None = None,
) -> tuple[list[Change], dict[str, str]]:
    """The record batch and, in eip mode, the Elastic IP's move; the addresses released."""
    records = rules.records
    changes: list[Change] = []
    record_plan = record_batch.record_plan(
        world.records,
        world.lbs,
        world.skipped,
        _record_part(active, world, rules.active, records),
        records,
        former=_former_lb_addresses(world, records),
        addresses=addresses,
    )
    released = {
        f"released:{name}={value}": (
            f"{value} removed from {name}: no LB of cluster {records.cluster} holds that "
            "address any more (stopped or terminated, or re-addressed)"
        )
        for name, values in record_plan.released.items()
        for value in values
    }
    record_changes = failover_pair.with_pair(record_plan.changes, pair, records)
    if record_changes:
        changes.append(ChangeRecords(record_changes, active.reason))
    if rules.active.mode is FailoverMode.EIP and active.values is not None and active.holders:
        target = _lb(world, active.holders[0])
        changes.append(
            MoveAddress(
                allocation_id=rules.active.eip_allocation_id or "",
                instance_id=target.instance_id,
                expected_instance_id=world.eip_instance_id,
                lb_name=target.name or "",
            )
        )
    return changes, released


def _pair(
    world: World, active: dns.ActiveDecision, rules: PlanRules, now: float
) -> failover_pair.PairDecision | None:
    """The active name as a failover pair (LBF_DNS_FAILOVER=route53), or back from one."""
    if rules.pair is None or rules.active.mode is not FailoverMode.DNS:
        return None
    can_take_over = confirmed_current_list(world, rules.active.min_backends)
    return failover_pair.plan_pair(world, active, rules.pair, now=now, can_take_over=can_take_over)


def _addresses_held(world: World, rules: PlanRules) -> frozenset[str]:
    """The addresses the cluster holds now: its instances', and in eip mode the Elastic IP."""
    eip = (world.eip_address,) if world.eip_address is not None else ()
    also = eip if rules.active.mode is FailoverMode.EIP else ()
    return dns.addresses_held((*world.lbs, *world.webs), world.skipped, also=also)


def _owned(world: World, rules: dns.RecordRules) -> set[str]:
    return {rules.fqdn(label) for label in dns.ownership_of(world.records, rules).labels}


def _pool_still_unknown(world: World) -> bool:
    """Right after start no web server has a verdict yet: not a reason to notify (SPEC)."""
    candidates = [w for w in world.webs if w.running and not w.draining]
    return bool(candidates) and all(w.verdict is Verdict.UNKNOWN for w in candidates)


def _former_lb_addresses(world: World, rules: dns.RecordRules) -> set[str]:
    """Addresses LBs held when they were last seen: their own records and `<prefix>/lbs`.

    An active record on one of these followed an LB that has since changed its IP; on anything
    else, someone pointed it there by hand.
    """
    own = {
        value
        for record in world.records
        if record.type == "A" and record.name != rules.active_fqdn
        for value in record.values
    }
    return own | set((world.lbs_parameter or "").split())


def _own_records(world: World, rules: dns.RecordRules) -> dict[str, tuple[str, ...]]:
    """Each LB name's own A record as read: name -> its values."""
    by_fqdn = {r.name: r.values for r in world.records if r.type == "A"}
    names = {lb.name for lb in world.lbs} | {s.name for s in world.skipped}
    return {n: by_fqdn[rules.fqdn(n)] for n in names if n is not None and rules.fqdn(n) in by_fqdn}


def _lb(world: World, instance_id: str) -> Instance:
    return next(lb for lb in world.lbs if lb.instance_id == instance_id)


def _record_part(
    active: dns.ActiveDecision, world: World, rules: ActiveRules, records: dns.RecordRules
) -> dns.ActiveDecision:
    """In EIP mode the active record holds the Elastic IP itself and never moves."""
    if rules.mode is not FailoverMode.EIP:
        return active
    current = dns.active_record(world.records, records)
    eip = world.eip_address
    if eip is None or (
        current is not None and current.values == (eip,) and current.ttl == records.ttl
    ):
        return replace(active, values=None)
    return replace(active, values=(eip,))


def confirmed_current_list(world: World, min_backends: int) -> Callable[[Instance], bool]:
    """LBF_LB_MIN_BACKENDS: an LB may take over only once it confirmed the current list
    (`lbf:backends`) and that list has at least that many backends. Never fail over to an LB
    that would serve a stale or empty list."""
    if min_backends <= 0:
        return dns.anyone
    published = backend_lists.parse_list(world.backends_parameter)
    current = backend_lists.checksum(" ".join(published)) if published else None

    def confirmed(lb: Instance) -> bool:
        return (
            current is not None
            and lb.backends_checksum == current
            and len(published) >= min_backends
        )

    return confirmed


def _plan_tags(world: World, active: dns.ActiveDecision) -> list[Change]:
    wanted: dict[str, dict[str, str]] = {}
    holders = set(active.holders)
    last = latest_sent(world)
    for instance in (*world.lbs, *world.webs):
        if instance.state in ("shutting-down", "terminated"):
            continue  # nothing left to describe, and EC2 may refuse tags on it
        tags: dict[str, str] = {}
        if instance.verdict is not Verdict.UNKNOWN:
            tags[TAG_HEALTH] = instance.verdict.value
        if instance.damping.run is not None:
            tags[TAG_PROBE] = instance.damping.run.render()
        if instance.role is Role.LB:
            if instance.name is not None and instance.name_assigned:
                tags[TAG_NAME] = instance.name
            state = LbState.ACTIVE if instance.instance_id in holders else LbState.STANDBY
            if active.holders or instance.lb_state is not None:
                tags[TAG_STATE] = state.value
            command = last.get(instance.instance_id)
            if command is not None and command.status == "Success":
                tags[TAG_BACKENDS] = command.checksum
        written = dict(instance.written)
        diff = {k: v for k, v in tags.items() if written.get(k) != v}
        if diff:
            wanted[instance.instance_id] = diff

    grouped: dict[tuple[tuple[str, str], ...], list[str]] = defaultdict(list)
    for instance_id, diff in wanted.items():
        grouped[tuple(sorted(diff.items()))].append(instance_id)
    return [
        SetTags(
            instance_ids=tuple(sorted(ids)),
            tags=tags,
            after_records=any(key == TAG_STATE for key, _ in tags),
        )
        for tags, ids in sorted(grouped.items())
    ]
