"""The round's observations folded into the world: EC2's states, then each probe result through
rise/fall damping; which targets a round probes; when a path's failures are the prober's own.

Pure: core/round.py folds each round's paths in before it asks core/plan.py for the Plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from chalicelib.core import backends as backend_lists
from chalicelib.core import dns
from chalicelib.core.endpoints import ProbeRules
from chalicelib.core.health import Thresholds, advance, down_at_once
from chalicelib.core.model import Instance, ProbeResult, ProbeTarget, Role, World


def _fold_all(world: World, fold: Callable[[Instance], Instance]) -> World:
    """Applies `fold` to every instance a verdict is kept for, skipped ones included."""
    skipped = tuple(
        replace(s, frozen=fold(s.frozen)) if s.frozen is not None else s for s in world.skipped
    )
    return replace(
        world,
        lbs=tuple(fold(i) for i in world.lbs),
        webs=tuple(fold(i) for i in world.webs),
        skipped=skipped,
    )


def fold_down_states(world: World, thresholds: Thresholds) -> World:
    """EC2 reports the instance stopping or gone: unhealthy at once, no rounds needed.

    EC2's state outranks a tag: a skipped instance in such a state is unhealthy at once too.
    """

    def fold(i: Instance) -> Instance:
        return replace(i, damping=down_at_once(thresholds)) if i.down else i

    return _fold_all(world, fold)


def frozen_webs(world: World) -> list[tuple[Instance, tuple[str, ...]]]:
    """Skipped web servers, each with the entries it has in the published list."""
    published = backend_lists.parse_list(world.backends_parameter)
    return [
        (s.frozen, backend_lists.entries_of(s.frozen, published))
        for s in world.skipped
        if s.frozen is not None and s.frozen.role is Role.WEB
    ]


def probed_lbs(world: World) -> list[Instance]:
    """The LBs a round probes: the listed ones and the skipped ones whose role is known."""
    return [*world.lbs, *dns.frozen_lbs(world.skipped)]


def probe_targets(world: World, rules: ProbeRules) -> list[ProbeTarget]:
    """Running instances with an address. A skipped one is probed too: its tags are frozen, not
    its health; a skipped web server only through the entry it has (its port may not parse)."""
    lbs = probed_lbs(world)
    targets = [
        ProbeTarget(lb.instance_id, rules.lb_check.endpoint(lb.address))
        for lb in lbs
        if lb.running and lb.address is not None
    ]
    targets += [
        ProbeTarget(web.instance_id, rules.pool_check.endpoint(web.address, web.port))
        for web in world.webs
        if web.running and web.address is not None
    ]
    for web, entries in frozen_webs(world):
        if web.running and web.address is not None and entries:
            port = web.port or int(entries[0].rpartition(":")[2])
            targets.append(
                ProbeTarget(web.instance_id, rules.pool_check.endpoint(web.address, port))
            )
    return targets


def is_prober_fault(results: Mapping[str, ProbeResult], fault_percent: int) -> bool:
    """Every target failing at once says more about the prober's network than about them."""
    if len(results) < 2:
        return False
    failed = sum(1 for r in results.values() if not r.ok)
    return failed * 100 >= fault_percent * len(results)


def fold_probes(world: World, results: Mapping[str, ProbeResult], thresholds: Thresholds) -> World:
    def fold(i: Instance) -> Instance:
        if i.instance_id in results and not i.down:
            result = results[i.instance_id]
            damping = advance(i.damping, result.ok, thresholds, detail=result.detail)
            return replace(i, damping=damping)
        return i

    return _fold_all(world, fold)
