"""EC2: the cluster's instances, their tags, and the Elastic IP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.adapters.clients import translated
from chalicelib.core.model import TAG_CLUSTER, RawInstance


class Ec2Inventory:
    def __init__(self, client: Any) -> None:
        self._client = client

    def describe(self, cluster: str) -> list[RawInstance]:
        """Every instance tagged with the cluster, all pages, any state."""
        return self._describe({"Name": f"tag:{TAG_CLUSTER}", "Values": [cluster]})

    def describe_other_clusters(self, cluster: str) -> list[RawInstance]:
        """Every instance tagged with another cluster, all pages, any state.

        EC2 filters cannot say "not this value": the tag-key filter narrows the read to instances
        of some cluster, and this one's are dropped here.
        """
        found = self._describe({"Name": "tag-key", "Values": [TAG_CLUSTER]})
        return [r for r in found if (TAG_CLUSTER, cluster) not in r.tags]

    def _describe(self, tag_filter: dict[str, Any]) -> list[RawInstance]:
        found: list[RawInstance] = []
        with translated("ec2", "DescribeInstances"):
            pages = self._client.get_paginator("describe_instances").paginate(
                Filters=[tag_filter], PaginationConfig={"PageSize": 500}
            )
            for page in pages:
                for reservation in page.get("Reservations", []):
                    found.extend(_raw(i) for i in reservation.get("Instances", []))
        return found

    def create_tags(self, instance_ids: Sequence[str], tags: Sequence[tuple[str, str]]) -> None:
        with translated("ec2", "CreateTags"):
            self._client.create_tags(
                Resources=list(instance_ids),
                Tags=[{"Key": key, "Value": value} for key, value in tags],
            )

    def delete_tags(self, instance_ids: Sequence[str], keys: Sequence[str]) -> None:
        with translated("ec2", "DeleteTags"):
            # A key without a value removes the tag whatever its value.
            self._client.delete_tags(
                Resources=list(instance_ids), Tags=[{"Key": key} for key in keys]
            )

    def address_holder(self, allocation_id: str) -> tuple[str | None, str | None]:
        """(instance id, public IP) of the Elastic IP; DescribeAddresses is the truth."""
        with translated("ec2", "DescribeAddresses"):
            response = self._client.describe_addresses(AllocationIds=[allocation_id])
        addresses = response.get("Addresses", [])
        if not addresses:
            return None, None
        # An unassociated address has no InstanceId (moto answers ""): both mean "on nothing".
        return addresses[0].get("InstanceId") or None, addresses[0].get("PublicIp")

    def associate_address(self, allocation_id: str, instance_id: str) -> None:
        with translated("ec2", "AssociateAddress"):
            self._client.associate_address(
                AllocationId=allocation_id, InstanceId=instance_id, AllowReassociation=True
            )


def _raw(instance: dict[str, Any]) -> RawInstance:
    launch = instance.get("LaunchTime")
    return RawInstance(
        instance_id=instance["InstanceId"],
        state=instance.get("State", {}).get("Name", "unknown"),
        launch_time=launch.timestamp() if launch is not None else 0.0,
        private_ip=instance.get("PrivateIpAddress"),
        public_ip=instance.get("PublicIpAddress"),
        tags=tuple((t["Key"], t["Value"]) for t in instance.get("Tags", [])),
    )
