"""The active name as a Route 53 failover pair (`LBF_DNS_FAILOVER=route53`). Pure.

Route 53's data plane answers `PRIMARY` while its health check is healthy, else `SECONDARY`, so
clients move even when no controller runs. The controller keeps the pair: `PRIMARY` is the active
LB, `SECONDARY` the LB a run would choose next, each bound to its LB's health check.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from chalicelib.core.dns import (
    ActiveDecision,
    RecordChange,
    RecordRules,
    addresses_held,
    anyone,
    by_name,
    frozen_lbs,
    is_eligible,
    keeps_role,
    label,
)
from chalicelib.core.model import (
    HealthCheck,
    HealthCheckSpec,
    Instance,
    Record,
    Skipped,
    Verdict,
    World,
)
from chalicelib.core.second_opinion import (
    CheckerObservation,
    SecondOpinionRules,
    desired_check,
    kept_check,
)


@dataclass(frozen=True)
class PairRules:
    """LBF_DNS_FAILOVER=route53, and the timing of the health checks the pair is bound to."""

    enabled: bool
    records: RecordRules
    request_interval: int  # LBF_ROUTE53_INTERVAL
    failure_threshold: int  # LBF_FALL
    checks: SecondOpinionRules | None = None  # what each LB's check probes

    @property
    def detection_seconds(self) -> int:
        """How long Route 53 takes to call a dead LB unhealthy; one swap at most in that time."""
        return self.request_interval * self.failure_threshold


# Route 53 tells the pair's two records apart by SetIdentifier; the controller's are fixed, so a
# swap of roles rewrites the values and checks of both, never their identities.
PRIMARY = "PRIMARY"
SECONDARY = "SECONDARY"
_SET_IDENTIFIERS = {PRIMARY: "primary", SECONDARY: "secondary"}

# Notice keys: one each, whatever the LBs or the run, so that a lasting state is one notice.
VANTAGES_DISAGREE = "pair-vantages-disagree"
SWAP_HELD = "pair-swap-held"


@dataclass(frozen=True)
class ActiveName:
    """What Route 53 holds at the active name: a plain record, a failover pair, or nothing.

    `others`: records at the name that are neither (another routing policy, set by hand); the
    controller does not own them and never writes beside them.
    """

    plain: Record | None = None
    primary: Record | None = None
    secondary: Record | None = None
    others: tuple[Record, ...] = ()

    @property
    def records(self) -> tuple[Record, ...]:
        found = (self.plain, self.primary, self.secondary)
        return tuple(r for r in found if r is not None)

    @property
    def is_pair(self) -> bool:
        return self.primary is not None or self.secondary is not None

    @property
    def answered(self) -> Record | None:
        """The record the plain rules judge: the plain one, or the pair's PRIMARY."""
        return self.plain if self.plain is not None else self.primary


def read_active_name(records: Iterable[Record], rules: RecordRules) -> ActiveName:
    plain = primary = secondary = None
    others: list[Record] = []
    for record in records:
        if record.name != rules.active_fqdn or record.type != "A":
            continue
        if record.set_identifier is None:
            plain = record
        elif (record.failover, record.set_identifier) == (PRIMARY, _SET_IDENTIFIERS[PRIMARY]):
            primary = record
        elif (record.failover, record.set_identifier) == (SECONDARY, _SET_IDENTIFIERS[SECONDARY]):
            secondary = record
        else:
            others.append(record)
    return ActiveName(plain, primary, secondary, tuple(others))


def pair_record(rules: RecordRules, role: str, values: Sequence[str], check: str | None) -> Record:
    return Record(
        name=rules.active_fqdn,
        type="A",
        ttl=rules.ttl,
        values=tuple(values),
        set_identifier=_SET_IDENTIFIERS[role],
        failover=role,
        health_check_id=check,
    )


