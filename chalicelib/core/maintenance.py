"""`drain NAME` / `undrain NAME`: which instance NAME is, and the tag change. Pure.

An LB is named by its `lbf:name` or its instance id, a web server by its address (or its
`address:port` entry) or its instance id. Draining the LB that holds the active role is a planned
failover (`core.planned_failover`, the same plan as `move-active --drain`); everything else is one
tag written or removed, and the next run acts on it. Undraining never moves anything back.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.core import addresses
from chalicelib.core.backends import Backend
from chalicelib.core.changes import RemoveTags, SetTags
from chalicelib.core.commands import CommandPlan, nothing, refused
from chalicelib.core.model import TAG_MAINTENANCE, Instance, Role, World
from chalicelib.core.planned_failover import Refused

DRAIN = "drain"


@dataclass(frozen=True)
class Named:
    """The instance a command names."""

    instance_id: str
    role: Role
    label: str  # how an operator knows it: an LB's name, a web server's entry, else its id
    draining: bool
    skipped: str | None = None  # why it is skipped: its tags are frozen


def find(world: World, name: str) -> Named | Refused:
    """The LB or web server NAME names in this world; refused (exit 1) when none or two do."""
    found: list[Named] = []
    for lb in world.lbs:
        if name in (lb.name, lb.instance_id):
            found.append(Named(lb.instance_id, Role.LB, lb.name or lb.instance_id, lb.draining))
    for web in world.webs:
        if name == web.instance_id or _is_web_address(web, name):
            found.append(Named(web.instance_id, Role.WEB, _entry(web), web.draining))
    for skipped in world.skipped:
        frozen = skipped.frozen
        if name == skipped.instance_id or (
            frozen is not None and frozen.role is Role.LB and name == skipped.name
        ):
            role = frozen.role if frozen is not None else None
            if role is None:
                return Refused(f"{name} is {skipped.instance_id}, whose lbf:role is not known")
            draining = frozen.draining if frozen is not None else False
            found.append(Named(skipped.instance_id, role, name, draining, skipped=skipped.reason))
    if not found:
        return Refused(
            f"no LB (by name or instance id) or web server (by address or instance id) is "
            f"named {name!r} in this cluster; `status` lists them"
        )
    if len(found) > 1:
        ids = ", ".join(n.instance_id for n in found)
        return Refused(f"{name!r} names more than one instance ({ids}): give an instance id")
    return found[0]


def refuse_frozen(named: Named) -> Refused | None:
    """A skipped web server's tags are frozen: the controller never writes them."""
    if named.skipped is not None and named.role is Role.WEB:
        return Refused(
            f"{named.label} is skipped ({named.skipped}); its tags are frozen: fix them first"
        )
    return None


def _is_web_address(web: Instance, name: str) -> bool:
    """By its address (any written form of it) or by its entry in the list, `address:port`."""
    return web.address is not None and (
        name == _entry(web) or addresses.canonical(name) == web.address
    )


def _entry(web: Instance) -> str:
    if web.address is None:
        return web.instance_id
    if web.port is None:
        return web.address
    return Backend(web.address, web.port, web.instance_id).render()


def plan_drain(named: Named) -> CommandPlan:
    """A web server's (or an LB's that holds nothing: commands.drain hands an LB to move-active,
    which writes the tag after the move it belongs to) lbf:maintenance=drain."""
    frozen = refuse_frozen(named)
    if frozen is not None:
        return refused(frozen.reason)
    if named.draining:
        return nothing(f"{named.label} is draining already: nothing to write")
    return CommandPlan(
        changes=(SetTags((named.instance_id,), ((TAG_MAINTENANCE, DRAIN),)),),
        notes=(("next-run", f"the next run takes {named.label} out of the backend list"),),
    )


def plan_undrain(named: Named) -> CommandPlan:
    """lbf:maintenance removed; nothing moves back to it (non-preemptive)."""
    if not named.draining:
        return nothing(f"{named.label} is not draining: nothing to write")
    after = (
        f"{named.label} is eligible again once healthy; nothing moves back to it"
        if named.role is Role.LB
        else f"the next run puts {named.label} back in the backend list once it is healthy"
    )
    return CommandPlan(
        changes=(RemoveTags((named.instance_id,), (TAG_MAINTENANCE,)),),
        notes=(("next-run", after),),
    )
