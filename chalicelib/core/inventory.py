"""Tags in, trusted instances out. EC2 tag values are free text: treat every one as hostile.

An instance whose operator-set tags do not parse is skipped with a reason and never rendered into
DNS, a configuration file or a command. Controller-written tags that do not parse are read as
absent: the controller owns them and rewrites them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from chalicelib.core.addresses import canonical
from chalicelib.core.backends import refused_backend
from chalicelib.core.health import parse_probe_run, parse_verdict
from chalicelib.core.model import (
    CONTROLLER_TAGS,
    GONE_STATES,
    TAG_BACKENDS,
    TAG_HEALTH,
    TAG_MAINTENANCE,
    TAG_NAME,
    TAG_PORT,
    TAG_PROBE,
    TAG_ROLE,
    TAG_STATE,
    AddressKind,
    Damping,
    FailoverMode,
    Instance,
    LbState,
    RawInstance,
    Role,
    Skipped,
)
from chalicelib.core.names import is_label, show

_CHECKSUM = re.compile(r"[0-9a-f]{64}")
_LB_NAME = re.compile(r"lb([1-9][0-9]{0,5})")


@dataclass(frozen=True)
class ParsedInventory:
    """The cluster's instances once their tags are read: LBs, web servers, and those skipped.

    Not `services.Inventory`, the EC2 calls that describe them.
    """

    lbs: tuple[Instance, ...]
    webs: tuple[Instance, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True)
class ParseRules:
    active_name: str
    lb_address: AddressKind
    pool_address: AddressKind
    pool_port: int
    mode: FailoverMode = FailoverMode.DNS  # says why an LB without its own public IPv4 cannot serve
    # Loopback web servers are the local stand-in's alone (config.Settings.loopback_allowed).
    loopback_allowed: bool = False


def parse_port(value: str) -> int | None:
    if not value.isascii() or not value.isdigit() or len(value) > 5:
        return None
    port = int(value)
    return port if 1 <= port <= 65535 else None


def _checksum(value: str | None) -> str | None:
    return value if value is not None and _CHECKSUM.fullmatch(value) else None


def _lb_state(value: str | None) -> LbState | None:
    return LbState(value) if value in (LbState.ACTIVE.value, LbState.STANDBY.value) else None


def parse_instance(raw: RawInstance, rules: ParseRules) -> Instance | Skipped:
    tags = dict(raw.tags)
    role_value = tags.get(TAG_ROLE)
    role = Role(role_value) if role_value in (Role.LB.value, Role.WEB.value) else None
    raw_name = tags.get(TAG_NAME)
    valid_name = raw_name if raw_name is not None and is_label(raw_name) else None

    # An instance of unknown role is most likely an LB with a typo: an active record on its LB
    # address is recognised as its, and left to it while it runs.
    which = rules.pool_address if role is Role.WEB else rules.lb_address
    raw_address = raw.public_ip if which is AddressKind.PUBLIC else raw.private_ip
    address = canonical(raw_address)
    maintenance = tags.get(TAG_MAINTENANCE)
    raw_port = tags.get(TAG_PORT)
    port: int | None = None
    if role is Role.WEB:
        port = rules.pool_port if raw_port is None else parse_port(raw_port)
    damping = Damping(
        verdict=parse_verdict(tags.get(TAG_HEALTH)), run=parse_probe_run(tags.get(TAG_PROBE))
    )

    def skip(reason: str, *, known_address: str | None = None) -> Skipped:
        # A valid name protects its record: a skipped LB is frozen, not forgotten. What parsed of
        # it is kept so it can be probed and judged; nothing that did not parse is.
        frozen = None
        if role is not None:
            frozen = Instance(
                instance_id=raw.instance_id,
                role=role,
                state=raw.state,
                launch_time=raw.launch_time,
                address=known_address,
                name=valid_name if role is Role.LB and valid_name != rules.active_name else None,
                port=port,
                draining=maintenance == "drain",
                damping=damping,
                lb_state=_lb_state(tags.get(TAG_STATE)) if role is Role.LB else None,
            )
        return Skipped(
            instance_id=raw.instance_id,
            reason=reason,
            role=role.value if role is not None else None,
            name=valid_name,
            address=known_address,
            state=raw.state,
            frozen=frozen,
        )

    if raw_address is not None and address is None:
        if role is None:
            return skip(_bad_role(role_value))
        return skip(f"{which} address {show(raw_address)} is not an IP address")
    if role is None:
        return skip(_bad_role(role_value), known_address=address)
    if role is Role.WEB and address is not None:
        refused = refused_backend(address, loopback_allowed=rules.loopback_allowed)
        if refused is not None:
            # Without its address: never probed, and no entry of the published list is kept for it.
            return skip(f"{which} address {address} is {refused}: never a backend")

    if maintenance not in (None, "drain"):
        return skip(
            f"{TAG_MAINTENANCE} {show(maintenance or '')} is not 'drain'", known_address=address
        )

    name: str | None = None
    if role is Role.LB:
        if raw_name is not None:
            if not is_label(raw_name):
                return skip(
                    f"{TAG_NAME} {show(raw_name)} is not a DNS label", known_address=address
                )
            if raw_name == rules.active_name:
                return skip(
                    f"{TAG_NAME} {show(raw_name)} is the active record's name",
                    known_address=address,
                )
            name = raw_name
    elif port is None:
        return skip(
            f"{TAG_PORT} {show(raw_port or '')} is not a port 1-65535", known_address=address
        )

    if address is None and raw.state == "running":
        # Never silently left out: without the address the settings select it can be neither
        # probed nor published, and an operator must hear why.
        return skip(_no_address(role, which, rules))

    return Instance(
        instance_id=raw.instance_id,
        role=role,
        state=raw.state,
        launch_time=raw.launch_time,
        address=address,
        name=name,
        port=port,
        draining=maintenance == "drain",
        damping=damping,
        lb_state=_lb_state(tags.get(TAG_STATE)) if role is Role.LB else None,
        backends_checksum=_checksum(tags.get(TAG_BACKENDS)) if role is Role.LB else None,
        written=tuple(sorted((k, v) for k, v in tags.items() if k in CONTROLLER_TAGS)),
    )


def _bad_role(value: str | None) -> str:
    shown = "missing" if value is None else show(value)
    return f"{TAG_ROLE} {shown} is not 'lb' or 'web'"


def _no_address(role: Role, which: AddressKind, rules: ParseRules) -> str:
    variable = "LBF_LB_ADDRESS" if role is Role.LB else "LBF_POOL_ADDRESS"
    kind = "public IPv4" if which is AddressKind.PUBLIC else "private IPv4"
    reason = f"running without a {kind} address ({variable}={which})"
    if role is Role.LB and rules.mode is FailoverMode.EIP and which is AddressKind.PUBLIC:
        reason += "; LBF_MODE=eip with LBF_LB_ADDRESS=public needs LBs with their own public IPv4"
    return reason


def natural_key(name: str) -> tuple[str | int, ...]:
    """`lb2` before `lb10`: digits compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"([0-9]+)", name))