def swap_batch(current: ActiveName, wanted: Sequence[Record]) -> tuple[RecordChange, ...]:
    """One compare-and-swap batch from what is at the name to `wanted`, or none if equal.

    Every record read is deleted and every wanted one created, the unchanged ones too: Route 53
    refuses the whole batch if any DELETE no longer matches, so a run that read a pair another
    run has changed since fails instead of leaving half of each. A plain record and a pair never
    stand side by side (Route 53 refuses it), so switching between them is this one batch too.
    """
    if set(current.records) == set(wanted):
        return ()
    return (
        *(RecordChange("DELETE", r) for r in current.records),
        *(RecordChange("CREATE", r) for r in wanted),
    )


def back_to_plain(
    current: ActiveName, rules: RecordRules, values: Sequence[str] | None = None
) -> tuple[RecordChange, ...]:
    """LBF_DNS_FAILOVER back to controller: the pair becomes the plain record of its PRIMARY
    (or `values`, where the plain rules move it in the same run), in one batch."""
    if not current.is_pair or current.plain is not None:
        return ()
    kept = current.primary or current.secondary
    assert kept is not None
    wanted = kept.values if values is None else tuple(values)
    plain = [Record(rules.active_fqdn, "A", rules.ttl, wanted)] if wanted else []
    return swap_batch(current, plain)


def plan_pair(
    world: World,
    base: ActiveDecision,
    rules: PairRules,
    *,
    now: float,
    can_take_over: Callable[[Instance], bool] = anyone,
) -> PairDecision | None:
    """The round's decision on the active name as a pair, from the plain rules' decision `base`;
    None when the pair is none of this round's business (the setting is off and none is there).
    """
    current = read_active_name(world.records, rules.records)
    if not rules.enabled:
        if not current.is_pair:
            return None
        changes = back_to_plain(current, rules.records, base.values)
        return PairDecision(base, changes, None, None, swapped=False)
    checks = (
        bound_checks(world.health_checks, world.lbs, world.skipped, current, rules.checks)
        if rules.checks is not None
        else {}
    )
    inputs = PairInputs(
        world.lbs,
        world.skipped,
        checks,
        dict(world.route53_view),
        world.pair_swapped_at,
        now,
        can_take_over,
        addresses=addresses_held((*world.lbs, *world.webs), world.skipped),
    )
    return decide_pair(current, base, inputs, rules)


def with_pair(
    changes: Sequence[RecordChange], pair: PairDecision | None, rules: RecordRules
) -> tuple[RecordChange, ...]:
    """The round's record changes with the active name's made by the pair's batch instead."""
    if pair is None:
        return tuple(changes)
    others = [c for c in changes if (c.record.name, c.record.type) != (rules.active_fqdn, "A")]
    return (*others, *pair.changes)


def checks_in_use(records: Iterable[Record], rules: RecordRules) -> frozenset[str]:
    """The checks a record at the active name is bound to: never deleted from under it."""
    current = read_active_name(records, rules)
    return frozenset(r.health_check_id for r in current.records if r.health_check_id is not None)


# ---------------------------------------------------------------------------------------------
# Route 53's view of the checks, and which check each LB's record is bound to.


def view_due(read_at: float | None, now: float, rules: PairRules) -> bool:
    """Route 53's view is read at most once per check interval: its checkers report no faster,
    and the account's health-check API allows five requests a second, shared with every tool."""
    return read_at is None or now - read_at >= rules.request_interval


