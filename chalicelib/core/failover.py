"""Whether a round moved the active role, which move it was, and the run's record of it.

A failover is a move of the active role that went through: in DNS mode the active record's
values, in EIP mode the Elastic IP's instance. Its key (`move_of`, core/notices.move_key) names
the values before and after, so that two overlapping runs that made or recognised the same move
tell it once. A move whose answer was lost, or that an overlapping run made first, is still this
run's failover when the re-read shows it made as planned (`recognised`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib.core import dns, notices, rejections
from chalicelib.core.changes import ChangeRecords, MoveAddress
from chalicelib.core.model import FailoverMode, World
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import Plan

RECOGNISED = " (its answer was lost, or an overlapping run made the same move: re-read)"


@dataclass(frozen=True)
class Failover:
    moved_from: str | None
    moved_to: str | None
    reason: str
    round: int
    seconds: float  # since the run started
    # The move, old values -> new values (core.notices.move_key): its notice goes out once, even
    # when two overlapping runs made or recognised it.
    move: str = ""


def move_of(world: World, plan: Plan, *, mode: FailoverMode, active_fqdn: str) -> str:
    """The key of the move this plan makes of the active role, "" if it makes none.

    DNS mode: the active record's values before -> after. EIP mode: the instance holding the
    Elastic IP before -> after.
    """
    if plan.active.values is None:
        return ""
    if mode is FailoverMode.EIP:
        target = next((c for c in plan.changes if isinstance(c, MoveAddress)), None)
        if target is None:
            return ""
        held = [world.eip_instance_id] if world.eip_instance_id else []
        return notices.move_key(held, [target.instance_id])
    current = dns.find_record(world.records, active_fqdn)
    return notices.move_key(current.values if current else (), plan.active.values)


def moved_role(plan: Plan, outcomes: Sequence[Outcome]) -> bool:
    """The plan moves the active role, and every record or address change of it went through."""
    moves = [o for o in outcomes if isinstance(o.change, ChangeRecords | MoveAddress)]
    active = plan.active
    return all(o.ok for o in moves) and active.values is not None and active.moved_from is not None


def recognised(plan: Plan, fresh: World, *, mode: FailoverMode, active_fqdn: str) -> bool:
    """The rejected change moved the active role, and the re-read shows it moved as planned: a
    lost answer, or an overlapping run that made the same move. Either way, this run's failover."""
    active = plan.active
    if active.values is None or active.moved_from is None:
        return False
    if mode is FailoverMode.EIP:
        target = next((c for c in plan.changes if isinstance(c, MoveAddress)), None)
        return target is not None and fresh.eip_instance_id == target.instance_id
    return rejections.holds(fresh.records, active_fqdn, active.values)


def failover_of(
    plan: Plan, *, round: int, seconds: float, move: str, recognised: bool = False
) -> Failover:
    """The run's record of the failover `plan` made in `round`, `seconds` into the run."""
    reason = plan.active.reason + (RECOGNISED if recognised else "")
    return Failover(
        moved_from=plan.active.moved_from,
        moved_to=plan.active.moved_to,
        reason=reason,
        round=round,
        seconds=seconds,
        move=move,
    )
