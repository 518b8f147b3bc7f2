"""Observing: one read of the world per run (and again after a stale change), and the pushes'
progress each round.

A run reads the inventory, the records, the parameters, the recent pushes, the Elastic IP and
the health checks once. If any of them fails, the run acts on nothing: never on half a view. With
the failover pair it also reads when the pair last swapped (the history's last failover), without
which it goes on: a failover never waits for the history.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.config import Settings
from chalicelib.core import dns, pausing
from chalicelib.core import notices as notice_policy
from chalicelib.core.inventory import build_inventory
from chalicelib.core.lists import latest_pushes
from chalicelib.core.model import FailoverMode, Push, Record, World
from chalicelib.errors import AwsError, DomainNotOwned, WorldNotRead
from chalicelib.health_checks import read_health_checks, read_last_swap
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
        _check_ownership(records, settings, services)
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
        raise WorldNotRead(f"could not read the world, acting on nothing: {exc}") from exc
    health_checks, health_checks_error = read_health_checks(settings, services)
    pause = pausing.read(parameters.get(settings.paused_parameter_name))
    world = World(
        lbs=inventory.lbs,
        webs=inventory.webs,
        skipped=inventory.skipped,
        records=records,
        backends_parameter=parameters.get(settings.backends_parameter_name),
        lbs_parameter=parameters.get(settings.lbs_parameter_name),
        paused=pause.paused,
        paused_unclear=pause.unclear,
        held_drop_parameter=parameters.get(settings.held_drop_parameter_name),
        pushes=tuple(pushes),
        notices=notice_policy.parse_stored(parameters.get(settings.notices_parameter_name)),
        eip_instance_id=eip_instance_id,
        eip_address=eip_address,
        health_checks=health_checks,
        health_checks_error=health_checks_error,
        pair_swapped_at=read_last_swap(settings, services),
    )
    return dns.reserve_frozen_names(world, settings.rules.records)


def _check_ownership(records: tuple[Record, ...], settings: Settings, services: Services) -> None:
    """Right after the records are read, before anything is planned: a domain another cluster
    owns is left alone. Another cluster's instances are read only for a TXT that names no
    cluster (written before clusters owned domains), once, by the run that adopts it."""
    rules = settings.rules.records
    ownership = dns.ownership_of(records, rules)
    foreign = None
    if ownership.record is not None and ownership.owner is None:
        others = services.inventory.describe_other_clusters(settings.cluster)
        foreign = dns.foreign_addresses(others, settings.cluster)
    refused = dns.refusal(records, rules, foreign=foreign)
    if refused is not None:
        raise DomainNotOwned(refused)


def refresh_pushes(world: World, services: Services) -> tuple[tuple[Push, ...], list[str]]:
    """Ask SSM how the pushes in flight are doing (their outcome decides lbf:backends): the
    pushes as SSM reports them now, and the reads that failed."""
    updated: list[Push] = []
    errors: list[str] = []
    for push in latest_pushes(world.pushes).values():
        if not push.in_flight:
            continue
        try:
            status = services.pushes.status(push)
        except AwsError as exc:
            errors.append(f"reading push {push.command_id}: {exc}")
            continue
        if status != push.status:
            updated.append(replace(push, status=status))
    if not updated:
        return world.pushes, errors
    changed = {c.command_id for c in updated}
    kept = tuple(c for c in world.pushes if c.command_id not in changed)
    return kept + tuple(updated), errors