def lowest_free_name(taken: Iterable[str]) -> str:
    numbers = {int(m[1]) for m in map(_LB_NAME.fullmatch, taken) if m is not None}
    number = 1
    while number in numbers:
        number += 1
    return f"lb{number}"


def build_inventory(raws: Iterable[RawInstance], rules: ParseRules) -> ParsedInventory:
    """Parse, then settle names: duplicates go to the older LB, missing names get `lbN`."""
    lbs: list[Instance] = []
    webs: list[Instance] = []
    skipped: list[Skipped] = []
    # A skipped LB is frozen, its record left as it is: it keeps its name against newer LBs too.
    frozen_claims: dict[str, tuple[float, str]] = {}  # name -> (launch time, id) of the oldest
    for raw in sorted(raws, key=lambda r: (r.launch_time, r.instance_id)):
        parsed = parse_instance(raw, rules)
        if isinstance(parsed, Skipped):
            skipped.append(parsed)
            if (
                parsed.name is not None
                and parsed.role != Role.WEB.value
                and parsed.state not in GONE_STATES
            ):
                frozen_claims.setdefault(parsed.name, (raw.launch_time, raw.instance_id))
        elif parsed.role is Role.LB:
            lbs.append(parsed)
        else:
            webs.append(parsed)

    # A name is held by the oldest LB that can still answer for it. A stopped or terminated LB
    # never holds it against a live one: that is how a replacement takes over its name.
    holders: dict[str, Instance] = {}
    kept: list[Instance] = []
    for lb in lbs:
        if lb.name is None or lb.state in GONE_STATES:
            kept.append(lb)
            continue
        holder = holders.get(lb.name)
        holder_id = holder.instance_id if holder is not None else None
        claim = frozen_claims.get(lb.name)
        if holder_id is None and claim is not None and claim < (lb.launch_time, lb.instance_id):
            holder_id = claim[1]
        if holder_id is None:
            holders[lb.name] = lb
            kept.append(lb)
        else:
            skipped.append(
                Skipped(
                    instance_id=lb.instance_id,
                    reason=f"{TAG_NAME} {lb.name!r} is already held by older {holder_id}",
                    role=Role.LB.value,
                    name=None,  # the record belongs to the holder
                    address=lb.address,
                    state=lb.state,
                    # Judged like any skipped LB (it may hold the active role), by no name.
                    frozen=replace(lb, name=None, backends_checksum=None, written=()),
                )
            )

    taken = {lb.name for lb in kept if lb.name is not None}
    taken |= {s.name for s in skipped if s.name is not None}
    taken.add(rules.active_name)
    named: list[Instance] = []
    for lb in kept:
        if lb.name is None and lb.state not in GONE_STATES:
            lb = replace(lb, name=lowest_free_name(taken), name_assigned=True)
            taken.add(lb.name or "")
        named.append(lb)
    return ParsedInventory(lbs=tuple(named), webs=tuple(webs), skipped=tuple(skipped))
