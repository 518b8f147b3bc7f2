"""Where moto is stricter than AWS in a way the stand-in runs into, patched to AWS's behaviour.

Only for the local stand-in (the demo, the e2e tests, the benchmarks): moto runs in this process,
so patching its backend class reaches the server, as standin/ssm_agent.py does for SSM.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.ec2.models import elastic_network_interfaces as eni_models
from moto.route53 import models as route53_models


def _record_key(change: dict[str, Any]) -> tuple[object, ...]:
    # A failover pair's records share name, type and often the value: SetIdentifier tells them
    # apart, from each other and from the plain record they replace; a record that only moves to
    # another health check is another record set too.
    record = change["ResourceRecordSet"]
    values = tuple(str(r["Value"]) for r in record.get("ResourceRecords", []))
    name, kind = record["Name"].rstrip("."), record["Type"]
    return (
        name,
        kind,
        record.get("SetIdentifier"),
        str(record.get("TTL")),
        values,
        record.get("Failover"),
        record.get("HealthCheckId"),
    )


def _without_restated(change_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A record a batch deletes and creates again unchanged (the failover pair's record that
    stays, in its compare-and-swap batch) is left as it is, as Route 53's atomic batch leaves
    it: moto would refuse the CREATE as an earlier one still in its journal."""
    deleted = [c["ResourceRecordSet"] for c in change_list if c["Action"] == "DELETE"]
    created = [c["ResourceRecordSet"] for c in change_list if c["Action"] == "CREATE"]
    same = [r for r in deleted if r in created]
    return [
        c
        for c in change_list
        if c["Action"] not in ("DELETE", "CREATE") or c["ResourceRecordSet"] not in same
    ]


@contextmanager
def route53_moves_back() -> Iterator[None]:
    """Let moto accept what Route 53 accepts: moving a record back to a value it held before.

    moto 5.2.5 rejects a CREATE that equals any earlier CREATE in the zone's journal whenever a
    record of that name exists *before* the batch, even when the same batch DELETEs it first, so
    the second failover back to an LB fails there as "already exists" (Route 53 applies the batch
    atomically and accepts it). This hides just those journal entries for the one call; every
    other check of moto's stays. The server runs in this process, so patching its class works,
    as standin/ssm_agent.py does for SSM.
    """
    backend_class = route53_models.Route53Backend
    original = backend_class.change_resource_record_sets

    def change_resource_record_sets(
        backend: Any, zoneid: str, change_list: list[dict[str, Any]]
    ) -> None:
        zone = backend.get_hosted_zone(zoneid)
        change_list = _without_restated(change_list)
        if not change_list:
            return
        deleting = {_record_key(c) for c in change_list if c["Action"] == "DELETE"}
        deleted = {key[:2] for key in deleting}
        created = {_record_key(c) for c in change_list if c["Action"] == "CREATE"}
        # Never the CREATE a DELETE of this batch is matched against (moto looks it up there).
        hidden = [
            entry
            for entry in zone.rr_changes
            if entry["Action"] == "CREATE"
            and _record_key(entry)[:2] in deleted
            and _record_key(entry) in created
            and _record_key(entry) not in deleting
        ]
        for entry in hidden:
            zone.rr_changes.remove(entry)
        try:
            original(backend, zoneid, change_list)
        finally:
            # Back into the journal (list.extend, not moto's append, which would rewrite them).
            list.extend(zone.rr_changes, hidden)

    backend_class.change_resource_record_sets = change_resource_record_sets  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        backend_class.change_resource_record_sets = original  # type: ignore[method-assign]


# The stand-in's "public" addresses: 127.0.1.N (the instances' subnet) -> 127.0.3.N. Not
# 127.0.2.0/24, where the Elastic IP's stand-in listens (standin/eip_forwarder.py, 127.0.2.1).
PRIVATE_NETWORK = ipaddress.ip_network("127.0.1.0/24")
PUBLIC_NETWORK = ipaddress.ip_network("127.0.3.0/24")


def public_address_of(private: str) -> str | None:
    """The loopback public address of an instance with this private address, if it has one."""
    try:
        address = ipaddress.ip_address(private)
    except ValueError:
        return None
    if address not in PRIVATE_NETWORK:
        return None
    offset = int(address) - int(PRIVATE_NETWORK.network_address)
    return str(PUBLIC_NETWORK.network_address + offset)


@contextmanager
def loopback_public_addresses() -> Iterator[None]:
    """Instances given a public address get one on loopback instead of one moto invents.

    moto 5.2.5 gives an auto-assigned public address a random one outside 127.0.0.0/8
    (`random_public_ip`), which nothing here can bind and nothing may send traffic to. With this,
    a cluster with LBF_LB_ADDRESS=public runs on the stand-in: the LB listens on its public
    address too (LocalHaproxy's `public_address`). EC2 gives a new public address at each start;
    here a restarted instance gets the same one back, its subnet's counterpart. An instance outside
    the subnet gets none rather than an address off this machine.
    """
    interface_class = eni_models.NetworkInterface
    original = interface_class.check_auto_public_ip

    def check_auto_public_ip(interface: Any) -> None:
        if str(interface.public_ip_auto_assign).lower() == "true":
            interface.public_ip = public_address_of(str(interface.private_ip_address))

    interface_class.check_auto_public_ip = check_auto_public_ip  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        interface_class.check_auto_public_ip = original  # type: ignore[method-assign]
