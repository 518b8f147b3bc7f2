"""Builders for the observed world, shared by the unit and functional tests.

The defaults describe a settled cluster: an instance built with `health="healthy"` already carries
the tags the controller would have written for it (`lbf:health`, `lbf:probe` capped at RISE, ...),
and `settled(...)` adds the records and parameters a finished run leaves behind. A world built that
way is steady: a test changes one thing and looks at what the controller does about it.

Everything here is written out by hand (the backend list, the checksum, the record names), so a
test never checks the code under test against itself.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from chalicelib.config import Settings
from chalicelib.core.inventory import ParseRules
from chalicelib.core.model import (
    TAG_BACKENDS,
    TAG_CLUSTER,
    TAG_HEALTH,
    TAG_MAINTENANCE,
    TAG_NAME,
    TAG_PORT,
    TAG_PROBE,
    TAG_ROLE,
    TAG_STATE,
    Damping,
    Instance,
    LbState,
    ProbeRun,
    Push,
    RawInstance,
    Record,
    Role,
    Skipped,
    Verdict,
    World,
)
from tests.kit.settings import CLUSTER, DOMAIN, settings

PREFIX = f"/lbf/{CLUSTER}"
TTL = 60
RISE = 2  # the SPEC's default LBF_RISE
FALL = 3  # the SPEC's default LBF_FALL

# Marks "not given": None is a meaningful value for several arguments (no tag, no address).
_UNSET: object = object()


def parse_rules(config: Settings | None = None) -> ParseRules:
    config = config or settings()
    return ParseRules(
        active_name=config.active_name,
        lb_address=config.lb_address,
        pool_address=config.pool_address,
        pool_port=config.pool_port,
        mode=config.mode,
        loopback_allowed=config.loopback_allowed,
    )


def checksum_of(text: str) -> str:
    """The SPEC's Checksum: the sha256 hex of exactly the list string."""
    return hashlib.sha256(text.encode()).hexdigest()


def fqdn(label: str) -> str:
    return f"{label}.{DOMAIN}"


# --- instances --------------------------------------------------------------------------------


def damping(health: str, probe: str | object | None = _UNSET) -> Damping:
    """A verdict and its run of probe results; by default the run that settled the verdict."""
    verdict = Verdict(health)
    if probe is _UNSET:
        probe = {"healthy": f"ok:{RISE}", "unhealthy": f"fail:{FALL}"}.get(health)
    run = None
    if isinstance(probe, str):
        kind, _, count = probe.partition(":")
        run = ProbeRun(ok=kind == "ok", count=int(count))
    return Damping(verdict=verdict, run=run)


def _written(instance: Instance) -> tuple[tuple[str, str], ...]:
    """The controller's tags as EC2 would hold them after the run that settled `instance`."""
    tags: dict[str, str] = {}
    if instance.verdict is not Verdict.UNKNOWN:
        tags[TAG_HEALTH] = instance.verdict.value
    if instance.damping.run is not None:
        tags[TAG_PROBE] = instance.damping.run.render()
    if instance.name is not None and not instance.name_assigned:
        tags[TAG_NAME] = instance.name
    if instance.lb_state is not None:
        tags[TAG_STATE] = instance.lb_state.value
    if instance.backends_checksum is not None:
        tags[TAG_BACKENDS] = instance.backends_checksum
    return tuple(sorted(tags.items()))


def lb(
    name: str | None,
    address: str | None,
    health: str = "healthy",
    state: str = "running",
    *,
    instance_id: str | None = None,
    launched: float = 1000.0,
    draining: bool = False,
    lb_state: str | None = None,
    backends: str | None = None,
    probe: str | object | None = _UNSET,
    name_assigned: bool = False,
    written: Mapping[str, str] | None = None,
) -> Instance:
    """A load balancer; its instance id is `i-<name>` unless given.

    `lb_state` is the lbf:state tag ("active"/"standby"), `backends` the lbf:backends checksum.
    `written` overrides the controller tags EC2 holds (by default: exactly what the fields say).
    """
    if instance_id is None:
        assert name is not None, "an LB without a name needs an instance_id"
        instance_id = f"i-{name}"
    instance = Instance(
        instance_id=instance_id,
        role=Role.LB,
        state=state,
        launch_time=launched,
        address=address,
        name=name,
        name_assigned=name_assigned,
        draining=draining,
        damping=damping(health, probe),
        lb_state=LbState(lb_state) if lb_state is not None else None,
        backends_checksum=backends,
    )
    tags = _written(instance) if written is None else tuple(sorted(written.items()))
    return replace(instance, written=tags)


