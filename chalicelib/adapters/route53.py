"""Route 53: the records under the cluster's domain, and change batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.adapters.clients import translated
from chalicelib.core.dns import RecordChange
from chalicelib.core.model import Record
from chalicelib.errors import AwsError, ZoneNotFound


def _absolute(name: str) -> str:
    return name + "."


def _relative(name: str) -> str:
    # Route 53 returns names with the trailing dot and escapes some characters as \NNN octal;
    # the controller's names are plain labels, so only the dot and case need undoing.
    return name.rstrip(".").lower()


class Route53Records:
    def __init__(self, client: Any, zone_id: str) -> None:
        self._client = client
        self._zone_id = zone_id

    def read(self, domain: str) -> tuple[Record, ...]:
        """Every A and TXT record at or below the domain, all pages.

        Route 53 lists names in DNS order (labels compared right to left), so everything below the
        domain follows it directly: start there and stop at the first name outside it. The
        paginator asks for a page only when the loop reaches it, so stopping early saves the
        requests (Route 53 allows 5 per second per account) for the rest of the zone.
        """
        try:
            return self._read(domain)
        except AwsError as exc:
            if exc.code != "NoSuchHostedZone":
                raise
            raise ZoneNotFound(
                f"LBF_HOSTED_ZONE_ID: Route 53 has no hosted zone {self._zone_id} in this account "
                f"({exc.code}): nothing written; LBF_HOSTED_ZONE_ID must be the zone that holds "
                f"{domain}"
            ) from exc

    def _read(self, domain: str) -> tuple[Record, ...]:
        records: list[Record] = []
        suffix = "." + domain
        with translated("route53", "ListResourceRecordSets"):
            pages = self._client.get_paginator("list_resource_record_sets").paginate(
                HostedZoneId=self._zone_id, StartRecordName=_absolute(domain)
            )
            for page in pages:
                for item in page.get("ResourceRecordSets", []):
                    name = _relative(item["Name"])
                    if name != domain and not name.endswith(suffix):
                        return tuple(records)
                    if item["Type"] in ("A", "TXT") and "ResourceRecords" in item:
                        records.append(_record(name, item))
        return tuple(records)

    def change(self, changes: Sequence[RecordChange], comment: str) -> str:
        """One change batch, applied atomically by Route 53; returns the change id."""
        batch = {
            "Comment": comment[:256],
            "Changes": [
                {
                    "Action": change.action,
                    "ResourceRecordSet": _record_set(change.record),
                }
                for change in changes
            ],
        }
        with translated("route53", "ChangeResourceRecordSets"):
            response = self._client.change_resource_record_sets(
                HostedZoneId=self._zone_id, ChangeBatch=batch
            )
        return str(response["ChangeInfo"]["Id"])

    def change_status(self, change_id: str) -> str:
        with translated("route53", "GetChange"):
            return str(self._client.get_change(Id=change_id)["ChangeInfo"]["Status"])


def _record(name: str, item: dict[str, Any]) -> Record:
    health_check_id = item.get("HealthCheckId")
    return Record(
        name=name,
        type=item["Type"],
        ttl=int(item.get("TTL", 0)),
        values=tuple(r["Value"] for r in item["ResourceRecords"]),
        set_identifier=item.get("SetIdentifier"),
        failover=item.get("Failover"),
        health_check_id=str(health_check_id) if health_check_id else None,
    )


def _record_set(record: Record) -> dict[str, Any]:
    """Every field Route 53 matches a DELETE against: a failover record's identity and check too."""
    record_set: dict[str, Any] = {
        "Name": _absolute(record.name),
        "Type": record.type,
        "TTL": record.ttl,
        "ResourceRecords": [{"Value": v} for v in record.values],
    }
    if record.set_identifier is not None:
        record_set["SetIdentifier"] = record.set_identifier
    if record.failover is not None:
        record_set["Failover"] = record.failover
    if record.health_check_id is not None:
        record_set["HealthCheckId"] = record.health_check_id
    return record_set
