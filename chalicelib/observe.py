"""Observing: one read of the world per run (and again after a stale change), and the pushes'
progress each round.

A run reads the inventory, the records, the parameters, the recent pushes, the Elastic IP and
the health checks once. If any of them fails, the run acts on nothing: never on half a view.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.config import Settings
from chalicelib.core import dns, pause
from chalicelib.core import notices as notice_policy
from chalicelib.core.inventory import build_inventory
from chalicelib.core.model import FailoverMode, Push, World
from chalicelib.core.plan import latest_pushes
from chalicelib.errors import AwsError, ViewNotLoaded
from chalicelib.health_checks import read_health_checks
from chalicelib.report import Report
from chalicelib.services import Services

# Pushes older than this are not looked up again: an LB that never answered is pushed anew.
PUSH_LOOKBACK_SECONDS = 3600


def observe(
    settings: Settings, services: Services, *, now: float, concerning: str | None = None
) -> World | None:
    """One read of everything. If any part fails the run stops: never act on half a view.

    With `concerning`, None when that instance is not in the cluster (nothing more is read).
    """
    try:
        raws = services.inventory.describe(settings.cluster)
        inventory = build_inventory(raws, settings.rules.parse)
        if concerning is not None and concerning not in {r.instance_id for r in raws}:
            return None
        records = services.records.read(settings.domain)
        names = [
            settings.backends_parameter_name,
            settings.lbs_parameter_name,
            settings.paused_parameter_name,
            settings.notices_parameter_name,
            settings.held_drop_parameter_name,
        ]
        parameters = services.parameters.read(names)
        pushes = services.pushes.recent(since=now - PUSH_LOOKBACK_SECONDS)
        eip_instance_id = eip_address = None
        if settings.mode is FailoverMode.EIP and settings.eip_allocation_id:
            eip_instance_id, eip_address = services.inventory.address_holder(
                settings.eip_allocation_id
            )
    except AwsError as exc:
        raise ViewNotLoaded(f"could not read the world, acting on nothing: {exc}") from exc
    health_checks, health_checks_error = read_health_checks(settings, services)
    world = World(
        lbs=inventory.lbs,
        webs=inventory.webs,
        skipped=inventory.skipped,
        records=records,
        backends_parameter=parameters.get(settings.backends_parameter_name),
        lbs_parameter=parameters.get(settings.lbs_parameter_name),
        held_drop_parameter=parameters.get(settings.held_drop_parameter_name),
        paused=pause.is_paused(parameters.get(settings.paused_parameter_name)),
        paused_value=parameters.get(settings.paused_parameter_name),
        pushes=tuple(pushes),
        notices=notice_policy.parse_stored(parameters.get(settings.notices_parameter_name)),
        eip_instance_id=eip_instance_id,
        eip_address=eip_address,
        health_checks=health_checks,
        health_checks_error=health_checks_error,
    )
    return dns.reserve_frozen_names(world, settings.rules.records)


def refresh_pushes(world: World, services: Services, report: Report) -> World:
    """Ask SSM how the pushes in flight are doing; their outcome decides lbf:backends."""
    updated: list[Push] = []
    for push in latest_pushes(world.pushes).values():
        if not push.in_flight or push.command_id == "dry-run":
            continue
        try:
            status = services.pushes.status(push)
        except AwsError as exc:
            report.error("push-unread", f"reading push {push.command_id}: {exc}")
            continue
        if status != push.status:
            updated.append(replace(push, status=status))
    if not updated:
        return world
    changed = {c.command_id for c in updated}
    kept = tuple(c for c in world.pushes if c.command_id not in changed)
    return replace(world, pushes=kept + tuple(updated))
