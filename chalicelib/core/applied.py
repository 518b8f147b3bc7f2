"""What was applied, folded back into the world, so that the next round plans against what is
now true without reading AWS again. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chalicelib.core import dns
from chalicelib.core.changes import (
    Change,
    ChangeRecords,
    CreateHealthCheck,
    DeleteHealthCheck,
    MoveAddress,
    PutBackendList,
    PutHeldDrop,
    PutLbList,
    SetTags,
    UpdateHealthCheck,
)
from chalicelib.core.model import (
    TAG_BACKENDS,
    TAG_NAME,
    TAG_STATE,
    HealthCheck,
    Instance,
    LbState,
    World,
)
from chalicelib.core.outcome import Outcome


def after(world: World, applied: Sequence[Change]) -> World:
    """The world after these changes succeeded: the next round plans against it."""
    records = world.records
    lbs, webs = world.lbs, world.webs
    backends_parameter, lbs_parameter = world.backends_parameter, world.lbs_parameter
    held_drop_parameter = world.held_drop_parameter
    eip_instance_id = world.eip_instance_id
    for change in applied:
        if isinstance(change, ChangeRecords):
            records = dns.apply_record_changes(records, change.changes)
        elif isinstance(change, SetTags):
            lbs = _with_tags(lbs, change)
            webs = _with_tags(webs, change)
        elif isinstance(change, PutBackendList):
            backends_parameter = change.value
        elif isinstance(change, PutLbList):
            lbs_parameter = change.value
        elif isinstance(change, PutHeldDrop):
            held_drop_parameter = change.value
        elif isinstance(change, MoveAddress):
            eip_instance_id = change.instance_id
    return replace(
        world,
        records=records,
        lbs=lbs,
        webs=webs,
        backends_parameter=backends_parameter,
        lbs_parameter=lbs_parameter,
        held_drop_parameter=held_drop_parameter,
        eip_instance_id=eip_instance_id,
    )


def checks_after(world: World, outcomes: Sequence[Outcome]) -> World:
    """The world with this round's health-check changes in it. A check created in round 1 is
    in the world from round 2, so the failover pair is bound to it then, not a run later (a
    controller that stops after its first run would leave the pair unbound, and Route 53 would
    answer the PRIMARY whatever happened to it). A printed create has no id: nothing to bind."""
    if world.health_checks is None:
        return world
    checks = list(world.health_checks)
    for outcome in outcomes:
        change = outcome.change
        if not outcome.ok:
            continue
        if isinstance(change, CreateHealthCheck) and outcome.created_id is not None:
            # Route 53 numbers a new check's versions from 1.
            checks.append(HealthCheck(outcome.created_id, change.instance_id, 1, change.spec))
        elif isinstance(change, UpdateHealthCheck):
            checks = [
                replace(c, version=c.version + 1, spec=change.spec)
                if c.health_check_id == change.health_check_id
                else c
                for c in checks
            ]
        elif isinstance(change, DeleteHealthCheck):
            checks = [c for c in checks if c.health_check_id != change.health_check_id]
    return replace(world, health_checks=tuple(checks))


def _with_tags(instances: tuple[Instance, ...], change: SetTags) -> tuple[Instance, ...]:
    ids = set(change.instance_ids)
    result = []
    for instance in instances:
        if instance.instance_id in ids:
            written = dict(instance.written) | dict(change.tags)
            tags = dict(change.tags)
            instance = replace(
                instance,
                written=tuple(sorted(written.items())),
                name_assigned=False if TAG_NAME in tags else instance.name_assigned,
                lb_state=LbState(tags[TAG_STATE]) if TAG_STATE in tags else instance.lb_state,
                backends_checksum=tags.get(TAG_BACKENDS, instance.backends_checksum),
            )
        result.append(instance)
    return tuple(result)
