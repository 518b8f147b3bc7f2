"""A planned failover: `python -m chalicelib move-active --to lb2` (and `--drain lb1`).

For maintenance windows and drills. It checks the target, moves the active record (or the Elastic
IP) with the same compare-and-swap as a failover, waits until Route 53 reports the change INSYNC
on all its name servers, and keeps a timeline of each step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from chalicelib.config import Settings
from chalicelib.core import dns
from chalicelib.core.inventory import natural_key
from chalicelib.core.model import TAG_MAINTENANCE, TAG_STATE, Instance, World
from chalicelib.core.plan import record_rules, serves_current_list
from chalicelib.errors import AwsError, ViewNotLoaded
from chalicelib.jobs import Clock, Report, new_run_id, observe
from chalicelib.services import Services


def move_active(
    settings: Settings,
    services: Services,
    clock: Clock,
    *,
    to: str | None = None,
    drain: str | None = None,
    wait: bool = True,
    insync_timeout: float = 300.0,
) -> Report:
    """A planned failover: check the target, move with the same compare-and-swap, wait for
    Route 53 to report the change INSYNC on all its name servers, and keep a timeline."""
    started = clock.now()
    report = Report(job="move-active", run_id=new_run_id())

    def step(text: str) -> None:
        report.timeline.append((clock.now() - started, text))

    try:
        world = observe(settings, services, now=started)
    except ViewNotLoaded as exc:
        report.errors.append(str(exc))
        return report
    assert world is not None
    by_label = {lb.name: lb for lb in world.lbs if lb.name is not None}
    for name in (to, drain):
        if name is not None and name not in by_label:
            known = ", ".join(sorted(by_label, key=natural_key)) or "none"
            report.errors.append(f"no LB named {name!r} in cluster {settings.cluster} ({known})")
    if report.errors:
        return report

    if drain is not None:
        drained = by_label[drain]
        try:
            services.inventory.create_tags([drained.instance_id], [(TAG_MAINTENANCE, "drain")])
        except AwsError as exc:
            report.errors.append(f"tagging {drain} for draining: {exc}")
            return report
        by_label[drain] = replace(drained, draining=True)
        world = replace(world, lbs=tuple(by_label.get(lb.name or "", lb) for lb in world.lbs))
        step(f"{drain} tagged {TAG_MAINTENANCE}=drain: never made active while it is there")

    serves = serves_current_list(world, max(settings.lb_min_backends, 1))
    published = world.backends_parameter is not None
    candidates = [
        lb
        for lb in dns.by_name(world.lbs)
        if dns.is_eligible(lb) and (serves(lb) or not published) and lb.name != drain
    ]
    target = by_label[to] if to is not None else (candidates[0] if candidates else None)
    if target is None:
        report.errors.append("no LB is healthy and current to move to")
        return report
    if target not in candidates:
        why = "not healthy" if not dns.is_eligible(target) else "its backend list is not current"
        report.errors.append(f"{target.name} cannot take over: {why}")
        return report
    step(f"checked {target.name} ({target.address}): healthy, backend list current")

    moved = _move_to(world, settings, services, target, report, step)
    if moved is None:
        return report
    if moved and wait and settings.mode == "dns":
        _wait_insync(services, clock, moved, report, step, insync_timeout)
    states = [
        ([lb.instance_id for lb in world.lbs if lb.instance_id != target.instance_id], "standby"),
        ([target.instance_id], "active"),
    ]
    for instance_ids, state in states:
        if instance_ids:
            try:
                services.inventory.create_tags(instance_ids, [(TAG_STATE, state)])
            except AwsError as exc:
                report.errors.append(f"tagging {TAG_STATE}={state}: {exc}")
    report.seconds = clock.now() - started
    return report


def _move_to(
    world: World,
    settings: Settings,
    services: Services,
    target: Instance,
    report: Report,
    step: Callable[[str], None],
) -> str | None:
    """Returns the Route 53 change id ("" when nothing needed moving), None on failure."""
    try:
        if settings.mode == "eip":
            allocation = settings.eip_allocation_id or ""
            holder, _ = services.inventory.address_holder(allocation)
            if holder == target.instance_id:
                step(f"the Elastic IP is already on {target.name}")
                return ""
            if holder != world.eip_instance_id:
                raise AwsError("ec2", "AssociateAddress", "AddressMoved", f"now on {holder}")
            services.inventory.associate_address(allocation, target.instance_id)
            step(f"Elastic IP {allocation} moved to {target.name}")
            report.applied.append(f"move Elastic IP {allocation} to {target.name}")
            return ""
        rules = record_rules(settings)
        current = next(
            (r for r in world.records if r.name == rules.active_fqdn and r.type == "A"), None
        )
        if current is not None and current.values == (target.address,):
            step(f"{rules.active_fqdn} already points at {target.name}")
            return ""
        changes = dns.active_change(
            current, [target.address or ""], settings.ttl, rules.active_fqdn
        )
        change_id = services.records.change(changes, comment=f"lb-failover: move to {target.name}")
    except AwsError as exc:
        report.errors.append(f"move to {target.name} failed, nothing changed: {exc}")
        return None
    before = " ".join(current.values) if current is not None else "(none)"
    step(f"{rules.active_fqdn}: {before} -> {target.address} (change {change_id})")
    report.applied.append(f"{rules.active_fqdn} -> {target.address}")
    return change_id


def _wait_insync(
    services: Services,
    clock: Clock,
    change_id: str,
    report: Report,
    step: Callable[[str], None],
    timeout: float,
) -> None:
    deadline = clock.now() + timeout
    while True:
        try:
            status = services.records.change_status(change_id)
        except AwsError as exc:
            report.errors.append(f"reading change {change_id}: {exc}")
            return
        if status == "INSYNC":
            step("INSYNC: every Route 53 name server answers with the new address")
            return
        if clock.now() >= deadline:
            report.errors.append(f"change {change_id} still {status} after {timeout:.0f} s")
            return
        clock.sleep(2.0)


# --- the second opinion: Route 53 health checks (LBF_ROUTE53_HEALTH_CHECKS) --------------------