def bound_checks(
    checks: Iterable[HealthCheck] | None,
    lbs: Sequence[Instance],
    skipped: Sequence[Skipped],
    current: ActiveName,
    rules: SecondOpinionRules,
) -> dict[str, str]:
    """Instance id -> the check its pair record names: the check that probes its current address
    once this run's check changes are made (an update keeps a check's id). While a check of a new
    type or interval is yet to be made, the record keeps the check it names: Route 53 cannot
    change those in place, and a record never names a check that is not there yet. `checks`
    None (not read this run): each LB keeps the check a pair record at its address names, as
    a pair rewritten without its checks is one Route 53 answers PRIMARY whatever it sees."""
    if checks is None:
        return _named_checks(current, [*lbs, *frozen_lbs(skipped)])
    bound = {r.health_check_id for r in current.records if r.health_check_id is not None}
    found: dict[str, str] = {}
    for lb in [*lbs, *frozen_lbs(skipped)]:
        theirs = [c for c in checks if c.instance_id == lb.instance_id]
        wanted = desired_check(lb, rules)
        kept = kept_check(theirs, wanted) if isinstance(wanted, HealthCheckSpec) else None
        still = next((c for c in theirs if c.health_check_id in bound), None)
        chosen = kept or still
        if chosen is not None:
            found[lb.instance_id] = chosen.health_check_id
    return found


def _named_checks(current: ActiveName, lbs: Sequence[Instance]) -> dict[str, str]:
    """Instance id -> the check a pair record holding its address names."""
    found: dict[str, str] = {}
    for record in current.records:
        holder = _holder(record, lbs)
        if holder is not None and record.health_check_id is not None:
            found.setdefault(holder.instance_id, record.health_check_id)
    return found


# Route 53 calls an endpoint healthy while more than 18% of its checkers report it healthy.
HEALTHY_SHARE = 0.18


def judged_healthy(
    observations: Sequence[CheckerObservation], *, now: float, rules: PairRules
) -> bool | None:
    """What Route 53's data plane makes of its checkers' reports on one check; None when no
    report is recent (three intervals), which Route 53 treats as it treats a new check."""
    recent = [o for o in observations if now - o.checked_at <= 3 * rules.request_interval]
    if not recent:
        return None
    return sum(o.healthy for o in recent) > HEALTHY_SHARE * len(recent)


def route53_view(
    statuses: Mapping[str, Sequence[CheckerObservation]], *, now: float, rules: PairRules
) -> tuple[tuple[str, bool], ...]:
    """Check id -> healthy, as Route 53's data plane judges each check read; a check with no
    recent report is left out (unknown, which Route 53 counts healthy)."""
    judged = {c: judged_healthy(o, now=now, rules=rules) for c, o in sorted(statuses.items())}
    return tuple((c, healthy) for c, healthy in judged.items() if healthy is not None)


def route53_answers(current: ActiveName, view: Mapping[str, bool]) -> Record | None:
    """The record Route 53's data plane answers, as its checkers report: the PRIMARY while its
    check is healthy (or unknown: a new check counts as healthy), else a healthy SECONDARY, else
    the PRIMARY again (Route 53 fails open when both fail)."""
    if not current.is_pair:
        return current.plain
    primary, secondary = current.primary, current.secondary
    if primary is None or secondary is None:
        return primary or secondary

    def healthy(record: Record) -> bool:
        return record.health_check_id is None or view.get(record.health_check_id, True)

    if healthy(primary) or not healthy(secondary):
        return primary
    return secondary


# ---------------------------------------------------------------------------------------------
# The decision.


@dataclass(frozen=True)
class PairDecision:
    """The pair after this plan: the active role (as the plain rules report it), the one batch."""

    active: ActiveDecision
    changes: tuple[RecordChange, ...]
    primary: str | None  # instance ids, for `status` and the report
    secondary: str | None
    swapped: bool  # PRIMARY moved from one LB to another: counts against the swap limit
    conditions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PairInputs:
    """What the pair is decided from, beside the plain rules' decision."""

    lbs: Sequence[Instance]
    skipped: Sequence[Skipped]
    checks: Mapping[str, str]  # instance id -> its bound check (`bound_checks`)
    view: Mapping[str, bool]  # check id -> Route 53's checkers see it healthy; absent: unknown
    last_swap_at: float | None  # when PRIMARY last moved from one LB to another
    now: float
    can_take_over: Callable[[Instance], bool] = anyone
    # The addresses the cluster's instances hold (core.dns.addresses_held); None: not known.
    addresses: Collection[str] | None = None


