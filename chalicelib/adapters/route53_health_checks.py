"""Route 53 health checks: the second opinion's checks, and what their checkers report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from chalicelib.adapters.clients import translated
from chalicelib.core.addresses import DEFAULT_PORTS, canonical
from chalicelib.core.model import HealthCheck, HealthCheckSpec
from chalicelib.core.second_opinion import (
    FAILURE_THRESHOLD,
    REQUEST_INTERVAL,
    CheckerObservation,
    instance_of_reference,
)
from chalicelib.errors import AwsError


class Route53HealthChecks:
    """`client` makes the writes and the list; `status_client` reads checkers' reports.

    The status is read in a round where the prober is at fault, which is often the controller's
    own network: a client with short timeouts and one retry keeps that read from eating the round.
    """

    def __init__(self, client: Any, status_client: Any | None = None) -> None:
        self._client = client
        self._status_client = status_client or client

    def read(self, cluster: str) -> tuple[HealthCheck, ...]:
        """The cluster's checks, told apart from every other check by their CallerReference."""
        found: list[HealthCheck] = []
        with translated("route53", "ListHealthChecks"):
            pages = self._client.get_paginator("list_health_checks").paginate(
                PaginationConfig={"PageSize": 1000}
            )
            for page in pages:
                for item in page.get("HealthChecks", []):
                    check = _parse_check(item, cluster)
                    if check is not None:
                        found.append(check)
        return tuple(found)

    def create(
        self, spec: HealthCheckSpec, caller_reference: str, tags: Sequence[tuple[str, str]]
    ) -> str:
        """Creates the check and tags it; returns its id.

        The tags are for people (the console lists checks by Name): the controller finds its
        checks by CallerReference, so a failed tagging call leaves nothing lost.
        """
        config: dict[str, Any] = {
            "Type": spec.kind,
            "IPAddress": spec.address,
            "Port": spec.port,
            "RequestInterval": spec.request_interval,
            "FailureThreshold": spec.failure_threshold,
        }
        if spec.resource_path is not None:
            config["ResourcePath"] = spec.resource_path
        if spec.kind == "HTTPS":
            # An IP address has no name to send; Route 53 would otherwise default to SNI on.
            config["EnableSNI"] = False
        with translated("route53", "CreateHealthCheck"):
            response = self._client.create_health_check(
                CallerReference=caller_reference, HealthCheckConfig=config
            )
        health_check_id = str(response["HealthCheck"]["Id"])
        if not tags:
            return health_check_id
        with translated("route53", "ChangeTagsForResource"):
            self._client.change_tags_for_resource(
                ResourceType="healthcheck",
                ResourceId=health_check_id,
                AddTags=[{"Key": key, "Value": value} for key, value in tags],
            )
        return health_check_id

    def update(self, health_check_id: str, version: int, spec: HealthCheckSpec) -> None:
        """Refused (HealthCheckVersionMismatch) if the check changed since `version` was read.

        Route 53 updates address, port, path and threshold, never type or interval: a spec
        differing there is a new check (core.second_opinion plans it so)."""
        kwargs: dict[str, Any] = {
            "HealthCheckId": health_check_id,
            "HealthCheckVersion": version,
            "IPAddress": spec.address,
            "Port": spec.port,
            "FailureThreshold": spec.failure_threshold,
        }
        if spec.resource_path is not None:
            kwargs["ResourcePath"] = spec.resource_path
        with translated("route53", "UpdateHealthCheck"):
            self._client.update_health_check(**kwargs)

    def delete(self, health_check_id: str) -> None:
        """Deleting a check that is already gone (an overlapping run) is success."""
        try:
            with translated("route53", "DeleteHealthCheck"):
                self._client.delete_health_check(HealthCheckId=health_check_id)
        except AwsError as exc:
            if exc.code != "NoSuchHealthCheck":
                raise

    def status(self, health_check_id: str) -> tuple[CheckerObservation, ...]:
        """Each checker's last report: its region, success or not, and when."""
        with translated("route53", "GetHealthCheckStatus"):
            response = self._status_client.get_health_check_status(HealthCheckId=health_check_id)
        observations = []
        for item in response.get("HealthCheckObservations", []):
            report = item.get("StatusReport", {})
            checked = report.get("CheckedTime")
            if not isinstance(checked, dt.datetime):
                continue  # a report without a time cannot be weighed as recent
            observations.append(
                CheckerObservation(
                    region=str(item.get("Region", "unknown")),
                    healthy=str(report.get("Status", "")).startswith("Success"),
                    checked_at=checked.timestamp(),
                )
            )
        return tuple(observations)


def _parse_check(item: dict[str, Any], cluster: str) -> HealthCheck | None:
    instance_id = instance_of_reference(cluster, str(item.get("CallerReference", "")))
    config = item.get("HealthCheckConfig", {})
    if instance_id is None or "IPAddress" not in config:
        return None
    kind = str(config.get("Type", ""))
    path = config.get("ResourcePath")
    return HealthCheck(
        health_check_id=str(item["Id"]),
        instance_id=instance_id,
        version=int(item.get("HealthCheckVersion", 1)),
        spec=HealthCheckSpec(
            kind=kind,
            address=_address(str(config["IPAddress"])),
            port=int(config.get("Port", DEFAULT_PORTS.get(kind.lower(), 80))),
            resource_path=str(path) if path is not None and kind != "TCP" else None,
            request_interval=int(config.get("RequestInterval", REQUEST_INTERVAL)),
            failure_threshold=int(config.get("FailureThreshold", FAILURE_THRESHOLD)),
        ),
    )


def _address(value: str) -> str:
    """In the compressed form the inventory uses, so an unchanged IPv6 address compares equal."""
    # Not ours to judge when it is not one: it differs from every LB address and gets updated.
    return canonical(value) or value