def web(
    address: str | None,
    health: str = "healthy",
    state: str = "running",
    *,
    port: int = 80,
    instance_id: str | None = None,
    launched: float = 1000.0,
    draining: bool = False,
    probe: str | object | None = _UNSET,
    written: Mapping[str, str] | None = None,
) -> Instance:
    """A web server of the pool; its instance id is `i-web-<address>-<port>` unless given."""
    instance = Instance(
        instance_id=instance_id or f"i-web-{address}-{port}",
        role=Role.WEB,
        state=state,
        launch_time=launched,
        address=address,
        port=port,
        draining=draining,
        damping=damping(health, probe),
    )
    tags = _written(instance) if written is None else tuple(sorted(written.items()))
    return replace(instance, written=tags)


def skipped(
    instance_id: str,
    *,
    name: str | None = None,
    address: str | None = None,
    state: str = "running",
    reason: str = "lbf:maintenance 'Drain' is not 'drain'",
    role: str | None = "lb",
    health: str = "healthy",
    lb_state: str | None = None,
    port: int | None = None,
) -> Skipped:
    """An instance whose tags did not parse: frozen, never rendered anywhere.

    With a known role it carries what parsed of it (`frozen`): its EC2 state, its address and the
    verdict in its own tags (`health`), so it can be probed and judged.
    """
    frozen = None
    if role in ("lb", "web"):
        frozen = Instance(
            instance_id=instance_id,
            role=Role(role),
            state=state,
            launch_time=1000.0,
            address=address,
            name=name if role == "lb" else None,
            port=port,
            damping=damping(health),
            lb_state=LbState(lb_state) if lb_state is not None else None,
        )
    return Skipped(
        instance_id=instance_id,
        reason=reason,
        role=role,
        name=name,
        address=address,
        state=state,
        frozen=frozen,
    )


def retag(instance: Instance, **changes: object) -> Instance:
    """`instance` with fields changed, and EC2's tags as if the controller had written them."""
    if "health" in changes or "probe" in changes:
        health = str(changes.pop("health", instance.verdict.value))
        changes["damping"] = damping(health, changes.pop("probe", _UNSET))
    if "lb_state" in changes and isinstance(changes["lb_state"], str):
        changes["lb_state"] = LbState(changes["lb_state"])
    changed = replace(instance, **changes)  # type: ignore[arg-type]
    return replace(changed, written=_written(changed))


def observed(instance: Instance, **changes: object) -> Instance:
    """`instance` as this run sees it, while EC2 still holds the tags written before.

    `observed(lb1, health="unhealthy")` is lb1 whose verdict just flipped this round.
    """
    if "health" in changes or "probe" in changes:
        health = str(changes.pop("health", instance.verdict.value))
        changes["damping"] = damping(health, changes.pop("probe", _UNSET))
    return replace(instance, **changes)  # type: ignore[arg-type]


def raw(
    instance_id: str = "i-0001",
    role: str | None = "lb",
    *,
    name: str | None = None,
    port: str | None = None,
    maintenance: str | None = None,
    state: str = "running",
    launched: float = 1000.0,
    public_ip: str | None = "203.0.113.10",
    private_ip: str | None = "10.0.0.10",
    tags: Mapping[str, str] | None = None,
) -> RawInstance:
    """An instance as EC2 describes it; None leaves a tag out."""
    pairs: dict[str, str] = {TAG_CLUSTER: CLUSTER}
    for key, value in (
        (TAG_ROLE, role),
        (TAG_NAME, name),
        (TAG_PORT, port),
        (TAG_MAINTENANCE, maintenance),
    ):
        if value is not None:
            pairs[key] = value
    pairs.update(tags or {})
    return RawInstance(
        instance_id=instance_id,
        state=state,
        launch_time=launched,
        private_ip=private_ip,
        public_ip=public_ip,
        tags=tuple(pairs.items()),
    )


# --- records, lists and worlds ----------------------------------------------------------------


def a_record(label: str, *addresses: str, ttl: int = TTL) -> Record:
    return Record(name=fqdn(label), type="A", ttl=ttl, values=addresses)


def ownership(*labels: str, ttl: int = TTL, cluster: str | None = CLUSTER) -> Record:
    """The TXT record `_lbf.<domain>`: the owning cluster's string first (`cluster=None`: a TXT
    written before clusters owned domains), then the labels it owns, one string each."""
    owner = (f'"cluster={cluster}"',) if cluster is not None else ()
    return Record(
        name=fqdn("_lbf"),
        type="TXT",
        ttl=ttl,
        values=owner + tuple(f'"{label}"' for label in labels),
    )


