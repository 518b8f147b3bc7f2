"""Tags in, trusted instances out. EC2 tag values are free text: treat every one as hostile.

An instance whose operator-set tags do not parse is skipped with a reason and never rendered into
DNS, a configuration file or a command. Controller-written tags that do not parse are read as
absent: the controller owns them and rewrites them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
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


@dataclass(frozen=True)
class _Read:
    """What an instance's tags and addresses say, before anything is refused."""

    role_value: str | None
    role: Role | None
    raw_name: str | None
    valid_name: str | None
    which: AddressKind  # the kind of address the settings select for its role
    raw_address: str | None
    address: str | None
    maintenance: str | None
    raw_port: str | None
    port: int | None
    damping: Damping
    lb_state: LbState | None


def _read(raw: RawInstance, rules: ParseRules) -> _Read:
    tags = dict(raw.tags)
    role_value = tags.get(TAG_ROLE)
    role = Role(role_value) if role_value in (Role.LB.value, Role.WEB.value) else None
    raw_name = tags.get(TAG_NAME)
    # An instance of unknown role is most likely an LB with a typo: an active record on its LB
    # address is recognised as its, and left to it while it runs.
    which = rules.pool_address if role is Role.WEB else rules.lb_address
    raw_address = raw.public_ip if which is AddressKind.PUBLIC else raw.private_ip
    raw_port = tags.get(TAG_PORT)
    port: int | None = None
    if role is Role.WEB:
        port = rules.pool_port if raw_port is None else parse_port(raw_port)
    return _Read(
        role_value=role_value,
        role=role,
        raw_name=raw_name,
        valid_name=raw_name if raw_name is not None and is_label(raw_name) else None,
        which=which,
        raw_address=raw_address,
        address=canonical(raw_address),
        maintenance=tags.get(TAG_MAINTENANCE),
        raw_port=raw_port,
        port=port,
        damping=Damping(
            verdict=parse_verdict(tags.get(TAG_HEALTH)), run=parse_probe_run(tags.get(TAG_PROBE))
        ),
        lb_state=_lb_state(tags.get(TAG_STATE)) if role is Role.LB else None,
    )


def parse_instance(raw: RawInstance, rules: ParseRules) -> Instance | Skipped:
    read = _read(raw, rules)
    role = read.role
    if role is None:
        return _skipped(raw, read, rules, _bad_role(read.role_value), known_address=read.address)
    refused = _address_refusal(read, role, rules) or _tag_refusal(read, role, rules)
    if refused is None and read.address is None and raw.state == "running":
        # Never silently left out: without the address the settings select it can be neither
        # probed nor published, and an operator must hear why.
        refused = (_no_address(role, read.which, rules), None)
    if refused is not None:
        reason, known_address = refused
        return _skipped(raw, read, rules, reason, known_address=known_address)
    tags = dict(raw.tags)
    return Instance(
        instance_id=raw.instance_id,
        role=role,
        state=raw.state,
        launch_time=raw.launch_time,
        address=read.address,
        name=read.raw_name if role is Role.LB else None,
        port=read.port,
        draining=read.maintenance == "drain",
        damping=read.damping,
        lb_state=read.lb_state,
        backends_checksum=_checksum(tags.get(TAG_BACKENDS)) if role is Role.LB else None,
        written=tuple(sorted((k, v) for k, v in tags.items() if k in CONTROLLER_TAGS)),
    )


# Why an instance is skipped, and the address it is known by (None: never probed or matched).
_Refusal = tuple[str, str | None]


def _address_refusal(read: _Read, role: Role, rules: ParseRules) -> _Refusal | None:
    """An address that is no IP address, or a web server's that is never a backend."""
    if read.raw_address is not None and read.address is None:
        return f"{read.which} address {show(read.raw_address)} is not an IP address", None
    if role is Role.WEB and read.address is not None:
        refused = refused_backend(read.address, loopback_allowed=rules.loopback_allowed)
        if refused is not None:
            # Without its address: never probed, and no entry of the published list is kept for it.
            return f"{read.which} address {read.address} is {refused}: never a backend", None
    return None


def _tag_refusal(read: _Read, role: Role, rules: ParseRules) -> _Refusal | None:
    """An operator-set tag that does not parse: maintenance, an LB's name, a web server's port."""
    address = read.address
    if read.maintenance not in (None, "drain"):
        return f"{TAG_MAINTENANCE} {show(read.maintenance or '')} is not 'drain'", address
    if role is Role.LB and read.raw_name is not None:
        if not is_label(read.raw_name):
            return f"{TAG_NAME} {show(read.raw_name)} is not a DNS label", address
        if read.raw_name == rules.active_name:
            return f"{TAG_NAME} {show(read.raw_name)} is the active record's name", address
    elif role is Role.WEB and read.port is None:
        return f"{TAG_PORT} {show(read.raw_port or '')} is not a port 1-65535", address
    return None


def _skipped(
    raw: RawInstance, read: _Read, rules: ParseRules, reason: str, *, known_address: str | None
) -> Skipped:
    # A valid name protects its record: a skipped LB is frozen, not forgotten. What parsed of
    # it is kept so it can be probed and judged; nothing that did not parse is.
    frozen = None
    role = read.role
    if role is not None:
        frozen = Instance(
            instance_id=raw.instance_id,
            role=role,
            state=raw.state,
            launch_time=raw.launch_time,
            address=known_address,
            name=read.valid_name
            if role is Role.LB and read.valid_name != rules.active_name
            else None,
            port=read.port,
            draining=read.maintenance == "drain",
            damping=read.damping,
            lb_state=read.lb_state,
        )
    return Skipped(
        instance_id=raw.instance_id,
        reason=reason,
        role=role.value if role is not None else None,
        name=read.valid_name,
        address=known_address,
        state=raw.state,
        frozen=frozen,
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
    kept, duplicates = _settle_names(lbs, frozen_claims)
    skipped += duplicates
    named = _assign_names(kept, skipped, rules)
    return ParsedInventory(lbs=tuple(named), webs=tuple(webs), skipped=tuple(skipped))


def _settle_names(
    lbs: Iterable[Instance], frozen_claims: Mapping[str, tuple[float, str]]
) -> tuple[list[Instance], list[Skipped]]:
    """A name is held by the oldest LB that can still answer for it; the newer ones carrying it
    are skipped. A stopped or terminated LB never holds it against a live one: that is how a
    replacement takes over its name. `lbs` oldest first; `frozen_claims` as in build_inventory.
    """
    holders: dict[str, Instance] = {}
    kept: list[Instance] = []
    duplicates: list[Skipped] = []
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
            duplicates.append(
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
    return kept, duplicates


def _assign_names(
    kept: Sequence[Instance], skipped: Iterable[Skipped], rules: ParseRules
) -> list[Instance]:
    """A live LB without a name gets the lowest free `lbN`: free of every LB's and skipped
    instance's name, and of the active record's."""
    taken = {lb.name for lb in kept if lb.name is not None}
    taken |= {s.name for s in skipped if s.name is not None}
    taken.add(rules.active_name)
    named: list[Instance] = []
    for lb in kept:
        if lb.name is None and lb.state not in GONE_STATES:
            lb = replace(lb, name=lowest_free_name(taken), name_assigned=True)
            taken.add(lb.name or "")
        named.append(lb)
    return named