def decide_pair(
    current: ActiveName, base: ActiveDecision, inputs: PairInputs, rules: PairRules
) -> PairDecision:
    """The pair that follows `base`, the plain rules' decision on the PRIMARY (or the plain
    record): where the active role goes, and why. On top of it, the pair's own rules:

    - moving off PRIMARY, the SECONDARY is taken when the controller judges it eligible: it is
      the LB chosen next, and Route 53 may answer it already (then the roles swap to match);
    - at most one swap per LBF_ROUTE53_INTERVAL x LBF_FALL, unless EC2 reports PRIMARY down: two
      vantages that disagree never make the pair swap back and forth;
    - SECONDARY is the LB a run would choose next, or PRIMARY's address without a check.
    """
    if current.others:
        return _untouched(
            current,
            inputs,
            f"{rules.records.active_fqdn} has records of another routing policy: left as it is",
        )
    known = {lb.instance_id: lb for lb in [*inputs.lbs, *frozen_lbs(inputs.skipped)]}
    before = _holder(current.answered, known.values())
    candidates = by_name(lb for lb in inputs.lbs if is_eligible(lb) and inputs.can_take_over(lb))
    active = _prefer_secondary(base, before, _holder(current.secondary, candidates))
    conditions: dict[str, str] = {}
    active = _limit_swaps(active, before, inputs, rules, conditions)
    primary = known.get(active.holders[0]) if active.holders else None
    values = active.values if active.values is not None else _values(current.answered)
    if not values or primary is None:
        # Nothing to bind a pair to (no LB holds the name, or its last value was released).
        changes = (
            swap_batch(current, []) if active.values == () else _released(current, inputs, rules)
        )
        return PairDecision(active, changes, None, None, swapped=False, conditions=conditions)
    conditions.update(_disagreement(current, primary, before, inputs.view))
    if active.values is None and not (candidates and (current.is_pair or keeps_role(primary))):
        # No LB is eligible, or a plain record on an LB the controller judges ineligible: left
        # as it is. A pair keeps its SECONDARY, which Route 53 may still answer, while its LB
        # holds that address; a new pair is never made with an ineligible PRIMARY.
        changes = _kept_as_it_is(current, values, inputs, rules)
        return PairDecision(
            active, changes, primary.instance_id, None, swapped=False, conditions=conditions
        )
    after_secondary = _next(candidates, primary, _holder(current.secondary, candidates))
    if VANTAGES_DISAGREE not in conditions:
        conditions.update(_secondary_disagreement(current, after_secondary, inputs.view))
    wanted = _wanted(rules, values, primary, after_secondary, inputs.checks)
    swapped = before is not None and primary.instance_id != before.instance_id
    return PairDecision(
        active,
        swap_batch(current, wanted),
        primary.instance_id,
        after_secondary.instance_id if after_secondary is not None else None,
        swapped=swapped,
        conditions=conditions,
    )


def _values(record: Record | None) -> tuple[str, ...]:
    return record.values if record is not None else ()


def _holder(record: Record | None, lbs: Iterable[Instance]) -> Instance | None:
    """The LB a record holds the address of."""
    if record is None:
        return None
    return next((lb for lb in lbs if lb.address is not None and lb.address in record.values), None)


def _next(
    candidates: Sequence[Instance], primary: Instance, secondary: Instance | None
) -> Instance | None:
    """SECONDARY: the LB a run would newly choose, keeping the one chosen before while it is."""
    others = [lb for lb in candidates if lb.instance_id != primary.instance_id]
    if secondary is not None and secondary in others:
        return secondary
    return others[0] if others else None


