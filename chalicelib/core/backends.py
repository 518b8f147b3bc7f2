"""The backend list every LB serves, its checksum, and the guards that keep a bad list out."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from chalicelib.core import addresses
from chalicelib.core.model import Instance, Verdict

# Parameter Store: 4 KB for a standard parameter, 8 KB for an advanced one. The list is written
# with intelligent tiering; past 8 KB it cannot be stored, and a truncated list would be a lie.
MAX_LIST_BYTES = 8192


class BackendListTooLong(ValueError):
    pass


# Addresses no web server can serve from, and that an LB must never be pointed at: HAProxy would
# send clients' requests to the LB's own metadata service (169.254.169.254, with the LB's role
# credentials behind it), to itself, or to no host at all.
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_BROADCAST = ipaddress.ip_address("255.255.255.255")


def refused_backend(address: str, *, loopback_allowed: bool) -> str | None:
    """Why `address` (canonical) may never be a backend, or None when it may."""
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        # ::ffff:169.254.169.254 reaches the same host as 169.254.169.254.
        parsed = parsed.ipv4_mapped
    if parsed.is_link_local:
        if parsed == ipaddress.ip_address("169.254.169.254"):
            return "link-local: the instance metadata service"
        return "link-local (169.254.0.0/16, fe80::/10)"
    if parsed.is_unspecified or parsed in _THIS_NETWORK:
        return "unspecified (0.0.0.0/8, ::)"
    if parsed.is_multicast:
        return "multicast (224.0.0.0/4, ff00::/8)"
    if parsed == _BROADCAST:
        return "broadcast (255.255.255.255)"
    if parsed.is_loopback and not loopback_allowed:
        return "loopback (127.0.0.0/8, ::1): the LB itself"
    return None


@dataclass(frozen=True)
class Backend:
    address: str  # compressed form, as ipaddress renders it
    port: int
    instance_id: str

    def render(self) -> str:
        host = addresses.url_host(ipaddress.ip_address(self.address).compressed)
        return f"{host}:{self.port}"

    def sort_key(self) -> tuple[int, int, int]:
        return (*addresses.sort_key(self.address), self.port)


@dataclass(frozen=True)
class BackendList:
    entries: tuple[str, ...]  # rendered `address:port`, sorted

    @property
    def text(self) -> str:
        return " ".join(self.entries)

    @property
    def checksum(self) -> str:
        return checksum(self.text)

    def __len__(self) -> int:
        return len(self.entries)


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def belongs_in_list(web: Instance) -> bool:
    """A web server that belongs in the list: running, healthy, not draining, renderable."""
    return (
        web.running
        and web.verdict is Verdict.HEALTHY
        and not web.draining
        and web.address is not None
        and web.port is not None
    )


def build_list(webs: Sequence[Instance], kept: Sequence[str] = ()) -> BackendList:
    """The list of every web server that belongs in it, plus `kept`: entries of the published list that
    skipped web servers keep while they answer (rendered already, and parsed from that list)."""
    backends = [
        Backend(address=web.address or "", port=web.port or 0, instance_id=web.instance_id)
        for web in webs
        if belongs_in_list(web)
    ]
    for entry in kept:
        host, _, port = entry.rpartition(":")
        backends.append(Backend(address=host.strip("[]"), port=int(port), instance_id=""))
    unique = {b.render(): b for b in backends}
    ordered = sorted(unique.values(), key=Backend.sort_key)
    result = BackendList(tuple(b.render() for b in ordered))
    if len(result.text.encode("ascii")) > MAX_LIST_BYTES:
        raise BackendListTooLong(
            f"backend list of {len(result)} entries is {len(result.text)} bytes, "
            f"more than Parameter Store's {MAX_LIST_BYTES}"
        )
    return result


def entries_of(web: Instance, published: Sequence[str]) -> tuple[str, ...]:
    """The entries of a published list that are this web server's: its address, and its port
    when that is known (a skipped server whose lbf:port does not parse is known by address)."""
    if web.address is None:
        return ()
    if web.port is not None:
        entry = Backend(web.address, web.port, web.instance_id).render()
        return (entry,) if entry in published else ()
    host = Backend(web.address, 1, web.instance_id).render().rpartition(":")[0]
    return tuple(e for e in published if e.rpartition(":")[0] == host)


def parse_list(text: str | None) -> tuple[str, ...]:
    """A stored list, split into entries; a stored value that does not parse counts as none.

    Each entry must be exactly what `Backend.render` would write: this value is pushed verbatim
    while a guard keeps the last list, so a hand-edited `080`, `[10.0.0.1]`, an unbracketed IPv6
    address or an IPv6 scope id (`%` and free text after it) must never pass for a list.
    """
    if not text:
        return ()
    entries = tuple(text.split(" "))
    if not all(_canonical_entry(entry) == entry for entry in entries):
        return ()
    return entries


def _canonical_entry(entry: str) -> str | None:
    host, _, port = entry.rpartition(":")
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    bracketed = host.startswith("[") and host.endswith("]")
    address = addresses.canonical(host[1:-1] if bracketed else host)
    if address is None:
        return None
    return Backend(address, int(port), "").render()


POOL_DROP = "pool-drop"


def _entry_key(entry: str) -> tuple[int, int, int]:
    host, _, port = entry.rpartition(":")
    return (*addresses.sort_key(host.strip("[]")), int(port))


@dataclass(frozen=True)
class Held:
    """A guard kept the last list: which, and why (for the notice)."""

    guard: str
    reason: str
    entries: tuple[str, ...] = ()  # pool-drop: the entries held in the list although they failed


def guard_not_empty(wanted: BackendList) -> Held | None:
    """Never push or publish an empty list: HAProxy with no servers serves nothing."""
    if len(wanted) == 0:
        return Held("empty", "no web server is healthy and in service; the last list stays")
    return None


def guard_pool_drop(
    published: Sequence[str],
    wanted: BackendList,
    webs: Sequence[Instance],
    max_drop_percent: int,
    *,
    failed_entries: Sequence[str] = (),
    accepted: Collection[str] = (),
) -> Held | None:
    """Too many servers failing probes at once is more likely the prober's fault than theirs.

    `published` is the list published when the run started: the bound is per run, however many
    rounds remove entries. `failed_entries`: entries of skipped web servers whose probes failed.
    `accepted`: removals taken on purpose (`accept-drop`, or held long enough: core.held_drop),
    which do not count against the bound.
    """
    if not published:
        return None
    failed = set(failed_entries) | {
        rendered
        for web in webs
        if web.running
        and not web.draining
        and web.verdict is Verdict.UNHEALTHY
        and web.address is not None
        and web.port is not None
        for rendered in [
            Backend(web.address, web.port, web.instance_id).render(),
        ]
    }
    removed = (set(published) - set(wanted.entries)) & failed - set(accepted)
    if len(removed) * 100 > max_drop_percent * len(published):
        return Held(
            POOL_DROP,
            f"{len(removed)} of {len(published)} backends failed probes in one run, more than "
            f"LBF_MAX_POOL_DROP={max_drop_percent}%; the last list stays",
            entries=tuple(sorted(removed, key=_entry_key)),
        )
    return None
