"""IP addresses: the one written form, the order, and how one goes into a URL or `host:port`.

EC2 reports an address, a tag or a Route 53 health check may repeat it: all are compared in the
form `canonical` gives, so that an unchanged IPv6 address always compares equal. Pure.
"""

from __future__ import annotations

import ipaddress

# What a URL without a port means, for the schemes a check can use (a TCP check has no default).
DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical(value: str | None) -> str | None:
    """The compressed form of a valid IP address, or None."""
    if value is None:
        return None
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        return None
    # ipaddress accepts an IPv6 scope id (`fe80::1%<anything but %>`) and keeps it in the
    # compressed form: free text that would reach records, backend lists and commands.
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.scope_id is not None:
        return None
    return parsed.compressed


def sort_key(address: str) -> tuple[int, int]:
    """Numeric order, IPv4 before IPv6: 10.0.0.9 before 10.0.0.10."""
    parsed = ipaddress.ip_address(address)
    return (parsed.version, int(parsed))


def url_host(address: str) -> str:
    """The address as the host of a URL or of `host:port`: an IPv6 literal goes in brackets, or
    its colons would read as the port separator."""
    return f"[{address}]" if ":" in address else address