def _prefer_secondary(
    base: ActiveDecision, before: Instance | None, secondary: Instance | None
) -> ActiveDecision:
    """Moving off PRIMARY: to SECONDARY (an eligible candidate) rather than the lowest name."""
    if (
        base.moved_to is None
        or before is None
        or secondary is None
        or secondary.instance_id == before.instance_id
        or base.holders == (secondary.instance_id,)
    ):
        return base
    head = base.reason.rsplit(" to ", 1)[0]
    return replace(
        base,
        values=(secondary.address or "",),
        holders=(secondary.instance_id,),
        moved_to=secondary.name,
        reason=f"{head} to {secondary.name}, the pair's SECONDARY",
    )


def _limit_swaps(
    active: ActiveDecision,
    before: Instance | None,
    inputs: PairInputs,
    rules: PairRules,
    conditions: dict[str, str],
) -> ActiveDecision:
    """Holds a second swap within LBF_ROUTE53_INTERVAL x LBF_FALL, unless PRIMARY is down."""
    moving = (
        active.moved_to is not None
        and before is not None
        and not before.down
        and active.holders != (before.instance_id,)
    )
    last = inputs.last_swap_at
    if not moving or last is None or inputs.now - last >= rules.detection_seconds:
        return active
    assert before is not None
    until = last + rules.detection_seconds
    conditions[SWAP_HELD] = (
        f"failover pair held on {label(before)}: it swapped {inputs.now - last:.0f} s ago, and "
        f"swaps at most once per LBF_ROUTE53_INTERVAL x LBF_FALL ({rules.detection_seconds} s) "
        f"unless EC2 reports PRIMARY stopped; would move to {active.moved_to}"
    )
    return ActiveDecision(
        None,
        (before.instance_id,),
        f"held on {label(before)} until {until:.0f} (one swap per {rules.detection_seconds} s)",
    )


def _disagreement(
    current: ActiveName, primary: Instance, before: Instance | None, view: Mapping[str, bool]
) -> dict[str, str]:
    """One condition while Route 53's checkers and the controller judge the PRIMARY that stays
    differently. A PRIMARY the controller moves off is no lasting disagreement: Route 53 is only
    slower to see it (LBF_ROUTE53_INTERVAL x LBF_FALL)."""
    record = current.primary
    if (
        before is None
        or before.instance_id != primary.instance_id
        or record is None
        or record.health_check_id not in view
        or primary.verdict is Verdict.UNKNOWN
    ):
        return {}
    route53 = view[record.health_check_id or ""]
    controller = primary.verdict is Verdict.HEALTHY and primary.running
    if route53 == controller:
        return {}
    seen = "healthy" if route53 else "unhealthy"
    return {
        VANTAGES_DISAGREE: (
            f"vantages disagree on PRIMARY {label(primary)}: Route 53's checkers see it {seen}, "
            f"the controller {primary.verdict.value}; the pair stays as it is"
        )
    }


def _secondary_disagreement(
    current: ActiveName, secondary: Instance | None, view: Mapping[str, bool]
) -> dict[str, str]:
    """One condition while Route 53's checkers fail the SECONDARY that stays, an LB the
    controller judges eligible: the pair's failover without a controller is gone (Route 53
    fails open to the PRIMARY when both checks fail), and nothing else would say so."""
    record = current.secondary
    if (
        secondary is None
        or record is None
        or secondary.address not in record.values
        or view.get(record.health_check_id or "", True)
    ):
        return {}
    return {
        VANTAGES_DISAGREE: (
            f"vantages disagree on SECONDARY {label(secondary)}: Route 53's checkers see it "
            f"unhealthy, the controller {secondary.verdict.value}; Route 53 would not fail over "
            "to it, and the pair stays as it is"
        )
    }


def _untouched(current: ActiveName, inputs: PairInputs, why: str) -> PairDecision:
    held = _holder(current.answered, inputs.lbs)
    active = ActiveDecision(None, (held.instance_id,) if held else (), why)
    return PairDecision(
        active, (), None, None, swapped=False, conditions={"pair-foreign-records": why}
    )


