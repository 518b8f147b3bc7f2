"""The world after a round's outcomes, and after the re-read a stale change asks for.

A round folds what it applied into its world (`fold_outcomes`), so the next round plans against
what is now true without reading AWS again. When Route 53 rejects a record batch, the job reads
everything again; `rejected_batch` names the batch the re-read judges (core/rejections.py says
what the re-read shows). A permanent rejection: `without_rejected` is what the round still
applies, around the records Route 53 refuses. A stale change: `merge_reread` is the world the run
plans from, the newer world with what only this run knows kept.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from chalicelib.core import rejections
from chalicelib.core.applied import after, checks_after
from chalicelib.core.changes import (
    Change,
    ChangeRecords,
    DeleteHealthCheck,
    MoveAddress,
    PushBackends,
    SetTags,
)
from chalicelib.core.health import Thresholds
from chalicelib.core.model import Instance, World
from chalicelib.core.observed import fold_down_states
from chalicelib.core.outcome import Outcome, applied
from chalicelib.core.plan import Plan


def fold_outcomes(world: World, outcomes: Sequence[Outcome]) -> World:
    """The world with the applied (or printed) changes in it, and the pushes just sent or printed."""
    world = checks_after(after(world, applied(outcomes)), outcomes)
    sent = tuple(o.push for o in outcomes if o.push is not None)
    printed = tuple(
        (o.change.instance_id, o.change.checksum)
        for o in outcomes
        if o.printed and isinstance(o.change, PushBackends)
    )
    return replace(world, pushes=world.pushes + sent, pushes_printed=world.pushes_printed + printed)


def rejected_batch(outcomes: Sequence[Outcome]) -> tuple[ChangeRecords, str] | None:
    """The record batch Route 53 rejected, when it is the only rejected change."""
    rejected = [o for o in outcomes if o.rejected]
    if len(rejected) == 1 and isinstance(rejected[0].change, ChangeRecords):
        return rejected[0].change, rejected[0].error or ""
    return None


@dataclass(frozen=True)
class WithoutRejected:
    """A round after a permanent rejection of some of its record names."""

    plan: Plan  # the round's plan less the changes to the rejected names
    rest: Plan  # what of it is still to apply: what no attempt reached yet
    attempted: tuple[Outcome, ...]  # the outcomes of the attempts so far that stand
    waiting: tuple[Outcome, ...]  # lbf:state tags held back: the Elastic IP or a record failed


def without_rejected(
    plan: Plan, outcomes: Sequence[Outcome], names: Collection[str], *, active_fqdn: str
) -> WithoutRejected:
    """The rest of the plan once Route 53 rejects `names` for good.

    `outcomes` are every attempt of the round so far: the first (the whole plan, up to the
    rejected batch) and, where the batch was split, each compare-and-swap alone. What they
    attempted (the Elastic IP, the records taken alone) is not attempted twice in the round.
    """
    remaining = rejections.without(plan, names, active_fqdn=active_fqdn)
    attempted = tuple(o for o in outcomes if not o.skipped and not o.rejected)
    done = {id(o.change) for o in attempted}
    tried = {c for o in attempted if isinstance(o.change, ChangeRecords) for c in o.change.changes}
    # lbf:state follows the records and the Elastic IP: if one of them failed, the tags wait.
    role_failed = any(
        isinstance(o.change, MoveAddress | ChangeRecords) and not o.ok for o in attempted
    )
    waiting = tuple(
        Outcome(c, ok=False, skipped=True)
        for c in remaining.changes
        if role_failed and isinstance(c, SetTags | DeleteHealthCheck) and c.after_records
    )
    held = {id(o.change) for o in waiting}
    rest: list[Change] = []
    for change in remaining.changes:
        if id(change) in done or id(change) in held:
            continue
        if isinstance(change, ChangeRecords):
            untried = tuple(c for c in change.changes if c not in tried)
            if not untried:
                continue
            change = replace(change, changes=untried)
        rest.append(change)
    return WithoutRejected(
        plan=remaining,
        rest=replace(remaining, changes=tuple(rest)),
        attempted=attempted,
        waiting=waiting,
    )


def merge_reread(ours: World, fresh: World, thresholds: Thresholds) -> World:
    """The world read again after a stale change, keeping what this run knows better.

    An instance whose controller tags are still what this run last saw written has been counted
    by nobody else since: its damping, with this run's rounds in it, is kept. Where another run
    wrote them, that run's verdict is the newer one and is taken. Pushes: the union, each with
    the most settled status either world has.
    """
    own = {i.instance_id: i for i in (*ours.lbs, *ours.webs)}

    def keep_counts(instances: tuple[Instance, ...]) -> tuple[Instance, ...]:
        merged = []
        for instance in instances:
            mine = own.get(instance.instance_id)
            if mine is not None and mine.written == instance.written:
                instance = replace(instance, damping=mine.damping)
            merged.append(instance)
        return tuple(merged)

    pushes = {c.command_id: c for c in fresh.pushes}
    for push in ours.pushes:
        known = pushes.get(push.command_id)
        if known is None or (known.in_flight and not push.in_flight):
            pushes[push.command_id] = push
    # A skipped instance's tags are never written: its counts are this run's alone.
    frozen = {s.instance_id: s.frozen for s in ours.skipped if s.frozen is not None}
    skipped = tuple(
        replace(s, frozen=replace(s.frozen, damping=frozen[s.instance_id].damping))
        if s.frozen is not None and frozen.get(s.instance_id) is not None
        else s
        for s in fresh.skipped
    )
    world = replace(
        fresh,
        lbs=keep_counts(fresh.lbs),
        webs=keep_counts(fresh.webs),
        skipped=skipped,
        pushes=tuple(pushes.values()),
        pushes_printed=ours.pushes_printed,
        # Route 53's view is read at most once per check interval: this run's read still holds.
        route53_view=ours.route53_view,
        pair_swapped_at=_later(ours.pair_swapped_at, fresh.pair_swapped_at),
    )
    return fold_down_states(world, thresholds)


def _later(one: float | None, other: float | None) -> float | None:
    times = [t for t in (one, other) if t is not None]
    return max(times) if times else None