def _natural(name: str) -> tuple[str, int]:
    head = name.rstrip("0123456789")
    tail = name[len(head) :]
    return (head, int(tail) if tail else -1)


def backend_text(webs: Iterable[Instance]) -> str:
    """The list the SPEC asks for, written out independently of chalicelib.core.backends."""
    serving = [
        w
        for w in webs
        if w.state == "running"
        and w.verdict is Verdict.HEALTHY
        and not w.draining
        and w.address is not None
    ]

    def key(w: Instance) -> tuple[int, int, int]:
        parsed = ipaddress.ip_address(w.address or "")
        return (parsed.version, int(parsed), w.port or 0)

    rendered = []
    for w in sorted(serving, key=key):
        host = f"[{w.address}]" if ":" in (w.address or "") else w.address
        rendered.append(f"{host}:{w.port}")
    return " ".join(rendered)


def a_push(
    instance_id: str,
    checksum: str,
    status: str = "Pending",
    *,
    requested_at: float = 500.0,
    command_id: str | None = None,
) -> Push:
    return Push(
        command_id=command_id or f"cmd-{instance_id}-{status}-{requested_at:g}",
        instance_id=instance_id,
        checksum=checksum,
        status=status,
        requested_at=requested_at,
    )


def world(
    lbs: Sequence[Instance] = (),
    webs: Sequence[Instance] = (),
    *,
    skipped: Sequence[Skipped] = (),
    records: Sequence[Record] = (),
    backends: str | None = None,
    lbs_parameter: str | None = None,
    pushes: Sequence[Push] = (),
    paused: bool = False,
) -> World:
    """A world exactly as given: nothing is filled in."""
    return World(
        lbs=tuple(lbs),
        webs=tuple(webs),
        skipped=tuple(skipped),
        records=tuple(records),
        backends_parameter=backends,
        lbs_parameter=lbs_parameter,
        paused=paused,
        pushes=tuple(pushes),
    )


def settled(
    lbs: Sequence[Instance],
    webs: Sequence[Instance] = (),
    *,
    active: str | Sequence[str] | object | None = _UNSET,
    skipped: Sequence[Skipped] = (),
    extra_records: Sequence[Record] = (),
    active_name: str = "lb",
) -> World:
    """The world a finished run leaves behind: nothing left to do.

    Every running LB has its record, the active record points at `active` (an LB name, or several
    names in active-active mode; by default the lowest-named healthy LB), the TXT record lists the
    owned labels, the parameters hold the list and the LB addresses, and every running LB carries
    the list's checksum and its lbf:state.
    """
    if active is _UNSET:
        healthy = [
            x
            for x in lbs
            if x.state == "running" and x.verdict is Verdict.HEALTHY and not x.draining and x.name
        ]
        active = min((x.name or "" for x in healthy), key=_natural) if healthy else None
    if isinstance(active, str):
        active_names = {active}
    else:
        assert active is None or isinstance(active, Sequence)
        active_names = set(active or ())
    text = backend_text(webs)
    checksum = checksum_of(text) if text else None

    settled_lbs = []
    for x in lbs:
        state = "active" if x.name in active_names else "standby"
        running = x.state == "running"
        settled_lbs.append(
            retag(
                x,
                lb_state=state,
                backends_checksum=checksum if running else x.backends_checksum,
            )
        )

    records: list[Record] = []
    labels: list[str] = []
    running_lbs = sorted(
        (x for x in settled_lbs if x.state == "running" and x.address and x.name),
        key=lambda x: _natural(x.name or ""),
    )
    for x in running_lbs:
        records.append(a_record(x.name or "", x.address or ""))
        labels.append(x.name or "")
    holders = [x for x in settled_lbs if x.name in active_names and x.address]
    if holders:
        addresses = sorted(
            {x.address or "" for x in holders},
            key=lambda a: (ipaddress.ip_address(a).version, int(ipaddress.ip_address(a))),
        )
        records.append(a_record(active_name, *addresses))
        labels.append(active_name)
    # Frozen LBs keep their records, and the controller keeps listing them.
    for s in skipped:
        if s.name is not None and s.address is not None:
            records.append(a_record(s.name, s.address))
            labels.append(s.name)
    records.append(ownership(*sorted(labels, key=_natural)))
    records.extend(extra_records)
    lb_addresses = " ".join(x.address or "" for x in running_lbs)
    return world(
        settled_lbs,
        webs,
        skipped=skipped,
        records=records,
        backends=text or None,
        lbs_parameter=lb_addresses or None,
    )