def _wanted(
    rules: PairRules,
    values: Sequence[str],
    primary: Instance,
    secondary: Instance | None,
    checks: Mapping[str, str],
) -> list[Record]:
    """PRIMARY with its check; SECONDARY with its own, or PRIMARY's values without a check."""
    wanted = [pair_record(rules.records, PRIMARY, values, checks.get(primary.instance_id))]
    if secondary is None or secondary.address is None:
        wanted.append(pair_record(rules.records, SECONDARY, values, None))
    else:
        check = checks.get(secondary.instance_id)
        wanted.append(pair_record(rules.records, SECONDARY, (secondary.address,), check))
    return wanted


def planned_pair(
    world: World,
    target: Instance,
    rules: PairRules,
    *,
    leaving: Collection[str] = (),
    can_take_over: Callable[[Instance], bool] = anyone,
) -> tuple[RecordChange, ...] | None:
    """move-active (and drain) onto `target`: the pair's batch, or None when the active name is
    a plain record and stays one. The operator's move is not held by the swap limit: it is one
    move, asked for, never a back-and-forth between two vantages. `leaving`: the LB being
    drained, which is never SECONDARY (its tag is written only after the move)."""
    current = read_active_name(world.records, rules.records)
    values = (target.address or "",)
    if not rules.enabled:
        return back_to_plain(current, rules.records, values) if current.is_pair else None
    candidates = by_name(
        lb
        for lb in world.lbs
        if is_eligible(lb) and can_take_over(lb) and lb.instance_id not in leaving
    )
    secondary = _next(candidates, target, _holder(current.secondary, candidates))
    checks = (
        bound_checks(world.health_checks, world.lbs, world.skipped, current, rules.checks)
        if rules.checks is not None
        else {}
    )
    return swap_batch(current, _wanted(rules, values, target, secondary, checks))


def _released(
    current: ActiveName, inputs: PairInputs, rules: PairRules
) -> tuple[RecordChange, ...]:
    """A PRIMARY no LB holds (pointed by hand) is left as it is, but SECONDARY is the
    controller's record and keeps its upkeep. One whose address no instance of the cluster
    holds any more (released, so anyone's next: Route 53 would send clients there when the
    PRIMARY's check fails) takes PRIMARY's values, without a check; one still held takes a new
    LBF_TTL, as every record the controller writes does."""
    primary, secondary = current.primary, current.secondary
    if primary is None or secondary is None:
        return ()
    if inputs.addresses is not None and not set(secondary.values) <= set(inputs.addresses):
        secondary = pair_record(rules.records, SECONDARY, primary.values, None)
    return swap_batch(current, [primary, replace(secondary, ttl=rules.records.ttl)])


def _kept_as_it_is(
    current: ActiveName, values: Sequence[str], inputs: PairInputs, rules: PairRules
) -> tuple[RecordChange, ...]:
    """The pair left where it is (no LB to move it to), with its upkeep: a SECONDARY whose
    address no instance of the cluster holds any more (released, so anyone's next) takes
    PRIMARY's values, without a check, as a pair with no other LB; and a new LBF_TTL reaches
    both records, or the plain record not yet made a pair, as the plain rules restate it (only
    while it holds the cluster's addresses: one pointed by hand is rewritten when repaired)."""
    primary, secondary = current.primary, current.secondary
    ttl = rules.records.ttl
    plain = current.plain
    if plain is not None and not current.is_pair:
        known = inputs.addresses is not None and set(plain.values) <= set(inputs.addresses)
        return swap_batch(current, [replace(plain, ttl=ttl)]) if known else ()
    if not current.is_pair or primary is None or secondary is None:
        return ()
    if inputs.addresses is not None and not set(secondary.values) <= set(inputs.addresses):
        secondary = pair_record(rules.records, SECONDARY, values, None)
    return swap_batch(current, [replace(primary, ttl=ttl), replace(secondary, ttl=ttl)])
