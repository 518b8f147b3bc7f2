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
    MoveAddress,
    PutBackendList,
    PutHeldDrop,
    PutLbList,
    SetTags,
)
from chalicelib.core.model import TAG_BACKENDS, TAG_NAME, TAG_STATE, Instance, LbState, World


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
