"""What a probe connects to: the check templates (LBF_LB_CHECK, LBF_POOL_CHECK) and their endpoints.

A template is rendered with a target's address (and a web server's port) and parsed once, here,
into an `Endpoint`: the probe then connects and sends from its fields, and never reads a URL.
URLs remain only where text has to cross a boundary: the variables (config/forms.py) and
the prober function's request (core/probe_contract.py), whose side parses them with `parse_url`.

Pure: no network, and no name is ever resolved.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.core.addresses import DEFAULT_PORTS, url_host

SCHEMES = ("http", "https", "tcp")
ADDRESS_FIELD = "{address}"
PORT_FIELD = "{port}"
# A probe URL is a template filled with an EC2 address: printable ASCII only. Anything else is a
# broken template, and a space or CR/LF would otherwise end up inside the request line or headers.
_URL_CHARACTERS = re.compile(r"[!-~]+")


class BadUrl(ValueError):
    """A URL that cannot be probed as it is; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    """One probe's destination and request, parsed from a rendered check."""

    scheme: str  # http, https or tcp
    host: str  # an IP address, without brackets: connected to as it is, never looked up
    port: int  # the template's port, or the scheme's default
    path: str  # the request target, e.g. "/health?deep=1"; "" for tcp
    host_header: str  # the Host header, as the URL wrote host and port; "" for tcp

    def __post_init__(self) -> None:
        # The fields go into a socket call and the request line as they are: only the forms
        # parse_url makes, so no hand-made endpoint can put a name, a space or CR/LF there.
        ipaddress.ip_address(self.host)  # ValueError for anything but an IP literal
        text = self.path + self.host_header
        if (
            self.scheme not in SCHEMES
            or not 1 <= self.port <= 65535
            or (text and not _URL_CHARACTERS.fullmatch(text))
            or (self.scheme == "tcp") != (text == "")
        ):
            raise ValueError(f"not a probe endpoint: {self!r}")

    @property
    def url(self) -> str:
        """The endpoint as a URL: the form the prober function's request carries it in."""
        if self.scheme == "tcp":
            return f"tcp://{url_host(self.host)}:{self.port}"
        return f"{self.scheme}://{self.host_header}{self.path}"


@dataclass(frozen=True)
class CheckTemplate:
    """A validated probe URL template; `{address}` is the target's address, `{port}` its port."""

    scheme: str
    template: str

    @property
    def needs_port(self) -> bool:
        return PORT_FIELD in self.template

    def render(self, address: str, port: int | None = None) -> str:
        if self.needs_port and port is None:
            raise ValueError(f"check {self.template!r} needs a port")
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port {port} is not in 1..65535")
        url = self.template.replace(ADDRESS_FIELD, url_host(address))
        if port is not None:
            url = url.replace(PORT_FIELD, str(port))
        return url

    def endpoint(self, address: str, port: int | None = None) -> Endpoint:
        """The endpoint for one target. A template config/forms.py accepted, filled with an EC2
        address, always parses: it renders every template with both address families."""
        return parse_url(self.render(address, port))


@dataclass(frozen=True)
class ProbeRules:
    """How each role is probed (LBF_LB_CHECK, LBF_POOL_CHECK)."""

    lb_check: CheckTemplate
    pool_check: CheckTemplate


def parse_url(url: str) -> Endpoint:
    """The endpoint a URL names; BadUrl for anything a probe must not or cannot send."""
    if not _URL_CHARACTERS.fullmatch(url):
        raise BadUrl("empty, or not printable ASCII")
    try:
        parts = urlsplit(url)
        port = parts.port  # a property that raises ValueError for a port out of range
    except ValueError as exc:
        raise BadUrl(str(exc)) from exc
    if parts.scheme not in SCHEMES:
        raise BadUrl("scheme must be http, https or tcp")
    if "@" in parts.netloc:
        raise BadUrl("credentials are not allowed")
    if not parts.hostname:
        raise BadUrl("no host")
    # Only IP literals: every probed address comes from EC2, and a name would need getaddrinfo, which
    # asyncio runs in a thread that the deadline cannot cancel (asyncio.run then waits for it).
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError as exc:
        raise BadUrl("host must be an IP address") from exc
    if address.version == 4 and parts.netloc.startswith("["):
        raise BadUrl("brackets are for IPv6 addresses")
    if port is None:
        if parts.scheme == "tcp":
            raise BadUrl("tcp needs a port")
        port = DEFAULT_PORTS[parts.scheme]
    if port == 0:
        raise BadUrl("port 0")
    if parts.scheme == "tcp":
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise BadUrl("tcp takes no path")
        return Endpoint("tcp", str(address), port, path="", host_header="")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Endpoint(parts.scheme, str(address), port, path=path, host_header=parts.netloc)
